//! The two tasks of each simulated user: the writer, which types on the
//! pacer's ticks and records what it sent, and the reader, which drains
//! its socket and matches each update to its sender's send for latency.
//! They work on the phase's [`Shared`] state, which `run_phase` owns.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;
use std::time::Duration;

use collab_protocol::{ClientMsg, ServerMsg};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;

use super::socket::{IO_TIMEOUT, Ws};
use super::typist::{Keyboard, Typist};
use super::{NO_TICK, Shared, Typing};

fn hash_bytes(data: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    h.finish()
}

pub(super) async fn writer(
    shared: Arc<Shared>,
    keyboard: Keyboard,
    mut sink: SplitSink<Ws, Message>,
    me: usize,
    mut stop: watch::Receiver<bool>,
) {
    let mut seq = 0u64;
    let room = me / shared.users_per_room;
    let (Some(room_sent), Some(turn), Some(tick)) = (
        shared.room_sent.get(room),
        shared.turns.get(me),
        shared.ticks.get(me),
    ) else {
        return;
    };
    let my_sent = shared.sent.get(me);
    loop {
        tokio::select! {
            () = tick.wake.notified() => {}
            _ = stop.changed() => break,
        }
        // Take the tick: from now on the pacer may give me the next one.
        let scheduled = match tick.scheduled.swap(NO_TICK, Ordering::AcqRel) {
            NO_TICK => continue,
            at => shared.t0 + Duration::from_nanos(at),
        };
        if Instant::now() >= shared.end {
            // Sending is over; wait for the stop to close.
            let _ = stop.changed().await;
            break;
        }
        let mut waited = false;
        if shared.typing == Typing::Turns {
            // Wait (bounded by the stop) until I have received every
            // update sent in my room. Nothing awaits between this check
            // and the keystroke (one thread), so the room's typing doc
            // then holds exactly what I have: my edit builds on it.
            while turn.seen.load(Ordering::Relaxed) < room_sent.load(Ordering::Relaxed) {
                waited = true;
                tokio::select! {
                    () = turn.ready.notified() => {}
                    _ = stop.changed() => return,
                }
            }
            if waited {
                shared.waits.fetch_add(1, Ordering::Relaxed);
            }
        }
        let data = keyboard.keystroke();
        if data.is_empty() {
            continue;
        }
        room_sent.fetch_add(1, Ordering::Relaxed);
        turn.seen.fetch_add(1, Ordering::Relaxed);
        seq += 1;
        let hash = hash_bytes(&data);
        let t = Instant::now();
        if let Some(list) = my_sent {
            list.lock().push((t, hash));
        }
        let text = if shared.relay {
            ServerMsg::Update {
                from: me as u64,
                data: data.into(),
            }
            .to_json()
        } else {
            ClientMsg::Update {
                seq,
                data: data.into(),
            }
            .to_json()
        };
        shared.sent_total.fetch_add(1, Ordering::Relaxed);
        if shared.in_window(t) {
            shared.sent_window.fetch_add(1, Ordering::Relaxed);
            if !waited {
                let late = t.saturating_duration_since(scheduled);
                let _ = shared.pacing.lock().record(late.as_nanos() as u64);
            }
            {
                let mut last = shared.last_send.lock();
                if let Some(l) = *last {
                    let gap = t.saturating_duration_since(l).as_nanos().max(1) as u64;
                    let _ = shared.gaps.lock().record(gap);
                }
                *last = Some(t);
            }
        }
        match timeout(IO_TIMEOUT, sink.send(Message::text(text))).await {
            Ok(Ok(())) => {}
            _ => {
                if !shared.stopping.load(Ordering::Relaxed) {
                    shared.error(|e| e.send_failed += 1);
                }
                return;
            }
        }
    }
    let _ = timeout(Duration::from_secs(1), sink.close()).await;
}

/// `replica`: my replica, when I merge what I receive (concurrent).
pub(super) async fn reader(
    shared: Arc<Shared>,
    replica: Option<Arc<Mutex<Typist>>>,
    mut stream: SplitStream<Ws>,
    me: usize,
    by_member: Arc<HashMap<u64, usize>>,
) {
    let users = shared.users_per_room;
    let room = me / users;
    // How many updates I have had from each member of my room, by place.
    let mut counts = vec![0usize; users];
    let (Some(room_sent), Some(turn)) = (shared.room_sent.get(room), shared.turns.get(me)) else {
        return;
    };
    loop {
        let frame = match stream.next().await {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                if !shared.stopping.load(Ordering::Relaxed) {
                    shared.error(|e| e.closed += 1);
                }
                return;
            }
            Some(Ok(_)) => continue,
        };
        let msg = match ServerMsg::from_json(&frame) {
            Ok(m) => m,
            Err(_) => {
                shared.error(|e| e.unexpected += 1);
                continue;
            }
        };
        let now = Instant::now();
        match msg {
            ServerMsg::Update { from, data } => {
                let sender = if shared.relay {
                    Some(from as usize)
                } else {
                    by_member.get(&from).copied()
                };
                let Some(sender) = sender.filter(|s| s / users == room && *s != me) else {
                    shared.error(|e| e.unexpected += 1);
                    continue;
                };
                let Some(n) = counts.get_mut(sender % users) else {
                    continue;
                };
                let entry = shared
                    .sent
                    .get(sender)
                    .and_then(|l| l.lock().get(*n).copied());
                *n += 1;
                match entry {
                    Some((t, hash)) if hash == hash_bytes(data.as_slice()) => {
                        shared.delivered_total.fetch_add(1, Ordering::Relaxed);
                        if shared.in_window(now) {
                            shared.delivered_window.fetch_add(1, Ordering::Relaxed);
                        }
                        if shared.in_window(t) {
                            let took = now.saturating_duration_since(t).as_nanos() as u64;
                            let _ = shared.latency.lock().record(took);
                        }
                    }
                    Some(_) => shared.error(|e| e.mismatch += 1),
                    None => shared.error(|e| e.unexpected += 1),
                }
                match (&replica, shared.typing) {
                    (Some(typist), _) => {
                        if !typist.lock().receive(data.as_slice()) {
                            shared.error(|e| e.import += 1);
                        }
                    }
                    (None, Typing::Turns) => {
                        // Nothing to merge: the room's typing doc has it.
                        // Wake my writer once I have everything sent.
                        let seen = turn.seen.fetch_add(1, Ordering::Relaxed) + 1;
                        if seen >= room_sent.load(Ordering::Relaxed) {
                            turn.ready.notify_one();
                        }
                    }
                    (None, _) => {}
                }
            }
            ServerMsg::Ack { seq } => {
                // Acks come in order: the nth ack is for my nth send.
                let entry = shared
                    .sent
                    .get(me)
                    .and_then(|l| l.lock().get((seq as usize).wrapping_sub(1)).copied());
                shared.acked_total.fetch_add(1, Ordering::Relaxed);
                if let Some((t, _)) = entry
                    && shared.in_window(t)
                {
                    let took = now.saturating_duration_since(t).as_nanos() as u64;
                    let _ = shared.ack.lock().record(took);
                }
            }
            ServerMsg::Error { code, .. } => {
                shared.error(|e| *e.server.entry(code.to_string()).or_insert(0) += 1);
            }
            ServerMsg::Shutdown { .. } => {
                if !shared.stopping.load(Ordering::Relaxed) {
                    shared.error(|e| e.closed += 1);
                }
                return;
            }
            _ => {}
        }
    }
}
