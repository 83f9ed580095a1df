//! OAuth clients: who may ask for tokens, how, and for what.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Serialize, Serializer};
use tessera_proto::scope::PRIVILEGED;
use tessera_proto::token_type::TOKEN_EXCHANGE_GRANT;

/// A client's public identifier, a UUIDv7 (unique, sorts by creation time, and never
/// starts with `-`, so it is safe as a command-line argument).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(uuid::Uuid);

impl ClientId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    /// The `client_id` of tokens tessera issues to a browser session itself
    /// (`POST /v1/session/token`), which no registered client asked for: the nil
    /// UUID, which `generate` never returns.
    pub fn web_session() -> Self {
        Self(uuid::Uuid::nil())
    }

    pub fn parse(input: &str) -> Option<Self> {
        // Only the hyphenated form we hand out: one client, one spelling.
        (input.len() == 36)
            .then(|| uuid::Uuid::try_parse(input).ok())
            .flatten()
            .map(Self)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({})", self.0.hyphenated())
    }
}

impl Serialize for ClientId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The grants a client may use at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GrantType {
    /// The browser flow of OpenID Connect (RFC 6749 §4.1, with PKCE).
    AuthorizationCode,
    Password,
    RefreshToken,
    ClientCredentials,
    TokenExchange,
}

impl GrantType {
    pub const ALL: [GrantType; 5] = [
        GrantType::AuthorizationCode,
        GrantType::Password,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
        GrantType::TokenExchange,
    ];

    /// The `grant_type` value of RFC 6749 / RFC 8693.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::Password => "password",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::TokenExchange => TOKEN_EXCHANGE_GRANT,
        }
    }

    /// The protocol name, or the short name `token_exchange` (handy on the CLI).
    pub fn parse(name: &str) -> Option<Self> {
        if name == "token_exchange" || name == "token-exchange" {
            return Some(GrantType::TokenExchange);
        }
        Self::ALL.into_iter().find(|g| g.as_str() == name)
    }
}

impl Serialize for GrantType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error(
        "a scope is 1 to 128 printable ASCII characters without spaces, quotes or backslashes: {0:?}"
    )]
    Invalid(String),
    #[error("at most 64 scopes")]
    TooMany,
}

// tessera's own API scopes (`tessera_proto::scope::PRIVILEGED`): the admin API,
// the revocation feed (and activity reports), and introspecting other clients'
// tokens. A request that names no scope never gets them ([`Scopes::defaults`]), and
// they are granted only in tokens whose audience is tessera itself: a token for a
// resource service must never be able to act on tessera.

/// A set of scope tokens (RFC 6749 §3.3), written space-separated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<String>);

impl Scopes {
    /// Parses a space-separated list; empty input is the empty set.
    pub fn parse(input: &str) -> Result<Self, ScopeError> {
        let mut set = BTreeSet::new();
        for token in input.split(' ').filter(|t| !t.is_empty()) {
            let valid = token.len() <= 128
                && token
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
            if !valid {
                return Err(ScopeError::Invalid(token.chars().take(130).collect()));
            }
            set.insert(token.to_owned());
            if set.len() > 64 {
                return Err(ScopeError::TooMany);
            }
        }
        Ok(Self(set))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    pub fn is_subset(&self, other: &Scopes) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// The scopes in either.
    pub fn union(&self, other: &Scopes) -> Scopes {
        Scopes(self.0.union(&other.0).cloned().collect())
    }

    /// These, but only those `keep` says yes to.
    pub fn filtered(&self, keep: impl Fn(&str) -> bool) -> Scopes {
        Scopes(self.0.iter().filter(|s| keep(s)).cloned().collect())
    }

    /// What a request that names no scope gets of these (a client's allowed
    /// scopes): all but the [`PRIVILEGED`], which must be asked for by name.
    pub fn defaults(&self) -> Scopes {
        Scopes(
            self.0
                .iter()
                .filter(|s| !PRIVILEGED.contains(&s.as_str()))
                .cloned()
                .collect(),
        )
    }

    /// Whether any of these is one of tessera's own [`PRIVILEGED`].
    pub fn any_privileged(&self) -> bool {
        PRIVILEGED.iter().any(|p| self.0.contains(*p))
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope)?;
        }
        Ok(())
    }
}

impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// How a client's access tokens look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenFormat {
    /// RFC 9068 JWTs, verified locally by resource services.
    #[default]
    Jwt,
    /// `tat_…` handles, checked by introspection.
    Opaque,
}

impl TokenFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenFormat::Jwt => "jwt",
            TokenFormat::Opaque => "opaque",
        }
    }
}

impl FromStr for TokenFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "jwt" => Ok(TokenFormat::Jwt),
            "opaque" => Ok(TokenFormat::Opaque),
            other => Err(format!("unknown token format {other:?} (jwt or opaque)")),
        }
    }
}

impl Serialize for TokenFormat {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a client name is 1 to 100 characters, without control characters")]
pub struct ClientNameError;

/// A client's display name, unique among clients (so the CLI can name clients by it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ClientName(String);

impl ClientName {
    pub fn parse(input: &str) -> Result<Self, ClientNameError> {
        let trimmed = input.trim();
        let length = trimmed.chars().count();
        if length == 0 || length > 100 || trimmed.chars().any(char::is_control) {
            return Err(ClientNameError);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An audience (`aud`): the resource service a token is for. Any non-empty string
/// without whitespace or control characters, up to 200 characters; usually a short
/// name (`orders`) or the service's URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Audience(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an audience is 1 to 200 characters without spaces or control characters")]
pub struct AudienceError;

impl Audience {
    pub fn parse(input: &str) -> Result<Self, AudienceError> {
        let length = input.chars().count();
        if length == 0 || length > 200 || input.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(AudienceError);
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Bounds on how long an access token may live, whatever a client asks for.
pub const MIN_ACCESS_TTL: Duration = Duration::from_secs(10);
pub const MAX_ACCESS_TTL: Duration = Duration::from_secs(24 * 3600);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileged_scopes_are_never_defaults() {
        let allowed = Scopes::parse("read admin revocations introspect write").unwrap();
        assert_eq!(allowed.defaults().to_string(), "read write");
        assert!(!allowed.defaults().any_privileged());
        assert!(Scopes::parse("read introspect").unwrap().any_privileged());
        assert!(!Scopes::parse("admin:users").unwrap().any_privileged());
    }

    #[test]
    fn scopes_parse_per_rfc_6749() {
        let scopes = Scopes::parse("read  write read admin:users").unwrap();
        assert_eq!(scopes.to_string(), "admin:users read write");
        assert!(Scopes::parse("").unwrap().is_empty());
        for bad in ["a\"b", "a\\b", "é", "tab\there", &"x".repeat(129)] {
            assert!(Scopes::parse(bad).is_err(), "{bad:?}");
        }
        let many = (0..65)
            .map(|i| format!("s{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(Scopes::parse(&many), Err(ScopeError::TooMany));
        assert!(Scopes::parse("read").unwrap().is_subset(&scopes));
        assert!(!Scopes::parse("delete").unwrap().is_subset(&scopes));
    }

    #[test]
    fn grant_types_use_protocol_names() {
        assert_eq!(
            GrantType::parse("client_credentials"),
            Some(GrantType::ClientCredentials)
        );
        assert_eq!(
            GrantType::parse(TOKEN_EXCHANGE_GRANT),
            Some(GrantType::TokenExchange)
        );
        assert_eq!(
            GrantType::parse("token_exchange"),
            Some(GrantType::TokenExchange)
        );
        assert_eq!(GrantType::parse("implicit"), None);
    }

    #[test]
    fn client_ids_round_trip_in_one_spelling() {
        let id = ClientId::generate();
        assert_eq!(ClientId::parse(&id.to_string()), Some(id));
        assert!(ClientId::parse(&id.to_string().to_uppercase()).is_some());
        assert_eq!(ClientId::parse(&id.to_string().replace('-', "")), None);
        assert_eq!(ClientId::parse(""), None);
    }

    #[test]
    fn names_and_audiences_are_checked() {
        assert_eq!(ClientName::parse("  web app ").unwrap().as_str(), "web app");
        assert!(ClientName::parse("").is_err());
        assert!(ClientName::parse("a\nb").is_err());
        assert!(Audience::parse("orders").is_ok());
        assert!(Audience::parse("https://api.example/v1").is_ok());
        assert!(Audience::parse("two words").is_err());
        assert!(Audience::parse("").is_err());
    }
}
