//! Large YAML files encrypted piece by piece, so that reading, parsing,
//! encrypting and printing overlap on all cores and the whole plaintext
//! tree never exists at once.
//!
//! The input is read in chunks and cut before top-level keys (where
//! [`yaml::is_piece_start`] allows; the cuts the parallel load uses). Worker
//! threads parse each piece and encrypt its values; the calling thread
//! takes the pieces in document order, hashes their MAC input, checks the
//! top-level keys across pieces and prints them into one output buffer with
//! a [`DocumentStream`], which gives the bytes the whole-tree path prints.
//! Nothing is written anywhere until the whole input went through, so
//! anything unusual (a piece the streaming loader leaves to the reference
//! load, a syntax error, a repeated or `sops` top-level key, a non-string
//! key, a read error) just returns `None` and the caller runs the ordinary
//! path, which gives the exact result or error.

use crate::cipher::ValueCipher;
use crate::crypt::{encrypt_piece, mac_hex, MAC_ONLY_ENCRYPTED_INIT};
use crate::metadata::{Metadata, NilList};
use crate::policy::Selector;
use crate::stores::yaml::{self, DocumentStream};
use crate::tree::{Branch, Item, Key};
use sha2::{Digest, Sha512};
use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};
use zeroize::{Zeroize, Zeroizing};

/// Smaller files take the whole-tree path (threads would cost more than
/// they save).
pub const MIN_BYTES: u64 = 256 * 1024;
/// Input bytes per piece, about: small enough that a piece's tree stays in
/// the cache-friendly range and memory is reused from piece to piece, large
/// enough that the per-piece overhead does not show.
const PIECE_BYTES: usize = 128 * 1024;
/// Bytes read at a time.
const READ_BYTES: usize = 128 * 1024;
const MAX_THREADS: usize = 8;

/// A file encrypted up to its metadata: finish it with [`Self::finish`].
pub struct EncryptedPieces {
    stream: DocumentStream,
    /// The MAC of the plaintext (uppercase hex SHA-512), to be encrypted
    /// into the metadata.
    pub mac: String,
    pub warnings: Vec<String>,
    /// How many pieces the input was cut into.
    pub pieces: usize,
}

impl EncryptedPieces {
    /// The whole file: the items printed so far, then the `sops` block.
    pub fn finish(mut self, metadata: &Metadata) -> Vec<u8> {
        let sops = Item::new("sops", metadata.to_value(NilList::EmptyList));
        self.stream.push(std::slice::from_ref(&sops));
        self.stream.finish()
    }
}

/// Splits the input into pieces as it is read.
struct PieceReader<R> {
    reader: R,
    piece_bytes: usize,
    buf: Vec<u8>,
    /// Where the search for the next cut resumes (keeps it linear).
    scanned: usize,
    eof: bool,
}

impl<R: Read> PieceReader<R> {
    fn new(reader: R, piece_bytes: usize) -> Self {
        PieceReader {
            reader,
            piece_bytes,
            buf: Vec::new(),
            scanned: 0,
            eof: false,
        }
    }

    /// The next piece, `None` at the end of the input.
    fn next_piece(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(cut) = self.find_cut() {
                let rest = self.buf.split_off(cut);
                self.scanned = 0;
                return Ok(Some(std::mem::replace(&mut self.buf, rest)));
            }
            if self.eof {
                return Ok((!self.buf.is_empty()).then(|| std::mem::take(&mut self.buf)));
            }
            self.buf.reserve(READ_BYTES);
            let read = (&mut self.reader).take(READ_BYTES as u64).read_to_end(&mut self.buf)?;
            self.eof = read == 0;
        }
    }

    /// A cut at least `piece_bytes` in. A line whose decision needs bytes
    /// not read yet counts as no cut: that only makes a piece longer.
    fn find_cut(&mut self) -> Option<usize> {
        if self.buf.len() <= self.piece_bytes {
            return None;
        }
        let mut pos = self.scanned.max(self.piece_bytes);
        while let Some(nl) = memchr::memchr(b'\n', &self.buf[pos..]) {
            let start = pos + nl + 1;
            if start >= self.buf.len() {
                break;
            }
            if yaml::is_piece_start(&self.buf, start) {
                return Some(start);
            }
            pos = start;
        }
        self.scanned = pos;
        None
    }
}

impl<R> Drop for PieceReader<R> {
    fn drop(&mut self) {
        // What was read and not handed out (after giving up) is plaintext.
        self.buf.zeroize();
    }
}

/// A piece parsed and encrypted by a worker.
struct Done {
    items: Branch,
    mac_input: Zeroizing<Vec<u8>>,
    warnings: Vec<String>,
}

fn work(mut piece: Vec<u8>, cipher: &ValueCipher, selector: &Selector, mac_only_encrypted: bool) -> Option<Done> {
    let loaded = yaml::load_piece(&piece);
    let mac_capacity = piece.len();
    // The piece is plaintext (its whole allocation: the reader's split
    // leaves the next piece's first bytes in the spare capacity).
    piece.zeroize();
    let mut items = loaded?;
    let mut mac_input = Zeroizing::new(Vec::with_capacity(mac_capacity));
    let warnings = encrypt_piece(&mut items, cipher, selector, mac_only_encrypted, &mut mac_input).ok()?;
    Some(Done {
        items,
        mac_input,
        warnings,
    })
}

/// The calling thread's side: pieces in document order.
struct Assembler {
    stream: DocumentStream,
    hash: Sha512,
    top_keys: HashSet<String>,
    warnings: Vec<String>,
}

impl Assembler {
    /// Take the next piece; `false` means "not piecewise after all".
    fn accept(&mut self, done: Done) -> bool {
        for item in &done.items.0 {
            match &item.key {
                Key::Str(k) => {
                    // A `sops` key means "already encrypted"; a repeated key
                    // is a YAML error: both are the ordinary path's to report.
                    if k == "sops" || !self.top_keys.insert(k.clone()) {
                        return false;
                    }
                }
                Key::NonString { .. } => return false,
                Key::Comment(_) => {}
            }
        }
        self.hash.update(&done.mac_input[..]);
        self.warnings.extend(done.warnings);
        self.stream.push(&done.items.0);
        true
    }
}

/// Encrypt a single-document YAML file read from `reader`, or `None` when
/// it does not go piecewise (see the module comment).
pub fn encrypt_yaml<R: Read>(
    reader: R,
    indent: usize,
    cipher: &ValueCipher,
    selector: &Selector,
    mac_only_encrypted: bool,
) -> Option<EncryptedPieces> {
    encrypt_yaml_in(reader, PIECE_BYTES, indent, cipher, selector, mac_only_encrypted)
}

fn encrypt_yaml_in<R: Read>(
    reader: R,
    piece_bytes: usize,
    indent: usize,
    cipher: &ValueCipher,
    selector: &Selector,
    mac_only_encrypted: bool,
) -> Option<EncryptedPieces> {
    if selector.uses_comments() {
        // Comment selectors carry state from one key to the next.
        return None;
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS);
    let mut asm = Assembler {
        stream: DocumentStream::new(indent),
        hash: Sha512::new(),
        top_keys: HashSet::new(),
        warnings: Vec::new(),
    };
    if mac_only_encrypted {
        asm.hash.update(MAC_ONLY_ENCRYPTED_INIT);
    }
    let mut reader = PieceReader::new(reader, piece_bytes);
    let stop = AtomicBool::new(false);
    let (job_tx, job_rx) = mpsc::channel::<(usize, Vec<u8>)>();
    let job_rx = Mutex::new(job_rx);
    let (done_tx, done_rx) = mpsc::channel::<(usize, Option<Done>)>();
    let pieces = std::thread::scope(|s| {
        let mut workers = 0;
        for _ in 0..threads {
            let (job_rx, done_tx, stop) = (&job_rx, done_tx.clone(), &stop);
            let worker = move || loop {
                let job = job_rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                let Ok((index, mut piece)) = job else { break };
                if stop.load(Ordering::Relaxed) {
                    piece.zeroize();
                    continue;
                }
                let done = work(piece, cipher, selector, mac_only_encrypted);
                if done_tx.send((index, done)).is_err() {
                    break;
                }
            };
            // A thread that cannot be started leaves its share to the others.
            workers += usize::from(std::thread::Builder::new().spawn_scoped(s, worker).is_ok());
        }
        drop(done_tx);
        // Enough pieces in flight to keep every worker busy while this
        // thread prints; few enough that memory stays bounded.
        let max_in_flight = 2 * workers + 1;
        let (mut read, mut accepted, mut in_flight) = (0usize, 0usize, 0usize);
        let mut eof = false;
        let mut ok = true;
        let mut arrived: BTreeMap<usize, Option<Done>> = BTreeMap::new();
        while ok {
            while !eof && in_flight < max_in_flight {
                match reader.next_piece() {
                    Ok(Some(piece)) if workers == 0 => {
                        arrived.insert(read, work(piece, cipher, selector, mac_only_encrypted));
                        read += 1;
                        break;
                    }
                    Ok(Some(piece)) => {
                        if job_tx.send((read, piece)).is_err() {
                            ok = false;
                            break;
                        }
                        read += 1;
                        in_flight += 1;
                    }
                    Ok(None) => eof = true,
                    Err(_) => {
                        ok = false;
                        break;
                    }
                }
            }
            if !ok || (in_flight == 0 && arrived.is_empty()) {
                break;
            }
            if in_flight > 0 {
                let Ok((index, done)) = done_rx.recv() else {
                    ok = false;
                    break;
                };
                in_flight -= 1;
                arrived.insert(index, done);
            }
            while let Some(done) = arrived.remove(&accepted) {
                accepted += 1;
                if !done.is_some_and(|done| asm.accept(done)) {
                    ok = false;
                    break;
                }
            }
        }
        stop.store(!ok, Ordering::Relaxed);
        drop(job_tx);
        ok.then_some(read)
    })?;
    if pieces == 0 {
        return None;
    }
    Some(EncryptedPieces {
        stream: asm.stream,
        mac: mac_hex(asm.hash),
        warnings: asm.warnings,
        pieces,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cipher::DataKey;
    use crate::crypt::{decrypt_document, encrypt_document};
    use crate::metadata::{MasterKey, EMULATED_SOPS_VERSION};
    use crate::policy::SelectorSpec;
    use crate::sopsfile::{self, StoreSettings};
    use crate::stores::Format;
    use crate::testutil::{corpus_files, generated_document, Rng};

    fn metadata(spec: &SelectorSpec, mac_only_encrypted: bool) -> Metadata {
        Metadata {
            key_groups: vec![vec![MasterKey::Age {
                recipient: "age1test".into(),
                enc: "wrapped".into(),
            }]],
            shamir_threshold: 0,
            last_modified: "2026-01-01T00:00:00Z".into(),
            mac: "ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]".into(),
            selectors: spec.clone(),
            mac_only_encrypted,
            version: EMULATED_SOPS_VERSION.into(),
        }
    }

    /// The output with every `ENC[…]` value (random IVs) replaced by `ENC`.
    fn masked(out: &[u8]) -> String {
        let re = regex::Regex::new(r"ENC\[AES256_GCM,[^\]]*\]").expect("valid regex");
        re.replace_all(&String::from_utf8_lossy(out), "ENC").into_owned()
    }

    /// Encrypt `input` piecewise (pieces of about `piece_bytes`) and through
    /// the whole tree. When the piecewise path takes it: the same bytes
    /// apart from the ciphertexts, the same MAC, and the plaintext tree back
    /// on decryption. Returns the number of pieces (0: not taken).
    fn check(input: &[u8], piece_bytes: usize, spec: &SelectorSpec, mac_only: bool) -> usize {
        let key = DataKey::generate();
        let cipher = ValueCipher::new(&key);
        let selector = spec.compile().expect("selector");
        let settings = StoreSettings::default();
        let meta = metadata(spec, mac_only);
        let Some(done) = encrypt_yaml_in(input, piece_bytes, 4, &cipher, &selector, mac_only) else {
            return 0;
        };
        let text = String::from_utf8_lossy(input);
        let mut whole = sopsfile::load_plain(Format::Yaml, &settings, input)
            .unwrap_or_else(|e| panic!("piecewise took what the store rejects ({}): {text:?}", e.message));
        assert!(!sopsfile::has_metadata(Format::Yaml, &whole), "{text:?}");
        let outcome = encrypt_document(&mut whole, &cipher, &selector, mac_only).expect("whole-tree encrypt");
        let expected = sopsfile::emit_encrypted(Format::Yaml, &settings, &mut whole, &meta).expect("emit");
        assert_eq!(done.mac, outcome.mac, "MAC differs for {text:?}");
        let pieces = done.pieces;
        let got = done.finish(&meta);
        assert_eq!(masked(&got), masked(&expected), "output differs for {text:?}");
        // Both decrypt to the same tree (which need not be the input's:
        // values keep sops' encrypted types), with the same MAC.
        let decrypted = |out: &[u8]| {
            let (mut back, _) = sopsfile::load_encrypted(Format::Yaml, &settings, out).expect("load output");
            let mut cipher = ValueCipher::new(&key);
            let again = decrypt_document(&mut back, &mut cipher, &selector, mac_only).expect("decrypt output");
            assert_eq!(again.mac, outcome.mac);
            // Compared as printed: NaN != NaN in the tree.
            sopsfile::emit_plain(Format::Yaml, &settings, &back).expect("emit plaintext")
        };
        // (A comment go-yaml moves elsewhere does not decrypt and stays
        // encrypted, as with sops: masked too.)
        assert_eq!(
            masked(&decrypted(&got)),
            masked(&decrypted(&expected)),
            "plaintext differs for {text:?}"
        );
        pieces
    }

    #[test]
    fn corpus_and_generated_documents_match_the_whole_tree_path() {
        let default = SelectorSpec::default();
        let regex = SelectorSpec {
            encrypted_regex: "^k[0-3]".into(),
            ..Default::default()
        };
        let mut multi = 0;
        for (_, data) in corpus_files("yaml") {
            for piece_bytes in [1, 40, 400] {
                multi += usize::from(check(&data, piece_bytes, &default, false) > 1);
            }
        }
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for i in 0..600 {
            let doc = generated_document(&mut rng, i, 6);
            let (spec, mac_only) = if i % 3 == 0 { (&regex, true) } else { (&default, false) };
            multi += usize::from(check(doc.as_bytes(), 1 + i % 200, spec, mac_only) > 1);
        }
        assert!(multi > 60, "only {multi} inputs went through in several pieces");
    }

    #[test]
    fn a_large_file_goes_through_in_many_pieces() {
        let mut doc = String::from("# head\n");
        for i in 0..3000 {
            doc.push_str(&format!(
                "# about s{i}\ns{i}:\n    user: \"u{i}\"\n    port: {i}\n    list:\n        - a: true\n          b: 1.5\n"
            ));
        }
        doc.push_str("# tail\n");
        assert!(check(doc.as_bytes(), 4096, &SelectorSpec::default(), false) > 20);
    }

    /// Inputs the piecewise path must leave to the whole-tree path, which
    /// then gives the result or the error.
    #[test]
    fn unusual_inputs_are_left_to_the_whole_tree_path() {
        let body = (0..200).map(|i| format!("k{i}: v{i}\n")).collect::<String>();
        let cases = [
            format!("{body}sops: x\n"),
            format!("{body}k3: again\n"),
            format!("{body}k: &a 1\nl: *a\n"),
            format!("{body}bad: [\n"),
            format!("{body}---\nother: 1\n"),
            format!("\u{feff}{body}"),
            format!("{body}1: non-string key\n"),
            format!("{body}big: 18446744073709551615\n"),
            String::new(),
            "# only a comment\n".to_string(),
        ];
        let key = DataKey::generate();
        let cipher = ValueCipher::new(&key);
        let selector = SelectorSpec::default().compile().expect("selector");
        for case in &cases {
            assert!(
                encrypt_yaml_in(case.as_bytes(), 64, 4, &cipher, &selector, false).is_none(),
                "taken piecewise: {case:?}"
            );
        }
        // Comment selectors carry state across keys: never piecewise.
        let comments = SelectorSpec {
            encrypted_comment_regex: "sops:enc".into(),
            ..Default::default()
        }
        .compile()
        .expect("selector");
        assert!(encrypt_yaml_in(body.as_bytes(), 64, 4, &cipher, &comments, false).is_none());
        assert!(encrypt_yaml_in(body.as_bytes(), 64, 4, &cipher, &selector, false).is_some());
    }

    /// A read error part way leaves the file to the whole-tree path.
    #[test]
    fn a_read_error_gives_up() {
        struct Failing(Vec<u8>, usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.1 >= self.0.len() / 2 {
                    return Err(std::io::Error::other("disk on fire"));
                }
                let n = buf.len().min(100).min(self.0.len() - self.1);
                buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
                self.1 += n;
                Ok(n)
            }
        }
        let body: String = (0..500).map(|i| format!("k{i}: v{i}\n")).collect();
        let key = DataKey::generate();
        let selector = SelectorSpec::default().compile().expect("selector");
        let failing = Failing(body.into_bytes(), 0);
        assert!(encrypt_yaml_in(failing, 64, 4, &ValueCipher::new(&key), &selector, false).is_none());
    }
}
