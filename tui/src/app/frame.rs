//! Once per frame: my caret for drawing and the highlighter's lines; after
//! it, my batched edits and my presence going out; and on ticks, updates
//! sent again when no ack came.

use super::{App, Conn, Order, PRESENCE_EVERY};

impl App {
    pub(super) fn frame(&mut self) {
        let sel = self.editor.selection();
        if let Some(me) = self.peers.iter_mut().find(|p| p.me) {
            me.head = Some(sel.head);
            me.anchor = Some(sel.anchor);
            me.line = Some(self.editor.rope().char_to_line(sel.head));
        }
        let h = self.text_height();
        self.highlight.prepare(self.editor.rope(), self.view.top, h);
    }

    /// After a frame: my batched edits and my caret go out.
    pub(super) fn sync(&mut self) {
        if let Some(m) = self.replica.flush() {
            self.orders.push(Order::Send(m));
            // Its wait for the ack starts now.
            self.replica.poll_timeout(self.now);
        }
        let sel = self.editor.selection();
        if self.conn == Conn::Live {
            let due = match self.last_presence {
                None => true,
                Some((last, at)) => last != sel && self.now.duration_since(at) >= PRESENCE_EVERY,
            };
            if due {
                let anchor = (!sel.is_empty()).then_some(sel.anchor);
                self.orders
                    .push(Order::Send(self.replica.presence(sel.head, anchor)));
                self.last_presence = Some((sel, self.now));
            }
        }
    }

    /// The session's clock: my unacked updates go again when no ack came
    /// for [`super::RESEND_AFTER`].
    pub(super) fn resend_stalled(&mut self) {
        let effects = self.replica.handle_timeout(self.now);
        self.session_effects(effects);
    }
}
