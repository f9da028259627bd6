//! A disturbing member: joins a room, sends `update` events (numbered by
//! `seq`, as the protocol asks) and reads the server's answers, `ack` or
//! `error`, for them. It parses only small frames: the relays and welcomes
//! of a big room are megabytes of base64 it has no use for, and parsing
//! them would take the bench core from the quiet room's typists.

use std::collections::BTreeMap;

use collab_protocol::{ClientMsg, ServerMsg};
use futures::{SinkExt, StreamExt};
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::tungstenite::Message;

use crate::load::{Endpoint, Ws, join};

/// Frames longer than this are not parsed (an `ack` or an `error` is
/// about 200 bytes).
const PARSE_MAX_BYTES: usize = 4096;

/// The server's answers to a member's updates.
#[derive(Debug, Clone, Default)]
pub struct Answers {
    /// `seq` -> `None` for an ack, the error code for a refusal.
    pub by_seq: BTreeMap<u64, Option<String>>,
    /// Errors that carried no `seq` (or a fatal one), by code.
    pub other: BTreeMap<String, u64>,
}

impl Answers {
    pub fn refused(&self, seq: u64) -> Option<&str> {
        self.by_seq.get(&seq).and_then(|a| a.as_deref())
    }
    pub fn acked(&self, seq: u64) -> bool {
        matches!(self.by_seq.get(&seq), Some(None))
    }
}

pub struct Member {
    ws: Ws,
    /// The last `seq` sent.
    pub seq: u64,
    pub answers: Answers,
}

impl Member {
    /// Connects and joins `room` as `user`.
    pub async fn join(endpoint: &Endpoint, room: &str, user: &str) -> Result<Member, String> {
        let (ws, _) = join(endpoint, room, user).await?;
        Ok(Member {
            ws,
            seq: 0,
            answers: Answers::default(),
        })
    }

    /// Sends one update; returns its `seq`.
    pub async fn send_update(&mut self, data: &[u8], deadline: Instant) -> Result<u64, String> {
        self.seq += 1;
        let text = ClientMsg::Update {
            seq: self.seq,
            data: data.to_vec().into(),
        }
        .to_json();
        self.send_text(text, deadline).await?;
        Ok(self.seq)
    }

    /// Sends an `update` event already encoded (its `seq` must be the
    /// next one: [`Self::seq`] + 1).
    pub async fn send_encoded(&mut self, text: &str, deadline: Instant) -> Result<u64, String> {
        self.seq += 1;
        self.send_text(text.to_string(), deadline).await?;
        Ok(self.seq)
    }

    async fn send_text(&mut self, text: String, deadline: Instant) -> Result<(), String> {
        match timeout_at(deadline, self.ws.send(Message::text(text))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("send: {e}")),
            Err(_) => Err("send: timed out".into()),
        }
    }

    /// Reads until the server answered every `seq` up to `last`, the
    /// connection ends or `deadline` passes (an error then).
    pub async fn await_answers(&mut self, last: u64, deadline: Instant) -> Result<(), String> {
        while !(1..=last).all(|s| self.answers.by_seq.contains_key(&s)) {
            let frame = match timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Err(format!("no answer to update {last} in time")),
                Ok(None) => return Err("closed by the server".into()),
                Ok(Some(Err(e))) => return Err(format!("read: {e}")),
                Ok(Some(Ok(Message::Text(t)))) => t,
                Ok(Some(Ok(Message::Close(_)))) => return Err("closed by the server".into()),
                Ok(Some(Ok(_))) => continue,
            };
            if frame.len() > PARSE_MAX_BYTES {
                continue;
            }
            match ServerMsg::from_json(&frame) {
                Ok(ServerMsg::Ack { seq }) => {
                    self.answers.by_seq.insert(seq, None);
                }
                Ok(ServerMsg::Error {
                    code,
                    seq: Some(seq),
                    ..
                }) => {
                    self.answers.by_seq.insert(seq, Some(code.to_string()));
                }
                Ok(ServerMsg::Error { code, .. }) => {
                    *self.answers.other.entry(code.to_string()).or_insert(0) += 1;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Leaves (a close frame), bounded by `deadline`.
    pub async fn close(mut self, deadline: Instant) {
        let _ = timeout_at(deadline, self.ws.close(None)).await;
    }
}
