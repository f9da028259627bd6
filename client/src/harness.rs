//! What tests read from a [`crate::Client`] besides its document, behind the
//! `test-harness` feature: the event log, the acked seqs, a buffer rebuilt
//! from the change deltas alone (to check them as an editor applies them),
//! and [`crate::Client::state`]. Programs drive a [`crate::Session`] and see every
//! event themselves; only a test asks afterwards what happened.

use std::collections::VecDeque;

use collab_doc::TextChange;
use collab_protocol::ErrorCode;

use crate::{ClientEvent, ClientState};

/// How many events [`ClientState::events`] keeps (oldest dropped first).
pub const EVENT_LOG_LEN: usize = 4096;

/// The test harness's part of a [`ClientState`].
#[derive(Debug, Default)]
pub(crate) struct Harness {
    events: VecDeque<ClientEvent>,
    /// The seqs of the last [`EVENT_LOG_LEN`] acks, oldest first.
    acks: VecDeque<u64>,
    mirror: Option<Vec<char>>,
    mirror_broken: Option<String>,
}

impl Harness {
    pub(crate) fn new(mirror: bool) -> Self {
        Self {
            mirror: mirror.then(Vec::new),
            ..Self::default()
        }
    }

    pub(crate) fn log(&mut self, event: ClientEvent) {
        match event {
            ClientEvent::Acked { seq, .. } => keep(&mut self.acks, seq),
            // Too frequent to keep, or what the state already tells.
            ClientEvent::DocChanged
            | ClientEvent::Connected
            | ClientEvent::Disconnected { .. }
            | ClientEvent::Closed { .. } => {}
            event => keep(&mut self.events, event),
        }
    }

    pub(crate) fn mirror(&mut self, changes: Vec<Vec<TextChange>>) {
        if let Some(mirror) = self.mirror.as_mut() {
            for e in changes.iter().filter_map(|d| apply_delta(mirror, d).err()) {
                self.mirror_broken.get_or_insert(e);
            }
        }
    }
}

/// Appends `item`, dropping the oldest past [`EVENT_LOG_LEN`].
fn keep<T>(log: &mut VecDeque<T>, item: T) {
    if log.len() >= EVENT_LOG_LEN {
        log.pop_front();
    }
    log.push_back(item);
}

impl ClientState {
    /// The last [`EVENT_LOG_LEN`] events, oldest first (without
    /// [`ClientEvent::DocChanged`] and [`ClientEvent::Acked`], which are
    /// too frequent to keep, nor the connection's own events).
    pub fn events(&self) -> impl Iterator<Item = &ClientEvent> {
        self.harness.events.iter()
    }
    /// The error events received, oldest first.
    pub fn errors(&self) -> Vec<(ErrorCode, Option<u64>)> {
        self.harness
            .events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Error { code, seq, .. } => Some((*code, *seq)),
                _ => None,
            })
            .collect()
    }
    /// The seqs the server acked, the last [`EVENT_LOG_LEN`] of them,
    /// oldest first (to check what was accepted, e.g. of raw updates sent
    /// with [`crate::Client::send_raw`]).
    pub fn acks(&self) -> impl Iterator<Item = u64> + '_ {
        self.harness.acks.iter().copied()
    }
    /// With [`crate::ClientBuilder::mirror`]: the text rebuilt from the
    /// change deltas alone, as an editor's buffer would be.
    pub fn mirror(&self) -> Option<String> {
        self.harness.mirror.as_ref().map(|m| m.iter().collect())
    }
    /// With [`crate::ClientBuilder::mirror`]: a delta that did not fit the
    /// mirror.
    pub fn mirror_error(&self) -> Option<&str> {
        self.harness.mirror_broken.as_deref()
    }
}

/// Applies one delta to a buffer of chars (what an editor does with
/// [`crate::Replica::take_changes`]).
pub fn apply_delta(text: &mut Vec<char>, delta: &[TextChange]) -> Result<(), String> {
    let mut at = 0usize;
    for step in delta {
        match step {
            TextChange::Retain(n) => at += n,
            TextChange::Insert(s) => {
                if at > text.len() {
                    return Err(format!("insert at {at} past the end ({})", text.len()));
                }
                let chars: Vec<char> = s.chars().collect();
                let n = chars.len();
                text.splice(at..at, chars);
                at += n;
            }
            TextChange::Delete(n) => {
                if at + n > text.len() {
                    return Err(format!("delete {n} at {at} past the end ({})", text.len()));
                }
                text.drain(at..at + n);
            }
        }
    }
    Ok(())
}
