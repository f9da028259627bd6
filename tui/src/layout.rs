//! Where each part of the screen goes. A pure function of the terminal size
//! and what is open, shared by drawing and by the app (which needs the
//! text area's size to scroll and to map mouse clicks).

use ratatui::layout::Rect;
use ratatui::widgets::Block;

use crate::keymap::help_lines;

/// The screen's parts; the optional ones are absent when closed or when
/// the terminal is too small for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Areas {
    pub gutter: Rect,
    pub text: Rect,
    pub members: Option<Rect>,
    pub chat: Option<Rect>,
    pub prompt: Option<Rect>,
    pub status: Rect,
    /// A workspace's file tree, at the left (see [`with_tree`]).
    pub tree: Option<Rect>,
    /// A workspace's buffer list, above the text (see [`with_tabs`]).
    pub tabs: Option<Rect>,
}

/// What the layout depends on besides the size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Open {
    pub chat: bool,
    pub members: bool,
    pub prompt: bool,
    /// Columns of the line numbers (digits and a space).
    pub gutter: u16,
}

/// The members panel is dropped below this width, so the text keeps room.
pub const MIN_WIDTH_FOR_MEMBERS: u16 = 60;

pub fn areas(size: Rect, open: Open) -> Areas {
    let mut rest = size;
    let take_bottom = |rest: &mut Rect, h: u16| {
        let h = h.min(rest.height);
        let r = Rect::new(rest.x, rest.y + rest.height - h, rest.width, h);
        rest.height -= h;
        r
    };
    let status = take_bottom(&mut rest, 1);
    let prompt = (open.prompt && rest.height > 1).then(|| take_bottom(&mut rest, 1));
    let chat = (open.chat && rest.height >= 6).then(|| {
        let h = (rest.height / 3).max(5).min(rest.height - 2);
        take_bottom(&mut rest, h)
    });
    let members = (open.members && size.width >= MIN_WIDTH_FOR_MEMBERS).then(|| {
        let w = if size.width >= 100 { 24 } else { 18 };
        let r = Rect::new(rest.x + rest.width - w, rest.y, w, rest.height);
        rest.width -= w;
        r
    });
    let g = open.gutter.min(rest.width / 2);
    let gutter = Rect::new(rest.x, rest.y, g, rest.height);
    let text = Rect::new(rest.x + g, rest.y, rest.width - g, rest.height);
    Areas {
        gutter,
        text,
        members,
        chat,
        prompt,
        status,
        tree: None,
        tabs: None,
    }
}

/// `areas` with a line for the buffer list taken from the top of the
/// gutter and text.
pub fn with_tabs(mut areas: Areas) -> Areas {
    let full = areas.gutter.union(areas.text);
    if full.height < 4 {
        return areas;
    }
    areas.tabs = Some(Rect::new(full.x, full.y, full.width, 1));
    areas.gutter.y += 1;
    areas.gutter.height -= 1;
    areas.text.y += 1;
    areas.text.height -= 1;
    areas
}

/// The tree panel is dropped below this width, so the text keeps room.
pub const MIN_WIDTH_FOR_TREE: u16 = 50;

/// `areas` with a file tree panel taken from the left of the gutter and
/// text (a third of the width, 16 to 32 columns).
pub fn with_tree(mut areas: Areas) -> Areas {
    let full = areas.gutter.union(areas.text);
    if full.width < MIN_WIDTH_FOR_TREE {
        return areas;
    }
    let w = (full.width / 3).clamp(16, 32);
    areas.tree = Some(Rect::new(full.x, full.y, w, full.height));
    let g = areas.gutter.width;
    areas.gutter = Rect::new(full.x + w, full.y, g, full.height);
    areas.text = Rect::new(full.x + w + g, full.y, full.width - w - g, full.height);
    areas
}

/// Gutter width for a text of `lines` lines: the digits plus a space.
pub fn gutter_width(lines: usize) -> u16 {
    let digits = lines.max(1).ilog10() + 1;
    u16::try_from(digits.max(3) + 1).unwrap_or(8)
}

/// Where the help overlay goes on a screen.
pub fn help_area(screen: Rect) -> Rect {
    let w = screen.width.min(76);
    let h = screen.height.saturating_sub(2).max(3).min(screen.height);
    Rect::new(
        screen.x + (screen.width - w) / 2,
        screen.y + (screen.height - h) / 2,
        w,
        h,
    )
}

/// Rows of help text the overlay shows at once on `screen` (a page).
pub fn help_page(screen: Rect) -> usize {
    usize::from(Block::bordered().inner(help_area(screen)).height).max(1)
}

/// Rows of the help text: a heading (after a blank row, but for the
/// first) or a key per row.
pub fn help_rows() -> usize {
    help_lines()
        .iter()
        .enumerate()
        .map(|(i, (_, what))| if what.is_empty() && i > 0 { 2 } else { 1 })
        .sum()
}

/// The furthest the help scrolls on `screen`.
pub fn help_max_scroll(screen: Rect) -> usize {
    help_rows().saturating_sub(help_page(screen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_fits_in_80x24() {
        let a = areas(
            Rect::new(0, 0, 80, 24),
            Open {
                chat: true,
                members: true,
                prompt: true,
                gutter: 4,
            },
        );
        assert_eq!(a.status, Rect::new(0, 23, 80, 1));
        assert_eq!(a.prompt, Some(Rect::new(0, 22, 80, 1)));
        assert_eq!(a.chat, Some(Rect::new(0, 15, 80, 7)));
        assert_eq!(a.members, Some(Rect::new(62, 0, 18, 15)));
        assert_eq!(a.text, Rect::new(4, 0, 58, 15));
        assert_eq!(gutter_width(9), 4);
        assert_eq!(gutter_width(12345), 6);
    }

    #[test]
    fn tiny_terminals_drop_panels() {
        let a = areas(
            Rect::new(0, 0, 30, 4),
            Open {
                chat: true,
                members: true,
                prompt: false,
                gutter: 4,
            },
        );
        assert_eq!(a.members, None);
        assert_eq!(a.chat, None);
        assert_eq!(a.text.height, 3);
    }
}
