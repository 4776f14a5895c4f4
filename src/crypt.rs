//! Encrypting and decrypting a whole tree, and the MAC over it (spec §3–§5).
//!
//! One walk does both the cipher work and the hashing, in document order,
//! with the AAD path built incrementally so the cost is linear in file size.

use crate::cipher::{plaintext_bytes, CipherError, ValueCipher};
use crate::policy::Selector;
use crate::sha512::Sha512;
use crate::tree::{wipe_string, wipe_vec};
use crate::tree::{Branch, Document, Key, Value};
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use zeroize::Zeroizing;

/// Files with fewer leaves than this are processed on the calling thread:
/// starting threads costs more than it saves.
const PARALLEL_MIN_JOBS: usize = 2048;
/// Leaves handed to a worker at a time.
const CHUNK_JOBS: usize = 256;
/// Worker threads at most (the value cipher scales with cores; the MAC and
/// the tree walk do not).
const MAX_THREADS: usize = 8;

/// SHA-256("sops"): the MAC prefix when `mac_only_encrypted` is set (§5.1).
pub const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b, 0x0b, 0x97, 0x5b,
    0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

#[derive(Debug, Clone, PartialEq)]
pub enum TreeError {
    /// A YAML key that is not a string (exit 23 on encrypt).
    NonStringKey { type_name: &'static str, text: String },
    /// A value that should be encrypted could not be decrypted (exit 25).
    Decrypt { path: String, error: CipherError },
    /// A value that should be encrypted is not a string at all (exit 25).
    NotAString { path: String },
}

impl fmt::Display for TreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TreeError::NonStringKey { type_name, text } => write!(
                f,
                "Error walking tree: Tree contains a non-string key (type {type_name}): {text}. Only string keys are supported"
            ),
            TreeError::Decrypt { path, error } => {
                write!(f, "Error walking tree: Could not decrypt value at {}: {error}", display_path(path))
            }
            TreeError::NotAString { path } => write!(
                f,
                "Error walking tree: Could not decrypt value at {}: expected an encrypted string",
                display_path(path)
            ),
        }
    }
}

fn display_path(aad: &str) -> String {
    let trimmed = aad.strip_suffix(':').unwrap_or(aad);
    if trimmed.is_empty() {
        "the top level".to_string()
    } else {
        format!("'{trimmed}'")
    }
}

impl std::error::Error for TreeError {}

/// The result of a walk: the MAC (uppercase hex SHA-512) and warnings.
pub struct WalkOutcome {
    pub mac: String,
    pub warnings: Vec<String>,
}

enum Mode<'c> {
    Encrypt(&'c ValueCipher),
    Decrypt(&'c mut ValueCipher),
    /// Hash only: the tree is plaintext and stays as it is.
    Mac,
    /// First walk of [`decrypt_parallel`]: records decrypt jobs only.
    DecryptDeferred,
}

/// Where a deferred leaf lives in the tree.
enum Slot<'t> {
    Value(&'t mut Value),
    /// A mapping comment (`Key::Comment`).
    Key(&'t mut Key),
}

/// A leaf recorded by the first, sequential walk for the parallel phase.
struct Job<'t> {
    slot: Slot<'t>,
    /// The AAD, as a range of [`Deferred::aads`].
    aad: Range<usize>,
    /// Encrypt mode: the plaintext feeds the MAC.
    hash: bool,
    /// Encrypt mode: the value is encrypted (decrypt jobs always decrypt).
    encrypt: bool,
}

/// The leaves of a large file, collected in document order so that the
/// cipher work can be spread over threads while the MAC stays sequential.
#[derive(Default)]
struct Deferred<'t> {
    jobs: Vec<Job<'t>>,
    aads: Vec<u8>,
}

struct Walker<'c, 's, 't> {
    mode: Mode<'c>,
    /// `Some` when the cipher work is deferred to [`encrypt_parallel`] or
    /// [`decrypt_parallel`].
    deferred: Option<Deferred<'t>>,
    selector: &'s Selector,
    mac_only_encrypted: bool,
    hash: MacHash,
    /// When set, the bytes the MAC covers are appended here instead of
    /// hashed ([`encrypt_piece`]: the caller hashes the pieces in order).
    mac_input: Option<&'t mut Vec<u8>>,
    /// AAD of the current position: `k1:k2:` (list indices are not part of it).
    path: String,
    /// Number of path components that match the key selector.
    matched: usize,
    comments: Vec<Vec<String>>,
    track_comments: bool,
    warnings: Vec<String>,
    /// Formatting buffer for numbers fed to the MAC and the cipher.
    scratch: Zeroizing<Vec<u8>>,
}

impl<'t> Walker<'_, '_, 't> {
    fn hash_value(&mut self, value: &Value) {
        if let Some((bytes, _)) = plaintext_bytes(value, &mut self.scratch) {
            match &mut self.mac_input {
                Some(collected) => collected.extend_from_slice(bytes),
                None => self.hash.update(bytes),
            }
        }
    }

    fn walk_branch(&mut self, branch: &'t mut Branch) -> Result<(), TreeError> {
        if self.track_comments {
            self.comments.push(Vec::new());
        }
        for item in branch.0.iter_mut() {
            let crate::tree::Item { key, value } = item;
            if self.deferred.is_some() && key.is_comment() {
                // Never with comment selectors: those keep the sequential walk.
                self.defer_comment_key(key);
                continue;
            }
            match &mut *key {
                Key::Comment(text) => {
                    if self.track_comments {
                        self.comments.last_mut().expect("pushed above").push(text.clone());
                    }
                    let mut as_value = Value::Comment(std::mem::take(text));
                    self.leaf(&mut as_value)?;
                    *key = match as_value {
                        Value::Comment(c) | Value::Str(c) => Key::Comment(c),
                        _ => unreachable_comment(),
                    };
                    // A comment does not reset the comment run (§4.2).
                    continue;
                }
                Key::NonString { type_name, text } => {
                    return Err(TreeError::NonStringKey {
                        type_name,
                        text: text.clone(),
                    })
                }
                Key::Str(key) => {
                    let old_len = self.path.len();
                    self.path.push_str(key);
                    self.path.push(':');
                    let key_matched = self.selector.key_matches(key);
                    self.matched += usize::from(key_matched);
                    let result = self.walk_value(value);
                    self.matched -= usize::from(key_matched);
                    self.path.truncate(old_len);
                    result?;
                }
            }
            if self.track_comments {
                self.comments.last_mut().expect("pushed above").clear();
            }
        }
        if self.track_comments {
            self.comments.pop();
        }
        Ok(())
    }

    fn walk_list(&mut self, list: &'t mut [Value]) -> Result<(), TreeError> {
        if self.track_comments {
            self.comments.push(Vec::new());
        }
        for element in list {
            let is_comment = matches!(element, Value::Comment(_));
            if self.track_comments {
                if let Value::Comment(c) = element {
                    self.comments.last_mut().expect("pushed above").push(c.clone());
                }
            }
            self.walk_value(element)?;
            if self.track_comments && !is_comment {
                self.comments.last_mut().expect("pushed above").clear();
            }
        }
        if self.track_comments {
            self.comments.pop();
        }
        Ok(())
    }

    fn walk_value(&mut self, value: &'t mut Value) -> Result<(), TreeError> {
        match value {
            Value::Map(b) => self.walk_branch(b),
            Value::List(l) => self.walk_list(l),
            Value::Null => Ok(()),
            _ if self.deferred.is_some() => {
                self.defer_leaf(value);
                Ok(())
            }
            _ => self.leaf(value),
        }
    }

    /// The AAD of the current position, copied into the job arena.
    fn push_aad(&mut self) -> Range<usize> {
        let d = self.deferred.as_mut().expect("only called when deferring");
        let start = d.aads.len();
        d.aads.extend_from_slice(if self.path.is_empty() {
            b":"
        } else {
            self.path.as_bytes()
        });
        start..d.aads.len()
    }

    /// Deferred counterpart of [`Self::leaf`]: decide, record, do no cipher work.
    fn defer_leaf(&mut self, value: &'t mut Value) {
        let is_comment = matches!(value, Value::Comment(_));
        let encrypted = self.selector.should_encrypt(self.matched > 0, &[], is_comment);
        let (hash, encrypt) = match self.mode {
            Mode::DecryptDeferred => {
                // As in `leaf`: an encrypted value is hashed unless it
                // decrypts to a comment (checked after decryption); a clear
                // one unless it is a comment or only encrypted values count.
                let hash = encrypted || (!self.mac_only_encrypted && !is_comment);
                if !hash && !encrypted {
                    return;
                }
                (hash, encrypted)
            }
            _ => {
                if encrypted && is_comment && is_empty(value) {
                    // sops turns an empty comment into an empty string.
                    *value = Value::Str(String::new());
                    return;
                }
                let hash = (!self.mac_only_encrypted || encrypted) && !is_comment;
                let encrypt = encrypted && !is_empty(value) && matches!(self.mode, Mode::Encrypt(_));
                if !hash && !encrypt {
                    return;
                }
                (hash, encrypt)
            }
        };
        let aad = self.push_aad();
        let d = self.deferred.as_mut().expect("only called when deferring");
        d.jobs.push(Job {
            slot: Slot::Value(value),
            aad,
            hash,
            encrypt,
        });
    }

    /// A comment in a mapping, deferred: comments are never hashed.
    fn defer_comment_key(&mut self, key: &'t mut Key) {
        let Key::Comment(text) = &*key else { return };
        if text.is_empty() || !self.selector.should_encrypt(self.matched > 0, &[], true) {
            return;
        }
        if matches!(self.mode, Mode::Mac) {
            return;
        }
        let aad = self.push_aad();
        let d = self.deferred.as_mut().expect("only called when deferring");
        d.jobs.push(Job {
            slot: Slot::Key(key),
            aad,
            hash: false,
            encrypt: true,
        });
    }

    fn leaf(&mut self, value: &mut Value) -> Result<(), TreeError> {
        let is_comment = matches!(value, Value::Comment(_));
        let encrypted = self
            .selector
            .should_encrypt(self.matched > 0, &self.comments, is_comment);
        let hashed = !self.mac_only_encrypted || encrypted;
        if matches!(self.mode, Mode::Decrypt(_)) {
            if encrypted {
                self.decrypt_leaf(value, is_comment)?;
            }
            if hashed && !matches!(value, Value::Comment(_)) {
                self.hash_value(value);
            }
            return Ok(());
        }
        let Some((bytes, typ)) = plaintext_bytes(value, &mut self.scratch) else {
            return Ok(());
        };
        if hashed && !is_comment {
            match &mut self.mac_input {
                Some(collected) => collected.extend_from_slice(bytes),
                None => self.hash.update(bytes),
            }
        }
        if let Mode::Encrypt(cipher) = &self.mode {
            if encrypted && !is_empty(value) {
                let aad = if self.path.is_empty() {
                    b":" as &[u8]
                } else {
                    self.path.as_bytes()
                };
                // Encrypted comments become strings: a list keeps them as
                // string elements, a mapping turns them back into comment keys.
                let enc = Value::Str(cipher.encrypt_bytes(bytes, typ, aad));
                // The plaintext leaves the tree here: wipe it now, not at the end.
                match &mut std::mem::replace(value, enc) {
                    Value::Str(old) | Value::Comment(old) | Value::Time(old) => wipe_string(old),
                    Value::Bytes(old) => wipe_vec(old),
                    _ => {}
                }
            } else if encrypted && is_comment {
                // sops turns an empty comment into an empty string too.
                *value = Value::Str(String::new());
            }
        }
        Ok(())
    }

    fn decrypt_leaf(&mut self, value: &mut Value, is_comment: bool) -> Result<(), TreeError> {
        // Borrow the fields separately: no per-value copy of the path.
        let Walker {
            mode, path, warnings, ..
        } = self;
        let aad: &[u8] = if path.is_empty() { b":" } else { path.as_bytes() };
        let Mode::Decrypt(cipher) = mode else {
            return Ok(());
        };
        match value {
            Value::Comment(text) => {
                if text.is_empty() {
                    return Ok(());
                }
                match cipher.decrypt_value(text, aad) {
                    Ok(Value::Comment(c)) | Ok(Value::Str(c)) => *value = Value::Comment(c),
                    Ok(_) | Err(_) => warnings.push(POSSIBLY_UNENCRYPTED_COMMENT.to_string()),
                }
            }
            Value::Str(text) => {
                if text.is_empty() {
                    return Ok(());
                }
                *value = cipher.decrypt_value(text, aad).map_err(|error| TreeError::Decrypt {
                    path: String::from_utf8_lossy(aad).into_owned(),
                    error,
                })?;
            }
            _ => {
                debug_assert!(!is_comment);
                return Err(TreeError::NotAString {
                    path: String::from_utf8_lossy(aad).into_owned(),
                });
            }
        }
        Ok(())
    }

    fn finish(self) -> WalkOutcome {
        WalkOutcome {
            mac: mac_hex(self.hash),
            warnings: self.warnings,
        }
    }
}

/// The running SHA-512 of a file's MAC input (see [`crate::sha512`]: the
/// MAC reads every plaintext byte of the file).
#[derive(Default)]
pub struct MacHash(Sha512);

impl MacHash {
    pub fn new() -> MacHash {
        MacHash(Sha512::new())
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The MAC as sops writes it: the SHA-512 digest in uppercase hex.
pub fn mac_hex(hash: MacHash) -> String {
    let mut mac = String::with_capacity(128);
    for b in hash.0.finish() {
        mac.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
        mac.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
    }
    mac
}

fn unreachable_comment() -> Key {
    // A comment leaf only ever becomes another comment or an encrypted string.
    Key::Comment(String::new())
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Str(s) | Value::Comment(s) => s.is_empty(),
        Value::Bytes(b) => b.is_empty(),
        _ => false,
    }
}

fn new_walker<'c, 's, 't>(
    mode: Mode<'c>,
    selector: &'s Selector,
    mac_only_encrypted: bool,
    deferred: bool,
) -> Walker<'c, 's, 't> {
    let mut w = Walker {
        mode,
        deferred: deferred.then(Deferred::default),
        selector,
        mac_only_encrypted,
        hash: MacHash::new(),
        mac_input: None,
        path: String::new(),
        matched: 0,
        comments: Vec::new(),
        track_comments: selector.uses_comments(),
        warnings: Vec::new(),
        scratch: Zeroizing::new(Vec::with_capacity(32)),
    };
    if mac_only_encrypted {
        w.hash.update(&MAC_ONLY_ENCRYPTED_INIT);
    }
    w
}

fn run(
    doc: &mut Document,
    mode: Mode<'_>,
    selector: &Selector,
    mac_only_encrypted: bool,
) -> Result<WalkOutcome, TreeError> {
    let mut w = new_walker(mode, selector, mac_only_encrypted, false);
    for branch in &mut doc.branches {
        w.walk_branch(branch)?;
    }
    Ok(w.finish())
}

/// Worker threads for a file with `jobs` leaves; 1 means "stay sequential".
fn thread_count(jobs: usize) -> usize {
    if jobs < PARALLEL_MIN_JOBS {
        return 1;
    }
    crate::cpus::available().clamp(1, MAX_THREADS)
}

/// Rough count of the leaves of a document, to decide on threads before walking.
fn count_leaves(doc: &Document, limit: usize) -> usize {
    fn value(v: &Value, n: &mut usize, limit: usize) {
        if *n >= limit {
            return;
        }
        match v {
            Value::Map(b) => branch(b, n, limit),
            Value::List(l) => l.iter().for_each(|v| value(v, n, limit)),
            _ => *n += 1,
        }
    }
    fn branch(b: &Branch, n: &mut usize, limit: usize) {
        for item in &b.0 {
            value(&item.value, n, limit);
        }
    }
    let mut n = 0;
    for b in &doc.branches {
        branch(b, &mut n, limit);
    }
    n
}

fn aad_of<'a>(aads: &'a [u8], job: &Job<'_>) -> &'a [u8] {
    &aads[job.aad.clone()]
}

/// Encrypt a large document: one walk records the leaves and their AADs,
/// then the calling thread hashes the plaintext in order (the MAC) while
/// every thread encrypts chunks of leaves into side buffers; the results go
/// into the tree at the end, in order.
fn encrypt_parallel(
    doc: &mut Document,
    cipher: &ValueCipher,
    selector: &Selector,
    mac_only_encrypted: bool,
    threads: usize,
) -> Result<WalkOutcome, TreeError> {
    let mut w = new_walker(Mode::Encrypt(cipher), selector, mac_only_encrypted, true);
    for branch in &mut doc.branches {
        w.walk_branch(branch)?;
    }
    let Deferred { mut jobs, aads } = w.deferred.take().expect("created deferred");
    let chunks = jobs.len().div_ceil(CHUNK_JOBS);
    let next = AtomicUsize::new(0);
    let mut results: Vec<Vec<String>> = (0..chunks).map(|_| Vec::new()).collect();
    {
        let jobs = &jobs;
        let aads = &aads[..];
        let next = &next;
        let work = move || {
            let mut scratch = Zeroizing::new(Vec::with_capacity(32));
            let mut done: Vec<(usize, Vec<String>)> = Vec::new();
            loop {
                let c = next.fetch_add(1, Ordering::Relaxed);
                if c >= chunks {
                    break;
                }
                let end = ((c + 1) * CHUNK_JOBS).min(jobs.len());
                let mut out = Vec::with_capacity(CHUNK_JOBS);
                for job in jobs[c * CHUNK_JOBS..end].iter().filter(|j| j.encrypt) {
                    let (bytes, typ) = match &job.slot {
                        Slot::Value(v) => plaintext_bytes(v, &mut scratch).expect("jobs are scalars"),
                        Slot::Key(Key::Comment(c)) => (c.as_bytes(), "comment"),
                        Slot::Key(_) => unreachable_job(),
                    };
                    out.push(cipher.encrypt_bytes(bytes, typ, aad_of(aads, job)));
                }
                done.push((c, out));
            }
            done
        };
        let hash = &mut w.hash;
        let finished = std::thread::scope(|s| {
            // Threads that cannot be started just leave more chunks to the others.
            let handles: Vec<_> = (1..threads)
                .filter_map(|_| std::thread::Builder::new().spawn_scoped(s, work).ok())
                .collect();
            let mut scratch = Zeroizing::new(Vec::with_capacity(32));
            for job in jobs.iter().filter(|j| j.hash) {
                if let Slot::Value(v) = &job.slot {
                    if let Some((bytes, _)) = plaintext_bytes(v, &mut scratch) {
                        hash.update(bytes);
                    }
                }
            }
            let mut all = work();
            for h in handles {
                all.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            }
            all
        });
        for (c, out) in finished {
            results[c] = out;
        }
    }
    let mut encrypted = results.into_iter().flatten();
    for job in jobs.iter_mut().filter(|j| j.encrypt) {
        let enc = encrypted.next().expect("one result per encrypted job");
        match &mut job.slot {
            Slot::Value(v) => match &mut std::mem::replace(*v, Value::Str(enc)) {
                Value::Str(old) | Value::Comment(old) | Value::Time(old) => wipe_string(old),
                Value::Bytes(old) => wipe_vec(old),
                _ => {}
            },
            Slot::Key(k) => {
                if let Key::Comment(old) = &mut **k {
                    wipe_string(old);
                }
                **k = Key::Comment(enc);
            }
        }
    }
    Ok(w.finish())
}

pub(crate) const POSSIBLY_UNENCRYPTED_COMMENT: &str =
    "Found possibly unencrypted comment in file. This is to be expected if the \
file being decrypted was created with an older version of SOPS.";

/// Decrypt one deferred leaf in place; `Ok(true)` means "warn about an
/// unencrypted comment".
fn decrypt_job(cipher: &ValueCipher, job: &mut Job<'_>, aads: &[u8]) -> Result<bool, TreeError> {
    let aad = aad_of(aads, job);
    let path = || String::from_utf8_lossy(aad).into_owned();
    match &mut job.slot {
        Slot::Value(value) => match &mut **value {
            Value::Comment(text) => {
                if text.is_empty() {
                    return Ok(false);
                }
                match cipher.decrypt_value_shared(text, aad) {
                    Ok(Value::Comment(c)) | Ok(Value::Str(c)) => **value = Value::Comment(c),
                    Ok(_) | Err(_) => return Ok(true),
                }
            }
            Value::Str(text) => {
                if text.is_empty() {
                    return Ok(false);
                }
                let text = std::mem::take(text);
                **value = cipher.decrypt_owned(text, aad).map_err(|(error, text)| {
                    **value = Value::Str(text);
                    TreeError::Decrypt { path: path(), error }
                })?;
            }
            _ => return Err(TreeError::NotAString { path: path() }),
        },
        Slot::Key(key) => {
            let Key::Comment(text) = &**key else { return Ok(false) };
            match cipher.decrypt_value_shared(text, aad) {
                Ok(Value::Comment(c)) | Ok(Value::Str(c)) => **key = Key::Comment(c),
                Ok(_) | Err(_) => return Ok(true),
            }
        }
    }
    Ok(false)
}

/// Decrypt a large document: one walk records the leaves, threads decrypt
/// chunks of them in place, and the calling thread, between chunks of its
/// own, hashes the finished chunks in document order (the MAC), so hashing
/// overlaps decryption. The error reported is the first one in document
/// order, as sequentially.
fn decrypt_parallel(
    doc: &mut Document,
    cipher: &ValueCipher,
    selector: &Selector,
    mac_only_encrypted: bool,
    threads: usize,
) -> Result<WalkOutcome, TreeError> {
    let mut w = new_walker(Mode::DecryptDeferred, selector, mac_only_encrypted, true);
    for branch in &mut doc.branches {
        w.walk_branch(branch)?;
    }
    let Deferred { mut jobs, aads } = w.deferred.take().expect("created deferred");
    let aads = &aads[..];
    let chunks: Vec<Mutex<&mut [Job<'_>]>> = jobs.chunks_mut(CHUNK_JOBS).map(Mutex::new).collect();
    let done: Vec<AtomicBool> = chunks.iter().map(|_| AtomicBool::new(false)).collect();
    let next = AtomicUsize::new(0);
    // Index of the earliest failed job so far; chunks after it are skipped.
    let failed_at = AtomicUsize::new(usize::MAX);
    let lock = |c: usize| chunks[c].lock().unwrap_or_else(|p| p.into_inner());

    // Decrypts chunk `c`; returns the unencrypted-comment warnings, or the
    // chunk's first error with its job index.
    let decrypt_chunk = |c: usize| -> Result<usize, (usize, TreeError)> {
        let mut warned = 0;
        let mut chunk = lock(c);
        for (i, job) in chunk.iter_mut().enumerate().filter(|(_, j)| j.encrypt) {
            match decrypt_job(cipher, job, aads) {
                Ok(warn) => warned += usize::from(warn),
                Err(e) => {
                    let at = c * CHUNK_JOBS + i;
                    failed_at.fetch_min(at, Ordering::Relaxed);
                    return Err((at, e));
                }
            }
        }
        drop(chunk);
        done[c].store(true, Ordering::Release);
        Ok(warned)
    };
    let claim = || next.fetch_add(1, Ordering::Relaxed);
    let skip = |c: usize| failed_at.load(Ordering::Relaxed) < c * CHUNK_JOBS;
    // A worker claims chunks until none is left (skipping those after a failure).
    let work = || {
        let mut first_error: Option<(usize, TreeError)> = None;
        let mut warned = 0usize;
        loop {
            let c = claim();
            if c >= chunks.len() {
                break;
            }
            if skip(c) {
                continue;
            }
            match decrypt_chunk(c) {
                Ok(n) => warned += n,
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        (first_error, warned)
    };
    let hash = &mut w.hash;
    let outcomes = std::thread::scope(|s| {
        // Threads that cannot be started just leave more chunks to this one.
        let handles: Vec<_> = (1..threads)
            .filter_map(|_| std::thread::Builder::new().spawn_scoped(s, work).ok())
            .collect();
        let mut scratch = Zeroizing::new(Vec::with_capacity(32));
        let mut hash_chunk = |c: usize| {
            for job in lock(c).iter().filter(|j| j.hash) {
                hash_decrypted(job, &mut scratch, |bytes| hash.update(bytes));
            }
        };
        let mut first_error: Option<(usize, TreeError)> = None;
        let mut warned = 0usize;
        let mut hashed = 0;
        while hashed < chunks.len() {
            if done[hashed].load(Ordering::Acquire) {
                hash_chunk(hashed);
                hashed += 1;
                continue;
            }
            if failed_at.load(Ordering::Relaxed) != usize::MAX {
                break;
            }
            let c = claim();
            if c < chunks.len() {
                match decrypt_chunk(c) {
                    Ok(n) => warned += n,
                    Err(e) => first_error = first_error.or(Some(e)),
                }
            } else if handles.iter().all(|h| h.is_finished()) {
                // The rest is hashed after the joins below.
                break;
            } else {
                std::thread::yield_now();
            }
        }
        let mut all = vec![(first_error, warned)];
        for h in handles {
            all.push(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        // Every worker has ended (a panic went on above): without a failure,
        // every chunk is decrypted now.
        if failed_at.load(Ordering::Relaxed) == usize::MAX {
            (hashed..chunks.len()).for_each(&mut hash_chunk);
        }
        all
    });
    let mut warnings = 0usize;
    let mut first: Option<(usize, TreeError)> = None;
    for (err, warned) in outcomes {
        warnings += warned;
        if let Some((i, e)) = err {
            if first.as_ref().is_none_or(|(j, _)| i < *j) {
                first = Some((i, e));
            }
        }
    }
    if let Some((_, e)) = first {
        return Err(e);
    }
    Ok(WalkOutcome {
        mac: mac_hex(std::mem::take(&mut w.hash)),
        warnings: vec![POSSIBLY_UNENCRYPTED_COMMENT.to_string(); warnings],
    })
}

/// Feed the MAC input of a decrypted (or clear) leaf to `hash`: as in
/// [`Walker::leaf`], a value that is a comment after decryption is not
/// hashed.
fn hash_decrypted(job: &Job<'_>, scratch: &mut Vec<u8>, mut hash: impl FnMut(&[u8])) {
    if let Slot::Value(v) = &job.slot {
        if !matches!(v, Value::Comment(_)) {
            if let Some((bytes, _)) = plaintext_bytes(v, scratch) {
                hash(bytes);
            }
        }
    }
}

fn unreachable_job() -> (&'static [u8], &'static str) {
    // Key jobs are only recorded for comments.
    (b"", "comment")
}

/// Encrypt the top-level items of one piece of a large document on the
/// calling thread (see `pipeline`). The bytes the MAC covers are appended to
/// `mac_input` instead of hashed, so that the caller can hash the pieces in
/// document order; with `mac_only_encrypted` the caller also feeds
/// [`MAC_ONLY_ENCRYPTED_INIT`] first. Returns the warnings. Comment
/// selectors carry state from piece to piece: callers must not use this
/// with a selector that [`Selector::uses_comments`].
pub fn encrypt_piece(
    items: &mut Branch,
    cipher: &ValueCipher,
    selector: &Selector,
    mac_only_encrypted: bool,
    mac_input: &mut Vec<u8>,
) -> Result<Vec<String>, TreeError> {
    debug_assert!(!selector.uses_comments());
    let mut w = new_walker(Mode::Encrypt(cipher), selector, mac_only_encrypted, false);
    w.mac_input = Some(mac_input);
    w.walk_branch(items)?;
    Ok(w.warnings)
}

/// Decrypt the top-level items of one piece of a large document on the
/// calling thread (see `pipeline`): the values as [`decrypt_document`]
/// decrypts them (first error in document order), then the bytes the MAC
/// covers appended to `mac_input` (with `mac_only_encrypted` the caller
/// feeds [`MAC_ONLY_ENCRYPTED_INIT`] first). Returns the warnings. Not for
/// selectors that [`Selector::uses_comments`].
pub fn decrypt_piece(
    items: &mut Branch,
    cipher: &ValueCipher,
    selector: &Selector,
    mac_only_encrypted: bool,
    mac_input: &mut Vec<u8>,
) -> Result<Vec<String>, TreeError> {
    debug_assert!(!selector.uses_comments());
    let mut warned = 0usize;
    {
        let mut w = new_walker(Mode::DecryptDeferred, selector, mac_only_encrypted, true);
        w.walk_branch(items)?;
        let Deferred { mut jobs, aads } = w.deferred.take().expect("created deferred");
        for job in jobs.iter_mut().filter(|j| j.encrypt) {
            warned += usize::from(decrypt_job(cipher, job, &aads)?);
        }
        let mut scratch = Zeroizing::new(Vec::with_capacity(32));
        for job in jobs.iter().filter(|j| j.hash) {
            hash_decrypted(job, &mut scratch, |bytes| mac_input.extend_from_slice(bytes));
        }
    }
    Ok(vec![POSSIBLY_UNENCRYPTED_COMMENT.to_string(); warned])
}

/// Encrypt every selected value in place; returns the MAC of the plaintext.
pub fn encrypt_document(
    doc: &mut Document,
    cipher: &ValueCipher,
    selector: &Selector,
    mac_only_encrypted: bool,
) -> Result<WalkOutcome, TreeError> {
    let threads = if selector.uses_comments() {
        1
    } else {
        thread_count(count_leaves(doc, PARALLEL_MIN_JOBS))
    };
    if threads > 1 {
        return encrypt_parallel(doc, cipher, selector, mac_only_encrypted, threads);
    }
    run(doc, Mode::Encrypt(cipher), selector, mac_only_encrypted)
}

/// Decrypt every selected value in place; returns the MAC of the plaintext.
pub fn decrypt_document(
    doc: &mut Document,
    cipher: &mut ValueCipher,
    selector: &Selector,
    mac_only_encrypted: bool,
) -> Result<WalkOutcome, TreeError> {
    // The IV stash (edit, rotate) records IVs in order: sequential.
    let threads = if selector.uses_comments() || cipher.has_stash() {
        1
    } else {
        thread_count(count_leaves(doc, PARALLEL_MIN_JOBS))
    };
    if threads > 1 {
        return decrypt_parallel(doc, cipher, selector, mac_only_encrypted, threads);
    }
    run(doc, Mode::Decrypt(cipher), selector, mac_only_encrypted)
}

/// The MAC of a plaintext document, without changing it.
pub fn plaintext_mac(doc: &mut Document, selector: &Selector, mac_only_encrypted: bool) -> Result<String, TreeError> {
    run(doc, Mode::Mac, selector, mac_only_encrypted).map(|o| o.mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cipher::DataKey;
    use crate::policy::SelectorSpec;
    use crate::tree::Item;

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }

    fn spec_13_1_doc() -> Document {
        let app = Branch(vec![
            Item::new("password", s("s3cr3t")),
            Item::new("port", Value::Int(5432)),
            Item::new("ratio", Value::Float(0.5)),
            Item::new("debug", Value::Bool(false)),
            Item::new("hosts", Value::List(vec![s("h1")])),
        ]);
        Document::new(vec![Branch(vec![
            Item::comment(" hi"),
            Item::new("app", Value::Map(app)),
        ])])
    }

    #[test]
    fn mac_matches_spec_vector() {
        let sel = SelectorSpec::default().compile().unwrap();
        let mac = plaintext_mac(&mut spec_13_1_doc(), &sel, false).unwrap();
        assert_eq!(mac, "EDF2AAC8AF7020081328B6E2D0F9D6787CFD2B81B30BFDF8BD3BB354C1C18629D0FAEDC721C3902E8CB55FF528E314528A3955CD36B1AFD516B27BF63813D69F");
    }

    #[test]
    fn mac_only_encrypted_matches_spec_vector() {
        // spec §13.3
        let doc = Branch(vec![
            Item::new("top", s("secret1")),
            Item::new("plain", s("visible")),
            Item::new(
                "nested",
                Value::Map(Branch(vec![
                    Item::new("password", s("p1")),
                    Item::new("other", s("o1")),
                    Item::new("deep", Value::Map(Branch(vec![Item::new("password_x", s("p2"))]))),
                ])),
            ),
            Item::new(
                "list",
                Value::List(vec![Value::Map(Branch(vec![
                    Item::new("password", s("lp")),
                    Item::new("name", s("ln")),
                ]))]),
            ),
        ]);
        let sel = SelectorSpec {
            encrypted_regex: "^pass".into(),
            ..Default::default()
        }
        .compile()
        .unwrap();
        let mac = plaintext_mac(&mut Document::new(vec![doc]), &sel, true).unwrap();
        assert_eq!(mac, "77C42825CB0380CA7A3068B3D34070E021B8EABE8174E9110E9FB8E4A1D471DD260934379A1599B63DCC8E0FE5FA2323D78C8AA391FBF1E03ED5E147F35A3333");
    }

    #[test]
    fn encrypt_then_decrypt_round_trips_and_macs_agree() {
        let key = DataKey::generate();
        let sel = SelectorSpec::default().compile().unwrap();
        let mut doc = spec_13_1_doc();
        doc.branches[0].push("port_unencrypted", Value::Int(1));
        doc.branches[0].push("empty", s(""));
        let original = doc.clone();
        let enc = encrypt_document(&mut doc, &ValueCipher::new(&key), &sel, false).unwrap();
        assert_eq!(doc.branches[0].get("port_unencrypted"), Some(&Value::Int(1)));
        assert_eq!(doc.branches[0].get("empty"), Some(&s("")));
        assert!(matches!(&doc.branches[0].0[0].key, Key::Comment(c) if c.starts_with("ENC[")));
        let dec = decrypt_document(&mut doc, &mut ValueCipher::new(&key), &sel, false).unwrap();
        assert_eq!(enc.mac, dec.mac);
        assert_eq!(doc, original);
    }

    #[test]
    fn list_comments_become_strings_and_are_skipped_by_the_mac() {
        let key = DataKey::generate();
        let sel = SelectorSpec::default().compile().unwrap();
        let mut doc = Document::new(vec![Branch(vec![Item::new(
            "l",
            Value::List(vec![Value::Comment(" c".into()), s("x")]),
        )])]);
        let enc = encrypt_document(&mut doc, &ValueCipher::new(&key), &sel, false).unwrap();
        // Like sops, the encrypted comment is now a plain string element.
        let Some(Value::List(l)) = doc.branches[0].get("l") else {
            panic!()
        };
        assert!(matches!(&l[0], Value::Str(c) if c.ends_with("type:comment]")));
        let dec = decrypt_document(&mut doc, &mut ValueCipher::new(&key), &sel, false).unwrap();
        assert_eq!(enc.mac, dec.mac);
    }

    /// A document large enough for the parallel path, with every leaf kind.
    fn big_doc(n: usize) -> Document {
        let mut top = Branch::new();
        top.0.push(Item::comment(" head"));
        for i in 0..n {
            let mut b = Branch(vec![
                Item::comment(format!(" c{i}")),
                Item::new("s", s(&format!("value {i}"))),
                Item::new("n", Value::Int(i as i64 - 7)),
                Item::new("f", Value::Float(i as f64 / 4.0)),
                Item::new("b", Value::Bool(i % 2 == 0)),
                Item::new("e", s("")),
                Item::new("k_unencrypted", s("plain")),
                Item::comment(String::new()),
            ]);
            b.push(
                "l",
                Value::List(vec![
                    s("x"),
                    Value::Comment(" lc".into()),
                    Value::Comment(String::new()),
                    Value::Null,
                ]),
            );
            top.push(format!("item{i}"), Value::Map(b));
        }
        Document::new(vec![top])
    }

    #[test]
    fn parallel_and_sequential_paths_agree() {
        for (mac_only, regex) in [(false, ""), (true, "^(s|n|l)$")] {
            let sel = SelectorSpec {
                encrypted_regex: regex.into(),
                unencrypted_suffix: if regex.is_empty() {
                    "_unencrypted".into()
                } else {
                    String::new()
                },
                ..Default::default()
            }
            .compile()
            .unwrap();
            let key = DataKey::generate();
            let original = big_doc(500);
            assert!(count_leaves(&original, usize::MAX) >= PARALLEL_MIN_JOBS);
            let expected_mac = plaintext_mac(&mut original.clone(), &sel, mac_only).unwrap();
            // The sequential round trip is the reference (it is not the identity:
            // empty list comments come back as empty strings, as with sops).
            let mut reference = original.clone();
            run(&mut reference, Mode::Encrypt(&ValueCipher::new(&key)), &sel, mac_only).unwrap();
            let encrypted_reference = reference.clone();
            let r = run(
                &mut reference,
                Mode::Decrypt(&mut ValueCipher::new(&key)),
                &sel,
                mac_only,
            )
            .unwrap();
            assert_eq!(r.mac, expected_mac);

            // Parallel encrypt, sequential decrypt.
            let mut doc = original.clone();
            let enc = encrypt_parallel(&mut doc, &ValueCipher::new(&key), &sel, mac_only, 2).unwrap();
            assert_eq!(enc.mac, expected_mac);
            let mut seq = doc.clone();
            let sequential = run(&mut seq, Mode::Decrypt(&mut ValueCipher::new(&key)), &sel, mac_only).unwrap();
            assert_eq!(sequential.mac, expected_mac);
            assert!(seq == reference, "parallel encrypt differs from sequential");
            // Parallel decrypt of the same file.
            let dec = decrypt_parallel(&mut doc, &ValueCipher::new(&key), &sel, mac_only, 3).unwrap();
            assert_eq!(dec.mac, expected_mac);
            assert!(dec.warnings.is_empty());
            assert!(doc == reference, "parallel decrypt differs from sequential");

            // Sequential encrypt, parallel decrypt.
            let mut doc = encrypted_reference;
            let dec = decrypt_parallel(&mut doc, &ValueCipher::new(&key), &sel, mac_only, 2).unwrap();
            assert_eq!(dec.mac, expected_mac);
            assert!(doc == reference, "parallel decrypt differs from sequential");
        }
    }

    #[test]
    fn parallel_decrypt_reports_the_first_error_in_document_order() {
        let sel = SelectorSpec::default().compile().unwrap();
        let key = DataKey::generate();
        let mut doc = big_doc(400);
        encrypt_parallel(&mut doc, &ValueCipher::new(&key), &sel, false, 2).unwrap();
        // Break a late value, then an early one: the early one is reported.
        for i in [350, 3] {
            let Some(Value::Map(b)) = doc.branches[0].get_mut(&format!("item{i}")) else {
                panic!()
            };
            *b.get_mut("s").unwrap() = s("ENC[AES256_GCM,data:AAAA,iv:AAAA,tag:AAAA,type:str]");
        }
        let mut seq = doc.clone();
        let seq_err = run(&mut seq, Mode::Decrypt(&mut ValueCipher::new(&key)), &sel, false)
            .err()
            .unwrap();
        let par_err = decrypt_parallel(&mut doc, &ValueCipher::new(&key), &sel, false, 2)
            .err()
            .unwrap();
        assert_eq!(par_err, seq_err);
        assert!(par_err.to_string().contains("'item3:s'"), "{par_err}");
    }

    #[test]
    fn parallel_decrypt_warns_about_unencrypted_comments_like_sequential() {
        let sel = SelectorSpec::default().compile().unwrap();
        let key = DataKey::generate();
        let mut doc = big_doc(300);
        encrypt_parallel(&mut doc, &ValueCipher::new(&key), &sel, false, 2).unwrap();
        doc.branches[0].0.insert(0, Item::comment(" left in clear"));
        let seq = run(
            &mut doc.clone(),
            Mode::Decrypt(&mut ValueCipher::new(&key)),
            &sel,
            false,
        )
        .unwrap();
        let par = decrypt_parallel(&mut doc, &ValueCipher::new(&key), &sel, false, 2).unwrap();
        assert_eq!(seq.warnings.len(), 1);
        assert_eq!(par.warnings, seq.warnings);
        assert_eq!(par.mac, seq.mac);
    }

    #[test]
    fn renamed_key_fails_authentication() {
        let key = DataKey::generate();
        let sel = SelectorSpec::default().compile().unwrap();
        let mut doc = Document::new(vec![Branch(vec![Item::new("a", s("x"))])]);
        encrypt_document(&mut doc, &ValueCipher::new(&key), &sel, false).unwrap();
        doc.branches[0].0[0].key = Key::Str("b".into());
        let err = decrypt_document(&mut doc, &mut ValueCipher::new(&key), &sel, false)
            .err()
            .unwrap();
        assert!(matches!(
            err,
            TreeError::Decrypt {
                error: CipherError::Authentication,
                ..
            }
        ));
        assert!(!err.to_string().contains('x'.to_string().as_str()) || err.to_string().contains("'b'"));
    }
}
