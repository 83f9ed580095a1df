use std::fmt;

use serde::{Serialize, Serializer};
use unicode_normalization::UnicodeNormalization;

/// A validated, canonical username.
///
/// Canonical form: NFKC, then lower-cased (Unicode default case mapping), then NFKC again,
/// so that `Alice`, `ALICE` and the full-width `Ａｌｉｃｅ` all name the same account.
/// Allowed characters after normalisation: Unicode letters and digits, and `.`, `_`, `-`,
/// `@`; the first character is a letter or digit. Length: 1 to 64 characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

pub const USERNAME_MAX_CHARS: usize = 64;
/// Input longer than this is refused before normalisation does any work on it.
const USERNAME_MAX_INPUT_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("username must not be empty")]
    Empty,
    #[error("username must be at most {USERNAME_MAX_CHARS} characters")]
    TooLong,
    #[error("username may contain only letters, digits, '.', '_', '-' and '@' (found {0:?})")]
    ForbiddenCharacter(char),
    #[error("username must start with a letter or a digit")]
    BadFirstCharacter,
}

impl Username {
    pub fn parse(input: &str) -> Result<Self, UsernameError> {
        if input.len() > USERNAME_MAX_INPUT_BYTES {
            return Err(UsernameError::TooLong);
        }
        let canonical: String = input
            .nfkc()
            .collect::<String>()
            .to_lowercase()
            .nfkc()
            .collect();
        if canonical.is_empty() {
            return Err(UsernameError::Empty);
        }
        if canonical.chars().count() > USERNAME_MAX_CHARS {
            return Err(UsernameError::TooLong);
        }
        if let Some(bad) = canonical
            .chars()
            .find(|c| !(c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')))
        {
            return Err(UsernameError::ForbiddenCharacter(bad));
        }
        if !canonical.chars().next().is_some_and(char::is_alphanumeric) {
            return Err(UsernameError::BadFirstCharacter);
        }
        Ok(Self(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Username({:?})", self.0)
    }
}

impl Serialize for Username {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn case_and_width_fold_to_one_name() {
        let a = Username::parse("Alice").unwrap();
        assert_eq!(a, Username::parse("ALICE").unwrap());
        assert_eq!(a, Username::parse("Ａｌｉｃｅ").unwrap());
        assert_eq!(a.as_str(), "alice");
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(Username::parse(""), Err(UsernameError::Empty));
        assert_eq!(
            Username::parse(&"a".repeat(65)),
            Err(UsernameError::TooLong)
        );
        assert_eq!(
            Username::parse(&"a".repeat(5000)),
            Err(UsernameError::TooLong)
        );
        assert_eq!(
            Username::parse("bob smith"),
            Err(UsernameError::ForbiddenCharacter(' '))
        );
        assert_eq!(
            Username::parse("a\u{0}b"),
            Err(UsernameError::ForbiddenCharacter('\u{0}'))
        );
        assert_eq!(
            Username::parse(".bob"),
            Err(UsernameError::BadFirstCharacter)
        );
        assert!(Username::parse("José.Ñandú-42@example").is_ok());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_is_idempotent(input in ".{0,80}") {
            if let Ok(name) = Username::parse(&input) {
                let again = Username::parse(name.as_str()).unwrap();
                prop_assert_eq!(&again, &name);
                prop_assert!(name.as_str().chars().count() <= USERNAME_MAX_CHARS);
                prop_assert!(name.as_str().chars().all(|c| c.is_alphanumeric() || ".-_@".contains(c)));
            }
        }

        #[test]
        fn ascii_names_fold_case(input in "[a-zA-Z0-9][a-zA-Z0-9._@-]{0,63}") {
            let name = Username::parse(&input).unwrap();
            prop_assert_eq!(name.as_str(), input.to_ascii_lowercase());
        }
    }
}
