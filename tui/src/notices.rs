//! Short messages that fade: "bob joined", "saved notes.md". Each is shown
//! for [`SHOW_FOR`], drawn dim in its last [`FADE_FOR`], then dropped on a
//! tick. Time comes in through actions, so tests control it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub const SHOW_FOR: Duration = Duration::from_secs(6);
pub const FADE_FOR: Duration = Duration::from_secs(2);
const KEEP: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub level: Level,
    pub at: Instant,
}

impl Notice {
    /// Whether it is in its fading part at `now`.
    pub fn fading(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.at) + FADE_FOR >= SHOW_FOR
    }
}

#[derive(Debug, Clone, Default)]
pub struct Notices {
    items: VecDeque<Notice>,
}

impl Notices {
    /// Shows `text`; the same text as the newest notice (a key held down
    /// in a read-only room) renews that one instead of stacking up.
    pub fn push(&mut self, text: impl Into<String>, level: Level, now: Instant) {
        let text = text.into();
        if let Some(last) = self.items.back_mut()
            && last.text == text
            && last.level == level
        {
            last.at = now;
            return;
        }
        self.items.push_back(Notice {
            text,
            level,
            at: now,
        });
        while self.items.len() > KEEP {
            self.items.pop_front();
        }
    }

    /// Drops the notices that have been shown long enough.
    pub fn expire(&mut self, now: Instant) {
        self.items
            .retain(|n| now.saturating_duration_since(n.at) < SHOW_FOR);
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Notice> {
        self.items.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_fade_then_go() {
        let t0 = Instant::now();
        let mut n = Notices::default();
        n.push("bob joined", Level::Info, t0);
        assert!(!n.iter().any(|x| x.fading(t0)));
        assert!(n.iter().all(|x| x.fading(t0 + Duration::from_secs(5))));
        n.expire(t0 + Duration::from_secs(5));
        assert!(!n.is_empty());
        n.expire(t0 + SHOW_FOR);
        assert!(n.is_empty());
    }

    #[test]
    fn the_same_notice_again_renews_it() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(3);
        let mut n = Notices::default();
        n.push("read-only", Level::Warn, t0);
        n.push("read-only", Level::Warn, t1);
        assert_eq!(n.iter().count(), 1);
        assert!(n.iter().all(|x| x.at == t1));
        n.push("bob joined", Level::Info, t1);
        n.push("read-only", Level::Warn, t1);
        assert_eq!(n.iter().count(), 3);
    }
}
