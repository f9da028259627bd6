//! What the disturbing members send, made with Loro before the measured
//! phase (so the bench core spends nothing on it while the quiet room is
//! measured): a snapshot bomb, and a paste concurrent with a typed line.

use collab_doc::SharedDoc;
use loro::{ExportMode, LoroDoc};

/// Largest update bytes collab-client puts in one `update` event under
/// the server's default frame limit (1 MiB): what fits once in base64
/// inside the JSON event (`client/src/replica.rs`, `frame_budget`).
pub const CLIENT_FRAME_BUDGET: usize = (1024 * 1024 - 512) / 4 * 3;

/// A snapshot of a text of `text_bytes` bytes of one repeated line: Loro
/// compresses it to a small fraction of the text, which is what made the
/// bomb of issue 13 cheap to send and costly to import.
pub fn snapshot_bomb(text_bytes: usize) -> Result<Vec<u8>, String> {
    let doc = LoroDoc::new();
    let text = doc.get_text(collab_doc::TEXT_CONTAINER);
    let line = "let x = compute(a, b, c); // the same line, again and again\n";
    let body = line.repeat(text_bytes / line.len() + 1);
    let body = body.get(..text_bytes).unwrap_or(&body);
    text.insert(0, body).map_err(|e| format!("bomb: {e}"))?;
    doc.commit();
    doc.export(ExportMode::Snapshot)
        .map_err(|e| format!("bomb: {e}"))
}

/// `bytes` bytes of varied code-like text (ASCII), as a paste of a file.
pub fn paste_text(bytes: usize, salt: u64) -> String {
    let mut out = String::with_capacity(bytes + 80);
    let mut i = salt;
    while out.len() < bytes {
        i = i.wrapping_add(1);
        out.push_str(&format!(
            "    let value_{i} = table[{}].get({}).unwrap_or(&{});\n",
            i % 97,
            i.wrapping_mul(31) % 1009,
            i % 13
        ));
    }
    out.truncate(bytes);
    out
}

/// The line a typist types, one keystroke per character.
pub const TYPED_LINE: &str = "fn interrupted() { println!(\"typing\"); }\n";

/// One round of the concurrent paste: a typist's keystrokes (one update
/// each) and, made without them, the paste's parts as collab-client would
/// send them ([`SharedDoc::take_local_update_chunked`]).
#[derive(Debug, Clone)]
pub struct PasteRound {
    pub keystrokes: Vec<Vec<u8>>,
    pub paste_parts: Vec<Vec<u8>>,
}

/// Two replicas of a room: the typist's and the paster's. Each round the
/// typist types [`TYPED_LINE`] at the end of its text and the paster pastes
/// `paste_bytes` at the start of its own. Neither ever merges the other's
/// edits: every paste is concurrent with every line, which is the server's
/// costly case, and the bench does not pay Loro's concurrent merge itself
/// (a replica merging one 1 MiB paste with a line it had not seen took over
/// a minute of the bench's CPU).
pub struct PastingPair {
    typist: SharedDoc,
    paster: SharedDoc,
    round: u64,
}

impl Default for PastingPair {
    fn default() -> Self {
        Self::new()
    }
}

impl PastingPair {
    pub fn new() -> Self {
        Self {
            typist: SharedDoc::new(),
            paster: SharedDoc::new(),
            round: 0,
        }
    }

    pub fn next_round(
        &mut self,
        paste_bytes: usize,
        frame_budget: usize,
    ) -> Result<PasteRound, String> {
        self.round += 1;
        let mut keystrokes = Vec::new();
        for ch in TYPED_LINE.chars() {
            let at = self.typist.len_chars();
            self.typist
                .splice(at, 0, &ch.to_string())
                .map_err(|e| format!("typing: {e}"))?;
            keystrokes.extend(self.typist.take_local_update());
        }
        self.paster
            .splice(0, 0, &paste_text(paste_bytes, self.round * 1_000_003))
            .map_err(|e| format!("pasting: {e}"))?;
        let paste_parts = self.paster.take_local_update_chunked(frame_budget);
        Ok(PasteRound {
            keystrokes,
            paste_parts,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_bomb_is_a_small_snapshot_of_a_big_text() {
        let bomb = snapshot_bomb(1 << 20).unwrap();
        let meta = LoroDoc::decode_import_blob_meta(&bomb, true).unwrap();
        assert!(meta.mode.is_snapshot(), "{:?}", meta.mode);
        assert!(bomb.len() * 20 < 1 << 20, "{} bytes", bomb.len());
        let doc = LoroDoc::new();
        doc.import(&bomb).unwrap();
        assert_eq!(doc.get_text(collab_doc::TEXT_CONTAINER).len_utf8(), 1 << 20);
    }

    /// A round's parts fit the frame budget; each round's paste applies
    /// whole without any line (it does not depend on them: they are
    /// concurrent), and the lines without any paste; a replica that merges
    /// both has both.
    #[test]
    fn a_paste_round_is_concurrent_with_the_line_and_cut_for_frames() {
        let mut pair = PastingPair::new();
        let budget = 64 * 1024;
        let mut replica = SharedDoc::new();
        let mut paste_only = SharedDoc::new();
        let mut lines_only = SharedDoc::new();
        for round in 0..2 {
            let r = pair.next_round(150 * 1024, budget).unwrap();
            assert_eq!(r.keystrokes.len(), TYPED_LINE.chars().count());
            assert!(r.paste_parts.len() >= 3, "{}", r.paste_parts.len());
            assert!(r.paste_parts.iter().all(|p| p.len() <= budget + 1024));
            for p in &r.paste_parts {
                assert!(paste_only.import(p).is_ok());
            }
            assert_eq!(paste_only.len_chars(), (round + 1) * 150 * 1024);
            for k in &r.keystrokes {
                assert!(lines_only.import(k).is_ok());
            }
            assert_eq!(lines_only.len_chars(), (round + 1) * TYPED_LINE.len());
            for p in r.paste_parts.iter().chain(&r.keystrokes) {
                assert!(replica.import(p).is_ok());
            }
        }
        assert_eq!(replica.len_chars(), 2 * (150 * 1024 + TYPED_LINE.len()));
    }
}
