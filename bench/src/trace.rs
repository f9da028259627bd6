//! The sequential editing traces in `testdata/editing-traces/` (see
//! FORMAT.md there): real keystrokes, replayed into a client replica to
//! get the Loro updates a client would have sent, one per keystroke.

use std::io::Read;
use std::path::{Path, PathBuf};

use collab_doc::SharedDoc;
use serde::Deserialize;

/// One patch: at `pos` delete `del` chars, then insert `ins`.
#[derive(Debug, Clone, Deserialize)]
pub struct Patch(pub usize, pub usize, pub String);

#[derive(Debug, Clone, Deserialize)]
pub struct Txn {
    pub patches: Vec<Patch>,
}

/// A sequential trace: apply the transactions in order, from `""`, to get
/// `end_content`.
#[derive(Debug, Clone, Deserialize)]
pub struct Trace {
    #[serde(rename = "endContent")]
    pub end_content: String,
    pub txns: Vec<Txn>,
}

/// `testdata/editing-traces/NAME.json.gz` of this workspace.
pub fn trace_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("testdata")
        .join("editing-traces")
        .join(format!("{name}.json.gz"))
}

/// Reads a gzip-compressed JSON trace.
pub fn load(path: &Path) -> Result<Trace, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut json = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut json)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&json).map_err(|e| format!("{}: {e}", path.display()))
}

/// Replays `trace` into a fresh client replica, taking the local update
/// after every transaction (one keystroke in automerge-paper): the exact
/// bytes a client sends, in order. Also returns the replica.
pub fn keystroke_updates(trace: &Trace) -> Result<(Vec<Vec<u8>>, SharedDoc), String> {
    let mut doc = SharedDoc::new();
    let mut updates = Vec::with_capacity(trace.txns.len());
    for (i, txn) in trace.txns.iter().enumerate() {
        for Patch(pos, del, ins) in &txn.patches {
            doc.splice(*pos, *del, ins)
                .map_err(|e| format!("txn {i}: {e}"))?;
        }
        if let Some(u) = doc.take_local_update() {
            updates.push(u);
        }
    }
    if doc.text() != trace.end_content {
        return Err("the replayed text differs from endContent".into());
    }
    Ok((updates, doc))
}
