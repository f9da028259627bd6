//! Follow mode: my view follows another member's caret as they move and
//! type, until I move or type myself, press Esc, or they leave; and a jump
//! that puts my caret on a member's caret once. Following moves only my
//! view, never my caret or the text, so a read-only viewer can follow too.
//! In a workspace it crosses files: when the followed member's presence
//! names another file, that file opens (if need be) and comes on screen,
//! and the view moves to their caret once its text is loaded.

use collab_protocol::UserId;

use super::App;

/// Whom my view follows and whom F6 last jumped to: this module's state,
/// changed only here.
#[derive(Debug, Default)]
pub(super) struct Follow {
    /// The member whose caret my view follows.
    target: Option<UserId>,
    /// The member F6 last jumped to (the next press goes to the next one).
    last_jump: Option<UserId>,
}

impl Follow {
    /// Whether my view follows someone.
    pub(super) fn active(&self) -> bool {
        self.target.is_some()
    }
}

impl App {
    /// The members I can follow or jump to, in the members panel's order.
    fn others(&self) -> Vec<(UserId, String)> {
        self.peers
            .iter()
            .filter(|p| !p.me)
            .map(|p| (p.id, p.name.clone()))
            .collect()
    }

    /// The member after `current` in the list (the first when `None`);
    /// `None` after the last.
    fn next_member(&self, current: Option<UserId>) -> Option<(UserId, String)> {
        let others = self.others();
        match current.and_then(|c| others.iter().position(|(id, _)| *id == c)) {
            Some(i) => others.get(i + 1).cloned(),
            None => others.first().cloned(),
        }
    }

    /// The name of the member I follow.
    pub fn following(&self) -> Option<&str> {
        let id = self.follow.target?;
        self.peers
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.name.as_str())
    }

    /// F5: follow the next member; after the last, stop.
    pub(super) fn follow_next(&mut self) {
        match self.next_member(self.follow.target) {
            Some((id, name)) => self.start_following(id, &name),
            None if self.follow.active() => self.stop_following(),
            None => self.notice("No one else is in the room to follow."),
        }
    }

    /// `/follow NAME`, or `/follow` alone to stop.
    pub(super) fn follow_named(&mut self, name: Option<&str>) {
        let Some(name) = name else {
            if self.follow.active() {
                return self.stop_following();
            }
            return self.warn("Usage: /follow NAME (F5 follows the next member).");
        };
        let found = self.peers.iter().find(|p| p.name == name);
        match found {
            Some(p) if p.me => self.warn("That is you: name another member to follow."),
            Some(p) => {
                let (id, name) = (p.id, p.name.clone());
                self.start_following(id, &name);
            }
            None => self.warn(format!("No one named {name} is in the room.")),
        }
    }

    fn start_following(&mut self, id: UserId, name: &str) {
        self.follow.target = Some(id);
        self.notice(format!("Following {name}: Esc stops."));
        self.track_followed();
    }

    pub(super) fn stop_following(&mut self) {
        if let Some(name) = self.following().map(str::to_owned) {
            self.notice(format!("Stopped following {name}."));
        }
        self.follow.target = None;
    }

    /// I moved or typed: following ends, quietly.
    pub(super) fn end_follow_quietly(&mut self) {
        self.follow.target = None;
    }

    /// The followed member's caret, after the members changed; following
    /// ends when they left.
    pub(super) fn track_followed(&mut self) {
        let Some(id) = self.follow.target else { return };
        if !self.peers.iter().any(|p| p.id == id) {
            self.follow.target = None;
            return self.notice("The member you followed left: following stopped.");
        }
        // Across files: theirs opens (if need be) and comes on screen.
        let theirs = self.peers.iter().find(|p| p.id == id).and_then(|p| p.file);
        if let Some(file) = theirs
            && self.current_file() != Some(file)
            && !self.save_pending()
        {
            return self.switch_to(file);
        }
        self.follow_cursor();
    }

    /// Where the followed member's caret is, if I follow someone who has
    /// one.
    pub(super) fn followed_caret(&self) -> Option<usize> {
        let id = self.follow.target?;
        self.peers.iter().find(|p| p.id == id)?.head
    }

    /// F6: my caret to the next member's caret, once.
    pub(super) fn jump_to_member(&mut self) {
        let start = self.follow.last_jump;
        let mut next = self.next_member(start);
        if next.is_none() {
            next = self.next_member(None);
        }
        let Some((id, name)) = next else {
            return self.notice("No one else is in the room.");
        };
        self.follow.last_jump = Some(id);
        self.end_follow_quietly();
        let head = self.peers.iter().find(|p| p.id == id).and_then(|p| p.head);
        match head {
            Some(pos) => {
                self.editor.set_cursor(pos, false);
                self.session.undo_checkpoint();
                self.undo_group.end();
                self.center_cursor();
                self.notice(format!("At {name}'s caret."));
            }
            None => self.notice(format!("{name} has not placed a caret yet.")),
        }
    }
}
