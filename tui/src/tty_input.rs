//! Reading the terminal: a thread that hands every event over as soon as
//! it is parsed, and bursts of typed keys recognised as pastes.
//!
//! Why a thread and not crossterm's `EventStream`: crossterm's default
//! (mio) source waits on an edge-triggered epoll and reads at most 1 KiB
//! per wake-up, so a paste larger than that, typed as keys by a terminal
//! without bracketed paste (tmux `paste-buffer` without `-p`), stalled
//! after the first KiB until the next key brought a new edge. A blocking
//! `read` on its own thread sees the rest of the input at once. The bytes
//! are decoded here too rather than by crossterm, which loses Shift-F3
//! (see [`crate::tty_decode`]); the window's size changes come as SIGWINCH
//! to the event loop.
//!
//! Why bursts: keys typed by a person come one read at a time; keys that
//! arrive together, many in one go, are a paste. Typed one by one, each
//! line break of a paste would get Enter's indentation on top of the
//! pasted indentation (a stair) and a paste would be hundreds of edits;
//! [`paste_run`] turns such a run into one [`crate::action::Action::Paste`].

use std::io::{self, IsTerminal, Read};
use std::time::Duration;

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tokio::sync::mpsc;

use crate::tty_decode::Decoder;

/// Batches waiting between the reader thread and the event loop; a full
/// channel makes the reader wait (the terminal buffers the rest).
const QUEUE: usize = 64;

/// A run of at least this many text keys arriving together is a paste.
/// (Two keys can come together when a frame took long; three that make
/// text, without a key between them that does something else, are not a
/// person typing.)
pub const PASTE_MIN_KEYS: usize = 3;

/// Keys of a paste arrive closer together than this (the terminal writes
/// the whole text at once; only parsing separates them).
pub const PASTE_GAP: Duration = Duration::from_millis(15);

/// Bytes read from the terminal at once at most.
const READ_MAX: usize = 4096;

/// Bytes decoded together at most (one batch of events).
const BATCH_BYTES: usize = 64 * 1024;

/// After a read, the decoder looks this long for more before handing the
/// batch over: a paste written by the terminal at once may come in more
/// than one read, and should be one batch rather than a first key alone
/// and the rest.
const BATCH_WAIT: Duration = Duration::from_millis(1);

/// Starts the reader threads: one reads the terminal's bytes, the other
/// decodes those that arrived together (see [`crate::tty_decode`]) and
/// sends their events as one batch. They end when the receiver is dropped
/// and the next input arrives, or with the process.
pub fn spawn_reader() -> io::Result<mpsc::Receiver<io::Result<Vec<Event>>>> {
    let mut tty = open_tty()?;
    let (raw_tx, raw_rx) = std::sync::mpsc::sync_channel::<io::Result<(Vec<u8>, bool)>>(QUEUE);
    std::thread::Builder::new()
        .name("tty-read".into())
        .spawn(move || {
            loop {
                let mut buf = vec![0; READ_MAX];
                let read = match tty.read(&mut buf) {
                    Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(n) => {
                        buf.truncate(n);
                        // A full read: more is on its way.
                        Ok((buf, n == READ_MAX))
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => Err(e),
                };
                let failed = read.is_err();
                if raw_tx.send(read).is_err() || failed {
                    break;
                }
            }
        })?;
    let (tx, rx) = mpsc::channel(QUEUE);
    std::thread::Builder::new()
        .name("tty-decode".into())
        .spawn(move || {
            let mut decoder = Decoder::default();
            while let Ok(first) = raw_rx.recv() {
                let mut batch = Vec::new();
                let mut next = Some(first);
                let mut bytes = 0;
                let mut failed = None;
                while let Some(read) = next.take() {
                    match read {
                        Ok((chunk, more)) => {
                            decoder.feed(&chunk, more, &mut batch);
                            bytes += chunk.len();
                        }
                        Err(e) => failed = Some(e),
                    }
                    if failed.is_none() && bytes < BATCH_BYTES {
                        next = raw_rx.recv_timeout(BATCH_WAIT).ok();
                    }
                }
                if !batch.is_empty() && tx.blocking_send(Ok(batch)).is_err() {
                    break;
                }
                if let Some(e) = failed {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        })?;
    Ok(rx)
}

/// The terminal: standard input when it is one, else `/dev/tty` (as
/// crossterm reads it).
fn open_tty() -> io::Result<Box<dyn Read + Send>> {
    if io::stdin().is_terminal() {
        Ok(Box::new(io::stdin()))
    } else {
        Ok(Box::new(std::fs::File::open("/dev/tty")?))
    }
}

/// The text a key types when it is part of a paste: a printable char,
/// Enter (or Ctrl-J, a raw line feed) as a line break, Tab as a tab.
fn pasted_char(key: &KeyEvent) -> Option<char> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let mods = key.modifiers - KeyModifiers::SHIFT;
    match key.code {
        KeyCode::Char(c) if mods.is_empty() => Some(c),
        KeyCode::Char('j') if mods == KeyModifiers::CONTROL => Some('\n'),
        KeyCode::Enter if mods.is_empty() => Some('\n'),
        KeyCode::Tab if mods.is_empty() => Some('\t'),
        _ => None,
    }
}

/// Whether `events` end in a run of text keys long enough to be a paste
/// (whose rest may still be on its way: wait [`PASTE_GAP`] for it, so the
/// paste is one edit and its line breaks get no indentation).
pub fn ends_in_paste(events: &[Event]) -> bool {
    let run = events
        .iter()
        .rev()
        .take_while(|ev| matches!(ev, Event::Key(k) if pasted_char(k).is_some()))
        .count();
    run >= PASTE_MIN_KEYS
}

/// The paste at the start of `events`, if they begin with a run of at
/// least [`PASTE_MIN_KEYS`] text keys: its text and how many events it
/// took.
pub fn paste_run(events: &[Event]) -> Option<(String, usize)> {
    let mut text = String::new();
    let mut n = 0;
    for ev in events {
        let Event::Key(key) = ev else { break };
        let Some(c) = pasted_char(key) else { break };
        text.push(c);
        n += 1;
    }
    (n >= PASTE_MIN_KEYS).then_some((text, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, mods: KeyModifiers) -> Event {
        Event::Key(KeyEvent::new(code, mods))
    }

    fn typed(s: &str) -> Vec<Event> {
        s.chars()
            .map(|c| match c {
                '\r' => key(KeyCode::Enter, KeyModifiers::NONE),
                c => key(KeyCode::Char(c), KeyModifiers::NONE),
            })
            .collect()
    }

    #[test]
    fn a_run_of_text_keys_is_one_paste() {
        let mut evs = typed("  a\r  b\r");
        evs.push(key(KeyCode::Char('s'), KeyModifiers::CONTROL));
        evs.extend(typed("xyz"));
        assert_eq!(paste_run(&evs), Some(("  a\n  b\n".into(), 8)));
        // The key that does something else ends the run.
        assert_eq!(paste_run(&evs[8..]), None);
        assert_eq!(paste_run(&evs[9..]), Some(("xyz".into(), 3)));
        assert!(ends_in_paste(&evs));
        assert!(!ends_in_paste(&evs[..9]));
    }

    #[test]
    fn keys_a_person_types_are_not_a_paste() {
        assert_eq!(paste_run(&typed("ab")), None);
        let ctrl_j = key(KeyCode::Char('j'), KeyModifiers::CONTROL);
        let shifted = key(KeyCode::Char('A'), KeyModifiers::SHIFT);
        let tab = key(KeyCode::Tab, KeyModifiers::NONE);
        assert_eq!(
            paste_run(&[shifted, ctrl_j, tab]),
            Some(("A\n\t".into(), 3))
        );
        let arrows = vec![key(KeyCode::Left, KeyModifiers::NONE); 5];
        assert_eq!(paste_run(&arrows), None);
    }
}
