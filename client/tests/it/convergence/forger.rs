//! A forging member: an ordinary client (its own edits are honest and must
//! converge like anyone's) that now and then sends an update under another
//! member's Loro peer id, which the server must refuse (`bad_update`)
//! before anything is imported or relayed (docs/protocol.md, "Peer ids").
//!
//! Its forgeries, on the victim's peer id as the forger's replica knows it:
//! - extend: an edit at the victim's next counter as far as the forger has
//!   seen; when the victim typed meanwhile, this races its next ids (the
//!   "EVIL just before MINE" of issue 12);
//! - reuse: a fresh history under the victim's id from counter 0, so ids
//!   the room has with other content (and new ones when it is longer).
//!
//! Victims: the honest members, and the server itself once it seeded the
//! room (its seed's peer id comes from the file's text, so anyone can
//! compute it; the room owns it like a member's).

use std::sync::atomic::AtomicBool;

use collab_client::{Client, ClientError, SyncState};
use collab_doc::SharedDoc;
use collab_protocol::{Base64Bytes, ClientMsg};
use rand::RngExt;
use rand::rngs::StdRng;

use super::edits::random_text;

/// The forged updates one forger sent.
#[derive(Debug, Default)]
pub struct Forgeries {
    pub seqs: Vec<u64>,
    /// The seqs of forgeries under the seed's peer id: a copy of seed ids
    /// the room has is acked as a no-op (docs/protocol.md, "Peer ids").
    pub under_seed: Vec<u64>,
    /// With each seq, the forger's disconnect count when it was sent: with
    /// no drop since, the server must answer it.
    sent_at: Vec<u64>,
}

/// A forger's victims and what it sent.
pub struct Forging<'a> {
    pub victims: &'a [Client],
    /// The file the room was seeded from, if any.
    pub file: Option<&'a str>,
    pub forgeries: &'a mut Forgeries,
    /// Set at the first restart: no forging after it (see the suite's
    /// `script`).
    pub stop: &'a AtomicBool,
}

impl Forging<'_> {
    /// Forges one update under a random victim's peer id.
    pub fn forge(&mut self, forger: &Client, rng: &mut StdRng) {
        let seeded = self.file.map(collab_doc::seed_peer).filter(|p| {
            let vv = loro::VersionVector::decode(&forger.version()).unwrap_or_default();
            vv.get(p).is_some_and(|n| *n > 0)
        });
        // A victim's id as a real forger can know it: one whose changes
        // reached the forger (an id a member has not sent under yet, such
        // as the one it types under offline, is known to nobody else).
        let seen = |p: u64| {
            let vv = loro::VersionVector::decode(&forger.version()).unwrap_or_default();
            vv.get(&p).is_some_and(|n| *n > 0)
        };
        let peer = match seeded {
            Some(p) if rng.random_bool(0.2) => {
                if let Some(seq) = self.forgeries.send(forger, p, rng) {
                    self.forgeries.under_seed.push(seq);
                }
                return;
            }
            _ => {
                let victim = &self.victims[rng.random_range(0..self.victims.len())];
                Some(victim.state().replica().doc().peer_id()).filter(|p| seen(*p))
            }
        };
        if let Some(peer) = peer {
            self.forgeries.send(forger, peer, rng);
        }
    }
}

/// An update under `victim` made from what the forger's replica holds.
fn forge(forger: &Client, victim: u64, rng: &mut StdRng) -> Option<Vec<u8>> {
    if rng.random_bool(0.5) {
        let snapshot = forger.state().replica().doc().snapshot().ok()?;
        let mut doc = SharedDoc::from_snapshot(&snapshot).ok()?;
        doc.author_as(victim).ok()?;
        let len = doc.len_chars();
        let pos = rng.random_range(0..=len);
        // Always "EVIL" (no honest edit writes capitals), so forged text
        // that got in shows in the final text.
        let del = usize::from(pos < len && rng.random_bool(0.3));
        doc.splice(pos, del, &format!("EVIL{}", random_text(rng)))
            .ok()?;
        doc.take_local_update()
    } else {
        let n = rng.random_range(1..=8);
        Some(collab_doc::forge_for_tests(victim, &"EVIL".repeat(n)))
    }
}

impl Forgeries {
    /// Sends one forgery under `victim`, with the forger's next seq, if the
    /// forger is welcomed on a live connection. Returns its seq.
    pub fn send(&mut self, forger: &Client, victim: u64, rng: &mut StdRng) -> Option<u64> {
        let data = forge(forger, victim, rng)?;
        let disconnects = {
            let st = forger.state();
            if !st.connected() || st.replica().state() != SyncState::Live {
                return None;
            }
            st.disconnects()
        };
        // Seq taken and event queued under the client's lock: its own
        // updates keep their order around it.
        let seq = forger.with_replica(|r| {
            let seq = r.next_seq();
            let msg = ClientMsg::Update {
                seq,
                data: Base64Bytes(data),
            };
            (seq, vec![msg])
        });
        self.seqs.push(seq);
        self.sent_at.push(disconnects);
        Some(seq)
    }

    /// Waits until the server answered every forgery sent on the forger's
    /// current connection (the others may have been cut with it). Which
    /// connection is current is read as the wait goes: a drop the forger's
    /// session had not heard of yet when the wait began (a `disconnect` at
    /// the end of its script) cuts the forgeries sent before it, whose
    /// answers then never come (the server answers on the connection an
    /// update came on, and ignores what a replaced connection still sent).
    pub async fn wait_answered(&self, forger: &Client) -> Result<(), ClientError> {
        forger
            .wait_for(|st| {
                let errors = st.errors();
                self.seqs
                    .iter()
                    .zip(&self.sent_at)
                    .filter(|(_, d)| **d == st.disconnects())
                    .all(|(seq, _)| {
                        st.acks().any(|a| a == *seq) || errors.iter().any(|e| e.1 == Some(*seq))
                    })
            })
            .await
    }
}
