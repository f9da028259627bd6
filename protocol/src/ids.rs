//! Validated names: a [`RoomId`] or [`UserName`] can only be built by
//! `parse`, so code that holds one never checks it again.
//!
//! Rules: room ids are 1 to 64, user names 1 to 32 Unicode scalar values,
//! each a letter or digit (Unicode alphanumeric) or one of `-`, `_`, `.`.
//! No spaces, no control characters, nothing that could fake a second line
//! or another user in a terminal.

use std::fmt;

use crate::{ErrorCode, MAX_CHAT_CHARS, ProtocolError};

pub const MAX_ROOM_ID_CHARS: usize = 64;
pub const MAX_USER_NAME_CHARS: usize = 32;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdError {
    Empty,
    TooLong { max: usize },
    BadChar(char),
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdError::Empty => write!(f, "it is empty"),
            IdError::TooLong { max } => write!(f, "it is longer than {max} characters"),
            IdError::BadChar(c) => write!(
                f,
                "it contains {c:?}; only letters, digits, '-', '_' and '.' are allowed"
            ),
        }
    }
}

fn check(s: &str, max: usize) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.chars().count() > max {
        return Err(IdError::TooLong { max });
    }
    match s
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        Some(c) => Err(IdError::BadChar(c)),
        None => Ok(()),
    }
}

macro_rules! name_type {
    ($(#[$m:meta])* $name:ident, $max:expr, $code:expr, $what:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Checks the naming rules.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                check(s, $max).map(|()| Self(s.to_owned()))
            }

            /// Like [`Self::parse`], with the protocol error the server sends.
            pub fn parse_for_wire(s: &str) -> Result<Self, ProtocolError> {
                Self::parse(s).map_err(|e| {
                    ProtocolError::new($code, format!(concat!("Invalid ", $what, " {:?}: {}."), s, e))
                })
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// A room id: 1 to 64 letters, digits, `-`, `_` or `.`.
    RoomId,
    MAX_ROOM_ID_CHARS,
    ErrorCode::InvalidRoom,
    "room id"
);
name_type!(
    /// A user name: 1 to 32 letters, digits, `-`, `_` or `.`.
    UserName,
    MAX_USER_NAME_CHARS,
    ErrorCode::InvalidName,
    "user name"
);

/// Chat and direct messages: 1 to [`MAX_CHAT_CHARS`] characters, not only
/// white space, and no control characters other than newline and tab.
pub fn validate_chat_text(text: &str) -> Result<(), ProtocolError> {
    let bad = |why: &str| ProtocolError::new(ErrorCode::InvalidText, format!("The message {why}."));
    if text.trim().is_empty() {
        return Err(bad("is empty"));
    }
    if text.chars().count() > MAX_CHAT_CHARS {
        return Err(bad(&format!("is longer than {MAX_CHAT_CHARS} characters")));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(bad("contains control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in ["alice", "Bob_2", "a.b-c", "Zoë", "名前", "x"] {
            assert!(UserName::parse(ok).is_ok(), "{ok}");
            assert!(RoomId::parse(ok).is_ok(), "{ok}");
        }
        assert!(RoomId::parse(&"r".repeat(64)).is_ok());
        assert!(UserName::parse(&"u".repeat(32)).is_ok());
    }

    #[test]
    fn refuses_bad_names() {
        assert_eq!(UserName::parse(""), Err(IdError::Empty));
        assert_eq!(
            UserName::parse(&"u".repeat(33)),
            Err(IdError::TooLong { max: 32 })
        );
        assert_eq!(
            RoomId::parse(&"r".repeat(65)),
            Err(IdError::TooLong { max: 64 })
        );
        assert_eq!(UserName::parse("a b"), Err(IdError::BadChar(' ')));
        assert_eq!(
            UserName::parse("a\u{1b}[2J"),
            Err(IdError::BadChar('\u{1b}'))
        );
        assert_eq!(RoomId::parse("../etc"), Err(IdError::BadChar('/')));
        let err = UserName::parse_for_wire("a b").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidName);
        assert!(err.message.contains("' '"), "{}", err.message);
    }

    #[test]
    fn chat_text_rules() {
        assert!(validate_chat_text("hello\nworld\t!").is_ok());
        assert!(validate_chat_text("  ").is_err());
        assert!(validate_chat_text("\u{7}").is_err());
        assert!(validate_chat_text(&"x".repeat(MAX_CHAT_CHARS)).is_ok());
        assert!(validate_chat_text(&"x".repeat(MAX_CHAT_CHARS + 1)).is_err());
    }
}
