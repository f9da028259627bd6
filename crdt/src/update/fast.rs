//! Reads who authored an update's changes and what they depend on, straight
//! from Loro's update encoding, without building a document.
//!
//! `LoroDoc::decode_import_blob_meta` answers the same question but decodes
//! the blob into a throwaway `LoroDoc`, and creating that document is most
//! of its cost: 3.3 µs per keystroke, of which 2.3 µs is `LoroDoc::new`,
//! against 1.4 µs for the detached import itself (release build). The server
//! reads every update's metadata before importing it, so this reads only the
//! fixed fields it needs, in Loro 1.x's binary format (stable across 1.x):
//!
//! - the envelope: `b"loro"`, a 16-byte checksum, the mode (2 bytes, big
//!   endian: 3 snapshot, 4 updates), then the body;
//! - the body of an updates blob: blocks, each a LEB128 length and a
//!   postcard `EncodedBlock` of one peer's changes, whose first fields are
//!   five varints (counter start and length, lamport start and length,
//!   number of changes) and the header bytes;
//! - the header: the peer table (LEB128 count, 8-byte little-endian ids;
//!   the block's own peer first), the changes' lengths (LEB128, the last one
//!   implied), then the dependencies in serde_columnar encodings: "depends
//!   on the previous change of this peer" (bool RLE), how many other
//!   dependencies each change has (RLE), their peers (RLE of indices into
//!   the table) and counters (delta of delta).
//!
//! Anything unexpected returns `None` and the caller asks Loro instead, so
//! a format change costs speed, not safety; a test compares both readers
//! on many documents. Checksums are left to the import, which checks them.

use serde_columnar::{AnyRleDecoder, BoolRleDecoder, DeltaOfDeltaDecoder};

use super::PeerSpan;

/// The envelope's length before the body: magic, checksum, mode.
const HEADER: usize = 22;
/// The mode bytes of an updates blob and of a snapshot.
const MODE_UPDATES: [u8; 2] = [0, 4];
const MODE_SNAPSHOT: [u8; 2] = [0, 3];

/// What the fast reader found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Read {
    /// A snapshot (of either kind Loro has).
    Snapshot,
    /// Counts no valid encoding can have (a decoder asked to allocate for
    /// them could be made to allocate without bound): refused, not handed
    /// to Loro.
    Invalid,
    /// An updates blob: each peer's counters, the dependencies outside the
    /// blob, and the number of changes.
    Updates {
        spans: Vec<PeerSpan>,
        deps: Vec<(u64, i32)>,
        changes: u32,
    },
}

/// One change: its id range and what it depends on.
struct Change {
    peer: u64,
    start: i32,
    end: i32,
    deps: Vec<(u64, i32)>,
}

/// The two envelopes collab reads.
pub(super) enum Mode {
    Snapshot,
    Updates,
}

/// The envelope's mode, when it is a snapshot's or an updates blob's.
pub(super) fn read_mode(bytes: &[u8]) -> Option<Mode> {
    if bytes.len() < HEADER || &bytes[..4] != b"loro" {
        return None;
    }
    match [bytes[20], bytes[21]] {
        MODE_SNAPSHOT => Some(Mode::Snapshot),
        MODE_UPDATES => Some(Mode::Updates),
        _ => None,
    }
}

/// Whether `bytes` are a snapshot with the whole history (not shallow):
/// the body is the oplog's, the state's and the shallow root's bytes, each
/// after its length (u32, little endian), and a full snapshot has no
/// shallow root. Anything else, or a layout that does not add up: false.
pub(super) fn is_full_snapshot(bytes: &[u8]) -> bool {
    fn skip(body: &mut &[u8]) -> Option<usize> {
        let (len, rest) = body.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
        *body = rest.get(len..)?;
        Some(len)
    }
    if !matches!(read_mode(bytes), Some(Mode::Snapshot)) {
        return false;
    }
    let mut body = &bytes[HEADER..];
    let full = (|| {
        skip(&mut body)?;
        skip(&mut body)?;
        Some(skip(&mut body)? == 0)
    })();
    full == Some(true) && body.is_empty()
}

pub(super) fn read(bytes: &[u8]) -> Option<Read> {
    match read_mode(bytes)? {
        Mode::Snapshot => return Some(Read::Snapshot),
        Mode::Updates => {}
    }
    let mut body = &bytes[HEADER..];
    let mut changes = Vec::new();
    while !body.is_empty() {
        let len = usize::try_from(leb(&mut body)?).ok()?;
        let block = body.get(..len)?;
        body = &body[len..];
        match read_block(block, &mut changes)? {
            Block::Read => {}
            Block::Invalid => return Some(Read::Invalid),
        }
    }
    Some(summarize(&changes))
}

/// The start and end counters per peer, and the dependencies no change of
/// the blob covers: the same rules as Loro's `decode_updates_blob_meta`.
fn summarize(changes: &[Change]) -> Read {
    let mut spans: Vec<PeerSpan> = Vec::new();
    for c in changes {
        match spans.iter_mut().find(|s| s.peer == c.peer) {
            Some(s) => {
                s.start = s.start.min(c.start);
                s.end = s.end.max(c.end);
            }
            None => spans.push(PeerSpan {
                peer: c.peer,
                start: c.start,
                end: c.end,
            }),
        }
    }
    let mut deps = Vec::new();
    for c in changes {
        for &(peer, counter) in &c.deps {
            let outside = match spans.iter().find(|s| s.peer == peer) {
                Some(s) => s.start > counter,
                None => true,
            };
            if outside && !deps.contains(&(peer, counter)) {
                deps.push((peer, counter));
            }
        }
    }
    spans.sort_unstable_by_key(|s| s.peer);
    Read::Updates {
        spans,
        deps,
        changes: u32::try_from(changes.len()).unwrap_or(u32::MAX),
    }
}

enum Block {
    Read,
    Invalid,
}

/// One postcard `EncodedBlock`: its leading varints and its header.
fn read_block(mut block: &[u8], out: &mut Vec<Change>) -> Option<Block> {
    let counter_start = i32::try_from(leb(&mut block)?).ok()?;
    let counter_len = i32::try_from(leb(&mut block)?).ok()?;
    let _lamport_start = leb(&mut block)?;
    let _lamport_len = leb(&mut block)?;
    let n = usize::try_from(leb(&mut block)?).ok()?;
    let header_len = usize::try_from(leb(&mut block)?).ok()?;
    let header = block.get(..header_len)?;
    // Every change but the last has its length in the header, a byte at
    // least: more changes than that is no valid block.
    if n == 0 || n > header_len + 1 {
        return Some(Block::Invalid);
    }
    read_header(header, n, counter_start, counter_len, out)
}

fn read_header(
    mut bytes: &[u8],
    n: usize,
    counter_start: i32,
    counter_len: i32,
    out: &mut Vec<Change>,
) -> Option<Block> {
    let peer_num = usize::try_from(leb(&mut bytes)?).ok()?;
    if peer_num == 0 || bytes.len() < peer_num.checked_mul(8)? {
        return None;
    }
    let peers: Vec<u64> = bytes[..peer_num * 8]
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
        .collect();
    bytes = &bytes[peer_num * 8..];
    let mut lengths = Vec::with_capacity(n);
    for _ in 0..n - 1 {
        lengths.push(i32::try_from(leb(&mut bytes)?).ok()?);
    }
    let known: i32 = lengths.iter().try_fold(0i32, |a, l| a.checked_add(*l))?;
    lengths.push(counter_len.checked_sub(known)?);

    let (dep_self, bytes) = BoolRleDecoder::new(bytes).take_n_finalize(n).ok()?;
    let (dep_lens, bytes) = AnyRleDecoder::<usize>::new(bytes).take_n_finalize(n).ok()?;
    let others: usize = dep_lens.iter().try_fold(0usize, |a, l| a.checked_add(*l))?;
    // Each dependency's counter takes a bit at least.
    if others > bytes.len().saturating_mul(8) {
        return Some(Block::Invalid);
    }
    let (dep_peers, bytes) = AnyRleDecoder::<usize>::new(bytes)
        .take_n_finalize(others)
        .ok()?;
    // serde_columnar 0.3.14's delta-of-delta decoder panics (an unwrap in
    // `try_next`) on some truncated input, inside Loro's import too: such
    // an update is refused here, before Loro sees it.
    let counters = std::panic::catch_unwind(|| {
        DeltaOfDeltaDecoder::<u32>::new(bytes)
            .ok()?
            .take_n_finalize(others)
            .ok()
    });
    let Ok(Some((dep_counters, _))) = counters else {
        return Some(Block::Invalid);
    };

    let mut other = dep_peers.iter().zip(&dep_counters);
    let mut counter = counter_start;
    for i in 0..n {
        let mut deps = Vec::new();
        if dep_self[i] {
            deps.push((peers[0], counter.checked_sub(1)?));
        }
        for _ in 0..dep_lens[i] {
            let (&idx, &c) = other.next()?;
            deps.push((*peers.get(idx)?, i32::try_from(c).ok()?));
        }
        let end = counter.checked_add(lengths[i])?;
        out.push(Change {
            peer: peers[0],
            start: counter,
            end,
            deps,
        });
        counter = end;
    }
    Some(Block::Read)
}

/// An unsigned LEB128 (postcard's varint for `u32`/`usize` is the same).
fn leb(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}
