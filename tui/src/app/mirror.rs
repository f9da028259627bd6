//! The replica's deltas, mine and remote alike, mirrored into the rope; and
//! what follows a text change: the modified flag, indentation, the members'
//! carets resolved against the new text.

use super::{App, Peer};
use crate::editor::{Assoc, changed_span, map_pos};
use crate::theme::parse_hex;

impl App {
    /// Mirrors the replica's pending deltas into the rope.
    pub(super) fn pull_changes(&mut self, mine: bool) {
        let changes = self.session.take_changes();
        if changes.is_empty() {
            return;
        }
        for delta in &changes {
            self.mirror_delta(delta, mine);
        }
        self.after_text_change();
    }

    /// One delta into the rope (through `Editor::apply_delta`),
    /// keeping the view on the same text and the highlight cache exact.
    pub(super) fn mirror_delta(&mut self, delta: &[collab_doc::TextChange], mine: bool) {
        let Some(span) = changed_span(delta) else {
            return;
        };
        let rope = self.editor.rope();
        let len = rope.len_chars();
        // From the line before (a break inserted after a `\r` joins it).
        let first_line = rope.char_to_line(span.start.saturating_sub(1).min(len));
        let old_last = rope.char_to_line(span.old_end.min(len));
        // Keep the view on the same text when others edit above it.
        let top_char = (!mine).then(|| {
            let top = self.view.top.min(rope.len_lines().saturating_sub(1));
            map_pos(delta, rope.line_to_char(top), Assoc::Before)
        });
        let assoc = if mine { Assoc::After } else { Assoc::Before };
        self.editor.apply_delta(delta, assoc);
        let rope = self.editor.rope();
        let new_last = rope.char_to_line(span.new_end.min(rope.len_chars()));
        if let Some(c) = top_char {
            self.view.top = rope.char_to_line(c.min(rope.len_chars()));
        }
        self.highlight.edited(first_line, old_last, new_last);
    }

    /// The room's text ahead of its document (`ClientEvent::TextFirst`,
    /// before the first welcome, so the rope mirrors an empty replica):
    /// it becomes the rope, and settling brings the change from it to the
    /// document's text. `[+]` waits for the welcome, which sets what it
    /// compares with.
    pub(super) fn show_text_first(&mut self, text: String) {
        if self.current_file().is_some() {
            return;
        }
        self.mirror_delta(&[collab_doc::TextChange::Insert(text)], false);
        self.detect_indent_once();
        self.refresh_peers();
        self.relayout();
    }

    pub(super) fn after_text_change(&mut self) {
        self.detect_indent_once();
        self.check_modified();
        self.refresh_peers();
        self.relayout();
    }

    /// The indentation is read from the first text there is.
    fn detect_indent_once(&mut self) {
        if !self.indent_known && self.editor.rope().len_chars() > 0 {
            self.indent_known = true;
            self.editor.detect_indent();
        }
    }

    /// Resolves every member's stable cursors against the text now.
    pub(super) fn refresh_peers(&mut self) {
        let my_id = self.session.you().map(|m| m.id);
        let my_file = self.current_file();
        let rope = self.editor.rope();
        let len = rope.len_chars();
        self.peers = self
            .session
            .members()
            .iter()
            .map(|m| {
                let me = Some(m.id) == my_id;
                let (head, anchor) = if me {
                    let s = self.editor.selection();
                    (Some(s.head), Some(s.anchor))
                } else {
                    self.session.member_cursor(m.id).unwrap_or((None, None))
                };
                let head = head.map(|h| h.min(len));
                let anchor = anchor.map(|a| a.min(len));
                Peer {
                    id: m.id,
                    name: m.name.clone(),
                    color: parse_hex(&m.color),
                    read_only: m.read_only,
                    me,
                    head,
                    anchor,
                    line: head.map(|h| rope.char_to_line(h)),
                    file: if me {
                        my_file
                    } else {
                        self.session.member_file(m.id)
                    },
                }
            })
            .collect();
        self.track_followed();
    }
}
