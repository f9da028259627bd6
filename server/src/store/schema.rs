//! The store's file format: redb's tables and what is kept in them, and
//! the few operations on the file as a whole (opening it, copying every
//! record to a new file, deleting a room's updates).
//!
//! Each room is a snapshot plus the updates made after it, in order, so a
//! restart loads one snapshot and a few updates; `ACTIVE` says when each
//! room was last used, for the TTL sweep (`worker/sweep.rs`).

// redb's error is large; it only travels the store thread's cold paths.
#![allow(clippy::result_large_err)]

use std::collections::HashSet;
use std::path::Path;

use redb::{Database, Durability, ReadableTable, TableDefinition};

/// Room id -> the room's latest stored snapshot.
pub(super) const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshots");
/// (room id, sequence) -> an update made after that snapshot, in order.
pub(super) const UPDATES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("updates");
/// Room id -> last activity, ms since the Unix epoch (for `room_ttl`).
pub(super) const ACTIVE: TableDefinition<&str, u64> = TableDefinition::new("active");
/// A workspace's document key (`ROOM/COUNTER@PEER`) -> the bytes it
/// counts against the room's `max_workspace_bytes`, as of its last close
/// or compaction, so a room's total is known without loading its files.
pub(super) const SIZES: TableDefinition<&str, u64> = TableDefinition::new("sizes");

/// The database file inside the data directory.
pub const DB_FILE: &str = "rooms.redb";

/// Why the database file could not be opened.
pub(super) enum OpenError {
    /// The file is there but is not a usable store (empty, truncated,
    /// corrupted): refuse its rooms, do not treat it as a fresh store.
    Damaged(String),
    /// Anything else (permissions, another server holding it): the
    /// operator picks another directory.
    Other(String),
}

/// Opens (creating) the database file and its tables.
pub(super) fn open_db(path: &Path) -> Result<Database, OpenError> {
    // redb writes its header as it creates a file: an existing empty file
    // was truncated (a full disk, a bad copy), not a fresh store.
    match std::fs::metadata(path) {
        Ok(m) if m.len() == 0 => {
            return Err(OpenError::Damaged(
                "the file is empty (0 bytes) though a store was created there".into(),
            ));
        }
        _ => {}
    }
    let create = std::panic::catch_unwind(|| Database::create(path));
    let db = match create {
        Err(panic) => return Err(OpenError::Damaged(panic_message(panic.as_ref()))),
        Ok(Ok(db)) => db,
        Ok(Err(e)) => {
            use redb::{DatabaseError, StorageError};
            return Err(match e {
                DatabaseError::Storage(StorageError::Corrupted(why)) => OpenError::Damaged(why),
                DatabaseError::Storage(StorageError::Io(io))
                    if io.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    OpenError::Damaged(format!("the file is shorter than it says: {io}"))
                }
                other => OpenError::Other(other.to_string()),
            });
        }
    };
    // Create the tables so readers always find them.
    let init = || -> Result<(), redb::Error> {
        let txn = db.begin_write()?;
        txn.open_table(SNAPSHOTS)?;
        txn.open_table(UPDATES)?;
        txn.open_table(ACTIVE)?;
        txn.open_table(SIZES)?;
        txn.commit()?;
        Ok(())
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(init)) {
        Ok(Ok(())) => Ok(db),
        Ok(Err(redb::Error::Corrupted(why))) => Err(OpenError::Damaged(why)),
        Ok(Err(e)) => Err(OpenError::Other(e.to_string())),
        Err(panic) => Err(OpenError::Damaged(panic_message(panic.as_ref()))),
    }
}

/// Runs a database operation, turning a panic inside redb (a damaged file
/// can trip its assertions) into an error: the store thread, and with it
/// every room's durability, must survive one bad page.
pub(super) fn guarded<T>(f: impl FnOnce() -> Result<T, redb::Error>) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(panic) => Err(panic_message(panic.as_ref())),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown".into());
    format!("the database library failed on the file: {what}")
}

/// Copies every record of `from` into `to` in one transaction; returns
/// how many rooms have a snapshot or updates.
pub(super) fn copy_all(from: &Database, to: &Database) -> Result<usize, redb::Error> {
    let read = from.begin_read()?;
    let mut txn = to.begin_write()?;
    txn.set_durability(Durability::Immediate);
    let mut rooms = HashSet::new();
    {
        let mut snaps = txn.open_table(SNAPSHOTS)?;
        for item in read.open_table(SNAPSHOTS)?.iter()? {
            let (k, v) = item?;
            snaps.insert(k.value(), v.value())?;
            rooms.insert(k.value().to_owned());
        }
        let mut updates = txn.open_table(UPDATES)?;
        for item in read.open_table(UPDATES)?.iter()? {
            let (k, v) = item?;
            updates.insert(k.value(), v.value())?;
            rooms.insert(k.value().0.to_owned());
        }
        let mut active = txn.open_table(ACTIVE)?;
        for item in read.open_table(ACTIVE)?.iter()? {
            let (k, v) = item?;
            active.insert(k.value(), v.value())?;
        }
        let mut sizes = txn.open_table(SIZES)?;
        for item in read.open_table(SIZES)?.iter()? {
            let (k, v) = item?;
            sizes.insert(k.value(), v.value())?;
        }
    }
    txn.commit()?;
    Ok(rooms.len())
}

/// The open database, or why there is none.
pub(super) fn live(db: &Option<Database>) -> Result<&Database, redb::Error> {
    db.as_ref().ok_or_else(|| {
        redb::Error::Io(std::io::Error::other(
            "the room store could not be reopened after an I/O error",
        ))
    })
}

pub(super) fn remove_updates(
    updates: &mut redb::Table<(&'static str, u64), &'static [u8]>,
    room: &str,
) -> Result<(), redb::Error> {
    let keys: Vec<u64> = updates
        .range((room, 0)..=(room, u64::MAX))?
        .map(|item| item.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    for k in keys {
        updates.remove((room, k))?;
    }
    Ok(())
}

/// Removes the records of a workspace's tree and files: the keys
/// `ROOM/`.. (a room id holds no `/`, and `0` is the byte after `/`).
pub(super) fn remove_docs(
    snaps: &mut redb::Table<&'static str, &'static [u8]>,
    updates: &mut redb::Table<(&'static str, u64), &'static [u8]>,
    room: &str,
) -> Result<(), redb::Error> {
    let (lo, hi) = (format!("{room}/"), format!("{room}0"));
    let keys: Vec<String> = snaps
        .range(lo.as_str()..hi.as_str())?
        .map(|item| item.map(|(k, _)| k.value().to_owned()))
        .collect::<Result<_, _>>()?;
    for k in keys {
        snaps.remove(k.as_str())?;
    }
    let keys: Vec<(String, u64)> = updates
        .range((lo.as_str(), 0)..(hi.as_str(), 0))?
        .map(|item| {
            item.map(|(k, _)| {
                let (doc, seq) = k.value();
                (doc.to_owned(), seq)
            })
        })
        .collect::<Result<_, _>>()?;
    for (doc, seq) in keys {
        updates.remove((doc.as_str(), seq))?;
    }
    Ok(())
}

/// The sizes of a room's workspace documents (the keys `ROOM/`..).
pub(super) fn sizes_of(
    sizes: &impl ReadableTable<&'static str, u64>,
    room: &str,
) -> Result<Vec<(String, u64)>, redb::Error> {
    let (lo, hi) = (format!("{room}/"), format!("{room}0"));
    sizes
        .range(lo.as_str()..hi.as_str())?
        .map(|item| item.map(|(k, v)| (k.value().to_owned(), v.value())))
        .collect::<Result<_, _>>()
        .map_err(redb::Error::from)
}

/// Removes the sizes of a room's workspace documents.
pub(super) fn remove_sizes(
    sizes: &mut redb::Table<&'static str, u64>,
    room: &str,
) -> Result<(), redb::Error> {
    for (k, _) in sizes_of(sizes, room)? {
        sizes.remove(k.as_str())?;
    }
    Ok(())
}
