//! Large YAML, JSON and dotenv files encrypted and decrypted piece by piece, so
//! that parsing, the cipher work and printing overlap on all cores and the
//! whole plaintext tree never exists at once.
//!
//! Encrypt: the input is read in chunks and cut between top-level keys: for
//! YAML before the lines [`yaml::is_piece_start`] allows (the cuts the
//! parallel load uses), for JSON at the commas between top-level members
//! ([`json::MemberCuts`]), for dotenv after any line. Worker threads parse
//! each piece and encrypt its values (JSON: and print it,
//! [`json::print_members`]; dotenv pieces go line by line with no tree,
//! [`dotenv_lines`]); the calling thread takes the pieces in document order,
//! hashes their MAC input, checks the top-level keys across pieces and
//! prints them (JSON: copies them) into one output buffer
//! ([`DocumentStream`], [`ObjectStream`]; dotenv: keeps the printed pieces,
//! [`Printed`]), which gives the bytes the whole-tree path prints.
//!
//! Decrypt: the `sops` block (dotenv: the `sops_` lines), which sops
//! writes last, is found and read
//! first ([`open_encrypted`]) so the caller can recover the data key; the
//! data before it then goes through the same machinery with decryption,
//! and the caller checks the MAC before writing anything.
//!
//! Nothing is written anywhere until the whole input went through, so
//! anything unusual (a piece the streaming loader leaves to the reference
//! load, a syntax error, a `sops` or, in YAML, repeated top-level key, a
//! non-string key, a value that does not decrypt, a read error) just
//! returns `None` and the caller runs the ordinary path, which gives the
//! exact result or error.

mod dotenv_lines;

use crate::cipher::ValueCipher;
use crate::crypt::{decrypt_piece, encrypt_piece, mac_hex, MacHash, MAC_ONLY_ENCRYPTED_INIT};
use crate::metadata::{Metadata, NilList};
use crate::policy::Selector;
use crate::stores::dotenv;
use crate::stores::flatten::{flatten, unflatten};
use crate::stores::json::{self, JsonStore, MemberCuts, ObjectStream};
use crate::stores::yaml::{self, DocumentStream};
use crate::tree::{reserve_wiped, wipe_vec, wipe_written, Branch, Item, Key, WipedBytes};
use dotenv_lines::LineCrypt;
use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};
use zeroize::Zeroize;

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

/// The formats that go piecewise.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Yaml,
    Json,
    Dotenv,
}

/// The formats that go piecewise, with their output settings.
pub enum PieceFormat<'s> {
    Yaml { indent: usize },
    Json(&'s JsonStore),
    Dotenv,
}

impl PieceFormat<'_> {
    fn kind(&self) -> Kind {
        match self {
            PieceFormat::Yaml { .. } => Kind::Yaml,
            PieceFormat::Json(_) => Kind::Json,
            PieceFormat::Dotenv => Kind::Dotenv,
        }
    }
}

/// Where the pieces are printed, in order.
enum Printer {
    Yaml(Box<DocumentStream>),
    Json(ObjectStream),
    /// Each dotenv item is a line of its own: the pieces the workers
    /// printed are kept as they are and written one after the other.
    Dotenv(Vec<Vec<u8>>),
}

impl Printer {
    fn new(format: PieceFormat<'_>) -> Printer {
        match format {
            PieceFormat::Yaml { indent } => Printer::Yaml(Box::new(DocumentStream::new(indent))),
            PieceFormat::Json(store) => Printer::Json(ObjectStream::new(store)),
            PieceFormat::Dotenv => Printer::Dotenv(Vec::new()),
        }
    }

    /// Room for an output of about `bytes`, taken at once: growing a large
    /// buffer step by step may copy it and keep both copies resident. Only
    /// address space until written; skipped if even that is refused.
    fn reserve(&mut self, bytes: usize) {
        let out = match self {
            Printer::Yaml(p) => p.output(),
            Printer::Json(p) => p.output(),
            Printer::Dotenv(_) => return,
        };
        let _ = crate::bigbuf::reserve(out, bytes);
    }

    fn push(&mut self, items: &[Item]) -> bool {
        match self {
            Printer::Yaml(p) => {
                p.push(items);
                true
            }
            Printer::Json(p) => p.push(items).is_ok(),
            Printer::Dotenv(parts) => {
                let mut out = Vec::new();
                let printed = dotenv::print_items(items, &mut out).is_ok();
                parts.push(out);
                printed
            }
        }
    }

    fn finish(self) -> Vec<Vec<u8>> {
        match self {
            Printer::Yaml(p) => vec![p.finish()],
            Printer::Json(p) => vec![p.finish()],
            Printer::Dotenv(parts) => parts,
        }
    }

    /// Overwrite what was printed so far (plaintext, given up on).
    fn wipe(&mut self) {
        match self {
            Printer::Yaml(p) => wipe_vec(p.output()),
            Printer::Json(p) => wipe_vec(p.output()),
            Printer::Dotenv(parts) => parts.iter_mut().for_each(wipe_vec),
        }
    }
}

/// A printed file, as the parts it was printed in: written out part after
/// part, never joined (that would copy every byte once more, on the thread
/// that hashes). Wiped when dropped if it is plaintext.
pub struct Printed {
    parts: Vec<Vec<u8>>,
    wipe: Wipe,
}

/// How a [`Printed`] is wiped when dropped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wipe {
    /// Not at all: ciphertext.
    No,
    /// Each part's whole allocation.
    Whole,
    /// Each part's bytes: parts whose spare capacity never held plaintext
    /// (see [`wipe_written`]).
    Written,
}

impl Printed {
    /// Write the whole file to `out`.
    pub fn write_to(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        self.parts.iter().try_for_each(|part| out.write_all(part))
    }

    /// The whole file in one buffer (a copy; the caller wipes it if it
    /// is plaintext).
    pub fn to_vec(&self) -> Vec<u8> {
        self.parts.concat()
    }
}

impl Drop for Printed {
    fn drop(&mut self) {
        match self.wipe {
            Wipe::No => {}
            Wipe::Whole => self.parts.iter_mut().for_each(wipe_vec),
            Wipe::Written => self.parts.iter_mut().for_each(wipe_written),
        }
    }
}

/// A file encrypted up to its metadata: finish it with [`Self::finish`].
pub struct EncryptedPieces {
    printer: Printer,
    /// The MAC of the plaintext (uppercase hex SHA-512), to be encrypted
    /// into the metadata.
    pub mac: String,
    pub warnings: Vec<String>,
    /// How many pieces the input was cut into.
    pub pieces: usize,
}

impl EncryptedPieces {
    /// The whole file: the items printed so far, then the `sops` block.
    pub fn finish(self, metadata: &Metadata) -> Printed {
        let parts = match self.printer {
            Printer::Yaml(mut p) => {
                let sops = Item::new("sops", metadata.to_value(NilList::EmptyList));
                p.push(std::slice::from_ref(&sops));
                vec![p.finish()]
            }
            Printer::Json(mut p) => {
                let sops = Item::new("sops", metadata.to_value(NilList::Null));
                // Metadata is strings, numbers and lists: always printable.
                let printed = p.push(std::slice::from_ref(&sops));
                debug_assert!(printed.is_ok());
                vec![p.finish()]
            }
            Printer::Dotenv(mut parts) => {
                // As `sopsfile::emit_encrypted`: the flattened block, one
                // `sops_` line per leaf.
                let lines: Vec<Item> = flatten(&metadata.to_value(NilList::Null))
                    .into_iter()
                    .map(|(k, v)| Item::new(format!("sops_{k}"), v))
                    .collect();
                // Flattened metadata is scalars only: always printable.
                let mut out = Vec::new();
                let printed = dotenv::print_items(&lines, &mut out);
                debug_assert!(printed.is_ok());
                parts.push(out);
                parts
            }
        };
        Printed { parts, wipe: Wipe::No }
    }
}

/// How the input is cut.
enum Cutter {
    /// Before lines [`yaml::is_piece_start`] allows.
    Yaml,
    /// After any newline (dotenv).
    Lines,
    /// At top-level commas; `first` until the first cut.
    Json { cuts: MemberCuts, first: bool },
}

/// Splits the input into pieces as it is read.
struct PieceReader<R> {
    reader: R,
    cutter: Cutter,
    piece_bytes: usize,
    /// Plaintext: wiped when dropped (after giving up).
    buf: WipedBytes,
    /// Where the search for the next cut resumes (keeps it linear).
    scanned: usize,
    eof: bool,
}

impl<R: Read> PieceReader<R> {
    fn new(reader: R, cutter: Cutter, piece_bytes: usize) -> Self {
        PieceReader {
            reader,
            cutter,
            piece_bytes,
            buf: WipedBytes::default(),
            scanned: 0,
            eof: false,
        }
    }

    /// The next piece, `None` at the end of the input.
    fn next_piece(&mut self) -> std::io::Result<Option<WipedBytes>> {
        loop {
            let cut = match &mut self.cutter {
                Cutter::Yaml | Cutter::Lines => self.find_line_cut(),
                Cutter::Json { cuts, .. } => {
                    let (cut, scanned) = cuts.scan(&self.buf, self.scanned, self.piece_bytes);
                    self.scanned = scanned;
                    cut
                }
            };
            if let Some(cut) = cut {
                self.scanned = 0;
                return Ok(Some(self.split_at(cut)));
            }
            if self.eof {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                let mut rest = std::mem::take(&mut self.buf);
                if let Cutter::Json { first: false, .. } = self.cutter {
                    reserve_wiped(&mut rest, 1);
                    rest.insert(0, b'{');
                }
                return Ok(Some(rest));
            }
            // The buffer holds plaintext: it must not be left behind by a
            // reallocation (a line longer than a read).
            reserve_wiped(&mut self.buf, READ_BYTES);
            let read = (&mut self.reader).take(READ_BYTES as u64).read_to_end(&mut self.buf)?;
            self.eof = read == 0;
        }
    }

    /// The piece before `cut`; the buffer keeps the rest.
    fn split_at(&mut self, cut: usize) -> WipedBytes {
        // Room for the reads up to the next cut.
        let mut rest = WipedBytes::with_capacity(self.piece_bytes + 2 * READ_BYTES);
        match &mut self.cutter {
            Cutter::Yaml | Cutter::Lines => {
                rest.extend_from_slice(&self.buf[cut..]);
                // What is left past `cut` goes with the piece's buffer,
                // which is wiped whole when it drops.
                self.buf.truncate(cut);
                std::mem::replace(&mut self.buf, rest)
            }
            Cutter::Json { first, .. } => {
                // Braces around the members; the comma itself goes.
                let mut piece = WipedBytes::with_capacity(cut + 2);
                if !*first {
                    piece.push(b'{');
                }
                *first = false;
                piece.extend_from_slice(&self.buf[..cut]);
                piece.push(b'}');
                rest.extend_from_slice(&self.buf[cut + 1..]);
                // The old buffer is wiped as it drops.
                self.buf = rest;
                piece
            }
        }
    }

    /// A line cut at least `piece_bytes` in. A line whose decision needs
    /// bytes not read yet counts as no cut: that only makes a piece longer.
    fn find_line_cut(&mut self) -> Option<usize> {
        if self.buf.len() <= self.piece_bytes {
            return None;
        }
        let any_line = matches!(self.cutter, Cutter::Lines);
        let (cut, scanned) = line_cut(&self.buf, self.scanned.max(self.piece_bytes), any_line);
        self.scanned = scanned;
        cut
    }
}

/// The first line start after `from` where a piece may start (`any_line`:
/// dotenv; else where [`yaml::is_piece_start`] allows) with bytes after it,
/// or where the search stopped.
fn line_cut(buf: &[u8], from: usize, any_line: bool) -> (Option<usize>, usize) {
    let mut pos = from;
    while let Some(nl) = memchr::memchr(b'\n', &buf[pos..]) {
        let start = pos + nl + 1;
        if start >= buf.len() {
            break;
        }
        if any_line || yaml::is_piece_start(buf, start) {
            return (Some(start), start);
        }
        pos = start;
    }
    (None, pos)
}

/// Cuts a plaintext input held in memory (a mapped file) as
/// [`PieceReader`] cuts what it reads, into ranges the workers copy out.
struct SliceCuts<'a> {
    input: &'a [u8],
    cutter: Cutter,
    piece_bytes: usize,
    start: usize,
}

/// A piece of an input held in memory: its range and, for JSON, whether
/// it needs an opening and a closing brace around it.
struct SlicePiece {
    range: Range<usize>,
    open: bool,
    close: bool,
}

impl SliceCuts<'_> {
    fn next_piece(&mut self) -> Option<SlicePiece> {
        let (input, start) = (self.input, self.start);
        if start >= input.len() {
            return None;
        }
        let min_cut = start.saturating_add(self.piece_bytes);
        let piece = match &mut self.cutter {
            Cutter::Yaml | Cutter::Lines if min_cut < input.len() => {
                let any_line = matches!(self.cutter, Cutter::Lines);
                line_cut(input, min_cut, any_line).0.map(|cut| {
                    self.start = cut;
                    SlicePiece {
                        range: start..cut,
                        open: false,
                        close: false,
                    }
                })
            }
            Cutter::Yaml | Cutter::Lines => None,
            Cutter::Json { cuts, first } => {
                let open = !*first;
                *first = false;
                // After a cut the scanner's state is that of the comma.
                cuts.scan(input, start, min_cut).0.map(|cut| {
                    // The comma itself goes.
                    self.start = cut + 1;
                    SlicePiece {
                        range: start..cut,
                        open,
                        close: true,
                    }
                })
            }
        };
        piece.or_else(|| {
            // The rest; a JSON one ends with the document's own brace.
            self.start = input.len();
            let open = matches!(self.cutter, Cutter::Json { .. }) && start > 0;
            Some(SlicePiece {
                range: start..input.len(),
                open,
                close: false,
            })
        })
    }
}

/// A piece parsed and encrypted (or decrypted) by a worker.
struct Done {
    items: Branch,
    mac_input: WipedBytes,
    warnings: Vec<String>,
    /// JSON and dotenv: the piece already printed by the worker (then
    /// `items` is empty), see [`print_piece`] and [`LineCrypt`]. Plaintext on decrypt, where
    /// [`Plain`] wipes it; ciphertext and clear values on encrypt.
    printed: Option<Vec<u8>>,
}

/// JSON pieces are printed on the worker: the calling thread then only
/// hashes and copies, instead of printing every piece itself while the
/// workers wait (dotenv pieces are printed by [`LineCrypt`]). A piece
/// holding a `sops` key (metadata to the whole-tree path) or a non-string
/// key is refused here, as [`Assembler::accept`] would refuse it. The tree
/// goes at once, wiped if it is plaintext (`plaintext_tree`: decrypt); an
/// encrypted tree holds nothing the output does not show.
fn print_piece(done: &mut Done, print: &WorkerPrint, output_hint: usize, plaintext_tree: bool) -> Option<()> {
    if matches!(print, WorkerPrint::Nothing) {
        return Some(());
    }
    let refused = |item: &Item| match &item.key {
        Key::NonString { .. } => true,
        Key::Str(k) => k == "sops",
        Key::Comment(_) => false,
    };
    if done.items.0.iter().any(refused) {
        return None;
    }
    let mut printed = WipedBytes::with_capacity(output_hint);
    match print {
        WorkerPrint::Json { indent } => json::print_members(indent, &done.items.0, &mut printed).ok()?,
        WorkerPrint::Nothing => {}
    }
    if plaintext_tree {
        done.items.zeroize();
    }
    done.items = Branch::default();
    // Moved out unwiped: a decrypted piece is wrapped in `Plain`.
    done.printed = Some(std::mem::take(&mut printed.0));
    Some(())
}

/// What a worker does with its piece after the cipher work.
enum WorkerPrint {
    /// YAML: the calling thread prints (the emitter's state runs across
    /// pieces); dotenv: [`LineCrypt`] printed the piece already.
    Nothing,
    /// JSON: print the members with this indentation unit.
    Json { indent: Vec<u8> },
}

impl WorkerPrint {
    fn of(printer: &Printer) -> WorkerPrint {
        match printer {
            Printer::Json(p) => WorkerPrint::Json {
                indent: p.indent().to_vec(),
            },
            Printer::Dotenv(_) | Printer::Yaml(_) => WorkerPrint::Nothing,
        }
    }
}

/// Load one piece of a `kind` file (a JSON piece has its braces).
fn load_piece(kind: Kind, piece: &[u8]) -> Option<Branch> {
    match kind {
        Kind::Yaml => yaml::load_piece(piece),
        Kind::Json => json::load_piece(piece),
        Kind::Dotenv => dotenv::load_piece(piece),
    }
}

/// What a worker needs besides its piece.
struct Job<'a> {
    kind: Kind,
    print: &'a WorkerPrint,
    cipher: &'a ValueCipher,
    selector: &'a Selector,
    mac_only_encrypted: bool,
}

impl Job<'_> {
    fn lines(&self) -> LineCrypt<'_> {
        LineCrypt {
            cipher: self.cipher,
            selector: self.selector,
            mac_only_encrypted: self.mac_only_encrypted,
        }
    }
}

/// A dotenv piece encrypted straight from its lines ([`dotenv_lines`]).
fn encrypt_dotenv(piece: &[u8], job: &Job<'_>) -> Option<Done> {
    let mut mac_input = WipedBytes::with_capacity(piece.len());
    // Ciphertext and values left in clear: nothing the output does not show.
    let mut printed = Vec::with_capacity(piece.len().saturating_mul(3));
    job.lines().encrypt(piece, &mut printed, &mut mac_input)?;
    Some(Done {
        items: Branch::default(),
        mac_input,
        warnings: Vec::new(),
        printed: Some(printed),
    })
}

/// Encrypt (and print, but for YAML) one piece (plaintext, which its
/// owner wipes).
fn work(piece: &[u8], job: &Job<'_>) -> Option<Done> {
    match job.kind {
        Kind::Dotenv => encrypt_dotenv(piece, job),
        kind => encrypt_tree(piece, kind, job),
    }
}

/// A worker's copy of the plaintext piece it encrypts (mapped input). Only
/// ever appended to, so its spare capacity holds no plaintext: its bytes
/// are wiped after each piece, and when the thread ends (after a panic).
struct PieceCopy(Vec<u8>);

impl Drop for PieceCopy {
    fn drop(&mut self) {
        wipe_written(&mut self.0);
    }
}

thread_local! {
    static PLAIN_PIECE: std::cell::RefCell<PieceCopy> = const { std::cell::RefCell::new(PieceCopy(Vec::new())) };
}

/// Encrypt one piece of a mapped input, copied out of it first (see
/// [`decrypt`] on why) into this thread's buffer.
fn work_on_copy(input: &[u8], piece: SlicePiece, piece_bytes: usize, job: &Job<'_>) -> Option<Done> {
    PLAIN_PIECE.with_borrow_mut(|PieceCopy(buf)| {
        let several = input.len() > piece_bytes;
        copy_piece(buf, input, &piece, piece_bytes, several);
        let done = work(buf, job);
        wipe_written(buf);
        done
    })
}

/// Copy `piece` of `input`, with the braces it needs, into a worker's
/// reused buffer `buf` (emptied first). The buffer gets room for this
/// piece and, in a file of `several` pieces, with some to spare for the
/// next ones (cut a little past `piece_bytes`): growing it piece by piece
/// paid for a copy and fresh pages each time.
fn copy_piece(buf: &mut Vec<u8>, input: &[u8], piece: &SlicePiece, piece_bytes: usize, several: bool) {
    buf.clear();
    let mut room = piece.range.len() + 2;
    if several {
        room = room.max(piece_bytes + piece_bytes / 4);
    }
    buf.reserve(room);
    if piece.open {
        buf.push(b'{');
    }
    buf.extend_from_slice(&input[piece.range.clone()]);
    if piece.close {
        buf.push(b'}');
    }
}

/// A YAML or JSON piece loaded, encrypted and (JSON) printed.
fn encrypt_tree(piece: &[u8], kind: Kind, job: &Job<'_>) -> Option<Done> {
    let mut items = load_piece(kind, piece)?;
    let mut mac_input = WipedBytes::with_capacity(piece.len());
    let encrypted = encrypt_piece(
        &mut items,
        job.cipher,
        job.selector,
        job.mac_only_encrypted,
        &mut mac_input,
    );
    let Ok(warnings) = encrypted else {
        // The walk stopped part way: values after it are still plaintext.
        items.zeroize();
        return None;
    };
    let mut done = Done {
        items,
        mac_input,
        warnings,
        printed: None,
    };
    print_piece(&mut done, job.print, piece.len().saturating_mul(3), false)?;
    Some(done)
}

/// The MAC's SHA-512 over the pieces' MAC input, in order: on this thread,
/// or on one of its own where this thread also prints (YAML), so that the
/// hashing, and freeing each printed tree, run beside the printing instead
/// of after it.
enum Hasher {
    Here { hash: MacHash, wipe_trees: bool },
    Beside(HashThread),
}

/// A piece's MAC input and its printed tree, done with.
type Spent = (WipedBytes, Branch);

struct HashThread {
    pieces: Option<mpsc::SyncSender<Spent>>,
    thread: Option<std::thread::JoinHandle<MacHash>>,
}

impl HashThread {
    /// Close the channel and wait for the hash of what was sent.
    fn finish(&mut self) -> Option<MacHash> {
        self.pieces.take();
        self.thread.take()?.join().ok()
    }
}

impl Drop for HashThread {
    /// Given up on: the thread wipes what it was sent as it drains it.
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

impl Hasher {
    /// `wipe_trees`: the trees are plaintext (decrypt).
    fn new(mac_only_encrypted: bool, own_thread: bool, wipe_trees: bool) -> Hasher {
        let start = || {
            let mut hash = MacHash::new();
            if mac_only_encrypted {
                hash.update(&MAC_ONLY_ENCRYPTED_INIT);
            }
            hash
        };
        let here = || Hasher::Here {
            hash: start(),
            wipe_trees,
        };
        if !own_thread {
            return here();
        }
        // Handed over one at a time: a tree not yet freed counts against
        // the memory a large file may take (a queue of them took encrypt
        // past 4x the file size).
        let (pieces, received) = mpsc::sync_channel::<Spent>(0);
        let mut hash = start();
        let hash_all = move || {
            // Each piece's MAC input is wiped as it drops.
            for (mac_input, mut tree) in received {
                hash.update(&mac_input);
                if wipe_trees {
                    tree.zeroize();
                }
            }
            hash
        };
        // The thread owns the state, so it needs no scope.
        match std::thread::Builder::new().spawn(hash_all) {
            Ok(thread) => Hasher::Beside(HashThread {
                pieces: Some(pieces),
                thread: Some(thread),
            }),
            Err(_) => here(),
        }
    }

    /// Hash a piece's MAC input and free its tree (wiped first, if
    /// plaintext).
    fn update(&mut self, mac_input: &mut WipedBytes, mut tree: Branch) {
        match self {
            Hasher::Here { hash, wipe_trees } => {
                hash.update(mac_input);
                if *wipe_trees {
                    tree.zeroize();
                }
            }
            Hasher::Beside(HashThread {
                pieces: Some(pieces), ..
            }) => {
                // If the thread is gone (which `finish` reports), the pair
                // comes back in the error and is wiped here.
                if let Err(mpsc::SendError((_, mut tree))) = pieces.send((std::mem::take(mac_input), tree)) {
                    tree.zeroize();
                }
            }
            Hasher::Beside(_) => tree.zeroize(),
        }
    }

    /// The hash of everything passed to `update`, or `None` if the hashing
    /// thread did not finish.
    fn finish(self) -> Option<MacHash> {
        match self {
            Hasher::Here { hash, .. } => Some(hash),
            Hasher::Beside(mut thread) => thread.finish(),
        }
    }
}

/// The calling thread's side: pieces in document order.
struct Assembler {
    output: Output,
    hash: Hasher,
    /// YAML only: a repeated top-level key is an error there (JSON keeps it).
    top_keys: Option<HashSet<String>>,
    warnings: Vec<String>,
}

/// The printer of an [`Assembler`]; what it holds is wiped if it is
/// plaintext (decrypt) and given up on.
struct Output {
    printer: Printer,
    plaintext: bool,
}

impl Drop for Output {
    fn drop(&mut self) {
        if self.plaintext {
            self.printer.wipe();
        }
    }
}

impl Assembler {
    /// Printing in `format` into a buffer of about `output_hint` bytes;
    /// `plaintext_trees` on decrypt (the trees are wiped once printed).
    fn new(format: PieceFormat<'_>, output_hint: usize, mac_only_encrypted: bool, plaintext_trees: bool) -> Assembler {
        let yaml = matches!(format, PieceFormat::Yaml { .. });
        let top_keys = yaml.then(HashSet::new);
        let mut printer = Printer::new(format);
        printer.reserve(output_hint);
        Assembler {
            output: Output {
                printer,
                plaintext: plaintext_trees,
            },
            hash: Hasher::new(mac_only_encrypted, yaml, plaintext_trees),
            top_keys,
            warnings: Vec::new(),
        }
    }

    /// What was printed, taken out (the assembler no longer wipes it).
    fn take_printer(&mut self) -> Printer {
        std::mem::replace(&mut self.output.printer, Printer::Dotenv(Vec::new()))
    }

    /// Take the next piece; `false` means "not piecewise after all".
    fn accept(&mut self, done: &mut Done) -> bool {
        for item in &done.items.0 {
            match &item.key {
                Key::Str(k) => {
                    // A `sops` key means "already encrypted"; a repeated key
                    // is a YAML error: both are the ordinary path's to report.
                    if k == "sops" || self.top_keys.as_mut().is_some_and(|seen| !seen.insert(k.clone())) {
                        return false;
                    }
                }
                Key::NonString { .. } => return false,
                Key::Comment(_) => {}
            }
        }
        self.warnings.append(&mut done.warnings);
        let printed = match (&mut done.printed, &mut self.output.printer) {
            (Some(printed), Printer::Json(p)) => {
                p.push_printed(printed);
                true
            }
            (printed @ Some(_), Printer::Dotenv(parts)) => {
                // Taken out of the piece: a decrypted one is wiped with the
                // whole output (`Printed`).
                parts.extend(printed.take());
                true
            }
            _ => self.output.printer.push(&done.items.0),
        };
        // The printed tree goes with the MAC input, to be freed (and wiped,
        // if plaintext) off this thread.
        self.hash.update(&mut done.mac_input, std::mem::take(&mut done.items));
        printed
    }
}

/// Runs `work` on worker threads over the pieces `next_piece` yields and
/// hands the results to `accept` on the calling thread, in order, with at
/// most `ahead` pieces more than workers in flight. Returns
/// the number of pieces, or `None` when a piece could not be read, failed
/// or was refused (pieces not started by then go to `discard`).
fn run_pieces<P: Send, D: Send>(
    ahead: usize,
    mut next_piece: impl FnMut() -> std::io::Result<Option<P>>,
    work: &(impl Fn(P) -> Option<D> + Sync),
    discard: &(impl Fn(P) + Sync),
    mut accept: impl FnMut(D) -> bool,
) -> Option<usize> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS);
    let stop = AtomicBool::new(false);
    let (job_tx, job_rx) = mpsc::channel::<(usize, P)>();
    let job_rx = Mutex::new(job_rx);
    let (done_tx, done_rx) = mpsc::channel::<(usize, Option<D>)>();
    std::thread::scope(|s| {
        let mut workers = 0;
        for _ in 0..threads {
            let (job_rx, done_tx, stop) = (&job_rx, done_tx.clone(), &stop);
            let worker = move || loop {
                let next = job_rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                let Ok((index, piece)) = next else { break };
                if stop.load(Ordering::Relaxed) {
                    discard(piece);
                    continue;
                }
                if done_tx.send((index, work(piece))).is_err() {
                    break;
                }
            };
            // A thread that cannot be started leaves its share to the others.
            workers += usize::from(std::thread::Builder::new().spawn_scoped(s, worker).is_ok());
        }
        drop(done_tx);
        // Enough pieces in flight to keep every worker busy while this
        // thread prints; few enough that memory stays bounded.
        let max_in_flight = workers + ahead;
        let (mut read, mut accepted, mut in_flight) = (0usize, 0usize, 0usize);
        let mut eof = false;
        let mut ok = true;
        let mut arrived: BTreeMap<usize, Option<D>> = BTreeMap::new();
        while ok {
            while !eof && in_flight < max_in_flight {
                match next_piece() {
                    Ok(Some(piece)) if workers == 0 => {
                        arrived.insert(read, work(piece));
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
                if !done.is_some_and(&mut accept) {
                    ok = false;
                    break;
                }
            }
        }
        stop.store(!ok, Ordering::Relaxed);
        drop(job_tx);
        ok.then_some(read)
    })
}

/// Encrypt a single-document YAML file or a JSON file read from `reader`,
/// or `None` when it does not go piecewise (see the module comment).
/// `input_len` (the file's size, if known) sizes the output buffer.
pub fn encrypt<R: Read>(
    reader: R,
    input_len: u64,
    format: PieceFormat<'_>,
    cipher: &ValueCipher,
    selector: &Selector,
    mac_only_encrypted: bool,
) -> Option<EncryptedPieces> {
    encrypt_in(
        reader,
        PIECE_BYTES,
        output_hint(input_len),
        format,
        cipher,
        selector,
        mac_only_encrypted,
    )
}

/// [`encrypt`] for an input held in memory: a mapped file, whose pieces
/// the workers copy out one by one instead of the calling thread reading
/// each into a buffer of its own. (A mapping's pages count towards the
/// process's memory, so the caller maps only files of moderate size.)
pub fn encrypt_mapped(
    input: &[u8],
    format: PieceFormat<'_>,
    cipher: &ValueCipher,
    selector: &Selector,
    mac_only_encrypted: bool,
) -> Option<EncryptedPieces> {
    encrypt_mapped_in(input, PIECE_BYTES, format, cipher, selector, mac_only_encrypted)
}

/// Ciphertext in base64 plus the `ENC[…]` fields: under 3× the input.
fn output_hint(input_len: u64) -> usize {
    usize::try_from(input_len).unwrap_or(0).saturating_mul(3)
}

fn cutter_for(kind: Kind) -> Cutter {
    match kind {
        Kind::Json => Cutter::Json {
            cuts: MemberCuts::default(),
            first: true,
        },
        Kind::Yaml => Cutter::Yaml,
        Kind::Dotenv => Cutter::Lines,
    }
}

fn encrypt_in<R: Read>(
    reader: R,
    piece_bytes: usize,
    output_hint: usize,
    format: PieceFormat<'_>,
    cipher: &ValueCipher,
    selector: &Selector,
    mac_only_encrypted: bool,
) -> Option<EncryptedPieces> {
    let mut reader = PieceReader::new(reader, cutter_for(format.kind()), piece_bytes);
    let keys = (cipher, selector, mac_only_encrypted);
    // Each piece is wiped as it drops, encrypted or not.
    let work = |piece: WipedBytes, job: &Job<'_>| work(&piece, job);
    encrypt_pieces(output_hint, format, keys, || reader.next_piece(), &work, &drop)
}

fn encrypt_mapped_in(
    input: &[u8],
    piece_bytes: usize,
    format: PieceFormat<'_>,
    cipher: &ValueCipher,
    selector: &Selector,
    mac_only_encrypted: bool,
) -> Option<EncryptedPieces> {
    let mut cuts = SliceCuts {
        input,
        cutter: cutter_for(format.kind()),
        piece_bytes,
        start: 0,
    };
    let keys = (cipher, selector, mac_only_encrypted);
    let hint = output_hint(input.len() as u64);
    let work = |piece: SlicePiece, job: &Job<'_>| work_on_copy(input, piece, piece_bytes, job);
    encrypt_pieces(hint, format, keys, || Ok(cuts.next_piece()), &work, &|_| {})
}

/// The cipher, the selector and whether only encrypted values are MACed.
type Keys<'a> = (&'a ValueCipher, &'a Selector, bool);

/// Encrypt the pieces `next_piece` yields with `work` on worker threads
/// and put them together in order.
fn encrypt_pieces<P: Send>(
    output_hint: usize,
    format: PieceFormat<'_>,
    (cipher, selector, mac_only_encrypted): Keys<'_>,
    next_piece: impl FnMut() -> std::io::Result<Option<P>>,
    work: &(impl Fn(P, &Job<'_>) -> Option<Done> + Sync),
    discard: &(impl Fn(P) + Sync),
) -> Option<EncryptedPieces> {
    if selector.uses_comments() {
        // Comment selectors carry state from one key to the next.
        return None;
    }
    let kind = format.kind();
    let mut asm = Assembler::new(format, output_hint, mac_only_encrypted, false);
    let print = WorkerPrint::of(&asm.output.printer);
    let job = Job {
        kind,
        print: &print,
        cipher,
        selector,
        mac_only_encrypted,
    };
    // One piece ahead: the output is held in memory, so the pieces in
    // flight are what keeps encrypt within 4× the input (about 3.7× here).
    let pieces = run_pieces(1, next_piece, &|piece| work(piece, &job), discard, |mut done: Done| {
        asm.accept(&mut done)
    })?;
    if pieces == 0 {
        return None;
    }
    Some(EncryptedPieces {
        printer: asm.take_printer(),
        mac: mac_hex(asm.hash.finish()?),
        warnings: asm.warnings,
        pieces,
    })
}

// ---------------------------------------------------------------------------
// Decrypt

/// An encrypted file split for piecewise decryption: its metadata, read
/// first (the caller recovers the data key from it), and where the data
/// pieces are.
pub struct EncryptedInput<'a> {
    input: &'a [u8],
    kind: Kind,
    /// Where the data ends and the metadata piece starts (JSON: the
    /// top-level comma before it).
    data_end: usize,
    piece_bytes: usize,
    pub metadata: Metadata,
}

impl EncryptedInput<'_> {
    /// Whether the metadata read from the end may lack part of what the
    /// whole-tree path would read: a dotenv file with a `sops_` line in
    /// its data. (Pieces refuse such a line, so this is only asked when
    /// the file did not go piecewise or its key was not recovered.)
    pub fn metadata_may_be_incomplete(&self) -> bool {
        let data = &self.input[..self.data_end];
        self.kind == Kind::Dotenv && (data.starts_with(b"sops_") || memchr::memmem::find(data, b"\nsops_").is_some())
    }
}

/// Cuts the data of an [`EncryptedInput`] into pieces as they are asked
/// for, so that workers start at once.
struct DataCuts<'f, 'a> {
    file: &'f EncryptedInput<'a>,
    start: usize,
    /// JSON: the lexical state and where its scan resumes.
    members: MemberCuts,
    scanned: usize,
    done: bool,
}

impl DataCuts<'_, '_> {
    /// The next data piece as a range of the input (JSON: the members
    /// between top-level commas; braces are put around them when loaded).
    /// An error means the JSON scan does not see the metadata where it was
    /// found: not piecewise.
    fn next_range(&mut self) -> std::io::Result<Option<Range<usize>>> {
        let EncryptedInput {
            input,
            data_end,
            piece_bytes,
            kind,
            ..
        } = *self.file;
        if self.done {
            return Ok(None);
        }
        let start = self.start;
        if kind == Kind::Json {
            let min_cut = (start + piece_bytes).min(data_end);
            let (cut, next) = self.members.scan(&input[..=data_end], self.scanned, min_cut);
            let Some(cut) = cut else {
                return Err(std::io::Error::other("the metadata is not a top-level member"));
            };
            self.scanned = next;
            self.start = cut + 1;
            self.done = cut == data_end;
            return Ok(Some(start..cut));
        }
        let mut pos = start + piece_bytes;
        while pos < data_end {
            let Some(nl) = memchr::memchr(b'\n', &input[pos..data_end]) else {
                break;
            };
            let line = pos + nl + 1;
            if line < data_end && (kind == Kind::Dotenv || yaml::is_piece_start(input, line)) {
                self.start = line;
                return Ok(Some(start..line));
            }
            pos = line;
        }
        self.done = true;
        Ok(Some(start..data_end))
    }
}

/// The `sops` block of a metadata piece that holds nothing else.
fn metadata_of(piece: Option<Branch>) -> Option<Metadata> {
    let branch = piece?;
    let [item] = &branch.0[..] else { return None };
    if item.key.as_str() != Some("sops") {
        return None;
    }
    Metadata::from_value(&item.value).ok()
}

/// Split a large encrypted YAML (single document), JSON or dotenv file
/// whose `sops` block comes last, as sops writes it, or `None` (the
/// whole-tree path then loads it and gives the exact result or error).
pub fn open_encrypted(input: &[u8], kind: Kind) -> Option<EncryptedInput<'_>> {
    open_encrypted_in(input, kind, PIECE_BYTES)
}

fn open_encrypted_in(input: &[u8], kind: Kind, piece_bytes: usize) -> Option<EncryptedInput<'_>> {
    match kind {
        Kind::Json => open_json(input, piece_bytes),
        Kind::Yaml => open_yaml(input, piece_bytes),
        Kind::Dotenv => open_dotenv(input, piece_bytes),
    }
}

fn open_yaml(input: &[u8], piece_bytes: usize) -> Option<EncryptedInput<'_>> {
    // The metadata: the last line `sops:` that starts a piece.
    let mut end = input.len();
    let meta_at = loop {
        let at = memchr::memmem::rfind(&input[..end], b"\nsops:")? + 1;
        let next = input.get(at + 5).copied();
        if matches!(next, None | Some(b'\n' | b'\r' | b' ')) && yaml::is_piece_start(input, at) {
            break at;
        }
        end = at - 1;
    };
    // A copy: the input may be a mapping of a file that changes (see
    // `decrypt`).
    let tail = input[meta_at..].to_vec();
    let metadata = metadata_of(yaml::load_piece(&tail))?;
    Some(EncryptedInput {
        input,
        kind: Kind::Yaml,
        data_end: meta_at,
        piece_bytes,
        metadata,
    })
}

fn open_json(input: &[u8], piece_bytes: usize) -> Option<EncryptedInput<'_>> {
    // The metadata: the last `"sops"` key directly after a comma. The scan
    // of the data confirms that comma is a top-level one (`DataCuts`), and
    // sops's strict check of the whole file runs beside the pieces.
    let mut end = input.len();
    let last_comma = loop {
        let at = memchr::memmem::rfind(&input[..end], b"\"sops\"")?;
        let before = input[..at].iter().rposition(|b| !b" \t\r\n".contains(b))?;
        if input[before] == b',' {
            break before;
        }
        end = at;
    };
    let mut meta_piece = Vec::with_capacity(input.len() - last_comma);
    meta_piece.push(b'{');
    meta_piece.extend_from_slice(&input[last_comma + 1..]);
    let metadata = metadata_of(json::load_piece(&meta_piece))?;
    Some(EncryptedInput {
        input,
        kind: Kind::Json,
        data_end: last_comma,
        piece_bytes,
        metadata,
    })
}

fn open_dotenv(input: &[u8], piece_bytes: usize) -> Option<EncryptedInput<'_>> {
    // The metadata: the run of `sops_` lines at the end. The whole-tree
    // path merges `sops_` lines from anywhere into the metadata; a file
    // with one elsewhere is left to it when a piece meets that line, and
    // `metadata_may_be_incomplete` tells the caller not to trust the key
    // it recovered (a scan of the whole data, so only asked on that path).
    let mut meta_at = input.len();
    let mut line_end = input.len().checked_sub(1).filter(|&i| input[i] == b'\n')?;
    loop {
        let line_start = memchr::memrchr(b'\n', &input[..line_end]).map_or(0, |i| i + 1);
        if !input[line_start..].starts_with(b"sops_") {
            break;
        }
        meta_at = line_start;
        if line_start == 0 {
            break;
        }
        line_end = line_start - 1;
    }
    // A copy: the input may be a mapping of a file that changes (see
    // `decrypt`).
    let tail = input[meta_at..].to_vec();
    let branch = dotenv::load_piece(&tail)?;
    let pairs = branch
        .0
        .into_iter()
        .map(|item| Some((item.key.as_str()?.strip_prefix("sops_")?.to_string(), item.value)))
        .collect::<Option<Vec<_>>>()?;
    if pairs.is_empty() {
        return None;
    }
    let metadata = Metadata::from_value(&unflatten(pairs).ok()?).ok()?;
    Some(EncryptedInput {
        input,
        kind: Kind::Dotenv,
        data_end: meta_at,
        piece_bytes,
        metadata,
    })
}

/// A decrypted file, to be checked against the stored MAC and written.
pub struct DecryptedPieces {
    /// The plaintext file, as the whole-tree path prints it.
    pub output: Printed,
    /// The MAC of the plaintext (uppercase hex SHA-512).
    pub mac: String,
    pub warnings: Vec<String>,
    /// How many pieces the data was cut into.
    pub pieces: usize,
}

/// A decrypted piece; its plaintext (tree and printed text) is wiped
/// however it goes.
struct Plain(Done);

impl Drop for Plain {
    fn drop(&mut self) {
        self.0.items.zeroize();
        if let Some(printed) = &mut self.0.printed {
            wipe_vec(printed);
        }
    }
}

/// A dotenv piece decrypted straight from its lines ([`dotenv_lines`]).
fn decrypt_dotenv(piece: &[u8], lines: &LineCrypt<'_>) -> Option<Plain> {
    // Plaintext is under half the encrypted size (`LineCrypt` makes room
    // for more, wiping, if needed).
    let mut done = Plain(Done {
        items: Branch::default(),
        mac_input: WipedBytes::with_capacity(piece.len() / 2),
        warnings: Vec::new(),
        printed: Some(Vec::with_capacity(piece.len() / 2)),
    });
    let Done { mac_input, printed, .. } = &mut done.0;
    let printed = printed.as_mut().expect("set above");
    let warned = lines.decrypt(piece, printed, mac_input)?;
    done.0.warnings = vec![crate::crypt::POSSIBLY_UNENCRYPTED_COMMENT.to_string(); warned];
    Some(done)
}

thread_local! {
    /// A worker's copy of the piece it decrypts.
    static PIECE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Decrypt and print one piece, copied out of the input (JSON: with its
/// braces).
fn decrypt_own_piece(piece: &[u8], kind: Kind, lines: &LineCrypt<'_>, print: &WorkerPrint) -> Option<Plain> {
    if kind == Kind::Dotenv {
        return decrypt_dotenv(piece, lines);
    }
    let items = load_piece(kind, piece)?;
    let mut done = Plain(Done {
        items,
        mac_input: WipedBytes::with_capacity(piece.len() / 2),
        warnings: Vec::new(),
        printed: None,
    });
    let Done { items, mac_input, .. } = &mut done.0;
    done.0.warnings = decrypt_piece(items, lines.cipher, lines.selector, lines.mac_only_encrypted, mac_input).ok()?;
    print_piece(&mut done.0, print, piece.len() / 2, true)?;
    Some(done)
}

/// Decrypt the data pieces of `file` with `cipher` and print them in the
/// file's format (`format` gives the output settings), or `None`.
pub fn decrypt(file: &EncryptedInput<'_>, format: PieceFormat<'_>, cipher: &ValueCipher) -> Option<DecryptedPieces> {
    let selector = file.metadata.selectors.compile().ok()?;
    if selector.uses_comments() || file.kind != format.kind() {
        return None;
    }
    let mac_only = file.metadata.mac_only_encrypted;
    // Plaintext is under half the encrypted size.
    let mut asm = Assembler::new(format, file.input.len() / 2, mac_only, true);
    let print = WorkerPrint::of(&asm.output.printer);
    let json = file.kind == Kind::Json;
    let mut cuts = DataCuts {
        file,
        start: 0,
        members: MemberCuts::default(),
        scanned: 0,
        done: false,
    };
    let mut index = 0;
    let mut next = || {
        let range = cuts.next_range()?;
        index += 1;
        Ok(range.map(|r| (index - 1, r)))
    };
    let lines = LineCrypt {
        cipher,
        selector: &selector,
        mac_only_encrypted: mac_only,
    };
    // Each piece is copied out of the input before anything reads it: the
    // input may be a mapping of a file that another process changes, and a
    // copy cannot change between a check and the use it allows. The copy
    // is ciphertext; each worker reuses its buffer.
    let work = |(index, range): (usize, Range<usize>)| {
        PIECE.with_borrow_mut(|piece| {
            let cut = SlicePiece {
                range,
                open: json && index > 0,
                close: json,
            };
            let several = file.data_end > file.piece_bytes;
            copy_piece(piece, file.input, &cut, file.piece_bytes, several);
            decrypt_own_piece(piece, file.kind, &lines, &print)
        })
    };
    // Each piece's plaintext tree is wiped when `Plain` drops, printed or not.
    let pieces = std::thread::scope(|s| {
        // sops checks encrypted JSON strictly before anything else; its
        // error is the whole-tree path's to report. (No thread for the
        // other formats: starting one costs more than a small file's work.)
        let strict = || json::validate_strict(file.input).is_ok();
        let validation = json.then(|| std::thread::Builder::new().spawn_scoped(s, strict));
        let pieces = run_pieces(3, &mut next, &work, &|_| {}, |mut plain: Plain| {
            asm.accept(&mut plain.0)
        });
        let valid = match validation {
            None => true,
            Some(Ok(h)) => h.join().unwrap_or(false),
            Some(Err(_)) => strict(),
        };
        pieces.filter(|_| valid)
    })?;
    let output = Printed {
        parts: asm.take_printer().finish(),
        // `LineCrypt::decrypt` wipes what it cuts back.
        wipe: if file.kind == Kind::Dotenv {
            Wipe::Written
        } else {
            Wipe::Whole
        },
    };
    Some(DecryptedPieces {
        output,
        mac: mac_hex(asm.hash.finish()?),
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

    fn yaml_in<R: Read>(
        input: R,
        piece_bytes: usize,
        cipher: &ValueCipher,
        selector: &Selector,
    ) -> Option<EncryptedPieces> {
        encrypt_in(
            input,
            piece_bytes,
            1 << 20,
            PieceFormat::Yaml { indent: 4 },
            cipher,
            selector,
            false,
        )
    }

    fn piece_format(format: Format, store: &JsonStore) -> PieceFormat<'_> {
        match format {
            Format::Json => PieceFormat::Json(store),
            Format::Dotenv => PieceFormat::Dotenv,
            _ => PieceFormat::Yaml { indent: 4 },
        }
    }

    fn kind(format: Format) -> Kind {
        match format {
            Format::Json => Kind::Json,
            Format::Dotenv => Kind::Dotenv,
            _ => Kind::Yaml,
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
        check_format(Format::Yaml, input, piece_bytes, spec, mac_only)
    }

    fn check_format(format: Format, input: &[u8], piece_bytes: usize, spec: &SelectorSpec, mac_only: bool) -> usize {
        let key = DataKey::generate();
        let cipher = ValueCipher::new(&key);
        let selector = spec.compile().expect("selector");
        let settings = StoreSettings::default();
        let meta = metadata(spec, mac_only);
        let store = JsonStore::default();
        let read = encrypt_in(
            input,
            piece_bytes,
            0,
            piece_format(format, &store),
            &cipher,
            &selector,
            mac_only,
        );
        // The same input held in memory (a mapped file) gives the same.
        let held = encrypt_mapped_in(
            input,
            piece_bytes,
            piece_format(format, &store),
            &cipher,
            &selector,
            mac_only,
        );
        let text = String::from_utf8_lossy(input);
        assert_eq!(
            read.is_some(),
            held.is_some(),
            "read and held input differ for {text:?}"
        );
        let (Some(done), Some(held)) = (read, held) else {
            return 0;
        };
        assert_eq!(held.mac, done.mac, "held input's MAC differs for {text:?}");
        let held = held.finish(&meta).to_vec();
        let mut whole = sopsfile::load_plain(format, &settings, input)
            .unwrap_or_else(|e| panic!("piecewise took what the store rejects ({}): {text:?}", e.message));
        assert!(!sopsfile::has_metadata(format, &whole), "{text:?}");
        let outcome = encrypt_document(&mut whole, &cipher, &selector, mac_only).expect("whole-tree encrypt");
        let expected = sopsfile::emit_encrypted(format, &settings, &mut whole, &meta).expect("emit");
        assert_eq!(done.mac, outcome.mac, "MAC differs for {text:?}");
        let pieces = done.pieces;
        let got = done.finish(&meta).to_vec();
        assert_eq!(masked(&got), masked(&expected), "output differs for {text:?}");
        assert_eq!(masked(&held), masked(&got), "held input's output differs for {text:?}");
        // Both decrypt to the same tree (which need not be the input's:
        // values keep sops' encrypted types), with the same MAC.
        let decrypted = |out: &[u8]| {
            let (mut back, _) = sopsfile::load_encrypted(format, &settings, out).expect("load output");
            let mut cipher = ValueCipher::new(&key);
            let again = decrypt_document(&mut back, &mut cipher, &selector, mac_only).expect("decrypt output");
            assert_eq!(again.mac, outcome.mac);
            // Compared as printed: NaN != NaN in the tree.
            sopsfile::emit_plain(format, &settings, &back).expect("emit plaintext")
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
                yaml_in(case.as_bytes(), 64, &cipher, &selector).is_none(),
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
        assert!(yaml_in(body.as_bytes(), 64, &cipher, &comments).is_none());
        assert!(yaml_in(body.as_bytes(), 64, &cipher, &selector).is_some());
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
        assert!(yaml_in(failing, 64, &ValueCipher::new(&key), &selector).is_none());
    }

    /// Random JSON text: nested objects and arrays, escapes, numbers,
    /// whitespace of every kind between tokens.
    fn gen_json(rng: &mut Rng, out: &mut String, depth: usize) {
        let ws = |rng: &mut Rng, out: &mut String| {
            for _ in 0..rng.below(3) {
                out.push([' ', '\n', '\t', '\r'][rng.below(4)]);
            }
        };
        match rng.below(if depth < 4 { 10 } else { 6 }) {
            0 => out.push_str("\"plain\""),
            1 => out.push_str("\"a,b}\\\"],{c\\\\\""),
            2 => out.push_str("\"caf\\u00e9 \\ud83d\\ude80\""),
            3 => out.push_str(&format!("{}", rng.below(100_000))),
            4 => out.push_str(["true", "false", "null", "-1.5e3", "0.25"][rng.below(5)]),
            5 => out.push_str("\"\""),
            6 | 7 => {
                out.push('[');
                for i in 0..rng.below(4) {
                    if i > 0 {
                        out.push(',');
                    }
                    ws(rng, out);
                    gen_json(rng, out, depth + 1);
                    ws(rng, out);
                }
                out.push(']');
            }
            _ => gen_object(rng, out, depth + 1, 4),
        }
    }

    fn gen_object(rng: &mut Rng, out: &mut String, depth: usize, max_members: usize) {
        out.push('{');
        for i in 0..rng.below(max_members) {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!("\n\t\"k{}\": ", rng.below(12)));
            gen_json(rng, out, depth);
        }
        out.push_str("\n}");
    }

    #[test]
    fn json_matches_the_whole_tree_path() {
        let default = SelectorSpec::default();
        let regex = SelectorSpec {
            encrypted_regex: "^k[0-5]".into(),
            ..Default::default()
        };
        let mut multi = 0;
        for (_, data) in corpus_files("json") {
            for piece_bytes in [1, 40, 400] {
                multi += usize::from(check_format(Format::Json, &data, piece_bytes, &default, false) > 1);
            }
        }
        let mut rng = Rng(0x0123_4567_89AB_CDEF);
        for i in 0..600 {
            let mut doc = String::new();
            if i % 5 == 0 {
                doc.push_str(" \n");
            }
            gen_object(&mut rng, &mut doc, 0, 12);
            // Trailing bytes the encrypt-side load ignores, commas included.
            match i % 9 {
                0 => doc.push_str("\n{\"x\": 1, \"y\": [2, 3]}"),
                1 => doc.push_str(" , \"z\""),
                _ => doc.push('\n'),
            }
            let (spec, mac_only) = if i % 3 == 0 { (&regex, true) } else { (&default, false) };
            multi += usize::from(check_format(Format::Json, doc.as_bytes(), 1 + i % 50, spec, mac_only) > 1);
        }
        assert!(multi > 300, "only {multi} inputs went through in several pieces");
    }

    /// JSON the piecewise path must leave to the whole-tree path.
    #[test]
    fn unusual_json_is_left_to_the_whole_tree_path() {
        let body: String = (0..200).map(|i| format!("\"k{i}\": \"v{i}\", ")).collect();
        let cases = [
            format!("{{{body}\"sops\": 1}}"),
            format!("{{{body}}}"),
            format!("{{{body} , \"late\": 1}}"),
            format!("{{{body}\"bad\": [}}"),
            format!("[{body}1]"),
            format!("{{{body}\"unterminated: 1}}"),
        ];
        let key = DataKey::generate();
        let cipher = ValueCipher::new(&key);
        let selector = SelectorSpec::default().compile().expect("selector");
        let store = JsonStore::default();
        for case in &cases {
            let got = encrypt_in(
                case.as_bytes(),
                64,
                0,
                PieceFormat::Json(&store),
                &cipher,
                &selector,
                false,
            );
            assert!(got.is_none(), "taken piecewise: {case:?}");
        }
        // Repeated keys are kept in JSON, and input cut short after a key
        // loads without that key (sops' decoder quirk): piecewise, with the
        // whole tree's result.
        for same in [format!("{{{body}\"k1\": \"again\"}}"), format!("{{{body}\"cut\": ")] {
            assert!(check_format(Format::Json, same.as_bytes(), 64, &SelectorSpec::default(), false) > 1);
        }
    }

    /// Encrypt `input` through the whole tree, then decrypt it piecewise
    /// (pieces of about `piece_bytes`) and through the whole tree: the same
    /// metadata, MAC and plaintext bytes. Returns the number of pieces (0:
    /// not taken piecewise).
    fn check_decrypt(format: Format, input: &[u8], piece_bytes: usize, spec: &SelectorSpec, mac_only: bool) -> usize {
        let settings = StoreSettings::default();
        let Ok(mut doc) = sopsfile::load_plain(format, &settings, input) else {
            return 0;
        };
        if doc.branches.len() != 1 || sopsfile::has_metadata(format, &doc) {
            return 0;
        }
        let key = DataKey::generate();
        let mut cipher = ValueCipher::new(&key);
        let selector = spec.compile().expect("selector");
        let Ok(outcome) = encrypt_document(&mut doc, &cipher, &selector, mac_only) else {
            return 0;
        };
        let mut meta = metadata(spec, mac_only);
        meta.mac = cipher.encrypt_bytes(outcome.mac.as_bytes(), "str", meta.last_modified.as_bytes());
        let Ok(encrypted) = sopsfile::emit_encrypted(format, &settings, &mut doc, &meta) else {
            return 0;
        };
        match compare_decrypt(format, &encrypted, piece_bytes, &mut cipher, &selector, mac_only) {
            Some((pieces, mac)) => {
                assert_eq!(mac, outcome.mac, "MAC differs from the encrypt side");
                pieces
            }
            None => 0,
        }
    }

    /// Decrypt `encrypted` piecewise and through the whole tree: when the
    /// piecewise path takes it, the same MAC, warnings and plaintext bytes.
    /// Returns the number of pieces and the MAC, `None` when not taken.
    fn compare_decrypt(
        format: Format,
        encrypted: &[u8],
        piece_bytes: usize,
        cipher: &mut ValueCipher,
        selector: &Selector,
        mac_only: bool,
    ) -> Option<(usize, String)> {
        let settings = StoreSettings::default();
        let text = String::from_utf8_lossy(encrypted);
        let file = open_encrypted_in(encrypted, kind(format), piece_bytes)?;
        let (mut whole, whole_meta) = sopsfile::load_encrypted(format, &settings, encrypted).expect("whole load");
        assert_eq!(file.metadata, whole_meta, "metadata differs for {text:?}");
        let store = JsonStore::default();
        let done = decrypt(&file, piece_format(format, &store), cipher)?;
        let reference = decrypt_document(&mut whole, cipher, selector, mac_only).expect("whole decrypt");
        assert_eq!(done.mac, reference.mac, "MAC differs for {text:?}");
        assert_eq!(done.warnings, reference.warnings, "{text:?}");
        let expected = sopsfile::emit_plain(format, &settings, &whole).expect("emit plaintext");
        let output = WipedBytes(done.output.to_vec());
        assert!(
            output[..] == expected[..],
            "plaintext differs for {text:?}: {:?} instead of {:?}",
            String::from_utf8_lossy(&output),
            String::from_utf8_lossy(&expected),
        );
        Some((done.pieces, done.mac.clone()))
    }

    #[test]
    fn decrypt_matches_the_whole_tree_path() {
        let default = SelectorSpec::default();
        let regex = SelectorSpec {
            encrypted_regex: "^k[0-3]".into(),
            ..Default::default()
        };
        let mut multi = 0;
        for (format, ext) in [(Format::Yaml, "yaml"), (Format::Json, "json")] {
            for (_, data) in corpus_files(ext) {
                for piece_bytes in [1, 100, 1000] {
                    multi += usize::from(check_decrypt(format, &data, piece_bytes, &default, false) > 1);
                }
            }
        }
        let mut rng = Rng(0xD1CE_5EED_0000_0042);
        for i in 0..400 {
            let (spec, mac_only) = if i % 3 == 0 { (&regex, true) } else { (&default, false) };
            let yaml = generated_document(&mut rng, i, 6);
            multi += usize::from(check_decrypt(Format::Yaml, yaml.as_bytes(), 1 + i % 300, spec, mac_only) > 1);
            let mut json = String::new();
            gen_object(&mut rng, &mut json, 0, 12);
            multi += usize::from(check_decrypt(Format::Json, json.as_bytes(), 1 + i % 300, spec, mac_only) > 1);
        }
        assert!(multi > 300, "only {multi} inputs went through in several pieces");
    }

    /// Encrypted files the piecewise path must leave to the whole-tree path.
    #[test]
    fn unusual_encrypted_files_are_left_to_the_whole_tree_path() {
        let settings = StoreSettings::default();
        let key = DataKey::generate();
        let cipher = ValueCipher::new(&key);
        let body: String = (0..100).map(|i| format!("k{i}: v{i}\n")).collect();
        let mut doc = sopsfile::load_plain(Format::Yaml, &settings, body.as_bytes()).expect("load");
        let selector = SelectorSpec::default().compile().expect("selector");
        encrypt_document(&mut doc, &cipher, &selector, false).expect("encrypt");
        let meta = metadata(&SelectorSpec::default(), false);
        let enc = String::from_utf8(sopsfile::emit_encrypted(Format::Yaml, &settings, &mut doc, &meta).expect("emit"))
            .expect("utf-8");
        let (data, sops) = enc.split_at(enc.find("\nsops:").expect("metadata") + 1);
        let cases = [
            format!("{data}# trailing comment\n{sops}"),
            format!("{sops}{data}"),
            format!("{data}{sops}# after\n"),
            format!("{data}k3: again\n{sops}"),
            format!("{data}sops: 1\n{sops}"),
            format!("{data}---\nx: 1\n{sops}"),
            data.to_string(),
        ];
        for case in &cases {
            let taken = open_encrypted_in(case.as_bytes(), Kind::Yaml, 64)
                .and_then(|file| decrypt(&file, PieceFormat::Yaml { indent: 4 }, &cipher));
            assert!(taken.is_none(), "taken piecewise: {case:?}");
        }
        // JSON: trailing bytes (sops's strict check fails) and a second
        // `sops` member.
        let mut doc = sopsfile::load_plain(Format::Json, &settings, b"{\"a\": 1, \"b\": [2, \"x\"]}").expect("load");
        encrypt_document(&mut doc, &cipher, &selector, false).expect("encrypt");
        let json = String::from_utf8(sopsfile::emit_encrypted(Format::Json, &settings, &mut doc, &meta).expect("emit"))
            .expect("utf-8");
        let store = JsonStore::default();
        let json_ok = |case: &str| {
            open_encrypted_in(case.as_bytes(), Kind::Json, 8)
                .and_then(|file| decrypt(&file, PieceFormat::Json(&store), &cipher))
        };
        assert!(json_ok(&json).is_some_and(|d| d.pieces > 1));
        assert!(json_ok(&format!("{json}x")).is_none());
        assert!(json_ok(&json.replacen("{", "{\"sops\": 1, ", 1)).is_none());
        // A wrong key: the first failing value stops it.
        let file = open_encrypted_in(enc.as_bytes(), Kind::Yaml, 64).expect("splits");
        let other = ValueCipher::new(&DataKey::generate());
        assert!(decrypt(&file, PieceFormat::Yaml { indent: 4 }, &other).is_none());
        assert!(decrypt(&file, PieceFormat::Yaml { indent: 4 }, &cipher).is_some());
    }

    /// Random dotenv text aimed at the loader's edges: comments, blank
    /// lines, `=` and `\n` escapes in values, CR, invalid UTF-8, keys with
    /// spaces or the unencrypted suffix.
    fn gen_dotenv(rng: &mut Rng, lines: usize) -> Vec<u8> {
        const VALUE_BYTES: &[&[u8]] = &[
            b"a",
            b"Z",
            b"0",
            b"=",
            b" ",
            b"#",
            b"\\",
            b"\\n",
            b"n",
            b"\r",
            b"\t",
            b"\xff",
            b"\xc3\xa9",
            b"\"",
            b"'",
            b"ENC[",
        ];
        let mut out = Vec::new();
        for i in 0..lines {
            match rng.below(12) {
                0 => out.extend_from_slice(format!("#comment {i}\n").as_bytes()),
                1 => out.push(b'\n'),
                2 => out.extend_from_slice(b"#\n"),
                _ => {
                    let key = match rng.below(5) {
                        0 => format!("K{i}_unencrypted"),
                        1 => format!("export k{i}"),
                        2 => format!(" s{i} "),
                        _ => format!("k{}", rng.below(10)),
                    };
                    out.extend_from_slice(key.as_bytes());
                    out.push(b'=');
                    for _ in 0..rng.below(12) {
                        out.extend_from_slice(VALUE_BYTES[rng.below(VALUE_BYTES.len())]);
                    }
                    out.push(b'\n');
                }
            }
        }
        if rng.below(4) == 0 {
            // No newline at the end.
            out.extend_from_slice(b"last=value");
        }
        out
    }

    #[test]
    fn dotenv_matches_the_whole_tree_path() {
        // What a file without selectors reads as (the metadata the
        // piecewise decrypt uses, where the reference uses the spec).
        let default = SelectorSpec {
            unencrypted_suffix: crate::policy::DEFAULT_UNENCRYPTED_SUFFIX.into(),
            ..Default::default()
        };
        let regex = SelectorSpec {
            encrypted_regex: "^k[0-5]".into(),
            ..Default::default()
        };
        let (mut multi_encrypt, mut multi_decrypt) = (0, 0);
        let mut rng = Rng(0x0E7E_0E7E_1234_5678);
        for i in 0..400 {
            let (spec, mac_only) = if i % 3 == 0 { (&regex, true) } else { (&default, false) };
            let env = gen_dotenv(&mut rng, 1 + i % 60);
            let piece_bytes = 1 + i % 200;
            multi_encrypt += usize::from(check_format(Format::Dotenv, &env, piece_bytes, spec, mac_only) > 1);
            multi_decrypt += usize::from(check_decrypt(Format::Dotenv, &env, piece_bytes, spec, mac_only) > 1);
        }
        assert!(
            multi_encrypt > 300,
            "only {multi_encrypt} inputs were encrypted in several pieces"
        );
        assert!(
            multi_decrypt > 300,
            "only {multi_decrypt} inputs were decrypted in several pieces"
        );
    }

    /// Decrypted dotenv values of every type sops knows, and comments left
    /// in clear or not decrypting (warnings), print and hash as through the
    /// whole tree. sops only writes `str` values into dotenv files; the
    /// others come from edited or hand-made files.
    #[test]
    fn dotenv_typed_values_and_clear_comments_match_the_whole_tree_path() {
        let cipher = ValueCipher::new(&DataKey::generate());
        let spec = SelectorSpec::default();
        let selector = spec.compile().expect("selector");
        let typed: &[(&str, &[u8], &'static str)] = &[
            ("n", b"42", "int"),
            ("neg", b"-7", "int"),
            ("f", b"1e5", "float"),
            ("g", b"0.000001", "float"),
            ("b", b"t", "bool"),
            ("t", b"2024-01-02T03:04:05.5+02:00", "time"),
            ("c", b"x\ny", "comment"),
            ("y", b"\xff\nz", "bytes"),
            ("s", b"line1\nline2", "str"),
            ("u", b"\xfe", "str"),
        ];
        let mut plain = String::new();
        for i in 0..40 {
            plain.push_str(&format!("pad{i}=value {i}\n#note {i}\n"));
            if let Some((key, _, _)) = typed.get(i) {
                plain.push_str(&format!("{key}=placeholder\n"));
            }
        }
        plain.push_str("k_unencrypted=clear\\nvalue\nempty=\n");
        let settings = StoreSettings::default();
        let mut doc = sopsfile::load_plain(Format::Dotenv, &settings, plain.as_bytes()).expect("load");
        encrypt_document(&mut doc, &cipher, &selector, false).expect("encrypt");
        let meta = metadata(&spec, false);
        let enc = sopsfile::emit_encrypted(Format::Dotenv, &settings, &mut doc, &meta).expect("emit");
        let mut edited = Vec::new();
        let mut comments = 0;
        for line in enc.split_inclusive(|&b| b == b'\n') {
            let typed_line = typed
                .iter()
                .find(|(key, _, _)| line.starts_with(format!("{key}=").as_bytes()));
            if let Some((key, value, typ)) = typed_line {
                let aad = format!("{key}:");
                edited.extend_from_slice(format!("{key}=").as_bytes());
                edited.extend_from_slice(cipher.encrypt_bytes(value, typ, aad.as_bytes()).as_bytes());
                edited.push(b'\n');
            } else if line.starts_with(b"#ENC[") && {
                comments += 1;
                comments % 4 == 0
            } {
                // Comments in clear (older sops) and ones that do not decrypt.
                edited
                    .extend_from_slice(b"#a comment in clear\n#ENC[AES256_GCM,data:eA==,iv:eA==,tag:eA==,type:str]\n");
            } else {
                edited.extend_from_slice(line);
            }
        }
        let mut cipher = cipher;
        for piece_bytes in [1, 7, 64, 300, 100_000] {
            let (pieces, _) = compare_decrypt(Format::Dotenv, &edited, piece_bytes, &mut cipher, &selector, false)
                .unwrap_or_else(|| panic!("not taken piecewise at {piece_bytes} bytes a piece"));
            assert!(
                pieces > 1 || piece_bytes == 100_000,
                "{pieces} pieces at {piece_bytes} bytes"
            );
        }
        let file = open_encrypted_in(&edited, Kind::Dotenv, 64).expect("opens");
        let done = decrypt(&file, PieceFormat::Dotenv, &cipher).expect("decrypts");
        assert_eq!(
            done.warnings.len(),
            2 * (comments / 4),
            "one per clear or broken comment"
        );
        assert!(comments >= 8, "{comments}");
    }

    /// dotenv input the piecewise path must leave to the whole-tree path.
    #[test]
    fn unusual_dotenv_is_left_to_the_whole_tree_path() {
        let key = DataKey::generate();
        let cipher = ValueCipher::new(&key);
        let selector = SelectorSpec::default().compile().expect("selector");
        let body: String = (0..200).map(|i| format!("K{i}=v{i}\n")).collect();
        // Plaintext: a line without `=` (the error names its line in the
        // whole file) and a `sops_` key (already encrypted, for sops).
        for case in [
            format!("{body}no equals sign\n"),
            format!("{body}sops_version=3.11.0\n"),
        ] {
            let got = encrypt_in(case.as_bytes(), 64, 0, PieceFormat::Dotenv, &cipher, &selector, false);
            assert!(got.is_none(), "taken piecewise: {case:?}");
        }
        // Encrypted: the `sops_` lines elsewhere than at the end, data after
        // them, a broken line, no newline at the end, or no metadata.
        let settings = StoreSettings::default();
        let mut doc = sopsfile::load_plain(Format::Dotenv, &settings, body.as_bytes()).expect("load");
        encrypt_document(&mut doc, &cipher, &selector, false).expect("encrypt");
        let meta = metadata(&SelectorSpec::default(), false);
        let enc =
            String::from_utf8(sopsfile::emit_encrypted(Format::Dotenv, &settings, &mut doc, &meta).expect("emit"))
                .expect("utf-8");
        let (data, sops) = enc.split_at(enc.find("\nsops_").expect("metadata") + 1);
        let (first_meta, other_meta) = sops.split_at(sops.find('\n').expect("lines") + 1);
        let taken = |case: &str| {
            open_encrypted_in(case.as_bytes(), Kind::Dotenv, 64)
                .and_then(|file| decrypt(&file, PieceFormat::Dotenv, &cipher))
        };
        assert!(taken(&enc).is_some_and(|d| d.pieces > 1));
        assert!(!open_encrypted_in(enc.as_bytes(), Kind::Dotenv, 64)
            .expect("opens")
            .metadata_may_be_incomplete());
        // A `sops_` line before the data or inside it: the metadata from
        // the end lacks it, and a piece refuses it.
        let moved = format!("{first_meta}{data}{other_meta}");
        let middle = data[..data.len() / 2].rfind('\n').expect("lines") + 1;
        let inside = format!("{}{first_meta}{}{other_meta}", &data[..middle], &data[middle..]);
        for case in [&moved, &inside] {
            let file = open_encrypted_in(case.as_bytes(), Kind::Dotenv, 64).expect("opens");
            assert!(file.metadata_may_be_incomplete(), "{case:?}");
            assert!(decrypt(&file, PieceFormat::Dotenv, &cipher).is_none(), "{case:?}");
        }
        for case in [
            format!("{first_meta}{data}{other_meta}"),
            format!("{sops}{data}"),
            format!("{data}{sops}late=1\n"),
            format!("{data}broken\n{sops}"),
            enc.trim_end().to_string(),
            data.to_string(),
        ] {
            assert!(taken(&case).is_none(), "taken piecewise: {case:?}");
        }
        // A wrong key: the first failing value stops it.
        let file = open_encrypted_in(enc.as_bytes(), Kind::Dotenv, 64).expect("splits");
        assert!(decrypt(&file, PieceFormat::Dotenv, &ValueCipher::new(&DataKey::generate())).is_none());
    }
}
