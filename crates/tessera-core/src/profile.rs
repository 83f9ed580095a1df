//! What an account says about its person, for OpenID Connect's standard claims:
//! a display name and an email address. Both optional; neither identifies the
//! account (the username and the id do).

use std::fmt;

use serde::{Serialize, Serializer};

/// Longer names are refused: a name is shown, not stored as a document.
const MAX_NAME_CHARS: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error(
        "a name is 1 to {MAX_NAME_CHARS} characters, without control characters or surrounding spaces"
    )]
    Name,
    #[error(
        "an email address is local@domain: at most 254 characters, one @, a domain of dot-separated letters, digits and hyphens"
    )]
    Email,
}

/// A person's name as they want it shown (OpenID Connect's `name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(input: &str) -> Result<Self, ProfileError> {
        let chars = input.chars().count();
        let valid = (1..=MAX_NAME_CHARS).contains(&chars)
            && input.trim() == input
            && !input.chars().any(char::is_control);
        valid
            .then(|| Self(input.to_owned()))
            .ok_or(ProfileError::Name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address (RFC 5321's mailbox, ASCII): the domain is kept in lower case,
/// the local part as given, since only its own server may interpret it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, ProfileError> {
        let (local, domain) = input.split_once('@').ok_or(ProfileError::Email)?;
        let local_ok = (1..=64).contains(&local.len())
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b));
        let domain_ok = (1..=253).contains(&domain.len())
            && domain.contains('.')
            && domain.split('.').all(|label| {
                (1..=63).contains(&label.len())
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !local_ok || !domain_ok || input.len() > 254 {
            return Err(ProfileError::Email);
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for DisplayName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl Serialize for Email {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names() {
        for ok in ["Ada Lovelace", "李小龍", "O'Brien-Smith", "X"] {
            assert_eq!(DisplayName::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            " Ada",
            "Ada ",
            "Ada\nLovelace",
            "a\u{7}",
            &"a".repeat(201),
        ] {
            assert_eq!(DisplayName::parse(bad), Err(ProfileError::Name), "{bad:?}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse("Ada.L+tessera@Example.ORG").unwrap().as_str(),
            "Ada.L+tessera@example.org"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.org",
            "ada@example",
            "ada@@example.org",
            "a b@example.org",
            ".ada@example.org",
            "ada..l@example.org",
            "ada@-example.org",
            "ada@exa_mple.org",
            "ada@example..org",
            "ada@éxample.org",
            "<ada@example.org>",
        ] {
            assert_eq!(Email::parse(bad), Err(ProfileError::Email), "{bad:?}");
        }
        let long_local = format!("{}@example.org", "a".repeat(65));
        assert_eq!(Email::parse(&long_local), Err(ProfileError::Email));
    }
}
