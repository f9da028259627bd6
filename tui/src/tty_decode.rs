//! The terminal's bytes as crossterm [`Event`]s: keys, mouse and pastes.
//!
//! Why our own decoder rather than `crossterm::event::read`: xterm and
//! tmux send Shift-F3 as `CSI 1 ; 2 R`, which is also the form of a
//! cursor-position report (row 1, column 2). crossterm 0.29 reads it as a
//! report only, keeps it in a queue no public call drains, and the key is
//! lost. This editor never asks for the cursor position (no `CSI 6 n` is
//! ever written, and `crossterm::cursor::position` is not called), so here
//! every `CSI r ; c R` is a key: `CSI 1 ; m R` is F3 with the modifiers `m`
//! (as `CSI 1 ; m P/Q/S` are F1, F2, F4), and any other row is ignored.
//!
//! Everything else follows crossterm's own parser (its rules and its
//! events, so the keymap and the tests are unchanged): legacy xterm keys
//! (`CSI`/`SS3` cursor and function keys, `CSI n ~`, modifiers as
//! `;1+mask`), control characters, UTF-8, SGR and rxvt mouse reports,
//! focus reports, and bracketed paste. A lone ESC at the end of what has
//! arrived is the Esc key, as in crossterm.

use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyEventState, KeyModifiers, MouseButton, MouseEvent,
    MouseEventKind,
};

const ESC: u8 = 0x1b;
const PASTE_START: &[u8] = b"\x1b[200~";
const PASTE_END: &[u8] = b"\x1b[201~";
/// A sequence longer than this (but a paste) is garbage: dropped rather
/// than kept waiting for a final byte.
const SEQUENCE_MAX: usize = 256;

/// What the bytes so far make.
#[derive(Debug, PartialEq)]
enum Parsed {
    /// An event; the bytes are used up.
    Event(Event),
    /// A sequence this editor has no use for; the bytes are used up.
    Ignored,
    /// A sequence (or UTF-8 character) that is not complete yet.
    Incomplete,
}

/// Turns the terminal's bytes into events; a sequence cut between two
/// reads waits for the rest.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    buffer: Vec<u8>,
}

impl Decoder {
    /// Decodes `bytes` into `out`. `more`: more input is known to follow
    /// (the read filled its buffer), so a lone ESC at the end may start a
    /// sequence rather than be the Esc key.
    pub(crate) fn feed(&mut self, bytes: &[u8], more: bool, out: &mut Vec<Event>) {
        for (i, &byte) in bytes.iter().enumerate() {
            self.buffer.push(byte);
            let more = more || i + 1 < bytes.len();
            let parsed =
                if self.buffer.len() > SEQUENCE_MAX && !self.buffer.starts_with(PASTE_START) {
                    Err(Malformed)
                } else {
                    parse(&self.buffer, more)
                };
            match parsed {
                Ok(Parsed::Event(ev)) => {
                    out.push(ev);
                    self.buffer.clear();
                }
                Ok(Parsed::Ignored) | Err(Malformed) => self.buffer.clear(),
                Ok(Parsed::Incomplete) => {}
            }
        }
    }
}

/// Bytes that are no event this decoder knows: dropped.
#[derive(Debug, PartialEq)]
struct Malformed;

type Result<T> = std::result::Result<T, Malformed>;

fn key(code: KeyCode, modifiers: KeyModifiers) -> Parsed {
    Parsed::Event(Event::Key(KeyEvent::new(code, modifiers)))
}

fn plain(code: KeyCode) -> Parsed {
    key(code, KeyModifiers::NONE)
}

/// One event from the start of `buffer`, which holds no complete event
/// before its last byte.
fn parse(buffer: &[u8], more: bool) -> Result<Parsed> {
    let Some(&first) = buffer.first() else {
        return Ok(Parsed::Incomplete);
    };
    Ok(match first {
        ESC => match buffer.get(1) {
            None if more => Parsed::Incomplete,
            None => plain(KeyCode::Esc),
            Some(b'O') => match buffer.get(2) {
                None => Parsed::Incomplete,
                Some(b'D') => plain(KeyCode::Left),
                Some(b'C') => plain(KeyCode::Right),
                Some(b'A') => plain(KeyCode::Up),
                Some(b'B') => plain(KeyCode::Down),
                Some(b'H') => plain(KeyCode::Home),
                Some(b'F') => plain(KeyCode::End),
                Some(&c @ b'P'..=b'S') => plain(KeyCode::F(1 + c - b'P')),
                Some(_) => return Err(Malformed),
            },
            Some(b'[') => return parse_csi(buffer),
            Some(&ESC) => plain(KeyCode::Esc),
            // ESC then a key: that key with Alt.
            Some(_) => match parse(&buffer[1..], more)? {
                Parsed::Event(Event::Key(mut k)) => {
                    k.modifiers |= KeyModifiers::ALT;
                    Parsed::Event(Event::Key(k))
                }
                other => other,
            },
        },
        b'\r' => plain(KeyCode::Enter),
        // In raw mode a line feed is Ctrl-J (the keymap makes it Enter).
        b'\t' => plain(KeyCode::Tab),
        0x7f => plain(KeyCode::Backspace),
        c @ 0x01..=0x1a => key(KeyCode::Char((c - 1 + b'a') as char), KeyModifiers::CONTROL),
        c @ 0x1c..=0x1f => key(
            KeyCode::Char((c - 0x1c + b'4') as char),
            KeyModifiers::CONTROL,
        ),
        0 => key(KeyCode::Char(' '), KeyModifiers::CONTROL),
        _ => match parse_utf8_char(buffer)? {
            Some(c) if c.is_uppercase() => key(KeyCode::Char(c), KeyModifiers::SHIFT),
            Some(c) => plain(KeyCode::Char(c)),
            None => Parsed::Incomplete,
        },
    })
}

/// `ESC [ ...`: the buffer starts with a CSI.
fn parse_csi(buffer: &[u8]) -> Result<Parsed> {
    let Some(&third) = buffer.get(2) else {
        return Ok(Parsed::Incomplete);
    };
    let last = buffer[buffer.len() - 1];
    Ok(match third {
        b'[' => match buffer.get(3) {
            None => Parsed::Incomplete,
            // The Linux console's F1 to F5.
            Some(&c @ b'A'..=b'E') => plain(KeyCode::F(1 + c - b'A')),
            Some(_) => return Err(Malformed),
        },
        b'D' => plain(KeyCode::Left),
        b'C' => plain(KeyCode::Right),
        b'A' => plain(KeyCode::Up),
        b'B' => plain(KeyCode::Down),
        b'H' => plain(KeyCode::Home),
        b'F' => plain(KeyCode::End),
        b'Z' => key(KeyCode::BackTab, KeyModifiers::SHIFT),
        b'M' => return parse_x10_mouse(buffer),
        b'<' => return parse_sgr_mouse(buffer),
        b'I' => Parsed::Event(Event::FocusGained),
        b'O' => Parsed::Event(Event::FocusLost),
        b';' => return parse_modified_key(buffer),
        b'P' => plain(KeyCode::F(1)),
        b'Q' => plain(KeyCode::F(2)),
        b'S' => plain(KeyCode::F(4)),
        // Replies to queries this editor does not make.
        b'?' if (0x40..=0x7e).contains(&last) && buffer.len() > 3 => Parsed::Ignored,
        b'?' => Parsed::Incomplete,
        b'0'..=b'9' => {
            if buffer.starts_with(PASTE_START) {
                return Ok(parse_paste(buffer));
            }
            // Parameters until a final byte (0x40 to 0x7e).
            if buffer.len() == 3 || !(0x40..=0x7e).contains(&last) {
                return Ok(Parsed::Incomplete);
            }
            match last {
                b'M' => return parse_rxvt_mouse(buffer),
                b'~' => return parse_tilde_key(buffer),
                b'R' => return parse_csi_r(buffer),
                // Kitty's keyboard protocol: never switched on here.
                b'u' => Parsed::Ignored,
                _ => return parse_modified_key(buffer),
            }
        }
        _ => return Err(Malformed),
    })
}

/// `CSI 200 ~ text CSI 201 ~`.
fn parse_paste(buffer: &[u8]) -> Parsed {
    if buffer.len() >= PASTE_START.len() + PASTE_END.len() && buffer.ends_with(PASTE_END) {
        let text = &buffer[PASTE_START.len()..buffer.len() - PASTE_END.len()];
        Parsed::Event(Event::Paste(String::from_utf8_lossy(text).into_owned()))
    } else {
        Parsed::Incomplete
    }
}

/// The `;`-separated parameters between `ESC [` (and `skip` more bytes)
/// and the final byte.
fn params(buffer: &[u8], skip: usize) -> Result<std::str::Split<'_, char>> {
    let inner = buffer.get(2 + skip..buffer.len() - 1).ok_or(Malformed)?;
    Ok(std::str::from_utf8(inner)
        .map_err(|_| Malformed)?
        .split(';'))
}

fn number<T: std::str::FromStr>(part: Option<&str>) -> Result<T> {
    part.ok_or(Malformed)?.parse().map_err(|_| Malformed)
}

/// `mask[:kind]`: xterm's modifier parameter (1 + the modifier bits) and
/// the kitty protocol's event kind.
fn modifiers_and_kind(part: Option<&str>) -> Result<(u8, KeyEventKind)> {
    let mut sub = part.ok_or(Malformed)?.split(':');
    let mask = number::<u8>(sub.next())?;
    let kind = match sub.next().map(str::parse::<u8>) {
        Some(Ok(2)) => KeyEventKind::Repeat,
        Some(Ok(3)) => KeyEventKind::Release,
        _ => KeyEventKind::Press,
    };
    Ok((mask, kind))
}

fn modifiers(mask: u8) -> KeyModifiers {
    let bits = mask.saturating_sub(1);
    [
        (1, KeyModifiers::SHIFT),
        (2, KeyModifiers::ALT),
        (4, KeyModifiers::CONTROL),
        (8, KeyModifiers::SUPER),
        (16, KeyModifiers::HYPER),
        (32, KeyModifiers::META),
    ]
    .into_iter()
    .filter(|(bit, _)| bits & bit != 0)
    .fold(KeyModifiers::NONE, |m, (_, k)| m | k)
}

fn lock_state(mask: u8) -> KeyEventState {
    let bits = mask.saturating_sub(1);
    let mut state = KeyEventState::NONE;
    if bits & 64 != 0 {
        state |= KeyEventState::CAPS_LOCK;
    }
    if bits & 128 != 0 {
        state |= KeyEventState::NUM_LOCK;
    }
    state
}

/// `CSI 1 ; m X` (or `CSI m X`): a cursor or F1-F4 key with modifiers.
fn parse_modified_key(buffer: &[u8]) -> Result<Parsed> {
    if !(0x40..=0x7e).contains(&buffer[buffer.len() - 1]) {
        return Ok(Parsed::Incomplete);
    }
    let mut parts = params(buffer, 0)?;
    parts.next();
    let (mods, kind) = match modifiers_and_kind(parts.next()) {
        Ok((mask, kind)) => (modifiers(mask), kind),
        Err(_) if buffer.len() > 3 => {
            let digit = (buffer[buffer.len() - 2] as char)
                .to_digit(10)
                .ok_or(Malformed)?;
            (modifiers(digit as u8), KeyEventKind::Press)
        }
        Err(_) => (KeyModifiers::NONE, KeyEventKind::Press),
    };
    let code = match buffer[buffer.len() - 1] {
        b'A' => KeyCode::Up,
        b'B' => KeyCode::Down,
        b'C' => KeyCode::Right,
        b'D' => KeyCode::Left,
        b'F' => KeyCode::End,
        b'H' => KeyCode::Home,
        b'P' => KeyCode::F(1),
        b'Q' => KeyCode::F(2),
        b'R' => KeyCode::F(3),
        b'S' => KeyCode::F(4),
        _ => return Err(Malformed),
    };
    Ok(Parsed::Event(Event::Key(KeyEvent::new_with_kind(
        code, mods, kind,
    ))))
}

/// `CSI r ; c R`: F3 with modifiers when `r` is 1 (see the module doc);
/// otherwise a cursor-position report nobody asked for.
fn parse_csi_r(buffer: &[u8]) -> Result<Parsed> {
    let mut parts = params(buffer, 0)?;
    if number::<u16>(parts.next())? != 1 {
        return Ok(Parsed::Ignored);
    }
    parse_modified_key(buffer)
}

/// `CSI n [; m] ~`: Home, Insert, Delete, End, PgUp, PgDn, F1-F20.
fn parse_tilde_key(buffer: &[u8]) -> Result<Parsed> {
    let mut parts = params(buffer, 0)?;
    let first = number::<u8>(parts.next())?;
    let (mods, kind, state) = match modifiers_and_kind(parts.next()) {
        Ok((mask, kind)) => (modifiers(mask), kind, lock_state(mask)),
        Err(_) => (KeyModifiers::NONE, KeyEventKind::Press, KeyEventState::NONE),
    };
    let code = match first {
        1 | 7 => KeyCode::Home,
        2 => KeyCode::Insert,
        3 => KeyCode::Delete,
        4 | 8 => KeyCode::End,
        5 => KeyCode::PageUp,
        6 => KeyCode::PageDown,
        v @ 11..=15 => KeyCode::F(v - 10),
        v @ 17..=21 => KeyCode::F(v - 11),
        v @ 23..=26 => KeyCode::F(v - 12),
        v @ 28..=29 => KeyCode::F(v - 15),
        v @ 31..=34 => KeyCode::F(v - 17),
        _ => return Err(Malformed),
    };
    Ok(Parsed::Event(Event::Key(
        KeyEvent::new_with_kind_and_state(code, mods, kind, state),
    )))
}

/// `CSI < b ; x ; y M` (pressed, moved) or `... m` (released).
fn parse_sgr_mouse(buffer: &[u8]) -> Result<Parsed> {
    let last = buffer[buffer.len() - 1];
    if last != b'M' && last != b'm' {
        return Ok(Parsed::Incomplete);
    }
    let mut parts = params(buffer, 1)?;
    let (kind, modifiers) = mouse_button(number(parts.next())?)?;
    let column = number::<u16>(parts.next())?.saturating_sub(1);
    let row = number::<u16>(parts.next())?.saturating_sub(1);
    let kind = match (kind, last) {
        (MouseEventKind::Down(b), b'm') => MouseEventKind::Up(b),
        (kind, _) => kind,
    };
    Ok(mouse(kind, column, row, modifiers))
}

/// `CSI b ; x ; y M` (rxvt's form: each number offset by 32 for `b`).
fn parse_rxvt_mouse(buffer: &[u8]) -> Result<Parsed> {
    let mut parts = params(buffer, 0)?;
    let b = number::<u8>(parts.next())?
        .checked_sub(32)
        .ok_or(Malformed)?;
    let (kind, modifiers) = mouse_button(b)?;
    let column = number::<u16>(parts.next())?.saturating_sub(1);
    let row = number::<u16>(parts.next())?.saturating_sub(1);
    Ok(mouse(kind, column, row, modifiers))
}

/// `CSI M b x y`: X10's form, three bytes each offset by 32.
fn parse_x10_mouse(buffer: &[u8]) -> Result<Parsed> {
    if buffer.len() < 6 {
        return Ok(Parsed::Incomplete);
    }
    let b = buffer[3].checked_sub(32).ok_or(Malformed)?;
    let (kind, modifiers) = mouse_button(b)?;
    let column = u16::from(buffer[4].saturating_sub(32)).saturating_sub(1);
    let row = u16::from(buffer[5].saturating_sub(32)).saturating_sub(1);
    Ok(mouse(kind, column, row, modifiers))
}

fn mouse(kind: MouseEventKind, column: u16, row: u16, modifiers: KeyModifiers) -> Parsed {
    Parsed::Event(Event::Mouse(MouseEvent {
        kind,
        column,
        row,
        modifiers,
    }))
}

/// A mouse report's button byte: which button, dragging or not, and the
/// modifiers held.
fn mouse_button(b: u8) -> Result<(MouseEventKind, KeyModifiers)> {
    let button = (b & 0b11) | ((b & 0b1100_0000) >> 4);
    let dragging = b & 0b10_0000 != 0;
    let kind = match (button, dragging) {
        (0, false) => MouseEventKind::Down(MouseButton::Left),
        (1, false) => MouseEventKind::Down(MouseButton::Middle),
        (2, false) => MouseEventKind::Down(MouseButton::Right),
        (0, true) => MouseEventKind::Drag(MouseButton::Left),
        (1, true) => MouseEventKind::Drag(MouseButton::Middle),
        (2, true) => MouseEventKind::Drag(MouseButton::Right),
        (3, false) => MouseEventKind::Up(MouseButton::Left),
        (3..=5, true) => MouseEventKind::Moved,
        (4, false) => MouseEventKind::ScrollUp,
        (5, false) => MouseEventKind::ScrollDown,
        (6, false) => MouseEventKind::ScrollLeft,
        (7, false) => MouseEventKind::ScrollRight,
        _ => return Err(Malformed),
    };
    let mut modifiers = KeyModifiers::NONE;
    if b & 0b100 != 0 {
        modifiers |= KeyModifiers::SHIFT;
    }
    if b & 0b1000 != 0 {
        modifiers |= KeyModifiers::ALT;
    }
    if b & 0b1_0000 != 0 {
        modifiers |= KeyModifiers::CONTROL;
    }
    Ok((kind, modifiers))
}

/// The character `buffer` holds, `None` while its UTF-8 is incomplete.
fn parse_utf8_char(buffer: &[u8]) -> Result<Option<char>> {
    match std::str::from_utf8(buffer) {
        Ok(s) => Ok(Some(s.chars().next().ok_or(Malformed)?)),
        Err(e) if e.error_len().is_none() && buffer.len() < 4 => Ok(None),
        Err(_) => Err(Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Vec<Event> {
        let mut out = Vec::new();
        Decoder::default().feed(bytes, false, &mut out);
        out
    }

    fn k(code: KeyCode, mods: KeyModifiers) -> Event {
        Event::Key(KeyEvent::new(code, mods))
    }

    #[test]
    fn shift_f3_as_xterm_and_tmux_send_it() {
        assert_eq!(
            decode(b"\x1b[1;2R"),
            vec![k(KeyCode::F(3), KeyModifiers::SHIFT)]
        );
        assert_eq!(
            decode(b"\x1b[1;5R\x1bOR"),
            vec![
                k(KeyCode::F(3), KeyModifiers::CONTROL),
                k(KeyCode::F(3), KeyModifiers::NONE),
            ]
        );
        // Any other row is a cursor report nobody asked for: no key, and
        // what follows it is read as usual.
        assert_eq!(
            decode(b"\x1b[12;40Rx"),
            vec![k(KeyCode::Char('x'), KeyModifiers::NONE)]
        );
    }

    #[test]
    fn function_and_cursor_keys_with_modifiers() {
        assert_eq!(
            decode(b"\x1b[1;2P\x1b[13;2~\x1b[1;5D\x1b[1;6C\x1b[3~\x1b[5~\x1b[6;5~\x1b[Z"),
            vec![
                k(KeyCode::F(1), KeyModifiers::SHIFT),
                k(KeyCode::F(3), KeyModifiers::SHIFT),
                k(KeyCode::Left, KeyModifiers::CONTROL),
                k(KeyCode::Right, KeyModifiers::CONTROL | KeyModifiers::SHIFT),
                k(KeyCode::Delete, KeyModifiers::NONE),
                k(KeyCode::PageUp, KeyModifiers::NONE),
                k(KeyCode::PageDown, KeyModifiers::CONTROL),
                k(KeyCode::BackTab, KeyModifiers::SHIFT),
            ]
        );
        assert_eq!(
            decode(b"\x1bOA\x1b[B\x1b[H\x1b[4~\x1b[15~\x1b[24~"),
            vec![
                k(KeyCode::Up, KeyModifiers::NONE),
                k(KeyCode::Down, KeyModifiers::NONE),
                k(KeyCode::Home, KeyModifiers::NONE),
                k(KeyCode::End, KeyModifiers::NONE),
                k(KeyCode::F(5), KeyModifiers::NONE),
                k(KeyCode::F(12), KeyModifiers::NONE),
            ]
        );
    }

    #[test]
    fn characters_and_control_keys() {
        assert_eq!(
            decode("aÉ€🎉\r\n\t\x7f\x01\x13\x00".as_bytes()),
            vec![
                k(KeyCode::Char('a'), KeyModifiers::NONE),
                k(KeyCode::Char('É'), KeyModifiers::SHIFT),
                k(KeyCode::Char('€'), KeyModifiers::NONE),
                k(KeyCode::Char('🎉'), KeyModifiers::NONE),
                k(KeyCode::Enter, KeyModifiers::NONE),
                k(KeyCode::Char('j'), KeyModifiers::CONTROL),
                k(KeyCode::Tab, KeyModifiers::NONE),
                k(KeyCode::Backspace, KeyModifiers::NONE),
                k(KeyCode::Char('a'), KeyModifiers::CONTROL),
                k(KeyCode::Char('s'), KeyModifiers::CONTROL),
                k(KeyCode::Char(' '), KeyModifiers::CONTROL),
            ]
        );
        // Alt: ESC before the key. Esc alone, or twice.
        assert_eq!(
            decode(b"\x1bs\x1b\x1b\x1b"),
            vec![
                k(KeyCode::Char('s'), KeyModifiers::ALT),
                k(KeyCode::Esc, KeyModifiers::NONE),
                k(KeyCode::Esc, KeyModifiers::NONE),
            ]
        );
        // An endless sequence is dropped, not kept: at its 257th byte.
        let mut long = b"\x1b[1".to_vec();
        long.extend([b';'; SEQUENCE_MAX + 1 - 3]);
        long.push(b'z');
        assert_eq!(
            decode(&long),
            vec![k(KeyCode::Char('z'), KeyModifiers::NONE)]
        );
        // Malformed UTF-8 is dropped; what follows is read.
        assert_eq!(
            decode(b"\xffx"),
            vec![k(KeyCode::Char('x'), KeyModifiers::NONE)]
        );
    }

    #[test]
    fn sequences_cut_between_reads_wait_for_the_rest() {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        d.feed(b"\x1b", true, &mut out);
        d.feed(b"[1;", true, &mut out);
        d.feed("2R\u{e9}".as_bytes().split_at(3).0, false, &mut out);
        assert_eq!(out, vec![k(KeyCode::F(3), KeyModifiers::SHIFT)]);
        d.feed(&"\u{e9}".as_bytes()[1..], false, &mut out);
        assert_eq!(out[1], k(KeyCode::Char('é'), KeyModifiers::NONE));
        // A lone ESC at the end of the input is the Esc key.
        out.clear();
        d.feed(b"\x1b", false, &mut out);
        assert_eq!(out, vec![k(KeyCode::Esc, KeyModifiers::NONE)]);
    }

    #[test]
    fn pastes_and_the_mouse() {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        d.feed(b"\x1b[200~a\x1b[1;2Rb\r", true, &mut out);
        assert!(out.is_empty());
        d.feed(b"\nc\x1b[201~x", false, &mut out);
        assert_eq!(
            out,
            vec![
                Event::Paste("a\x1b[1;2Rb\r\nc".into()),
                k(KeyCode::Char('x'), KeyModifiers::NONE),
            ]
        );
        let m = |kind, column, row, modifiers| {
            Event::Mouse(MouseEvent {
                kind,
                column,
                row,
                modifiers,
            })
        };
        assert_eq!(
            decode(b"\x1b[<0;10;5M\x1b[<32;11;5M\x1b[<0;11;5m\x1b[<65;1;1M\x1b[<4;2;3M"),
            vec![
                m(
                    MouseEventKind::Down(MouseButton::Left),
                    9,
                    4,
                    KeyModifiers::NONE
                ),
                m(
                    MouseEventKind::Drag(MouseButton::Left),
                    10,
                    4,
                    KeyModifiers::NONE
                ),
                m(
                    MouseEventKind::Up(MouseButton::Left),
                    10,
                    4,
                    KeyModifiers::NONE
                ),
                m(MouseEventKind::ScrollDown, 0, 0, KeyModifiers::NONE),
                m(
                    MouseEventKind::Down(MouseButton::Left),
                    1,
                    2,
                    KeyModifiers::SHIFT
                ),
            ]
        );
        assert_eq!(
            decode(b"\x1b[I\x1b[O"),
            vec![Event::FocusGained, Event::FocusLost]
        );
    }
}
