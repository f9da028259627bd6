//! A one-line text input (the find, go-to-line and save-as prompts and the
//! chat box): the text and a caret counted in chars, and the line editing
//! of a shell (Ctrl-A/E, Ctrl-U, Ctrl-W, by word with Ctrl-arrows).

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineInput {
    pub text: String,
    /// Caret position in chars.
    pub cursor: usize,
    /// The whole text is selected (a find prompt opened with the previous
    /// query): typing replaces it, a move keeps it.
    pub selected: bool,
}

impl LineInput {
    pub fn with_text(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            cursor: text.chars().count(),
            selected: false,
        }
    }

    /// `text`, selected, so that typing replaces it.
    pub fn with_selected(text: &str) -> Self {
        Self {
            selected: !text.is_empty(),
            ..Self::with_text(text)
        }
    }

    /// Typing or deleting on a selection: it goes first.
    fn drop_selected(&mut self) -> bool {
        if std::mem::take(&mut self.selected) {
            self.text.clear();
            self.cursor = 0;
            return true;
        }
        false
    }

    fn byte(&self, chars: usize) -> usize {
        self.text
            .char_indices()
            .nth(chars)
            .map_or(self.text.len(), |(b, _)| b)
    }

    pub fn insert(&mut self, s: &str) {
        self.drop_selected();
        let clean: String = s
            .chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
            .filter(|c| !c.is_control() || *c == '\t')
            .collect();
        let b = self.byte(self.cursor);
        self.text.insert_str(b, &clean);
        self.cursor += clean.chars().count();
    }

    pub fn backspace(&mut self) {
        if self.drop_selected() {
            return;
        }
        if self.cursor > 0 {
            let b = self.byte(self.cursor - 1);
            self.text.remove(b);
            self.cursor -= 1;
        }
    }

    pub fn delete(&mut self) {
        if self.drop_selected() {
            return;
        }
        if self.cursor < self.text.chars().count() {
            let b = self.byte(self.cursor);
            self.text.remove(b);
        }
    }

    pub fn left(&mut self) {
        if std::mem::take(&mut self.selected) {
            return self.home();
        }
        self.cursor = self.cursor.saturating_sub(1);
    }

    pub fn right(&mut self) {
        if std::mem::take(&mut self.selected) {
            return self.end();
        }
        self.cursor = (self.cursor + 1).min(self.text.chars().count());
    }

    pub fn home(&mut self) {
        self.selected = false;
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.selected = false;
        self.cursor = self.text.chars().count();
    }

    /// Where the word before the caret starts (white space, then a word).
    fn word_start(&self) -> usize {
        let before: Vec<char> = self.text.chars().take(self.cursor).collect();
        let mut i = before.len();
        while i > 0 && before[i - 1].is_whitespace() {
            i -= 1;
        }
        while i > 0 && !before[i - 1].is_whitespace() {
            i -= 1;
        }
        i
    }

    /// Where the word after the caret ends.
    fn word_end(&self) -> usize {
        let after: Vec<char> = self.text.chars().skip(self.cursor).collect();
        let mut i = 0;
        while i < after.len() && after[i].is_whitespace() {
            i += 1;
        }
        while i < after.len() && !after[i].is_whitespace() {
            i += 1;
        }
        self.cursor + i
    }

    pub fn word_left(&mut self) {
        self.selected = false;
        self.cursor = self.word_start();
    }

    pub fn word_right(&mut self) {
        self.selected = false;
        self.cursor = self.word_end();
    }

    /// Ctrl-W: deletes the word before the caret.
    pub fn delete_word(&mut self) {
        if self.drop_selected() {
            return;
        }
        let from = self.word_start();
        let (a, b) = (self.byte(from), self.byte(self.cursor));
        self.text.replace_range(a..b, "");
        self.cursor = from;
    }

    /// Ctrl-U: deletes everything before the caret.
    pub fn delete_to_start(&mut self) {
        if self.drop_selected() {
            return;
        }
        let b = self.byte(self.cursor);
        self.text.replace_range(..b, "");
        self.cursor = 0;
    }

    /// Takes the text out, leaving the input empty.
    pub fn take(&mut self) -> String {
        self.cursor = 0;
        self.selected = false;
        std::mem::take(&mut self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_by_char() {
        let mut i = LineInput::default();
        i.insert("héllo");
        i.left();
        i.backspace();
        assert_eq!(i.text, "hélo");
        i.home();
        i.delete();
        i.insert("a\nb");
        assert_eq!(i.text, "a bélo");
        assert_eq!(i.take(), "a bélo");
        assert_eq!(i.cursor, 0);
    }

    #[test]
    fn a_selected_text_is_replaced_by_typing() {
        let mut i = LineInput::with_selected("old query");
        i.insert("n");
        assert_eq!((i.text.as_str(), i.cursor), ("n", 1));
        let mut i = LineInput::with_selected("old");
        i.backspace();
        assert_eq!(i.text, "");
        // A move keeps the text, at the start or the end.
        let mut i = LineInput::with_selected("old");
        i.left();
        i.insert("x");
        assert_eq!(i.text, "xold");
    }

    #[test]
    fn shell_line_editing() {
        let mut i = LineInput::with_text("hello  big world");
        i.delete_word();
        assert_eq!(i.text, "hello  big ");
        i.word_left();
        assert_eq!(i.cursor, 7);
        i.word_left();
        i.word_right();
        assert_eq!(i.cursor, 5);
        i.delete_to_start();
        assert_eq!((i.text.as_str(), i.cursor), ("  big ", 0));
    }
}
