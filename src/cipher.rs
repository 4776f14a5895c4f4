//! The value cipher: AES-256-GCM with sops' 32-byte IV and the
//! `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` text form (spec §2).

use crate::b64;
use crate::gofmt::format_float_f;
use crate::tree::Value;
use aes_gcm::aead::consts::{U12, U32};
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::AesGcm;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::RngCore;
use std::collections::HashMap;
use std::fmt;
use zeroize::{Zeroize, Zeroizing};

type Gcm32 = AesGcm<Aes256, U32>;
type Gcm12 = AesGcm<Aes256, U12>;

pub const IV_LEN: usize = 32;
const TAG_LEN: usize = 16;
const PREFIX: &str = "ENC[AES256_GCM,data:";

/// The length of the `ENC[…]` text of `n` plaintext bytes of type `typ`:
/// prefix, data, `,iv:` and 44, `,tag:` and 24, `,type:`, type, `]`.
fn enc_len(n: usize, typ: &str) -> usize {
    PREFIX.len() + b64::encoded_len(n) + 4 + 44 + 5 + 24 + 6 + typ.len() + 1
}

/// The 32-byte data key of a file. Wiped on drop, never printed.
#[derive(Clone)]
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    pub fn generate() -> DataKey {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(k.as_mut());
        DataKey(k)
    }
    /// `None` unless `bytes` is exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<DataKey> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(DataKey(Zeroizing::new(arr)))
    }
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// Why a value could not be decrypted. Messages never contain plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CipherError {
    /// The text is not an `ENC[...]` value (sops: "does not match sops' data format").
    Format,
    /// base64 or IV length problems inside a well-formed `ENC[...]`.
    Encoding(&'static str),
    /// GCM authentication failed (wrong key, wrong path, or tampering).
    Authentication,
    /// The decrypted bytes do not parse as the declared type.
    Parse(&'static str),
    UnknownType(String),
}

impl fmt::Display for CipherError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CipherError::Format => f.write_str("Input string does not match sops' data format"),
            CipherError::Encoding(what) => write!(f, "Error base64-decoding {what}"),
            CipherError::Authentication => f.write_str("cipher: message authentication failed"),
            CipherError::Parse(t) => write!(f, "Error parsing decrypted value as {t}"),
            CipherError::UnknownType(t) => write!(f, "Unknown datatype: {t}"),
        }
    }
}

impl std::error::Error for CipherError {}

/// The four fields of an `ENC[...]` string, still base64-encoded.
pub struct EncParts<'a> {
    pub data: &'a str,
    pub iv: &'a str,
    pub tag: &'a str,
    pub typ: &'a str,
}

/// Parse like sops' regex `^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]`:
/// anchored at the start only, greedy groups, `.` not crossing a newline.
pub fn parse_enc(s: &str) -> Option<EncParts<'_>> {
    match crate::find::byte(b'\n', s.as_bytes()) {
        Some(i) => parse_enc_line(&s[..i]),
        None => parse_enc_line(s),
    }
}

/// [`parse_enc`] of text without a newline.
fn parse_enc_line(line: &str) -> Option<EncParts<'_>> {
    debug_assert!(!line.contains('\n'));
    let line = line.strip_prefix(PREFIX)?;
    let body = &line[..crate::find::byte_rev(b']', line.as_bytes())?];
    let (before_type, typ) = rsplit_field(body, b",type:")?;
    let (before_tag, tag) = rsplit_field(before_type, b",tag:")?;
    let (data, iv) = rsplit_field(before_tag, b",iv:")?;
    if data.is_empty() || iv.is_empty() || tag.is_empty() || typ.is_empty() {
        return None;
    }
    Some(EncParts { data, iv, tag, typ })
}

/// `s.rsplit_once(sep)` for a separator that starts with `,`: scans commas
/// from the end instead of running a substring search. The separator's
/// length is a constant, so comparing with it takes a few loads, not a
/// `memcmp` call (2 % of a dotenv decrypt's time when it was a `&str`).
#[inline(always)]
fn rsplit_field<'a, const N: usize>(s: &'a str, sep: &[u8; N]) -> Option<(&'a str, &'a str)> {
    let bytes = s.as_bytes();
    let mut end = bytes.len();
    while let Some(i) = crate::find::byte_rev(b',', &bytes[..end]) {
        if bytes.get(i..i + N) == Some(sep.as_slice()) {
            return Some((&s[..i], &s[i + N..]));
        }
        end = i;
    }
    None
}

/// Whether a string has the shape of an encrypted value.
pub fn is_encrypted_value(s: &str) -> bool {
    parse_enc(s).is_some()
}

/// The plaintext bytes sops encrypts and feeds to the MAC for a scalar
/// (Go `ToBytes`, spec §2.3), and the type tag. `None` for non-scalars/null.
pub fn plaintext_of(value: &Value) -> Option<(Zeroizing<Vec<u8>>, &'static str)> {
    let (bytes, typ): (Vec<u8>, _) = match value {
        Value::Str(s) => (s.as_bytes().to_vec(), "str"),
        Value::Bytes(b) => (b.clone(), "str"),
        Value::Int(i) => (i.to_string().into_bytes(), "int"),
        Value::Float(f) => (format_float_f(*f).into_bytes(), "float"),
        Value::Bool(b) => ((if *b { "True" } else { "False" }).into(), "bool"),
        Value::Time(t) => (t.as_bytes().to_vec(), "time"),
        Value::Comment(c) => (c.as_bytes().to_vec(), "comment"),
        Value::Null | Value::Map(_) | Value::List(_) => return None,
    };
    Some((Zeroizing::new(bytes), typ))
}

/// The same bytes as [`plaintext_of`] without allocating for strings:
/// borrowed from the value, or formatted into `scratch` for numbers.
pub fn plaintext_bytes<'a>(value: &'a Value, scratch: &'a mut Vec<u8>) -> Option<(&'a [u8], &'static str)> {
    use std::io::Write;
    scratch.clear();
    Some(match value {
        Value::Str(s) => (s.as_bytes(), "str"),
        Value::Bytes(b) => (b.as_slice(), "str"),
        Value::Time(t) => (t.as_bytes(), "time"),
        Value::Comment(c) => (c.as_bytes(), "comment"),
        Value::Bool(b) => ((if *b { "True" } else { "False" }).as_bytes(), "bool"),
        Value::Int(i) => {
            let _ = write!(scratch, "{i}");
            (scratch.as_slice(), "int")
        }
        Value::Float(f) => {
            scratch.extend_from_slice(format_float_f(*f).as_bytes());
            (scratch.as_slice(), "float")
        }
        Value::Null | Value::Map(_) | Value::List(_) => return None,
    })
}

/// Key of the IV stash: same plaintext, same type, same path → same IV (§2.5).
#[derive(Hash, PartialEq, Eq)]
struct StashKey {
    typ: &'static str,
    plaintext: Vec<u8>,
    aad: Vec<u8>,
}

impl Drop for StashKey {
    fn drop(&mut self) {
        self.plaintext.zeroize();
    }
}

/// IVs a thread draws from its CSPRNG at a time.
const IVS_PER_DRAW: usize = 32;

/// A thread's IVs drawn and not used yet, from `used` on: one call into the
/// generator per 32 values instead of one per value. (Each IV is used once,
/// and appears in the output: nothing secret.)
struct FreshIvs {
    ivs: [u8; IV_LEN * IVS_PER_DRAW],
    used: usize,
    /// The thread's [`crate::gcm::AesRng`], made on first use (`Some(None)`:
    /// no AES-NI, or the operating system gave no seed; `rand` draws).
    aes: Option<Option<crate::gcm::AesRng>>,
}

thread_local! {
    static FRESH_IVS: std::cell::RefCell<FreshIvs> = const {
        std::cell::RefCell::new(FreshIvs {
            ivs: [0; IV_LEN * IVS_PER_DRAW],
            used: IV_LEN * IVS_PER_DRAW,
            aes: None,
        })
    };
}

/// AES-CTR keyed from the operating system's generator, if the CPU has
/// AES-NI.
fn seeded_aes_rng() -> Option<crate::gcm::AesRng> {
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.try_fill_bytes(&mut seed[..]).ok()?;
    crate::gcm::AesRng::new(&seed)
}

/// A new random IV, drawn in batches from the thread's CSPRNG: AES-256-CTR
/// with fast key erasure ([`crate::gcm::AesRng`]) seeded from the
/// operating system, or `rand::thread_rng` (ChaCha12, seeded from the
/// operating system) without AES-NI.
fn fresh_iv() -> [u8; IV_LEN] {
    FRESH_IVS.with_borrow_mut(|fresh| {
        if fresh.used == fresh.ivs.len() {
            match fresh.aes.get_or_insert_with(seeded_aes_rng) {
                Some(aes) => aes.fill(&mut fresh.ivs),
                None => rand::thread_rng().fill_bytes(&mut fresh.ivs),
            }
            fresh.used = 0;
        }
        let iv = fresh.ivs[fresh.used..fresh.used + IV_LEN]
            .try_into()
            .expect("IV_LEN bytes");
        fresh.used += IV_LEN;
        iv
    })
}

/// A keyed AES-GCM instance for one file, plus the optional IV stash that
/// lets re-encryption keep unchanged values byte-identical.
pub struct ValueCipher {
    /// The `aes-gcm` crate's cipher, made when first needed: where
    /// [`Self::fast`] exists it never is (its CPU detection costs the
    /// start of a run a few CPUID traps in a VM).
    gcm: std::sync::OnceLock<Gcm32>,
    /// The same cipher with AES-NI and a faster GHASH, where the CPU allows.
    fast: Option<crate::gcm::Gcm32>,
    key: DataKey,
    stash: Option<HashMap<StashKey, [u8; IV_LEN]>>,
}

impl ValueCipher {
    pub fn new(key: &DataKey) -> ValueCipher {
        ValueCipher {
            gcm: std::sync::OnceLock::new(),
            fast: crate::gcm::Gcm32::new(key.as_bytes()),
            key: key.clone(),
            stash: None,
        }
    }

    fn crate_gcm(&self) -> &Gcm32 {
        self.gcm
            .get_or_init(|| Gcm32::new(GenericArray::from_slice(self.key.as_bytes())))
    }

    /// Remember the IV of every value decrypted from now on.
    pub fn with_stash(mut self) -> ValueCipher {
        self.stash = Some(HashMap::new());
        self
    }

    pub fn has_stash(&self) -> bool {
        self.stash.is_some()
    }

    /// Move the stash to a cipher with another key (rotate keeps IVs, §2.5).
    pub fn take_stash_from(&mut self, other: &mut ValueCipher) {
        self.stash = other.stash.take();
    }

    /// Encrypt a scalar's plaintext bytes with the given type tag and AAD.
    pub fn encrypt_bytes(&self, plaintext: &[u8], typ: &'static str, aad: &[u8]) -> String {
        let iv = self.stashed_iv(plaintext, typ, aad).unwrap_or_else(fresh_iv);
        self.encrypt_with_iv(plaintext, typ, aad, &iv)
    }

    fn stashed_iv(&self, plaintext: &[u8], typ: &'static str, aad: &[u8]) -> Option<[u8; IV_LEN]> {
        let stash = self.stash.as_ref()?;
        let key = StashKey {
            typ,
            plaintext: plaintext.to_vec(),
            aad: aad.to_vec(),
        };
        stash.get(&key).copied()
    }

    /// [`Self::encrypt_bytes`] appending the `ENC[…]` text to `out`: no
    /// allocation per value (the dotenv pieces of `pipeline`).
    pub fn encrypt_into(&self, plaintext: &[u8], typ: &'static str, aad: &[u8], out: &mut Vec<u8>) {
        let iv = self.stashed_iv(plaintext, typ, aad).unwrap_or_else(fresh_iv);
        self.write_enc(plaintext, typ, aad, &iv, out);
    }

    pub fn encrypt_with_iv(&self, plaintext: &[u8], typ: &str, aad: &[u8], iv: &[u8; IV_LEN]) -> String {
        let mut out = Vec::with_capacity(enc_len(plaintext.len(), typ));
        self.write_enc(plaintext, typ, aad, iv, &mut out);
        // Skips a UTF-8 check of every encrypted value (a measurable share
        // of a large encrypt).
        // SAFETY: `write_enc` appends the ASCII prefix and separators,
        // base64 output (ASCII) and `typ`, which is a `&str`: valid UTF-8
        // throughout.
        unsafe { String::from_utf8_unchecked(out) }
    }

    /// Append the `ENC[…]` text of `plaintext` encrypted with `iv`.
    fn write_enc(&self, plaintext: &[u8], typ: &str, aad: &[u8], iv: &[u8; IV_LEN], out: &mut Vec<u8>) {
        // Encrypt in place in a stack buffer for the usual short values (a
        // buffer in `out` would need room for both the ciphertext and its
        // base64, and make every tree value that much larger). Nothing to
        // wipe: the plaintext copy becomes ciphertext right away. Left
        // uninitialised, as only the copy is read: zeroing 256 bytes per
        // value was most of a dotenv encrypt's `memset`.
        let mut small = [std::mem::MaybeUninit::<u8>::uninit(); 256];
        let mut large = Vec::new();
        let buf: &mut [u8] = if plaintext.len() <= small.len() {
            // SAFETY: the first `plaintext.len()` bytes of `small` are
            // written from `plaintext` before the slice over them is made.
            unsafe {
                let start = small.as_mut_ptr().cast::<u8>();
                std::ptr::copy_nonoverlapping(plaintext.as_ptr(), start, plaintext.len());
                std::slice::from_raw_parts_mut(start, plaintext.len())
            }
        } else {
            large.extend_from_slice(plaintext);
            &mut large[..]
        };
        let tag: [u8; TAG_LEN] = match &self.fast {
            Some(fast) => fast.encrypt(iv, aad, buf),
            None => self
                .crate_gcm()
                .encrypt_in_place_detached(GenericArray::from_slice(iv), aad, buf)
                .expect("AES-GCM encryption only fails for inputs larger than 64 GiB")
                .into(),
        };
        out.reserve(enc_len(buf.len(), typ));
        out.extend_from_slice(PREFIX.as_bytes());
        b64::encode_into(out, buf);
        b64::encode_iv_and_tag(out, iv, &tag);
        out.extend_from_slice(typ.as_bytes());
        out.push(b']');
    }

    /// Encrypt a scalar value. Empty strings are never encrypted (§2.4):
    /// callers check that first.
    pub fn encrypt_value(&self, value: &Value, aad: &[u8]) -> Option<String> {
        let mut scratch = Zeroizing::new(Vec::new());
        let (bytes, typ) = plaintext_bytes(value, &mut scratch)?;
        Some(self.encrypt_bytes(bytes, typ, aad))
    }

    /// Decrypt an `ENC[...]` string to its raw plaintext and type tag,
    /// remembering the IV when the stash is on.
    pub fn decrypt_raw<'a>(&mut self, text: &'a str, aad: &[u8]) -> Result<(Zeroizing<Vec<u8>>, &'a str), CipherError> {
        let (data, typ, iv) = self.decrypt_shared(text, aad)?;
        if let Some(stash) = self.stash.as_mut() {
            if let (Some(iv32), Some(typ)) = (iv, static_type(typ)) {
                stash.insert(
                    StashKey {
                        typ,
                        plaintext: data.to_vec(),
                        aad: aad.to_vec(),
                    },
                    iv32,
                );
            }
        }
        Ok((data, typ))
    }

    /// [`Self::decrypt_raw`] without the stash, usable from several threads.
    /// Also returns the IV when it has sops' 32-byte length.
    #[allow(clippy::type_complexity)]
    pub fn decrypt_shared<'a>(
        &self,
        text: &'a str,
        aad: &[u8],
    ) -> Result<(Zeroizing<Vec<u8>>, &'a str, Option<[u8; IV_LEN]>), CipherError> {
        let mut data = DataBuf::new();
        let (typ, iv) = self.open(text, aad, &mut data)?;
        Ok((Zeroizing::new(data.as_slice().to_vec()), typ, iv))
    }

    /// Decrypt into `data`: the type tag and the 32-byte IV, if it is one.
    fn open<'a>(
        &self,
        text: &'a str,
        aad: &[u8],
        data: &mut DataBuf,
    ) -> Result<(&'a str, Option<[u8; IV_LEN]>), CipherError> {
        let parts = parse_enc(text).ok_or(CipherError::Format)?;
        data.decode(parts.data).map_err(|_| CipherError::Encoding("data"))?;
        let iv = self.open_in_place(&parts, aad, data.as_mut_slice())?;
        Ok((parts.typ, iv))
    }

    /// Decrypt an `ENC[…]` text of one line (no newline: a dotenv line of
    /// `pipeline`) and append its plaintext to `out`; returns the type tag.
    /// On an error `out` is left as it was. No allocation per value.
    pub fn open_line_into<'a>(&self, text: &'a str, aad: &[u8], out: &mut Vec<u8>) -> Result<&'a str, CipherError> {
        let parts = parse_enc_line(text).ok_or(CipherError::Format)?;
        let start = out.len();
        if b64::decode_canonical_append(parts.data.as_bytes(), out).is_none() {
            let data = Zeroizing::new(B64.decode(parts.data).map_err(|_| CipherError::Encoding("data"))?);
            out.extend_from_slice(&data);
        }
        // Nothing to wipe on failure: the bytes are still ciphertext.
        match self.open_in_place(&parts, aad, &mut out[start..]) {
            Ok(_) => Ok(parts.typ),
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }

    /// Decrypt `data`, the decoded data field of `parts`, in place; returns
    /// the IV when it has sops' 32-byte length. On an error `data` is still
    /// the ciphertext.
    fn open_in_place(
        &self,
        parts: &EncParts<'_>,
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<Option<[u8; IV_LEN]>, CipherError> {
        let mut iv_buf = FieldBuf::new();
        let iv = iv_buf.decode(parts.iv).map_err(|_| CipherError::Encoding("iv"))?;
        let mut tag_buf = FieldBuf::new();
        let tag = tag_buf.decode(parts.tag).map_err(|_| CipherError::Encoding("tag"))?;
        if tag.len() != TAG_LEN {
            return Err(CipherError::Authentication);
        }
        if let (Some(fast), Ok(iv32), Ok(tag)) = (
            &self.fast,
            <&[u8; IV_LEN]>::try_from(iv),
            <&[u8; TAG_LEN]>::try_from(tag),
        ) {
            fast.decrypt(iv32, aad, data, tag)
                .map_err(|_| CipherError::Authentication)?;
            return Ok(Some(*iv32));
        }
        let tag = GenericArray::from_slice(tag);
        match iv.len() {
            IV_LEN => self
                .crate_gcm()
                .decrypt_in_place_detached(GenericArray::from_slice(iv), aad, data, tag)
                .map_err(|_| CipherError::Authentication)?,
            12 => Gcm12::new(GenericArray::from_slice(self.key.as_bytes()))
                .decrypt_in_place_detached(GenericArray::from_slice(iv), aad, data, tag)
                .map_err(|_| CipherError::Authentication)?,
            _ => return Err(CipherError::Encoding("iv: unsupported length")),
        }
        Ok(<[u8; IV_LEN]>::try_from(iv).ok())
    }

    /// Decrypt an `ENC[...]` string that the caller owns, without the stash.
    /// A `str` (or `comment`, `bytes`) result reuses the string's own buffer,
    /// so a large file is decrypted without an allocation or a free per
    /// value. If decryption fails the text is handed back unchanged; if the
    /// plaintext does not parse as its type, it is gone (callers stop).
    pub fn decrypt_owned(&self, text: String, aad: &[u8]) -> Result<Value, (CipherError, String)> {
        let mut data = DataBuf::new();
        let typ = match self.open(&text, aad, &mut data) {
            Ok((typ, _)) => typ,
            Err(e) => return Err((e, text)),
        };
        let plain = data.as_slice();
        let result = match typ {
            "str" | "bytes" | "comment" => {
                // The plaintext is shorter than its ENC[...] text: no reallocation.
                let typ = typ.to_owned();
                let mut buf = text.into_bytes();
                buf.clear();
                buf.extend_from_slice(plain);
                match typ.as_str() {
                    "bytes" => Ok(Value::Bytes(buf)),
                    "comment" => match String::from_utf8(buf) {
                        Ok(s) => Ok(Value::Comment(s)),
                        Err(e) => {
                            let mut b = e.into_bytes();
                            crate::tree::wipe_vec(&mut b);
                            Err(CipherError::Parse("UTF-8"))
                        }
                    },
                    _ => Ok(match String::from_utf8(buf) {
                        Ok(s) => Value::Str(s),
                        Err(e) => Value::Bytes(e.into_bytes()),
                    }),
                }
            }
            _ => value_from_plaintext(Zeroizing::new(plain.to_vec()), typ),
        };
        result.map_err(|e| (e, String::new()))
    }

    /// Decrypt an `ENC[...]` string back to a typed value (§2.3).
    pub fn decrypt_value(&mut self, text: &str, aad: &[u8]) -> Result<Value, CipherError> {
        let (bytes, typ) = self.decrypt_raw(text, aad)?;
        value_from_plaintext(bytes, typ)
    }

    /// [`Self::decrypt_value`] without the stash, usable from several threads.
    pub fn decrypt_value_shared(&self, text: &str, aad: &[u8]) -> Result<Value, CipherError> {
        let (bytes, typ, _) = self.decrypt_shared(text, aad)?;
        value_from_plaintext(bytes, typ)
    }
}

/// Decoded value bytes: on the stack for the usual short values, on the
/// heap otherwise; the used part is wiped when dropped.
struct DataBuf {
    inline: [u8; 256],
    heap: Zeroizing<Vec<u8>>,
    len: usize,
    on_heap: bool,
}

impl DataBuf {
    fn new() -> DataBuf {
        DataBuf {
            inline: [0; 256],
            heap: Zeroizing::new(Vec::new()),
            len: 0,
            on_heap: false,
        }
    }

    fn decode(&mut self, text: &str) -> Result<(), base64::DecodeError> {
        // 340 base64 characters decode to at most 255 bytes.
        if let Some(n) = b64::decode_canonical(text.as_bytes(), &mut self.inline) {
            self.len = n;
            self.on_heap = false;
        } else if text.len() <= 340 {
            self.len = B64.decode_slice(text, &mut self.inline).map_err(|e| match e {
                base64::DecodeSliceError::DecodeError(e) => e,
                base64::DecodeSliceError::OutputSliceTooSmall => base64::DecodeError::InvalidLength(text.len()),
            })?;
            self.on_heap = false;
        } else {
            *self.heap = B64.decode(text)?;
            self.len = self.heap.len();
            self.on_heap = true;
        }
        Ok(())
    }

    fn as_slice(&self) -> &[u8] {
        if self.on_heap {
            &self.heap
        } else {
            &self.inline[..self.len]
        }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        if self.on_heap {
            &mut self.heap[..]
        } else {
            &mut self.inline[..self.len]
        }
    }
}

impl Drop for DataBuf {
    fn drop(&mut self) {
        // Only the used prefix can hold plaintext; a plain memset kept alive.
        self.inline[..self.len.min(256)].fill(0);
        std::hint::black_box(&self.inline);
    }
}

/// A base64 field (IV, tag) decoded without allocating when it is short.
struct FieldBuf {
    inline: [u8; 64],
    heap: Vec<u8>,
}

impl FieldBuf {
    fn new() -> FieldBuf {
        FieldBuf {
            inline: [0; 64],
            heap: Vec::new(),
        }
    }

    fn decode(&mut self, text: &str) -> Result<&[u8], base64::DecodeError> {
        // 84 base64 characters decode to at most 63 bytes, so the inline
        // buffer is never too small and any error is a real decoding error.
        if let Some(n) = b64::decode_canonical(text.as_bytes(), &mut self.inline) {
            Ok(&self.inline[..n])
        } else if text.len() <= 84 {
            let n = B64.decode_slice(text, &mut self.inline).map_err(|e| match e {
                base64::DecodeSliceError::DecodeError(e) => e,
                base64::DecodeSliceError::OutputSliceTooSmall => base64::DecodeError::InvalidLength(text.len()),
            })?;
            Ok(&self.inline[..n])
        } else {
            self.heap = B64.decode(text)?;
            Ok(&self.heap)
        }
    }
}

fn static_type(t: &str) -> Option<&'static str> {
    Some(match t {
        "str" => "str",
        "int" | "int64" => "int",
        "float" => "float",
        "bool" => "bool",
        "time" => "time",
        "comment" => "comment",
        "bytes" => "bytes",
        _ => return None,
    })
}

/// Rebuild a typed value from decrypted bytes, parsing as Go does.
pub(crate) fn value_from_plaintext(mut bytes: Zeroizing<Vec<u8>>, typ: &str) -> Result<Value, CipherError> {
    if typ == "str" {
        // The buffer moves into the tree (which wipes it), no copy.
        return Ok(match String::from_utf8(std::mem::take(&mut *bytes)) {
            Ok(s) => Value::Str(s),
            Err(e) => Value::Bytes(e.into_bytes()),
        });
    }
    if typ == "bytes" {
        return Ok(Value::Bytes(std::mem::take(&mut *bytes)));
    }
    let text = || std::str::from_utf8(&bytes).map_err(|_| CipherError::Parse("UTF-8"));
    Ok(match typ {
        "int" | "int64" => Value::Int(parse_go_atoi(text()?).ok_or(CipherError::Parse("int"))?),
        "float" => Value::Float(text()?.parse::<f64>().map_err(|_| CipherError::Parse("float"))?),
        "bool" => Value::Bool(parse_go_bool(text()?).ok_or(CipherError::Parse("bool"))?),
        "time" => {
            let t = text()?;
            crate::timefmt::canonical_rfc3339(t)
                .map(Value::Time)
                .ok_or(CipherError::Parse("time"))?
        }
        "comment" => Value::Comment(text()?.to_string()),
        other => return Err(CipherError::UnknownType(other.to_string())),
    })
}

/// Go `strconv.Atoi`: optional sign, decimal digits, fits in i64.
fn parse_go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok()
}

/// Go `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn spec_key() -> DataKey {
        DataKey::from_slice(&hex("aeff30b6e24d18b0bf39703f987e9da3d2144eb1d1dc9b961b51b04d403ceebf")).unwrap()
    }

    // spec §13.1: (aad, plaintext, type, ENC string)
    const VECTORS: &[(&str, &str, &str, &str)] = &[
        (":", " hi", "comment", "ENC[AES256_GCM,data:7JKK,iv:HYiqy5mWf5vODG+GiYTOj+F9X9Y6JZOm20fle9Cof/0=,tag:5Jro9rw9z+vrE7PrPfnwpQ==,type:comment]"),
        ("app:password:", "s3cr3t", "str", "ENC[AES256_GCM,data:7S6n1OVY,iv:tkcnLNeUPtQxhpOcQlvKDuVfpHmQAm2WQSOpbDhGm8s=,tag:CyAvtO1aR9fxQjvRnD/d6Q==,type:str]"),
        ("app:port:", "5432", "int", "ENC[AES256_GCM,data:aqGP2g==,iv:txLQa6sTLWS/Qvw27AQAFWNqpbiSDrv2YzATJNZJoRY=,tag:c6KVqmOhJJYRlCNBgwexeg==,type:int]"),
        ("app:ratio:", "0.5", "float", "ENC[AES256_GCM,data:d9cw,iv:cYhiejgdMOlL01qYASfXjqK2r1jhEKfifgqJ7Frp7EY=,tag:W9vjEJB2fvQpam3g427sVg==,type:float]"),
        ("app:debug:", "False", "bool", "ENC[AES256_GCM,data:71oaXhk=,iv:pKkbRtRBYmCuBOnC28oFIwi+PKHZS2sdW7bqyZxZMP8=,tag:fcUUcIzfGVCKIGmQpjSNBw==,type:bool]"),
        ("app:hosts:", "h1", "str", "ENC[AES256_GCM,data:1vk=,iv:BqDkeO3AfMiDqPStbyxKqcMrep6gsQSmHkUDY6VNI2k=,tag:z5q+lyiKNkZK8yoVre9uMQ==,type:str]"),
        ("2026-11-28T17:28:35Z", "EDF2AAC8AF7020081328B6E2D0F9D6787CFD2B81B30BFDF8BD3BB354C1C18629D0FAEDC721C3902E8CB55FF528E314528A3955CD36B1AFD516B27BF63813D69F", "str", "ENC[AES256_GCM,data:PQWVF60uJYkWcP+Gi0S5NTUKJoY8c0F/Dm9qLpKDB50c4nr3VC43ayTFgIKfetr5tlYLqSctw2GqvWSrMG+83snFUoe1wYtSYdTLf0TkWEO1t41tZixCC59N0kDhvuGabqvo+1XJ0IkDK4EUDSlsLwpB7CYE9Cmo0sEZFMGOfeA=,iv:+A0elNbIuvwMwNR6wWGIaLDHPrUX59PY3QJVYBNwyHM=,tag:Kc0YSDspFTdEfvIiHbQcjw==,type:str]"),
    ];

    /// An `ENC[…]` string is built in the room reserved for it at first:
    /// it never grows (a reallocation and a copy per value), whatever the
    /// plaintext's length.
    #[test]
    fn enc_strings_are_built_without_growing() {
        let c = ValueCipher::new(&spec_key());
        for len in 0..300 {
            let plain = vec![b'x'; len];
            for typ in ["str", "int", "comment"] {
                let s = c.encrypt_with_iv(&plain, typ, b"a:", &[7; IV_LEN]);
                assert_eq!(s.len(), enc_len(len, typ), "len {len}");
                assert_eq!(s.capacity(), s.len(), "len {len}: the string grew");
            }
        }
    }

    /// IVs drawn in batches are each new: none repeats within a thread or
    /// across threads, over several batches.
    #[test]
    fn fresh_ivs_do_not_repeat() {
        let draw = || (0..IVS_PER_DRAW * 5 + 3).map(|_| fresh_iv()).collect::<Vec<_>>();
        let mut all = draw();
        all.extend(std::thread::spawn(draw).join().unwrap());
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
        assert!(all.iter().all(|iv| iv.iter().any(|&b| b != 0)));
    }

    /// The cipher as built here (AES-NI and the folding GHASH where the
    /// CPU has them) and with the `aes-gcm` crate only, as on other CPUs.
    fn both_ciphers(key: &DataKey) -> [ValueCipher; 2] {
        let fast = ValueCipher::new(key);
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("pclmulqdq") && is_x86_feature_detected!("aes") {
            assert!(fast.fast.is_some(), "AES-NI and the folding GHASH are not in use");
        }
        let mut crate_only = ValueCipher::new(key);
        crate_only.fast = None;
        [fast, crate_only]
    }

    #[test]
    fn spec_vectors_decrypt() {
        for mut c in both_ciphers(&spec_key()) {
            for (aad, plain, typ, enc) in VECTORS {
                let (bytes, t) = c.decrypt_raw(enc, aad.as_bytes()).unwrap();
                assert_eq!(&bytes[..], plain.as_bytes(), "{aad}");
                assert_eq!(t, *typ);
            }
        }
    }

    #[test]
    fn spec_vectors_encrypt_with_same_iv() {
        for c in both_ciphers(&spec_key()) {
            for (aad, plain, typ, enc) in VECTORS {
                let parts = parse_enc(enc).unwrap();
                let iv: [u8; 32] = B64.decode(parts.iv).unwrap().try_into().unwrap();
                assert_eq!(c.encrypt_with_iv(plain.as_bytes(), typ, aad.as_bytes(), &iv), *enc);
            }
        }
    }

    #[test]
    fn wrong_aad_fails_authentication() {
        for mut c in both_ciphers(&spec_key()) {
            let r = c.decrypt_raw(VECTORS[1].3, b"password:");
            assert_eq!(r.err(), Some(CipherError::Authentication));
        }
    }

    #[test]
    fn typed_values_round_trip() {
        let mut c = ValueCipher::new(&DataKey::generate());
        for v in [
            Value::Str("héllo\nworld".into()),
            Value::Int(-42),
            Value::Float(1e20),
            Value::Float(f64::INFINITY),
            Value::Bool(true),
            Value::Time("2024-01-02T03:04:05Z".into()),
            Value::Comment(" c".into()),
        ] {
            let enc = c.encrypt_value(&v, b"a:").unwrap();
            assert_eq!(c.decrypt_value(&enc, b"a:").unwrap(), v);
        }
    }

    #[test]
    fn stash_reuses_iv_for_same_value_and_path_only() {
        let key = DataKey::generate();
        let mut c = ValueCipher::new(&key).with_stash();
        let enc = c.encrypt_value(&Value::Str("x".into()), b"a:").unwrap();
        c.decrypt_value(&enc, b"a:").unwrap();
        assert_eq!(c.encrypt_value(&Value::Str("x".into()), b"a:").unwrap(), enc);
        assert_ne!(c.encrypt_value(&Value::Str("y".into()), b"a:").unwrap(), enc);
        let other_path = c.encrypt_value(&Value::Str("x".into()), b"b:").unwrap();
        assert_ne!(parse_enc(&other_path).unwrap().iv, parse_enc(&enc).unwrap().iv);
    }

    #[test]
    fn decrypt_owned_matches_decrypt_value() {
        let mut c = ValueCipher::new(&DataKey::generate());
        let long = "x".repeat(1000);
        for v in [
            Value::Str("héllo\nworld".into()),
            Value::Str(long.clone()),
            Value::Int(-42),
            Value::Float(0.25),
            Value::Bool(true),
            Value::Time("2024-01-02T03:04:05Z".into()),
            Value::Comment(" c".into()),
        ] {
            let enc = c.encrypt_value(&v, b"a:").unwrap();
            assert_eq!(c.decrypt_owned(enc.clone(), b"a:").ok(), Some(v.clone()));
            assert_eq!(c.decrypt_value(&enc, b"a:").unwrap(), v);
        }
        // Failures hand the text back untouched.
        let enc = c.encrypt_value(&Value::Str(long), b"a:").unwrap();
        let (err, back) = c.decrypt_owned(enc.clone(), b"b:").unwrap_err();
        assert_eq!(err, CipherError::Authentication);
        assert_eq!(back, enc);
        let (err, back) = c.decrypt_owned("ENC[nope]".into(), b"a:").unwrap_err();
        assert_eq!(err, CipherError::Format);
        assert_eq!(back, "ENC[nope]");
        // Spec vectors through the owned path.
        let c = ValueCipher::new(&spec_key());
        for (aad, plain, typ, enc) in VECTORS {
            let v = c.decrypt_owned(enc.to_string(), aad.as_bytes()).ok().unwrap();
            let expected = value_from_plaintext(Zeroizing::new(plain.as_bytes().to_vec()), typ).unwrap();
            assert_eq!(v, expected, "{aad}");
        }
    }

    #[test]
    fn parse_rejects_malformed() {
        assert!(parse_enc("ENC[AES256_GCM,data:,iv:a,tag:b,type:str]").is_none());
        assert!(parse_enc("ENC[AES256_GCM,data:a,iv:b,tag:c,type:str").is_none());
        assert!(parse_enc("xENC[AES256_GCM,data:a,iv:b,tag:c,type:str]").is_none());
        assert!(parse_enc("ENC[AES256_GCM,data:a,iv:b,tag:c,type:str]trailing").is_some());
    }
}
