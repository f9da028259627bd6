//! The terminal backend: crossterm's, except that a row holding a cluster
//! of several code points (an emoji with a skin tone, a flag, a family) is
//! written in one stretch from its first column whenever it changes.
//!
//! Why: ratatui writes only the cells that changed, moving the cursor
//! (CUP) over the rest, and always after a wide character. tmux 3.3 drops
//! the skin-tone modifier of an emoji when a character is written on its
//! row after such a move (`a👍🏽` then CUP and `b` shows `a👍b`), though the
//! bytes are right. Written in one stretch, with an empty filler for the
//! second column of each wide cluster so that no move is needed, the row
//! keeps its clusters whole. A row that held such a cluster is written
//! whole too: ratatui does not clear the second column of a wide cluster
//! replaced by a narrow character, and tmux, which keeps the two halves of
//! a flag in two cells, would show half a flag there after a horizontal
//! scroll. Other rows are drawn as ratatui draws them. A copy of the screen (`shadow`) supplies the
//! unchanged cells of a rewritten row.

use std::collections::BTreeSet;
use std::io;

use ratatui::backend::{Backend, ClearType, WindowSize};
use ratatui::buffer::{Buffer, Cell};
use ratatui::layout::{Position, Rect, Size};
use unicode_width::UnicodeWidthStr;

pub struct RowBackend<B> {
    inner: B,
    shadow: Buffer,
}

impl<B: Backend<Error = io::Error>> RowBackend<B> {
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            shadow: Buffer::empty(Rect::default()),
        }
    }

    fn reset_shadow(&mut self) -> io::Result<()> {
        let size = self.inner.size()?;
        self.shadow = Buffer::empty(Rect::new(0, 0, size.width, size.height));
        Ok(())
    }
}

/// A cluster of several code points: what tmux may split.
fn fragile(cell: &Cell) -> bool {
    let s = cell.symbol();
    s.chars().nth(1).is_some() && s.width() >= 2
}

/// The rows among `updates` that hold a fragile cluster in `screen`.
fn fragile_rows(screen: &Buffer, updates: &[(u16, u16, Cell)]) -> BTreeSet<u16> {
    let area = screen.area;
    updates
        .iter()
        .map(|u| u.1)
        .filter(|&y| {
            y < area.height && (0..area.width).any(|x| screen.cell((x, y)).is_some_and(fragile))
        })
        .collect()
}

/// The cells to write for `updates`, with every row that holds a fragile
/// cluster now, or held one before (`was_fragile`: ratatui does not clear
/// the second column of a wide cluster replaced by a narrow character, and
/// tmux keeps half a flag there), written whole in one stretch (see the
/// module doc).
fn expand(
    shadow: &Buffer,
    was_fragile: BTreeSet<u16>,
    updates: Vec<(u16, u16, Cell)>,
) -> Vec<(u16, u16, Cell)> {
    let area = shadow.area;
    let mut rows = fragile_rows(shadow, &updates);
    rows.extend(was_fragile);
    if rows.is_empty() {
        return updates;
    }
    let mut out: Vec<(u16, u16, Cell)> = updates
        .iter()
        .filter(|u| !rows.contains(&u.1))
        .cloned()
        .collect();
    for &y in &rows {
        let mut covered = 0usize;
        let mut wide_style = Cell::EMPTY;
        for x in 0..area.width {
            let Some(cell) = shadow.cell((x, y)) else {
                break;
            };
            if covered > 0 {
                // The second column of a wide cluster: nothing to print,
                // but no cursor move either.
                covered -= 1;
                let mut filler = wide_style.clone();
                filler.set_symbol("");
                out.push((x, y, filler));
                continue;
            }
            covered = cell.symbol().width().saturating_sub(1);
            wide_style = cell.clone();
            out.push((x, y, cell.clone()));
        }
    }
    out.sort_by_key(|u| (u.1, u.0));
    out
}

impl<B: Backend<Error = io::Error>> Backend for RowBackend<B> {
    type Error = io::Error;

    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        let updates: Vec<(u16, u16, Cell)> = content.map(|(x, y, c)| (x, y, c.clone())).collect();
        let area = self.shadow.area;
        if updates
            .iter()
            .any(|u| u.0 >= area.width || u.1 >= area.height)
        {
            self.reset_shadow()?;
        }
        let was_fragile = fragile_rows(&self.shadow, &updates);
        for (x, y, c) in &updates {
            if let Some(cell) = self.shadow.cell_mut((*x, *y)) {
                *cell = c.clone();
            }
        }
        let cells = expand(&self.shadow, was_fragile, updates);
        self.inner.draw(cells.iter().map(|(x, y, c)| (*x, *y, c)))
    }

    fn hide_cursor(&mut self) -> io::Result<()> {
        self.inner.hide_cursor()
    }

    fn show_cursor(&mut self) -> io::Result<()> {
        self.inner.show_cursor()
    }

    fn get_cursor_position(&mut self) -> io::Result<Position> {
        self.inner.get_cursor_position()
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> io::Result<()> {
        self.inner.set_cursor_position(position)
    }

    fn clear(&mut self) -> io::Result<()> {
        self.reset_shadow()?;
        self.inner.clear()
    }

    fn clear_region(&mut self, clear_type: ClearType) -> io::Result<()> {
        if clear_type == ClearType::All {
            self.reset_shadow()?;
        }
        self.inner.clear_region(clear_type)
    }

    fn size(&self) -> io::Result<Size> {
        self.inner.size()
    }

    fn window_size(&mut self) -> io::Result<WindowSize> {
        self.inner.window_size()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::style::Style;

    fn row(text: &str, width: u16) -> Buffer {
        let mut b = Buffer::empty(Rect::new(0, 0, width, 2));
        b.set_stringn(0, 0, text, usize::from(width), Style::new());
        b.set_stringn(0, 1, "plain", usize::from(width), Style::new());
        b
    }

    #[test]
    fn a_row_with_a_skin_tone_is_written_in_one_stretch() {
        let shadow = row("a👍🏽b  x", 8);
        let change = |x, y, s: &str| {
            let mut c = Cell::EMPTY;
            c.set_symbol(s);
            (x, y, c)
        };
        let out = expand(
            &shadow,
            BTreeSet::new(),
            vec![change(6, 0, "x"), change(4, 1, "x")],
        );
        let cols: Vec<(u16, u16, String)> = out
            .iter()
            .map(|(x, y, c)| (*x, *y, c.symbol().to_owned()))
            .collect();
        let sym = |x, y, s: &str| (x, y, s.to_owned());
        assert_eq!(
            cols,
            vec![
                sym(0, 0, "a"),
                sym(1, 0, "👍🏽"),
                sym(2, 0, ""),
                sym(3, 0, "b"),
                sym(4, 0, " "),
                sym(5, 0, " "),
                sym(6, 0, "x"),
                sym(7, 0, " "),
                // A plain row: only what changed.
                sym(4, 1, "x"),
            ]
        );
        // Without clusters, the updates go as they are...
        let plain = row("中文 ok", 8);
        assert_eq!(
            expand(&plain, BTreeSet::new(), vec![change(5, 0, "k")]).len(),
            1
        );
        // ...unless the row held one before: a flag replaced by narrow
        // text leaves half of it in tmux unless the row is written whole.
        let was = row("ab🇯🇵cdef", 8);
        let now = row("abxyzdef", 8);
        let updates = vec![change(2, 0, "x"), change(4, 0, "z")];
        let rows = fragile_rows(&was, &updates);
        assert_eq!(expand(&now, rows, updates).len(), 8);
    }
}
