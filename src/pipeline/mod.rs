//! Large YAML, JSON and dotenv files encrypted and decrypted piece by piece, so
//! that parsing, the cipher work and printing overlap on all cores and the
//! whole plaintext tree never exists at once.
//!
//! Encrypt: the input is read in chunks and cut between top-level keys: for
//! YAML before the lines [`yaml::is_piece_start`] allows (the cuts the
//! parallel load uses), for JSON at the commas between top-level members
//! ([`json::MemberCuts`]), for dotenv after any line. As many threads as
//! cores (the calling thread one of them, [`run_pieces`]) each take the
//! next piece, parse it and encrypt its values (JSON: and print it,
//! [`json::print_members`]; dotenv pieces go line by line with no tree,
//! [`dotenv_lines`]); whichever finishes the piece next in document order
//! takes it on: hashes its MAC input, checks the top-level keys across
//! pieces and prints it (JSON: copies it) into one output buffer
//! ([`DocumentStream`], [`ObjectStream`]; dotenv: keeps where the threads
//! printed the pieces, [`Parts`], [`Slots`]), which gives the bytes the
//! whole-tree path prints.
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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Condvar, Mutex, PoisonError};
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
    /// printed are kept where they are and written one after the other.
    Dotenv(Parts),
}

/// A file printed in stretches of several buffers: `spans` says which
/// stretch of which buffer comes next.
#[derive(Default)]
struct Parts {
    bufs: Vec<Vec<u8>>,
    spans: Vec<(usize, Range<usize>)>,
}

impl Parts {
    /// One buffer, whole.
    fn whole(buf: Vec<u8>) -> Parts {
        let len = buf.len();
        Parts {
            bufs: vec![buf],
            spans: vec![(0, 0..len)],
        }
    }

    /// `range` of buffer `buf` comes next (joined to the stretch before it
    /// where it continues it: a worker's consecutive pieces).
    fn push_span(&mut self, buf: usize, range: Range<usize>) {
        match self.spans.last_mut() {
            Some((last, r)) if *last == buf && r.end == range.start => r.end = range.end,
            _ => self.spans.push((buf, range)),
        }
    }

    /// `bytes`, in a buffer of their own, come next.
    fn push_buf(&mut self, bytes: Vec<u8>) {
        let len = bytes.len();
        self.bufs.push(bytes);
        self.push_span(self.bufs.len() - 1, 0..len);
    }

    /// Put the workers' buffers in place: the spans of their pieces point
    /// at the first buffers, kept empty for them ([`Parts::for_slots`]).
    fn fill_slots(&mut self, slots: Slots) {
        for (place, buf) in self.bufs.iter_mut().zip(slots.into_bufs()) {
            debug_assert!(place.is_empty());
            *place = buf;
        }
    }

    /// Empty, with the first `count` buffers kept for [`Slots`].
    fn for_slots(count: usize) -> Parts {
        Parts {
            bufs: (0..count).map(|_| Vec::new()).collect(),
            spans: Vec::new(),
        }
    }

    fn slices(&self) -> impl Iterator<Item = &[u8]> {
        self.spans.iter().map(|(buf, range)| &self.bufs[*buf][range.clone()])
    }
}

impl Printer {
    /// A dotenv printer keeps its first `slots` buffers for the workers'
    /// ([`Slots`]).
    fn new(format: PieceFormat<'_>, slots: usize) -> Printer {
        match format {
            PieceFormat::Yaml { indent } => Printer::Yaml(Box::new(DocumentStream::new(indent))),
            PieceFormat::Json(store) => Printer::Json(ObjectStream::new(store)),
            PieceFormat::Dotenv => Printer::Dotenv(Parts::for_slots(slots)),
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
                parts.push_buf(out);
                printed
            }
        }
    }

    fn finish(self) -> Parts {
        match self {
            Printer::Yaml(p) => Parts::whole(p.finish()),
            Printer::Json(p) => Parts::whole(p.finish()),
            Printer::Dotenv(parts) => parts,
        }
    }

    /// Overwrite what was printed so far (plaintext, given up on; the
    /// workers' buffers are their [`Slots`]' to wipe).
    fn wipe(&mut self) {
        match self {
            Printer::Yaml(p) => wipe_vec(p.output()),
            Printer::Json(p) => wipe_vec(p.output()),
            Printer::Dotenv(parts) => parts.bufs.iter_mut().for_each(wipe_vec),
        }
    }
}

/// A printed file, as the parts it was printed in: written out part after
/// part, never joined (that would copy every byte once more, on the thread
/// that hashes). Wiped when dropped if it is plaintext.
pub struct Printed {
    parts: Parts,
    wipe: Wipe,
}

/// How a [`Printed`] is wiped when dropped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wipe {
    /// Not at all: ciphertext.
    No,
    /// Each buffer's whole allocation.
    Whole,
    /// Each buffer's bytes: buffers whose spare capacity never held
    /// plaintext (see [`wipe_written`]).
    Written,
}

impl Printed {
    /// Write the whole file to `out`.
    pub fn write_to(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        self.parts.slices().try_for_each(|part| out.write_all(part))
    }

    /// The whole file in one buffer (a copy; the caller wipes it if it
    /// is plaintext).
    pub fn to_vec(&self) -> Vec<u8> {
        self.parts.slices().collect::<Vec<_>>().concat()
    }
}

impl Drop for Printed {
    fn drop(&mut self) {
        match self.wipe {
            Wipe::No => {}
            Wipe::Whole => self.parts.bufs.iter_mut().for_each(wipe_vec),
            Wipe::Written => self.parts.bufs.iter_mut().for_each(wipe_written),
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
                Parts::whole(p.finish())
            }
            Printer::Json(mut p) => {
                let sops = Item::new("sops", metadata.to_value(NilList::Null));
                // Metadata is strings, numbers and lists: always printable.
                let printed = p.push(std::slice::from_ref(&sops));
                debug_assert!(printed.is_ok());
                Parts::whole(p.finish())
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
                parts.push_buf(out);
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
    while let Some(nl) = crate::find::byte(b'\n', &buf[pos..]) {
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

/// The smallest piece [`tapered`] cuts.
const MIN_PIECE_BYTES: usize = 16 * 1024;

/// How far past its start the next piece of an input held in memory is
/// cut, with `remaining` bytes left: `piece_bytes` until the last few,
/// which shrink to a quarter of what is left. The threads then run out of
/// work at about the same time, and the last piece, whose MAC input is
/// hashed after everything else is done, is small.
fn tapered(remaining: usize, piece_bytes: usize) -> usize {
    (remaining / 4).clamp(MIN_PIECE_BYTES.min(piece_bytes), piece_bytes)
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
        let min_cut = start.saturating_add(tapered(input.len() - start, self.piece_bytes));
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

/// Bytes read at a time around a cut of [`FileCuts`].
const PROBE_BYTES: usize = 4096;

/// Cuts a plaintext dotenv file of known length as [`SliceCuts`] cuts a
/// mapped one, reading only the bytes where it looks for each cut (after
/// any line): each worker then reads its piece itself ([`work_on_read`]),
/// beside the others. A mapping cost more: populating it (about 0.1 ms for
/// 1 MB here) and unmapping it (0.04 ms) run on one thread before and
/// after the pieces, and the pieces were copied out of it anyway. (YAML's
/// cuts look at the line before them, JSON's at every byte before them:
/// those are mapped.)
struct FileCuts<'f> {
    file: &'f std::fs::File,
    len: usize,
    piece_bytes: usize,
    start: usize,
    /// The bytes read past a cut's earliest place (plaintext).
    probe: WipedBytes,
}

impl FileCuts<'_> {
    /// The next piece's range, `None` at the end of the input.
    fn next_piece(&mut self) -> std::io::Result<Option<Range<usize>>> {
        let start = self.start;
        if start >= self.len {
            return Ok(None);
        }
        let min_cut = start.saturating_add(tapered(self.len - start, self.piece_bytes));
        let mut cut = None;
        let mut scanned = 0;
        wipe_written(&mut self.probe);
        while cut.is_none() {
            let at = min_cut + self.probe.len();
            if at >= self.len {
                break;
            }
            read_at_end(self.file, &mut self.probe, PROBE_BYTES.min(self.len - at), at as u64)?;
            let (found, stopped) = line_cut(&self.probe, scanned, true);
            cut = found.map(|c| min_cut + c);
            scanned = stopped;
        }
        // No cut: the rest is the last piece.
        let end = cut.unwrap_or(self.len);
        self.start = end;
        Ok(Some(start..end))
    }
}

/// Append `n` bytes of `file` from `offset` to `buf` (which may hold
/// plaintext: grown with [`reserve_wiped`]). A file that ends early is an
/// error.
fn read_at_end(file: &std::fs::File, buf: &mut Vec<u8>, n: usize, offset: u64) -> std::io::Result<()> {
    reserve_wiped(buf, n);
    let end = buf.len() + n;
    let mut offset = offset;
    while buf.len() < end {
        match read_into_spare(file, buf, end - buf.len(), offset) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(read) => offset += read as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One `pread` of up to `n` bytes at `offset` into the spare room of `buf`
/// (at least `n`), with no zeroing of that room first; the bytes read are
/// appended.
#[cfg(unix)]
fn read_into_spare(file: &std::fs::File, buf: &mut Vec<u8>, n: usize, offset: u64) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    let spare = buf.spare_capacity_mut();
    let n = n.min(spare.len());
    // Fault fresh room in from user space first: a fault taken inside the
    // kernel's copy waits for the address-space lock, which other threads'
    // `mmap`, `munmap` and `madvise` calls (a worker's first output buffer,
    // a thread's heap) hold, where a fault from user space takes a lock
    // on its one mapping. Without this a medium dotenv encrypt spent
    // longer in its pieces than with a mapped input, in fewer CPU cycles.
    for page in spare[..n].iter_mut().step_by(4096) {
        page.write(0);
    }
    let offset = libc::off_t::try_from(offset).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    // SAFETY: the kernel writes at most `n` bytes at the start of the spare
    // room, which has room for them; nothing reads it before `set_len`.
    let read = unsafe { libc::pread(file.as_raw_fd(), spare.as_mut_ptr().cast(), n, offset) };
    let read = usize::try_from(read).map_err(|_| std::io::Error::last_os_error())?;
    // SAFETY: `read` (at most `n`) bytes past the length were just written.
    unsafe { buf.set_len(buf.len() + read) };
    Ok(read)
}

#[cfg(not(unix))]
fn read_into_spare(_: &std::fs::File, _: &mut Vec<u8>, _: usize, _: u64) -> std::io::Result<usize> {
    // The callers then read the whole file instead.
    Err(std::io::ErrorKind::Unsupported.into())
}

/// A piece parsed and encrypted (or decrypted) by a worker.
struct Done {
    items: Branch,
    mac_input: WipedBytes,
    warnings: Vec<String>,
    /// JSON: the piece already printed by the worker (then `items` is
    /// empty), see [`print_piece`]. Plaintext on decrypt, where [`Plain`]
    /// wipes it; ciphertext and clear values on encrypt.
    printed: Option<Vec<u8>>,
    /// dotenv: where in which [`Slots`] buffer the worker printed the
    /// piece ([`LineCrypt`]; `items` is empty).
    span: Option<(usize, Range<usize>)>,
}

/// The buffers the workers print dotenv pieces into, one each: a worker
/// appends piece after piece to its own, so the output takes one
/// allocation per worker (on huge pages if large, see [`crate::bigbuf`])
/// instead of a fresh one per piece: about 100 page faults fewer for a
/// 1 MB dotenv file either way. Plaintext on decrypt:
/// what was written is wiped when they drop, unless handed on.
struct Slots {
    bufs: Vec<Mutex<Vec<u8>>>,
    /// Room a buffer is given when first used (by the worker, so that a
    /// worker given no piece takes none).
    room: usize,
    plaintext: bool,
}

impl Slots {
    /// `count` buffers (none where the pieces are not printed into them).
    fn new(count: usize, room: usize, plaintext: bool) -> Slots {
        Slots {
            bufs: (0..count).map(|_| Mutex::new(Vec::new())).collect(),
            room,
            plaintext,
        }
    }

    /// Append a piece to buffer `slot` with `print`; the range it took and
    /// what `print` returned. `None` when `print` fails (what it appended
    /// is cut back, wiped first if plaintext) or there is no such buffer.
    fn print<T>(&self, slot: usize, print: impl FnOnce(&mut Vec<u8>) -> Option<T>) -> Option<(Range<usize>, T)> {
        let mut buf = self.bufs.get(slot)?.lock().unwrap_or_else(PoisonError::into_inner);
        if buf.capacity() == 0 {
            *buf = crate::bigbuf::with_capacity(self.room);
        }
        let start = buf.len();
        match print(&mut buf) {
            Some(value) => Some((start..buf.len(), value)),
            None => {
                if self.plaintext {
                    buf[start..].zeroize();
                }
                buf.truncate(start);
                None
            }
        }
    }

    /// The buffers, handed on (their new owner wipes them if need be).
    fn into_bufs(mut self) -> Vec<Vec<u8>> {
        let take = |buf: &mut Mutex<Vec<u8>>| std::mem::take(buf.get_mut().unwrap_or_else(PoisonError::into_inner));
        self.bufs.iter_mut().map(take).collect()
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        if self.plaintext {
            for buf in &mut self.bufs {
                // Only ever appended to or cut back wiped: nothing beyond
                // the written bytes.
                wipe_written(buf.get_mut().unwrap_or_else(PoisonError::into_inner));
            }
        }
    }
}

/// JSON pieces are printed by the thread that encrypted them, beside the
/// other threads: the pieces are then only hashed and copied in document
/// order, one at a time (dotenv pieces are printed by [`LineCrypt`]). A piece
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
    /// YAML: printed in order by [`Assembler::accept`] (the emitter's state
    /// runs across pieces); dotenv: [`LineCrypt`] printed the piece already.
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
    /// Where dotenv pieces are printed.
    slots: &'a Slots,
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

/// A dotenv piece encrypted straight from its lines ([`dotenv_lines`])
/// into the buffer of worker `slot`.
fn encrypt_dotenv(piece: &[u8], job: &Job<'_>, slot: usize) -> Option<Done> {
    let mut mac_input = mac_input_buffer(piece.len());
    // Ciphertext and values left in clear: nothing the output does not show.
    let (range, ()) = job
        .slots
        .print(slot, |out| job.lines().encrypt(piece, out, &mut mac_input))?;
    Some(Done {
        items: Branch::default(),
        mac_input,
        warnings: Vec::new(),
        printed: None,
        span: Some((slot, range)),
    })
}

/// Encrypt (and print, but for YAML) one piece (plaintext, which its
/// owner wipes) on worker `slot`.
fn work(piece: &[u8], job: &Job<'_>, slot: usize) -> Option<Done> {
    match job.kind {
        Kind::Dotenv => encrypt_dotenv(piece, job, slot),
        kind => encrypt_tree(piece, kind, job),
    }
}

/// Wipes the bytes of a buffer only ever appended to (so its spare
/// capacity holds no plaintext) when dropped: on return and on a panic.
struct WipeWritten<'a>(&'a mut Vec<u8>);

impl Drop for WipeWritten<'_> {
    fn drop(&mut self) {
        wipe_written(self.0);
    }
}

thread_local! {
    /// A thread's copy of the plaintext piece it encrypts (mapped input),
    /// reused from piece to piece and wiped after each.
    static PLAIN_PIECE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Encrypt one piece of a mapped input, copied out of it first (see
/// [`decrypt`] on why) into this thread's buffer.
fn work_on_copy(input: &[u8], piece: SlicePiece, piece_bytes: usize, job: &Job<'_>, slot: usize) -> Option<Done> {
    PLAIN_PIECE.with_borrow_mut(|buf| {
        let copy = WipeWritten(buf);
        let several = input.len() > piece_bytes;
        copy_piece(copy.0, input, &piece, piece_bytes, several);
        work(copy.0, job, slot)
    })
}

/// Encrypt the piece `range` of `file`, read into this thread's buffer
/// (room as [`piece_room`] gives). A read that fails or comes up short (the
/// file shrank) gives up the run; the caller reads the file again.
fn work_on_read(
    file: &std::fs::File,
    range: Range<usize>,
    several: bool,
    piece_bytes: usize,
    job: &Job<'_>,
    slot: usize,
) -> Option<Done> {
    PLAIN_PIECE.with_borrow_mut(|buf| {
        let copy = WipeWritten(buf);
        copy.0.clear();
        reserve_wiped(copy.0, piece_room(range.len(), piece_bytes, several));
        read_at_end(file, copy.0, range.len(), range.start as u64).ok()?;
        work(copy.0, job, slot)
    })
}

/// Room for a piece of `len` bytes in a worker's reused buffer and, in a
/// file of `several` pieces, some to spare for the next ones (cut a little
/// past `piece_bytes`): growing it piece by piece paid for a copy and
/// fresh pages each time.
fn piece_room(len: usize, piece_bytes: usize, several: bool) -> usize {
    if several {
        len.max(piece_bytes + piece_bytes / 4)
    } else {
        len
    }
}

/// Copy `piece` of `input`, with the braces it needs, into a worker's
/// reused buffer `buf` (emptied first; room as [`piece_room`] gives).
fn copy_piece(buf: &mut Vec<u8>, input: &[u8], piece: &SlicePiece, piece_bytes: usize, several: bool) {
    buf.clear();
    buf.reserve(piece_room(piece.range.len() + 2, piece_bytes, several));
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
    let mut mac_input = mac_input_buffer(piece.len());
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
        span: None,
    };
    print_piece(&mut done, job.print, piece.len().saturating_mul(3), false)?;
    Some(done)
}

/// The MAC's SHA-512 over the pieces' MAC input, in order: by the thread
/// that takes each piece on ([`Assembler::accept`]), or on a thread of its
/// own where that thread also prints (YAML), so that the hashing, and
/// freeing each printed tree, run beside the printing instead of after it.
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
            for (mac_input, mut tree) in received {
                hash.update(&mac_input);
                recycle_mac_input(mac_input);
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
                recycle_mac_input(std::mem::take(mac_input));
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

/// MAC input buffers, wiped, for the next pieces. A piece's MAC input is
/// hashed, and was freed, on another thread than the one that filled it;
/// mimalloc (the static build's allocator) gives a block freed by another
/// thread back to its heap only later, so each piece took fresh pages:
/// about 100 of a medium dotenv encrypt's 440 page faults.
static SPARE_MAC_INPUTS: Spares = Spares::new(4);

/// Wiped buffers kept for reuse, at most `kept` of them (about as many as
/// there are pieces in flight; each is one piece's size).
struct Spares {
    bufs: Mutex<Vec<WipedBytes>>,
    kept: usize,
}

impl Spares {
    const fn new(kept: usize) -> Spares {
        Spares {
            bufs: Mutex::new(Vec::new()),
            kept,
        }
    }

    /// An empty buffer with room for `bytes`.
    fn take(&self, bytes: usize) -> WipedBytes {
        let spare = self.bufs.lock().ok().and_then(|mut bufs| bufs.pop());
        match spare {
            Some(mut buf) => {
                // Empty, so growing it copies nothing.
                reserve_wiped(&mut buf.0, bytes);
                buf
            }
            None => WipedBytes::with_capacity(bytes),
        }
    }

    /// Wipe `buf` and keep it, or free it if enough are kept.
    fn give(&self, mut buf: WipedBytes) {
        if buf.0.capacity() == 0 {
            return;
        }
        wipe_vec(&mut buf.0);
        if let Ok(mut bufs) = self.bufs.lock() {
            if bufs.len() < self.kept {
                bufs.push(buf);
                return;
            }
        }
        // Wiped already: freed without a second pass.
        drop(buf.into_unwiped());
    }
}

/// An empty MAC input buffer with room for `bytes`.
fn mac_input_buffer(bytes: usize) -> WipedBytes {
    SPARE_MAC_INPUTS.take(bytes)
}

/// Wipe a hashed piece's MAC input and keep it for another piece.
fn recycle_mac_input(buf: WipedBytes) {
    SPARE_MAC_INPUTS.give(buf);
}

/// Where the pieces go in document order, one at a time ([`run_pieces`]).
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
    /// Printing in `format` into a buffer of about `output_hint` bytes
    /// (dotenv: the pieces stay in the workers' `slots`); `plaintext_trees`
    /// on decrypt (the trees are wiped once printed).
    fn new(
        format: PieceFormat<'_>,
        output_hint: usize,
        slots: &Slots,
        mac_only_encrypted: bool,
        plaintext_trees: bool,
    ) -> Assembler {
        let yaml = matches!(format, PieceFormat::Yaml { .. });
        let top_keys = yaml.then(HashSet::new);
        let mut printer = Printer::new(format, slots.bufs.len());
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

    /// What was printed, taken out with the workers' buffers it refers to
    /// (the assembler and the slots no longer wipe them).
    fn take_printer(&mut self, slots: Slots) -> Printer {
        let mut printer = std::mem::replace(&mut self.output.printer, Printer::Dotenv(Parts::default()));
        if let Printer::Dotenv(parts) = &mut printer {
            parts.fill_slots(slots);
        }
        printer
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
        let printed = match (&mut done.printed, &done.span, &mut self.output.printer) {
            (Some(printed), _, Printer::Json(p)) => {
                p.push_printed(printed);
                true
            }
            (None, Some((slot, range)), Printer::Dotenv(parts)) => {
                parts.push_span(*slot, range.clone());
                true
            }
            _ => self.output.printer.push(&done.items.0),
        };
        // The printed tree goes with the MAC input, to be freed (and wiped,
        // if plaintext) by the hasher.
        self.hash.update(&mut done.mac_input, std::mem::take(&mut done.items));
        printed
    }
}

/// How many threads [`run_pieces`] works on at most, the calling thread
/// included.
fn worker_threads() -> usize {
    crate::cpus::available().min(MAX_THREADS)
}

/// Where the pieces come from, and how many were taken.
struct Feed<N> {
    next_piece: N,
    taken: usize,
    /// No more pieces: the end, a read error or a stop.
    over: bool,
    /// Threads waiting for room in the window.
    waiting: usize,
}

/// What the threads of [`run_pieces`] share.
struct Run<N, A, D> {
    feed: Mutex<Feed<N>>,
    /// Signalled when pieces were accepted (room in the window) or the run
    /// is over.
    room: Condvar,
    /// Pieces done but not yet accepted, by index.
    arrived: Mutex<BTreeMap<usize, Option<D>>>,
    /// The `accept` function; whoever holds it takes the pieces in order.
    accept: Mutex<A>,
    /// How many pieces were accepted.
    accepted: AtomicUsize,
    /// A piece could not be read, failed or was refused.
    failed: AtomicBool,
    /// Pieces taken but not accepted, at most.
    window: usize,
    /// See [`Window::room_each_piece`].
    room_each_piece: bool,
}

/// How far the threads of [`run_pieces`] may run ahead of the pieces taken
/// on in order.
#[derive(Clone, Copy)]
struct Window {
    /// Pieces taken but not yet accepted, beyond one per thread.
    ahead: usize,
    /// Whether each piece taken on makes room at once, or only once the
    /// thread taking pieces on has taken on every piece that waits. At
    /// once lets the other threads go on while a slow `accept` (the MAC's
    /// hashing, for dotenv) works through several: a medium dotenv
    /// encrypt spent 0.2-1.5 ms waiting at the window. Where a piece in
    /// flight holds a tree (YAML, JSON), room at once puts more of them in
    /// memory: large YAML encrypt peaked at 36.9 MiB against 34 MiB, near
    /// its 4x limit, and took longer (x 1.07).
    room_each_piece: bool,
}

impl Window {
    /// Pieces in flight hold trees: room after each run.
    const fn tight(ahead: usize) -> Window {
        Window {
            ahead,
            room_each_piece: false,
        }
    }

    /// Pieces in flight hold little (dotenv: their output is in a slot
    /// either way): room after each piece.
    const fn loose(ahead: usize) -> Window {
        Window {
            ahead,
            room_each_piece: true,
        }
    }
}

impl<N, A, D> Run<N, A, D> {
    fn stop(&self) {
        self.failed.store(true, Ordering::Relaxed);
        self.end_feed();
    }

    /// No more pieces are taken; wake whoever waits for room.
    fn end_feed(&self) {
        let mut feed = self.feed.lock().unwrap_or_else(PoisonError::into_inner);
        feed.over = true;
        if feed.waiting > 0 {
            self.room.notify_all();
        }
    }

    /// Take the next piece, once the window has room for it; `None` when
    /// the run is over.
    fn take<P>(&self) -> Option<(usize, P)>
    where
        N: FnMut() -> std::io::Result<Option<P>>,
    {
        let mut feed = self.feed.lock().unwrap_or_else(PoisonError::into_inner);
        while !feed.over && feed.taken - self.accepted.load(Ordering::Acquire) >= self.window {
            feed.waiting += 1;
            feed = self.room.wait(feed).unwrap_or_else(PoisonError::into_inner);
            feed.waiting -= 1;
        }
        if feed.over {
            return None;
        }
        match (feed.next_piece)() {
            Ok(Some(piece)) => {
                feed.taken += 1;
                Some((feed.taken - 1, piece))
            }
            Ok(None) => {
                feed.over = true;
                if feed.waiting > 0 {
                    self.room.notify_all();
                }
                None
            }
            Err(_) => {
                drop(feed);
                self.stop();
                None
            }
        }
    }

    /// Pieces were taken on: wake whoever waits for room.
    fn wake_waiting(&self) {
        let feed = self.feed.lock().unwrap_or_else(PoisonError::into_inner);
        if feed.waiting > 0 {
            self.room.notify_all();
        }
    }

    /// Hand the pieces that are next in order to `accept`, unless another
    /// thread is doing so (it then takes these too).
    fn accept_in_order(&self)
    where
        A: FnMut(D) -> bool,
    {
        loop {
            let Ok(mut accept) = self.accept.try_lock() else {
                return;
            };
            let mut accepted = self.accepted.load(Ordering::Relaxed);
            loop {
                let next = self
                    .arrived
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&accepted);
                let Some(done) = next else { break };
                accepted += 1;
                if self.failed.load(Ordering::Relaxed) || !done.is_some_and(&mut *accept) {
                    self.stop();
                    break;
                }
                if self.room_each_piece {
                    self.accepted.store(accepted, Ordering::Release);
                    self.wake_waiting();
                }
            }
            let before = self.accepted.swap(accepted, Ordering::AcqRel);
            drop(accept);
            if accepted > before {
                self.wake_waiting();
            }
            // A piece that arrived while this thread held `accept` was left
            // to it by a thread that could not take `accept`.
            let pending = self
                .arrived
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains_key(&accepted);
            if !pending || self.failed.load(Ordering::Relaxed) {
                return;
            }
        }
    }

    /// Take, work on and accept pieces until the run is over.
    fn work<P>(&self, slot: usize, work: &impl Fn(usize, P) -> Option<D>, discard: &impl Fn(P))
    where
        N: FnMut() -> std::io::Result<Option<P>>,
        A: FnMut(D) -> bool,
    {
        let _stop = StopOnPanic(self);
        while let Some((index, piece)) = self.take() {
            if self.failed.load(Ordering::Relaxed) {
                discard(piece);
                break;
            }
            let done = work(slot, piece);
            self.arrived
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(index, done);
            self.accept_in_order();
        }
    }
}

/// Stops a run when its thread unwinds (a bug): the other threads must
/// not wait for room that the pieces it held would have made.
struct StopOnPanic<'a, N, A, D>(&'a Run<N, A, D>);

impl<N, A, D> Drop for StopOnPanic<'_, N, A, D> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.stop();
        }
    }
}

/// The core the calling thread runs on.
#[cfg(target_os = "linux")]
fn current_core() -> Option<usize> {
    // SAFETY: no arguments; returns a core number or -1.
    usize::try_from(unsafe { libc::sched_getcpu() }).ok()
}

#[cfg(not(target_os = "linux"))]
fn current_core() -> Option<usize> {
    None
}

/// Move the calling thread (just started) to another core than `home`
/// (its starter's) if it runs on `home` and may run elsewhere. Linux may
/// queue a new thread on its starter's core, and with both threads busy
/// from then on, it moved one to the idle core only after milliseconds
/// (here up to 4 ms, in about one run out of five, the two threads taking
/// turns on one core meanwhile); having the starter wait for the thread
/// instead made Linux put the starter on the thread's core when it woke.
/// Allowing every core but `home` moves the thread at once; allowing them
/// all again leaves it where it now is.
#[cfg(target_os = "linux")]
fn leave_core(home: usize) {
    if current_core() != Some(home) || home >= libc::CPU_SETSIZE as usize {
        return;
    }
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `cpu_set_t` is a plain bit array (all zeros is the empty
    // set); the calls read or write exactly `size` bytes of the sets
    // passed, for the calling thread (pid 0) only.
    unsafe {
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size, &mut allowed) != 0 {
            return;
        }
        let mut elsewhere = allowed;
        libc::CPU_CLR(home, &mut elsewhere);
        if libc::CPU_COUNT(&elsewhere) == 0 {
            return;
        }
        if libc::sched_setaffinity(0, size, &elsewhere) == 0 {
            libc::sched_setaffinity(0, size, &allowed);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn leave_core(_home: usize) {}

/// Runs `work` over the pieces `next_piece` yields on up to
/// [`worker_threads`] threads, the calling thread one of them, and hands
/// the results to `accept` in order, with at most `window.ahead` pieces
/// more than threads taken but not yet accepted. Whichever thread finishes the piece
/// that is next in order accepts it (and any after it that are done): so
/// the threads stay as many as the cores, with no thread that only waits
/// and is then woken, and no channel between them. `work` is told which
/// thread runs it, from 0 up. Returns the number of pieces, or `None` when
/// a piece could not be read, failed or was refused (a piece taken after
/// that goes to `discard`). `beside` runs once on the calling thread,
/// after it started the others and before it takes a piece itself.
fn run_pieces<P: Send, D: Send>(
    window: Window,
    next_piece: impl FnMut() -> std::io::Result<Option<P>> + Send,
    work: &(impl Fn(usize, P) -> Option<D> + Sync),
    discard: &(impl Fn(P) + Sync),
    accept: impl FnMut(D) -> bool + Send,
    beside: &mut dyn FnMut(),
) -> Option<usize> {
    run_pieces_on(worker_threads(), window, next_piece, work, discard, accept, beside)
}

/// [`run_pieces`] on `threads` threads (at least one: the caller).
fn run_pieces_on<P: Send, D: Send>(
    threads: usize,
    window: Window,
    next_piece: impl FnMut() -> std::io::Result<Option<P>> + Send,
    work: &(impl Fn(usize, P) -> Option<D> + Sync),
    discard: &(impl Fn(P) + Sync),
    accept: impl FnMut(D) -> bool + Send,
    beside: &mut dyn FnMut(),
) -> Option<usize> {
    let threads = threads.max(1);
    let run = Run {
        feed: Mutex::new(Feed {
            next_piece,
            taken: 0,
            over: false,
            waiting: 0,
        }),
        room: Condvar::new(),
        arrived: Mutex::new(BTreeMap::new()),
        accept: Mutex::new(accept),
        accepted: AtomicUsize::new(0),
        failed: AtomicBool::new(false),
        window: threads + window.ahead,
        room_each_piece: window.room_each_piece,
    };
    std::thread::scope(|s| {
        let mut spawned = 0;
        let home = current_core();
        for slot in 1..threads {
            let run = &run;
            let worker = move || {
                if let Some(home) = home {
                    leave_core(home);
                }
                run.work(slot, work, discard);
            };
            // A thread that cannot be started leaves its share to the others.
            spawned += usize::from(std::thread::Builder::new().spawn_scoped(s, worker).is_ok());
        }
        if spawned > 0 {
            // A thread queued on this core gets to run, and so to move.
            std::thread::yield_now();
        }
        beside();
        run.work(0, work, discard);
    });
    // Every thread is done: whatever is left in order is accepted here.
    run.accept_in_order();
    let taken = run.feed.into_inner().unwrap_or_else(PoisonError::into_inner).taken;
    let all = !run.failed.load(Ordering::Relaxed) && run.accepted.load(Ordering::Relaxed) == taken;
    all.then_some(taken)
}

/// Encrypt a single-document YAML file or a JSON file read from `reader`,
/// or `None` when it does not go piecewise (see the module comment).
/// `input_len` (the file's size, if known) sizes the output buffer.
pub fn encrypt<R: Read + Send>(
    reader: R,
    input_len: u64,
    format: PieceFormat<'_>,
    keys: Keys<'_>,
    beside: &mut dyn FnMut(),
) -> Option<EncryptedPieces> {
    encrypt_in(reader, PIECE_BYTES, output_hint(input_len), format, keys, beside)
}

/// [`encrypt`] for an input held in memory: a mapped file, whose pieces
/// the threads copy out one by one instead of reading each into a buffer
/// of its own. (A mapping's pages count towards the
/// process's memory, so the caller maps only files of moderate size.)
pub fn encrypt_mapped(
    input: &[u8],
    format: PieceFormat<'_>,
    keys: Keys<'_>,
    beside: &mut dyn FnMut(),
) -> Option<EncryptedPieces> {
    encrypt_mapped_in(input, PIECE_BYTES, format, keys, beside)
}

/// [`encrypt`] for a dotenv file of `len` bytes, of moderate size, whose
/// pieces the threads read themselves (see [`FileCuts`]); `None` for other
/// formats. The caller reads the file again if this gives up.
pub fn encrypt_file(
    file: &std::fs::File,
    len: usize,
    format: PieceFormat<'_>,
    keys: Keys<'_>,
    beside: &mut dyn FnMut(),
) -> Option<EncryptedPieces> {
    encrypt_file_in(file, len, PIECE_BYTES, format, keys, beside)
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

fn encrypt_in<R: Read + Send>(
    reader: R,
    piece_bytes: usize,
    output_hint: usize,
    format: PieceFormat<'_>,
    keys: Keys<'_>,
    beside: &mut dyn FnMut(),
) -> Option<EncryptedPieces> {
    let mut reader = PieceReader::new(reader, cutter_for(format.kind()), piece_bytes);
    // Each piece is wiped as it drops, encrypted or not.
    let work = |slot, piece: WipedBytes, job: &Job<'_>| work(&piece, job, slot);
    encrypt_pieces(output_hint, format, keys, || reader.next_piece(), &work, &drop, beside)
}

fn encrypt_mapped_in(
    input: &[u8],
    piece_bytes: usize,
    format: PieceFormat<'_>,
    keys: Keys<'_>,
    beside: &mut dyn FnMut(),
) -> Option<EncryptedPieces> {
    let mut cuts = SliceCuts {
        input,
        cutter: cutter_for(format.kind()),
        piece_bytes,
        start: 0,
    };
    let hint = output_hint(input.len() as u64);
    let work = |slot, piece: SlicePiece, job: &Job<'_>| work_on_copy(input, piece, piece_bytes, job, slot);
    encrypt_pieces(hint, format, keys, || Ok(cuts.next_piece()), &work, &|_| {}, beside)
}

fn encrypt_file_in(
    file: &std::fs::File,
    len: usize,
    piece_bytes: usize,
    format: PieceFormat<'_>,
    keys: Keys<'_>,
    beside: &mut dyn FnMut(),
) -> Option<EncryptedPieces> {
    if format.kind() != Kind::Dotenv {
        return None;
    }
    let mut cuts = FileCuts {
        file,
        len,
        piece_bytes,
        start: 0,
        probe: WipedBytes::default(),
    };
    let several = len > piece_bytes;
    let work = |slot, range: Range<usize>, job: &Job<'_>| work_on_read(file, range, several, piece_bytes, job, slot);
    encrypt_pieces(
        output_hint(len as u64),
        format,
        keys,
        || cuts.next_piece(),
        &work,
        &|_| {},
        beside,
    )
}

/// How many [`Slots`] the threads print into: one each for dotenv, none
/// for the formats whose pieces are put together in one buffer.
fn slot_count(kind: Kind) -> usize {
    if kind == Kind::Dotenv {
        worker_threads()
    } else {
        0
    }
}

/// The cipher, the selector and whether only encrypted values are MACed.
#[derive(Clone, Copy)]
pub struct Keys<'a> {
    pub cipher: &'a ValueCipher,
    pub selector: &'a Selector,
    pub mac_only_encrypted: bool,
}

impl<'a> Keys<'a> {
    pub fn new(cipher: &'a ValueCipher, selector: &'a Selector, mac_only_encrypted: bool) -> Keys<'a> {
        Keys {
            cipher,
            selector,
            mac_only_encrypted,
        }
    }
}

/// Encrypt the pieces `next_piece` yields with `work` on worker threads
/// and put them together in order.
fn encrypt_pieces<P: Send>(
    output_hint: usize,
    format: PieceFormat<'_>,
    keys: Keys<'_>,
    next_piece: impl FnMut() -> std::io::Result<Option<P>> + Send,
    work: &(impl Fn(usize, P, &Job<'_>) -> Option<Done> + Sync),
    discard: &(impl Fn(P) + Sync),
    beside: &mut dyn FnMut(),
) -> Option<EncryptedPieces> {
    let Keys {
        cipher,
        selector,
        mac_only_encrypted,
    } = keys;
    if selector.uses_comments() {
        // Comment selectors carry state from one key to the next.
        return None;
    }
    let kind = format.kind();
    // Any worker may end up with the whole output.
    let slots = Slots::new(slot_count(kind), output_hint, false);
    let mut asm = Assembler::new(format, output_hint, &slots, mac_only_encrypted, false);
    let print = WorkerPrint::of(&asm.output.printer);
    let job = Job {
        kind,
        print: &print,
        slots: &slots,
        cipher,
        selector,
        mac_only_encrypted,
    };
    // One piece ahead: the output is held in memory, so the pieces in
    // flight are what keeps encrypt within 4× the input (about 3.7× here).
    // A dotenv piece in flight holds only its MAC input (its output is
    // in a slot either way): a few more let a thread go on while the
    // other hashes (x 0.96, 80 runs).
    let window = if kind == Kind::Dotenv {
        Window::loose(4)
    } else {
        Window::tight(1)
    };
    let work = |slot, piece| work(slot, piece, &job);
    let pieces = run_pieces(
        window,
        next_piece,
        &work,
        discard,
        |mut done: Done| asm.accept(&mut done),
        beside,
    )?;
    if pieces == 0 {
        return None;
    }
    Some(EncryptedPieces {
        printer: asm.take_printer(slots),
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
        self.kind == Kind::Dotenv && (data.starts_with(b"sops_") || crate::find::substring(data, b"\nsops_").is_some())
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
        let piece_bytes = tapered(data_end.saturating_sub(start), piece_bytes);
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
            let Some(nl) = crate::find::byte(b'\n', &input[pos..data_end]) else {
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
        let at = crate::find::substring_rev(&input[..end], b"\nsops:")? + 1;
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
        let at = crate::find::substring_rev(&input[..end], b"\"sops\"")?;
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
        let line_start = crate::find::byte_rev(b'\n', &input[..line_end]).map_or(0, |i| i + 1);
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

/// A dotenv piece decrypted straight from its lines ([`dotenv_lines`])
/// into the buffer of worker `slot` (which wipes it).
fn decrypt_dotenv(piece: &[u8], lines: &LineCrypt<'_>, slots: &Slots, slot: usize) -> Option<Plain> {
    // Plaintext is under half the encrypted size.
    let mut mac_input = mac_input_buffer(piece.len() / 2);
    let (range, warned) = slots.print(slot, |out| lines.decrypt(piece, out, &mut mac_input))?;
    Some(Plain(Done {
        items: Branch::default(),
        mac_input,
        warnings: vec![crate::crypt::POSSIBLY_UNENCRYPTED_COMMENT.to_string(); warned],
        printed: None,
        span: Some((slot, range)),
    }))
}

thread_local! {
    /// A worker's copy of the piece it decrypts.
    static PIECE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Decrypt and print one piece, copied out of the input (JSON: with its
/// braces), on worker `slot`.
fn decrypt_own_piece(
    piece: &[u8],
    kind: Kind,
    lines: &LineCrypt<'_>,
    print: &WorkerPrint,
    slots: &Slots,
    slot: usize,
) -> Option<Plain> {
    if kind == Kind::Dotenv {
        return decrypt_dotenv(piece, lines, slots, slot);
    }
    let items = load_piece(kind, piece)?;
    let mut done = Plain(Done {
        items,
        mac_input: mac_input_buffer(piece.len() / 2),
        warnings: Vec::new(),
        printed: None,
        span: None,
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
    // Plaintext is under half the encrypted size; any worker may end up
    // with all of it (dotenv: and `LineCrypt` asks for room for twice a
    // line's size at a time).
    let output_hint = file.input.len() / 2;
    let slots = Slots::new(slot_count(file.kind), output_hint + 2 * file.piece_bytes, true);
    let mut asm = Assembler::new(format, output_hint, &slots, mac_only, true);
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
    let work = |slot, (index, range): (usize, Range<usize>)| {
        PIECE.with_borrow_mut(|piece| {
            let cut = SlicePiece {
                range,
                open: json && index > 0,
                close: json,
            };
            let several = file.data_end > file.piece_bytes;
            copy_piece(piece, file.input, &cut, file.piece_bytes, several);
            decrypt_own_piece(piece, file.kind, &lines, &print, &slots, slot)
        })
    };
    // Each piece's plaintext tree is wiped when `Plain` drops, printed or not.
    let pieces = std::thread::scope(|s| {
        // sops checks encrypted JSON strictly before anything else; its
        // error is the whole-tree path's to report. (No thread for the
        // other formats: starting one costs more than a small file's work.)
        let strict = || json::validate_strict(file.input).is_ok();
        let validation = json.then(|| std::thread::Builder::new().spawn_scoped(s, strict));
        let window = if file.kind == Kind::Dotenv {
            Window::loose(3)
        } else {
            Window::tight(3)
        };
        let accept = |mut plain: Plain| asm.accept(&mut plain.0);
        let pieces = run_pieces(window, &mut next, &work, &|_| {}, accept, &mut || {});
        let valid = match validation {
            None => true,
            Some(Ok(h)) => h.join().unwrap_or(false),
            Some(Err(_)) => strict(),
        };
        pieces.filter(|_| valid)
    })?;
    let output = Printed {
        parts: asm.take_printer(slots).finish(),
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

    /// A mapped dotenv file of 1.1 MB is cut into full pieces and then
    /// shrinking ones, none under the minimum but the rest, and the pieces
    /// cover the file; small piece sizes (the tests' many-piece runs) are
    /// not tapered.
    #[test]
    fn the_last_pieces_of_a_mapped_input_shrink() {
        let line = b"KEY=0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\n";
        let input: Vec<u8> = line.iter().copied().cycle().take(line.len() * 14_000).collect();
        let mut cuts = SliceCuts {
            input: &input,
            cutter: Cutter::Lines,
            piece_bytes: PIECE_BYTES,
            start: 0,
        };
        let mut lens = Vec::new();
        while let Some(piece) = cuts.next_piece() {
            assert_eq!(piece.range.start, lens.iter().sum::<usize>());
            lens.push(piece.range.len());
        }
        assert_eq!(lens.iter().sum::<usize>(), input.len());
        let (last, body) = lens.split_last().unwrap();
        assert!(body
            .iter()
            .all(|&n| (MIN_PIECE_BYTES..PIECE_BYTES + line.len()).contains(&n)));
        assert!(*last <= MIN_PIECE_BYTES + line.len(), "{lens:?}");
        assert!(
            lens[0] >= PIECE_BYTES && lens[lens.len() - 3] < PIECE_BYTES / 2,
            "{lens:?}"
        );
        assert!(lens.windows(2).skip(1).all(|w| w[1] <= w[0]), "{lens:?}");
        for piece_bytes in [64, 4096] {
            assert_eq!(tapered(100, piece_bytes), piece_bytes);
            assert_eq!(tapered(1 << 20, piece_bytes), piece_bytes);
        }
    }

    /// Cut ranges of dotenv `input` by [`FileCuts`] (from a file) and by
    /// [`SliceCuts`] (held in memory).
    fn file_and_slice_cuts(input: &[u8], piece_bytes: usize) -> (Vec<Range<usize>>, Vec<Range<usize>>) {
        let mut file = tempfile::tempfile().expect("temporary file");
        std::io::Write::write_all(&mut file, input).expect("write temporary file");
        let mut from_file = FileCuts {
            file: &file,
            len: input.len(),
            piece_bytes,
            start: 0,
            probe: WipedBytes::default(),
        };
        let mut held = SliceCuts {
            input,
            cutter: Cutter::Lines,
            piece_bytes,
            start: 0,
        };
        let mut file_cuts = Vec::new();
        while let Some(range) = from_file.next_piece().expect("read") {
            file_cuts.push(range);
        }
        let mut slice_cuts = Vec::new();
        while let Some(piece) = held.next_piece() {
            slice_cuts.push(piece.range);
        }
        (file_cuts, slice_cuts)
    }

    /// A dotenv file's pieces, read only around each cut, are those of the
    /// same bytes held in memory: lines longer than a probe read, a file
    /// without a final newline.
    #[test]
    fn a_file_is_cut_where_its_bytes_in_memory_are() {
        let line = b"KEY=0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\n";
        let lines: Vec<u8> = line.iter().copied().cycle().take(line.len() * 14_000).collect();
        let mut long = Vec::new();
        for n in [
            10,
            3 * PROBE_BYTES,
            5,
            PROBE_BYTES - 1,
            PROBE_BYTES,
            7 * PROBE_BYTES + 3,
            1,
        ] {
            long.extend_from_slice(b"K=");
            long.extend(std::iter::repeat_n(b'v', n));
            long.push(b'\n');
        }
        let mut unterminated = long.clone();
        unterminated.extend_from_slice(b"LAST=no newline");
        for input in [&lines, &long, &unterminated] {
            for piece_bytes in [1, 40, 4000, PIECE_BYTES] {
                let (file, held) = file_and_slice_cuts(input, piece_bytes);
                assert_eq!(file, held, "dotenv cuts, pieces of {piece_bytes}");
                assert!(file.len() > 1 || piece_bytes == PIECE_BYTES);
            }
        }
    }

    #[test]
    fn spare_buffers_come_back_wiped_and_empty() {
        let spares = Spares::new(2);
        let mut buf = spares.take(100);
        buf.0.extend_from_slice(&[0xA5; 100]);
        let ptr = buf.0.as_ptr();
        spares.give(buf);
        let again = spares.take(50);
        assert_eq!(again.0.as_ptr(), ptr, "the buffer given back is taken again");
        assert!(again.0.is_empty());
        assert!(again.0.capacity() >= 100);
        // SAFETY: `give` wrote zeros over the whole allocation, so all of
        // its capacity is initialised.
        let old = unsafe { std::slice::from_raw_parts(again.0.as_ptr(), 100) };
        assert!(old.iter().all(|&b| b == 0), "the old bytes are wiped");
        // Room is made when a kept buffer is too small.
        spares.give(again);
        assert!(spares.take(4096).0.capacity() >= 4096);
        // No more than `kept` are kept.
        for _ in 0..3 {
            spares.give(WipedBytes::with_capacity(8));
        }
        assert_eq!(spares.bufs.lock().expect("not poisoned").len(), 2);
    }

    /// A file shorter than its length when the run started (it shrank) is
    /// given up, for the caller to read again; YAML and JSON are mapped.
    #[test]
    fn a_file_read_short_is_given_up() {
        let key = DataKey::generate();
        let cipher = ValueCipher::new(&key);
        let selector = SelectorSpec::default().compile().expect("selector");
        let input = b"A=1\nB=2\nC=3\n".repeat(100);
        let mut file = tempfile::tempfile().expect("temporary file");
        std::io::Write::write_all(&mut file, &input).expect("write temporary file");
        let run =
            |len, format| encrypt_file_in(&file, len, 64, format, Keys::new(&cipher, &selector, false), &mut || {});
        assert!(run(input.len(), PieceFormat::Dotenv).is_some());
        assert!(run(input.len() + 1, PieceFormat::Dotenv).is_none());
        assert!(run(input.len() + 1000, PieceFormat::Dotenv).is_none());
        let store = JsonStore::default();
        assert!(run(input.len(), PieceFormat::Json(&store)).is_none());
        assert!(run(input.len(), PieceFormat::Yaml { indent: 4 }).is_none());
    }

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

    fn yaml_in<R: Read + Send>(
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
            Keys::new(cipher, selector, false),
            &mut || {},
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
            Keys::new(&cipher, &selector, mac_only),
            &mut || {},
        );
        // The same input held in memory (a mapped file) gives the same.
        let held = encrypt_mapped_in(
            input,
            piece_bytes,
            piece_format(format, &store),
            Keys::new(&cipher, &selector, mac_only),
            &mut || {},
        );
        let text = String::from_utf8_lossy(input);
        assert_eq!(
            read.is_some(),
            held.is_some(),
            "read and held input differ for {text:?}"
        );
        // The same dotenv input in a file whose pieces the threads read
        // gives the same too.
        let mut file = tempfile::tempfile().expect("temporary file");
        std::io::Write::write_all(&mut file, input).expect("write temporary file");
        let from_file = encrypt_file_in(
            &file,
            input.len(),
            piece_bytes,
            piece_format(format, &store),
            Keys::new(&cipher, &selector, mac_only),
            &mut || {},
        );
        if format != Format::Dotenv {
            assert!(from_file.is_none(), "YAML and JSON are mapped, not read piece by piece");
        } else {
            assert_eq!(
                from_file.is_some(),
                read.is_some(),
                "read and file input differ for {text:?}"
            );
        }
        let (Some(done), Some(held)) = (read, held) else {
            return 0;
        };
        assert_eq!(held.mac, done.mac, "held input's MAC differs for {text:?}");
        let held = held.finish(&meta).to_vec();
        let from_file = from_file.map(|f| {
            assert_eq!(f.mac, done.mac, "file input's MAC differs for {text:?}");
            f.finish(&meta).to_vec()
        });
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
        if let Some(from_file) = from_file {
            assert_eq!(
                masked(&from_file),
                masked(&got),
                "file input's output differs for {text:?}"
            );
        }
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

    /// `run_pieces` over `count` pieces whose work takes a random while (a
    /// long one now and then) and fails at `fail_at`: what `accept` saw, in order, the result, and the
    /// most pieces ever taken but not accepted.
    fn run_numbers(
        count: usize,
        fail_at: Option<usize>,
        window: Window,
        seed: u64,
    ) -> (Vec<usize>, Option<usize>, usize) {
        use std::sync::atomic::AtomicUsize;
        let caller = std::thread::current().id();
        let taken = AtomicUsize::new(0);
        let accepted = AtomicUsize::new(0);
        let most_open = AtomicUsize::new(0);
        let next = Mutex::new(0usize);
        let next_piece = || {
            let mut n = next.lock().expect("not poisoned");
            if *n == count {
                return Ok(None);
            }
            *n += 1;
            let open = taken.fetch_add(1, Ordering::SeqCst) + 1 - accepted.load(Ordering::SeqCst);
            most_open.fetch_max(open, Ordering::SeqCst);
            Ok(Some(*n - 1))
        };
        let work = |_slot: usize, piece: usize| {
            let mut rng = Rng(seed ^ (piece as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            // Now and then a piece takes long, and the others run ahead.
            let micros = if rng.below(8) == 0 { 2000 } else { rng.below(100) };
            std::thread::sleep(std::time::Duration::from_micros(micros as u64));
            (Some(piece) != fail_at).then_some(piece)
        };
        let mut seen = Vec::new();
        let mut beside_ran = Vec::new();
        let accept = |piece| {
            seen.push(piece);
            accepted.fetch_add(1, Ordering::SeqCst);
            true
        };
        let result = run_pieces(window, next_piece, &work, &|_| {}, accept, &mut || {
            beside_ran.push(std::thread::current().id())
        });
        assert_eq!(beside_ran, [caller], "`beside` runs once, on the calling thread");
        (seen, result, most_open.into_inner())
    }

    #[test]
    fn pieces_are_accepted_in_order_within_the_window() {
        let window = worker_threads() + 2;
        for seed in 1..6 {
            for ahead in [Window::tight(2), Window::loose(2)] {
                let (seen, result, most_open) = run_numbers(60, None, ahead, seed);
                assert_eq!(seen, (0..60).collect::<Vec<_>>(), "seed {seed}");
                assert_eq!(result, Some(60));
                assert!(most_open <= window, "{most_open} pieces open, window {window}");
            }
        }
        assert_eq!(run_numbers(0, None, Window::tight(1), 1), (Vec::new(), Some(0), 0));
    }

    /// A thread that takes on several pieces in a row makes room in the
    /// window after each, not after the last: the other thread goes on
    /// taking pieces meanwhile (it waited while the MAC was hashed).
    #[test]
    fn each_piece_taken_on_makes_room_at_once() {
        use std::time::{Duration, Instant};
        // Two threads, two ahead: a window of four pieces.
        let (threads, ahead, window) = (2, Window::loose(2), 4);
        let taken = (Mutex::new(0usize), Condvar::new());
        let taken_at_least = |n: usize| {
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut count = taken.0.lock().expect("not poisoned");
            while *count < n {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return false;
                }
                count = taken.1.wait_timeout(count, left).expect("not poisoned").0;
            }
            true
        };
        let next_piece = || {
            let mut count = taken.0.lock().expect("not poisoned");
            if *count == 12 {
                return Ok(None);
            }
            *count += 1;
            taken.1.notify_all();
            Ok(Some(*count - 1))
        };
        let mut seen = Vec::new();
        let mut room_made = true;
        let accept = |piece| {
            match piece {
                // Held until the other thread has filled the window; by
                // then pieces 1 and 2 have arrived, for this thread to
                // take on next, in the same run.
                0 => assert!(taken_at_least(window), "the window never filled"),
                // Piece 0 is taken on: the other thread has room for one
                // more piece now, while this one is still in its run.
                1 => room_made = taken_at_least(window + 1),
                _ => {}
            }
            seen.push(piece);
            true
        };
        let result = run_pieces_on(threads, ahead, next_piece, &|_, p| Some(p), &|_| {}, accept, &mut || {});
        assert_eq!(result, Some(12));
        assert_eq!(seen, (0..12).collect::<Vec<_>>());
        assert!(
            room_made,
            "no piece was taken while the second piece of a run was taken on"
        );
    }

    #[test]
    fn a_failed_piece_stops_the_run_before_it_is_accepted() {
        for (seed, fail_at) in [(1, 0), (2, 7), (3, 59)] {
            for window in [Window::tight(1), Window::loose(1)] {
                let (seen, result, _) = run_numbers(60, Some(fail_at), window, seed);
                assert_eq!(result, None, "seed {seed}");
                assert_eq!(seen, (0..fail_at).collect::<Vec<_>>(), "seed {seed}");
            }
        }
        // A refused piece stops it the same way.
        let count = Mutex::new(0);
        let next_piece = || {
            let mut n = count.lock().expect("not poisoned");
            *n += 1;
            Ok((*n <= 20).then_some(*n))
        };
        let mut accepted = 0;
        let accept = |p| {
            accepted += 1;
            p != 5
        };
        let result = run_pieces(
            Window::tight(1),
            next_piece,
            &|_, p| Some(p),
            &|_| {},
            accept,
            &mut || {},
        );
        assert_eq!((result, accepted), (None, 5));
        // So does a read error; what was read before it is not all.
        let count = Mutex::new(0);
        let next_piece = || {
            let mut n = count.lock().expect("not poisoned");
            *n += 1;
            if *n == 9 {
                return Err(std::io::Error::other("disk on fire"));
            }
            Ok(Some(*n))
        };
        assert_eq!(
            run_pieces(
                Window::tight(1),
                next_piece,
                &|_, p| Some(p),
                &|_| {},
                |_| true,
                &mut || {}
            ),
            None
        );
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
                Keys::new(&cipher, &selector, false),
                &mut || {},
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
            let got = encrypt_in(
                case.as_bytes(),
                64,
                0,
                PieceFormat::Dotenv,
                Keys::new(&cipher, &selector, false),
                &mut || {},
            );
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
