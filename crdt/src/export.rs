//! The exports whose failure must lose nothing: a room's snapshot (the
//! store replaces a room's history with it), a compaction's snapshot, and a
//! replica's outgoing update (its edits are marked sent only once
//! exported). Loro offers no input that makes an export fail, so these go
//! through [`export`], which a test can make fail on its own thread
//! ([`crate::testing::failing_exports`], `test-support` only) to check that
//! every caller keeps what it had.

use loro::{ExportMode, LoroDoc, LoroEncodeError};

/// `doc.export(mode)`, or the failure a test asked for.
pub(crate) fn export(doc: &LoroDoc, mode: ExportMode<'_>) -> Result<Vec<u8>, LoroEncodeError> {
    #[cfg(any(test, feature = "test-support"))]
    if crate::testing::exports_fail() {
        return Err(LoroEncodeError::internal(
            "export failed on purpose (a test)",
        ));
    }
    doc.export(mode)
}
