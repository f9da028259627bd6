//! Who may join, and as what: the access tokens, compared in constant time
//! and never printed.

use std::fmt;

use subtle::ConstantTimeEq;

/// A secret string (an access token): its `Debug` prints `<redacted>`, so
/// a `Config` can be logged, and [`Secret::matches`] compares in constant
/// time (for a given length), so a guess learns nothing from timing.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the few places that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is this secret, in time independent of where
    /// they differ.
    pub fn matches(&self, candidate: &str) -> bool {
        same_secret(candidate, &self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// Compares two secrets (tokens, session ids) without leaking how much of a
/// guess matched. Only the length can show.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// What a join may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Editor,
    Viewer,
}

/// The role a join's `token` grants, or `None` (refuse: `unauthorized`).
///
/// - the access token: editor;
/// - the read-only token: viewer (checked after the access token, so equal
///   tokens make editors);
/// - anything else: editor on an open server (no access token), else none.
pub(crate) fn role_for(
    access: Option<&Secret>,
    read_only: Option<&Secret>,
    token: Option<&str>,
) -> Option<Role> {
    let is = |s: Option<&Secret>| s.zip(token).is_some_and(|(s, t)| s.matches(t));
    if is(access) {
        Some(Role::Editor)
    } else if is(read_only) {
        Some(Role::Viewer)
    } else if access.is_none() {
        Some(Role::Editor)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_and_hide() {
        let s = Secret::from("s3cret");
        assert!(s.matches("s3cret"));
        assert!(!s.matches("s3creT"));
        assert!(!s.matches("s3cre"));
        assert!(!s.matches(""));
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(s)), "Some(<redacted>)");
    }

    #[test]
    fn roles_follow_the_tokens() {
        let a = Secret::from("edit");
        let r = Secret::from("view");
        let role = |access, ro, t| role_for(access, ro, t);
        assert_eq!(role(None, None, None), Some(Role::Editor));
        assert_eq!(role(None, None, Some("x")), Some(Role::Editor));
        assert_eq!(role(Some(&a), None, Some("edit")), Some(Role::Editor));
        assert_eq!(role(Some(&a), None, Some("view")), None);
        assert_eq!(role(Some(&a), None, None), None);
        assert_eq!(role(Some(&a), Some(&r), Some("view")), Some(Role::Viewer));
        assert_eq!(role(Some(&a), Some(&r), Some("edit")), Some(Role::Editor));
        assert_eq!(role(Some(&a), Some(&r), Some("nope")), None);
        assert_eq!(role(None, Some(&r), Some("view")), Some(Role::Viewer));
        assert_eq!(role(None, Some(&r), None), Some(Role::Editor));
    }
}
