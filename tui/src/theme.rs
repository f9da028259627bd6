//! Colours for what the terminal can show. Member colours (`#rrggbb` from
//! the server) and syntax colours are RGB; a terminal may do 24-bit
//! colour, 256 colours, only the 16 ANSI colours, or none at all when the
//! user asked for none (`NO_COLOR`). Every colour on screen goes through
//! [`Palette::color`], and without colour the screen still tells things
//! apart by reverse video, bold and underline.

use ratatui::style::{Color, Modifier, Style};

use crate::highlight::Rgb;

/// What the terminal can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMode {
    /// No colour: `NO_COLOR` is set.
    Mono,
    /// The 16 ANSI colours.
    Ansi16,
    /// The xterm 256-colour palette.
    Ansi256,
    /// 24-bit colour.
    TrueColor,
}

impl ColorMode {
    /// From the environment: `NO_COLOR` (any non-empty value) wins, then
    /// `COLORTERM=truecolor|24bit`, then a `TERM` naming 256 colours.
    pub fn detect(no_color: Option<&str>, colorterm: Option<&str>, term: Option<&str>) -> Self {
        if no_color.is_some_and(|v| !v.is_empty()) {
            return ColorMode::Mono;
        }
        if colorterm.is_some_and(|c| c.contains("truecolor") || c.contains("24bit")) {
            return ColorMode::TrueColor;
        }
        if term.is_some_and(|t| t.contains("256")) {
            return ColorMode::Ansi256;
        }
        ColorMode::Ansi16
    }

    pub fn from_env() -> Self {
        let get = |k| std::env::var(k).ok();
        Self::detect(
            get("NO_COLOR").as_deref(),
            get("COLORTERM").as_deref(),
            get("TERM").as_deref(),
        )
    }
}

/// Turns RGB into what the terminal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Palette(pub ColorMode);

const ANSI16: [(Color, Rgb); 16] = [
    (Color::Black, (0, 0, 0)),
    (Color::Red, (205, 0, 0)),
    (Color::Green, (0, 205, 0)),
    (Color::Yellow, (205, 205, 0)),
    (Color::Blue, (0, 0, 238)),
    (Color::Magenta, (205, 0, 205)),
    (Color::Cyan, (0, 205, 205)),
    (Color::Gray, (229, 229, 229)),
    (Color::DarkGray, (127, 127, 127)),
    (Color::LightRed, (255, 0, 0)),
    (Color::LightGreen, (0, 255, 0)),
    (Color::LightYellow, (255, 255, 0)),
    (Color::LightBlue, (92, 92, 255)),
    (Color::LightMagenta, (255, 0, 255)),
    (Color::LightCyan, (0, 255, 255)),
    (Color::White, (255, 255, 255)),
];

fn dist(a: Rgb, b: Rgb) -> u32 {
    let d = |x: u8, y: u8| (i32::from(x) - i32::from(y)).unsigned_abs();
    d(a.0, b.0).pow(2) + d(a.1, b.1).pow(2) + d(a.2, b.2).pow(2)
}

/// The ANSI colour of the same hue: the nearest by RGB distance would make
/// every pastel of a theme (keywords, strings, types) a grey, leaving only
/// comments told apart; by hue they keep distinct colours. Greys stay greys.
fn ansi16(rgb: Rgb) -> Color {
    let (r, g, b) = (i32::from(rgb.0), i32::from(rgb.1), i32::from(rgb.2));
    let (max, min) = (r.max(g).max(b), r.min(g).min(b));
    if max - min < 40 {
        return ANSI16
            .iter()
            .filter(|(c, _)| {
                matches!(
                    c,
                    Color::Black | Color::DarkGray | Color::Gray | Color::White
                )
            })
            .min_by_key(|(_, c)| dist(*c, rgb))
            .map_or(Color::Gray, |(c, _)| *c);
    }
    // Hue in degrees, from the largest component.
    let d = max - min;
    let hue = if max == r {
        (60 * (g - b) / d).rem_euclid(360)
    } else if max == g {
        60 * (b - r) / d + 120
    } else {
        60 * (r - g) / d + 240
    };
    let light = max >= 230;
    let pick = |dark, bright| if light { bright } else { dark };
    match (hue + 30) / 60 % 6 {
        0 => pick(Color::Red, Color::LightRed),
        1 => pick(Color::Yellow, Color::LightYellow),
        2 => pick(Color::Green, Color::LightGreen),
        3 => pick(Color::Cyan, Color::LightCyan),
        4 => pick(Color::Blue, Color::LightBlue),
        _ => pick(Color::Magenta, Color::LightMagenta),
    }
}

fn cube(v: u8) -> u8 {
    // The 6 levels of the xterm cube: 0, 95, 135, 175, 215, 255.
    if v < 48 {
        0
    } else if v < 115 {
        1
    } else {
        (v - 35) / 40
    }
}

impl Palette {
    pub fn mode(self) -> ColorMode {
        self.0
    }

    pub fn has_color(self) -> bool {
        self.0 != ColorMode::Mono
    }

    /// The colour nearest to `rgb`, or `None` without colour.
    pub fn color(self, rgb: Rgb) -> Option<Color> {
        match self.0 {
            ColorMode::Mono => None,
            ColorMode::TrueColor => Some(Color::Rgb(rgb.0, rgb.1, rgb.2)),
            ColorMode::Ansi256 => {
                let (r, g, b) = (cube(rgb.0), cube(rgb.1), cube(rgb.2));
                Some(Color::Indexed(16 + 36 * r + 6 * g + b))
            }
            ColorMode::Ansi16 => Some(ansi16(rgb)),
        }
    }

    /// Foreground only, when there is colour.
    pub fn fg(self, rgb: Rgb) -> Style {
        match self.color(rgb) {
            Some(c) => Style::new().fg(c),
            None => Style::new(),
        }
    }

    /// A member's colour as a background (their caret and selection),
    /// reverse video without colour.
    pub fn member_bg(self, rgb: Rgb) -> Style {
        match self.color(rgb) {
            Some(c) => Style::new().bg(c).fg(Color::Black),
            None => Style::new().add_modifier(Modifier::REVERSED),
        }
    }

    /// My selection.
    pub fn selection(self) -> Style {
        match self.0 {
            ColorMode::Mono => Style::new().add_modifier(Modifier::REVERSED),
            _ => Style::new().bg(Color::Blue).fg(Color::White),
        }
    }

    /// The bars (status, titles).
    pub fn bar(self) -> Style {
        match self.0 {
            ColorMode::Mono => Style::new().add_modifier(Modifier::REVERSED),
            _ => Style::new().bg(Color::DarkGray).fg(Color::White),
        }
    }

    pub fn dim(self) -> Style {
        match self.0 {
            ColorMode::Mono => Style::new().add_modifier(Modifier::DIM),
            _ => Style::new().fg(Color::DarkGray),
        }
    }

    pub fn warn(self) -> Style {
        match self.0 {
            ColorMode::Mono => Style::new().add_modifier(Modifier::BOLD),
            _ => Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        }
    }
}

/// `#rrggbb` to RGB; a grey for anything else a server might send.
pub fn parse_hex(s: &str) -> Rgb {
    let hex = s.strip_prefix('#').unwrap_or(s);
    let byte = |i: usize| {
        hex.get(i..i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
    };
    match (hex.len(), byte(0), byte(2), byte(4)) {
        (6, Some(r), Some(g), Some(b)) => (r, g, b),
        _ => (160, 160, 160),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_mode() {
        assert_eq!(
            ColorMode::detect(Some("1"), Some("truecolor"), None),
            ColorMode::Mono
        );
        assert_eq!(
            ColorMode::detect(Some(""), Some("truecolor"), None),
            ColorMode::TrueColor
        );
        assert_eq!(
            ColorMode::detect(None, None, Some("xterm-256color")),
            ColorMode::Ansi256
        );
        assert_eq!(
            ColorMode::detect(None, None, Some("xterm")),
            ColorMode::Ansi16
        );
    }

    #[test]
    fn maps_colours_down() {
        assert_eq!(
            Palette(ColorMode::Ansi16).color((250, 10, 10)),
            Some(Color::LightRed)
        );
        assert_eq!(
            Palette(ColorMode::Ansi256).color((255, 255, 255)),
            Some(Color::Indexed(231))
        );
        assert_eq!(Palette(ColorMode::Mono).color((1, 2, 3)), None);
        // The theme's pastels keep distinct colours in 16 colours (TERM=xterm):
        // keyword, string, function, type, and the plain text a grey.
        let c = |hex| Palette(ColorMode::Ansi16).color(parse_hex(hex)).unwrap();
        let kinds = [
            c("#cc99cc"),
            c("#99cc99"),
            c("#6699cc"),
            c("#ffcc66"),
            c("#d3d0c8"),
        ];
        for (i, a) in kinds.iter().enumerate() {
            for b in &kinds[i + 1..] {
                assert_ne!(a, b, "{kinds:?}");
            }
        }
        assert_eq!(c("#d3d0c8"), Color::Gray);
        assert_eq!(c("#747369"), Color::DarkGray);
        assert_eq!(parse_hex("#ff8000"), (255, 128, 0));
        assert_eq!(parse_hex("red"), (160, 160, 160));
        assert_eq!(parse_hex("#ééé"), (160, 160, 160));
    }
}
