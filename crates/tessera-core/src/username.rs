use std::fmt;

use serde::{Serialize, Serializer};
use unicode_normalization::UnicodeNormalization;
use unicode_security::MixedScript;

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
    /// Never from [`Username::parse`]: see [`Username::check_single_script`].
    #[error(
        "username mixes letters of different scripts (such as Latin and Cyrillic); \
         write it in one script"
    )]
    MixedScripts,
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

    /// The name's confusable skeleton (Unicode TR39, section 4): names that look
    /// alike have the same one, so `admin`, `аdmin` (Cyrillic а) and `admın` (dotless
    /// ı) all give `adrnin`. Stores keep one account per skeleton.
    ///
    /// Taken from the canonical form, so case and width variants, which are one
    /// name already, have one skeleton. It depends on the confusables data of the
    /// `unicode-security` release that computed it; see ARCHITECTURE.md on what to
    /// do when that data changes.
    pub fn skeleton(&self) -> String {
        unicode_security::skeleton(&self.0).collect()
    }

    /// Refuses a name that mixes scripts (TR39, section 5.1): Latin with Cyrillic or
    /// Greek is how a look-alike of a Latin name is usually made. Digits and `.`,
    /// `_`, `-`, `@` go with any script, and Han with Hiragana and Katakana (Japanese)
    /// or with Hangul (Korean) counts as one.
    ///
    /// Separate from [`Username::parse`] because only new accounts are held to it:
    /// a name registered before the rule must still parse, to sign in and to be read
    /// back from a store.
    pub fn check_single_script(&self) -> Result<(), UsernameError> {
        if self.0.as_str().is_single_script() {
            Ok(())
        } else {
            Err(UsernameError::MixedScripts)
        }
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

    #[test]
    fn look_alikes_share_a_skeleton() {
        let skeleton = |s: &str| Username::parse(s).unwrap().skeleton();
        let admin = skeleton("admin");
        for look_alike in [
            "\u{430}dmin",
            "adm\u{131}n",
            "ADMIN",
            "adrnin",
            "\u{430}\u{501}min",
        ] {
            assert_eq!(skeleton(look_alike), admin, "{look_alike}");
        }
        assert_eq!(
            skeleton("\u{430}\u{441}\u{435}"),
            skeleton("ace"),
            "all-Cyrillic"
        );
        assert_eq!(skeleton("paypa1"), skeleton("paypal"));
        for different in ["admins", "adnin", "admín", "root"] {
            assert_ne!(skeleton(different), admin, "{different}");
        }
    }

    #[test]
    fn one_script_per_name() {
        for single in [
            "admin",
            "\u{430}\u{441}\u{435}",
            "josé.ñandú-42@example",
            "adm\u{131}n",
            "山田たろう",
            "김철수",
            "2024",
        ] {
            let name = Username::parse(single).unwrap();
            assert_eq!(name.check_single_script(), Ok(()), "{single}");
        }
        for mixed in ["\u{430}dmin", "alpha\u{3b1}", "ad\u{43c}in"] {
            let name = Username::parse(mixed).unwrap();
            assert_eq!(
                name.check_single_script(),
                Err(UsernameError::MixedScripts),
                "{mixed}"
            );
        }
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
        fn skeletons_are_stable_and_ascii_is_one_script(input in "[a-z0-9][a-z0-9._@-]{0,63}") {
            let name = Username::parse(&input).unwrap();
            prop_assert_eq!(name.skeleton(), Username::parse(&input).unwrap().skeleton());
            prop_assert_eq!(name.check_single_script(), Ok(()));
        }

        #[test]
        fn ascii_names_fold_case(input in "[a-zA-Z0-9][a-zA-Z0-9._@-]{0,63}") {
            let name = Username::parse(&input).unwrap();
            prop_assert_eq!(name.as_str(), input.to_ascii_lowercase());
        }
    }
}
