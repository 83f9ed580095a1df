//! Session secrets and the values derived from them.
//!
//! A session secret is 256 bits from the operating system's generator, written
//! `tss_<43 base64url chars>` so that secret scanners recognise it. The store never
//! sees it: it keeps only [`SecretHash`] (SHA-256 of the secret) and the public
//! [`SessionId`], a domain-separated SHA-256 of the secret cut to 128 bits. Deriving
//! the id from the secret means a cookie names its session without a second lookup,
//! and knowing an id (it appears in listings and URLs) reveals nothing of the secret.

use std::fmt;
use std::marker::PhantomData;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

const SESSION_PREFIX: &str = "tss_";
const SECRET_BYTES: usize = 32;
const ENCODED_SECRET_CHARS: usize = 43; // 32 bytes in unpadded base64url
const SESSION_ID_BYTES: usize = 16;
const ENCODED_SESSION_ID_CHARS: usize = 22;
const SESSION_ID_DOMAIN: &[u8] = b"tessera session id v1\0";

/// `N` bytes from the operating system's random generator.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS generator failing is not something a server can recover from or work
    // around; issuing a predictable secret instead would be far worse.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut bytes).expect("the operating system's random generator failed");
    bytes
}

/// What kind of bearer secret a [`Secret`] is: decides the prefix it is written with,
/// so that secret scanners (and people) can tell them apart, and a secret of one
/// kind never parses as another.
pub trait SecretKind {
    const PREFIX: &'static str;
    /// Whether the secret leads with the time it was made (48 bits of milliseconds,
    /// then 208 random bits) and its [`SecretHash`] with the same 6 bytes (then 26
    /// bytes of the SHA-256). Stored hashes are an index's keys: random ones put
    /// every insert on a page of its own, so a batch of 14 authorization codes wrote
    /// 14 index pages to SQLite's log; ordered by time they share the last one or
    /// two. Only for secrets written many at a time and looked up by their hash,
    /// whose making time is no secret to their holder (a code's, a refresh
    /// token's). A secret made before its kind became ordered is stored under its
    /// plain SHA-256 ([`Secret::unordered_hash`]): codes live a minute, but refresh
    /// tokens live for weeks, so their lookups fall back to it.
    const TIME_ORDERED: bool = false;
}

/// A session cookie's secret: `tss_…`.
pub enum SessionKind {}
/// A confidential client's secret: `tcs_…`.
pub enum ClientSecretKind {}
/// An opaque access token: `tat_…`.
pub enum AccessTokenKind {}
/// A refresh token: `trt_…`.
pub enum RefreshTokenKind {}
/// An authorization code: `tac_…`.
pub enum AuthorizationCodeKind {}
/// A one-time password-reset link's secret: `tpr_…`.
pub enum PasswordResetKind {}
/// A sign-in ceremony under way (between the factors, a passkey's challenge):
/// `tce_…`.
pub enum CeremonyKind {}

impl SecretKind for SessionKind {
    const PREFIX: &'static str = SESSION_PREFIX;
}
impl SecretKind for ClientSecretKind {
    const PREFIX: &'static str = "tcs_";
}
impl SecretKind for AccessTokenKind {
    const PREFIX: &'static str = tessera_proto::token_type::OPAQUE_ACCESS_TOKEN_PREFIX;
}
impl SecretKind for RefreshTokenKind {
    const PREFIX: &'static str = tessera_proto::token_type::REFRESH_TOKEN_PREFIX;
    // Every code exchange and rotation writes one to a unique index: ordered, they
    // share its last page instead of each dirtying a page of its own.
    const TIME_ORDERED: bool = true;
}
impl SecretKind for PasswordResetKind {
    const PREFIX: &'static str = "tpr_";
}
impl SecretKind for CeremonyKind {
    const PREFIX: &'static str = "tce_";
}
impl SecretKind for AuthorizationCodeKind {
    const PREFIX: &'static str = "tac_";
    const TIME_ORDERED: bool = true;
}

/// How many leading bytes of a time-ordered secret (and of its hash) are its time.
const TIME_BYTES: usize = 6;

/// The time now as [`TIME_BYTES`] bytes of milliseconds since the epoch, big-endian
/// (so that byte order is time order; 48 bits last until the year 10889).
fn time_prefix() -> [u8; TIME_BYTES] {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    let mut prefix = [0u8; TIME_BYTES];
    prefix.copy_from_slice(&millis.to_be_bytes()[8 - TIME_BYTES..]);
    prefix
}

/// 256 random bits handed to their owner once, written `<prefix><43 base64url chars>`;
/// the store keeps only [`SecretHash`].
pub struct Secret<K: SecretKind>([u8; SECRET_BYTES], PhantomData<K>);

pub type SessionSecret = Secret<SessionKind>;
pub type PasswordResetSecret = Secret<PasswordResetKind>;
pub type CeremonySecret = Secret<CeremonyKind>;
pub type ClientSecret = Secret<ClientSecretKind>;
pub type AccessTokenSecret = Secret<AccessTokenKind>;
pub type RefreshTokenSecret = Secret<RefreshTokenKind>;
pub type AuthorizationCodeSecret = Secret<AuthorizationCodeKind>;

impl<K: SecretKind> Secret<K> {
    pub fn generate() -> Self {
        let mut bytes = random_bytes::<SECRET_BYTES>();
        if K::TIME_ORDERED {
            bytes[..TIME_BYTES].copy_from_slice(&time_prefix());
        }
        Self(bytes, PhantomData)
    }

    /// Parses the written form. Anything else, including a valid secret with
    /// surrounding whitespace or another kind's prefix, is refused.
    pub fn parse(input: &str) -> Option<Self> {
        let encoded = input.strip_prefix(K::PREFIX)?;
        if encoded.len() != ENCODED_SECRET_CHARS {
            return None;
        }
        let mut bytes = [0u8; SECRET_BYTES];
        let written = URL_SAFE_NO_PAD.decode_slice(encoded, &mut bytes).ok()?;
        (written == SECRET_BYTES).then_some(Self(bytes, PhantomData))
    }

    /// The written form. Call only where the secret is handed to its owner.
    pub fn expose(&self) -> String {
        format!("{}{}", K::PREFIX, URL_SAFE_NO_PAD.encode(self.0))
    }

    pub fn hash(&self) -> SecretHash {
        let digest: [u8; 32] = Sha256::digest(self.0).into();
        if !K::TIME_ORDERED {
            return SecretHash(digest);
        }
        // The time bytes are the secret's own, so a forged time changes the digest
        // too: the hash still names one secret, with 208 bits of the SHA-256.
        let mut hash = [0u8; 32];
        hash[..TIME_BYTES].copy_from_slice(&self.0[..TIME_BYTES]);
        hash[TIME_BYTES..].copy_from_slice(&digest[..32 - TIME_BYTES]);
        SecretHash(hash)
    }

    /// For a kind that leads with its time, the plain SHA-256 a secret of it was
    /// stored under before the kind became ordered (a refresh token issued by an
    /// older release); `None` for the others, whose [`Self::hash`] is that already.
    /// Lookups try [`Self::hash`] first. A secret of either age matches one stored
    /// hash only: the two hashes of one secret differ, and neither can be made to
    /// equal another secret's.
    pub fn unordered_hash(&self) -> Option<SecretHash> {
        K::TIME_ORDERED.then(|| SecretHash(Sha256::digest(self.0).into()))
    }
}

impl SessionSecret {
    pub fn session_id(&self) -> SessionId {
        let digest = Sha256::new()
            .chain_update(SESSION_ID_DOMAIN)
            .chain_update(self.0)
            .finalize();
        let mut id = [0u8; SESSION_ID_BYTES];
        id.copy_from_slice(&digest[..SESSION_ID_BYTES]);
        SessionId::from_bytes(&id)
    }
}

impl<K: SecretKind> Drop for Secret<K> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<K: SecretKind> fmt::Debug for Secret<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({}<redacted>)", K::PREFIX)
    }
}

/// SHA-256 of a secret: what the store keeps in place of the secret itself.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Comparison that takes the same time wherever the first difference is.
    pub fn matches(&self, other: &SecretHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

/// The public name of a session: safe in listings, URLs, logs and (later) token claims.
/// Kept inline (no heap) since every cached session and cache key holds one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId([u8; ENCODED_SESSION_ID_CHARS]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a session id is {ENCODED_SESSION_ID_CHARS} base64url characters")]
pub struct SessionIdError;

impl SessionId {
    pub fn parse(input: &str) -> Result<Self, SessionIdError> {
        let mut bytes = [0u8; SESSION_ID_BYTES + 2];
        let encoded: [u8; ENCODED_SESSION_ID_CHARS] =
            input.as_bytes().try_into().map_err(|_| SessionIdError)?;
        match URL_SAFE_NO_PAD.decode_slice(input, &mut bytes) {
            Ok(SESSION_ID_BYTES) => Ok(Self(encoded)),
            _ => Err(SessionIdError),
        }
    }

    /// A new id that is no session's secret's: a refresh family's. It leads with the
    /// time (see [`SecretKind::TIME_ORDERED`]; 80 random bits follow), so families
    /// started together sit together in the store's index of ids, where random ids
    /// put each on a page of its own. An id is public, and so is when its family
    /// started.
    pub fn time_ordered() -> Self {
        let mut id = random_bytes::<SESSION_ID_BYTES>();
        id[..TIME_BYTES].copy_from_slice(&time_prefix());
        Self::from_bytes(&id)
    }

    fn from_bytes(id: &[u8; SESSION_ID_BYTES]) -> Self {
        let mut encoded = [0u8; ENCODED_SESSION_ID_CHARS];
        // 16 bytes always encode to exactly 22 characters.
        let _ = URL_SAFE_NO_PAD.encode_slice(id, &mut encoded);
        Self(encoded)
    }

    pub fn as_str(&self) -> &str {
        // Only ever built from base64url output or validated input: always ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.as_str())
    }
}

impl Serialize for SessionId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The per-session anti-CSRF token. It is not a credential on its own (a forged
/// request also needs the cookie), so the store keeps it as is to hand it back.
/// Kept inline: every cached session holds one.
#[derive(Clone, PartialEq, Eq)]
pub struct CsrfToken([u8; ENCODED_SECRET_CHARS]);

impl CsrfToken {
    pub fn generate() -> Self {
        let mut encoded = [0u8; ENCODED_SECRET_CHARS];
        // 32 bytes always encode to exactly 43 characters.
        let _ = URL_SAFE_NO_PAD.encode_slice(random_bytes::<32>(), &mut encoded);
        Self(encoded)
    }

    /// Wraps a token read back from the store; `None` if it is not one we made.
    pub fn from_stored(value: &str) -> Option<Self> {
        let encoded: [u8; ENCODED_SECRET_CHARS] = value.as_bytes().try_into().ok()?;
        encoded
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
            .then_some(Self(encoded))
    }

    pub fn as_str(&self) -> &str {
        // Only ever built from base64url output or checked input: always ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub fn matches(&self, presented: &str) -> bool {
        self.0.ct_eq(presented.as_bytes()).into()
    }
}

impl fmt::Debug for CsrfToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CsrfToken(<redacted>)")
    }
}

/// A token presented to tessera (to introspect, to revoke), classified once by its
/// prefix: what kind of record to look for is decided here and nowhere else.
pub enum PresentedToken<'a> {
    /// A refresh token, `trt_…`.
    Refresh(RefreshTokenSecret),
    /// An opaque access token, `tat_…`.
    Opaque(AccessTokenSecret),
    /// One of tessera's prefixes with a body that is not a secret: no such token
    /// exists, and it is never tried as a JWT.
    Malformed,
    /// Anything else: a JWT, if it is one of ours at all.
    Jwt(&'a str),
}

impl<'a> PresentedToken<'a> {
    pub fn classify(token: &'a str) -> Self {
        if token.starts_with(RefreshTokenKind::PREFIX) {
            RefreshTokenSecret::parse(token).map_or(Self::Malformed, Self::Refresh)
        } else if token.starts_with(AccessTokenKind::PREFIX) {
            AccessTokenSecret::parse(token).map_or(Self::Malformed, Self::Opaque)
        } else {
            Self::Jwt(token)
        }
    }

    /// Whether it names a record only tessera can look up (a refresh or opaque
    /// token, well-formed or not), as opposed to a self-contained JWT.
    pub fn is_opaque(&self) -> bool {
        !matches!(self, Self::Jwt(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_and_shape() {
        let secret = SessionSecret::generate();
        let cookie = secret.expose();
        assert!(cookie.starts_with("tss_"));
        assert_eq!(cookie.len(), 4 + 43);
        let parsed = SessionSecret::parse(&cookie).unwrap();
        assert!(parsed.hash().matches(&secret.hash()));
        assert_eq!(parsed.session_id(), secret.session_id());
        assert!(SessionId::parse(secret.session_id().as_str()).is_ok());
    }

    #[test]
    fn two_secrets_differ() {
        let (a, b) = (SessionSecret::generate(), SessionSecret::generate());
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.session_id(), b.session_id());
    }

    #[test]
    fn malformed_cookies_are_refused() {
        let good = SessionSecret::generate().expose();
        for bad in [
            "",
            "tss_",
            &good[4..],
            &format!(" {good}"),
            &format!("{good}A"),
            &good.replace("tss_", "tat_"),
            &format!("tss_{}", "!".repeat(43)),
        ] {
            assert!(SessionSecret::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn csrf_tokens_round_trip_through_the_store() {
        let token = CsrfToken::generate();
        assert_eq!(token.as_str().len(), 43);
        assert_eq!(CsrfToken::from_stored(token.as_str()), Some(token.clone()));
        assert!(token.matches(token.as_str()));
        assert!(!token.matches(&token.as_str()[1..]));
        assert!(!token.matches(""));
        assert_eq!(CsrfToken::from_stored("short"), None);
        assert_eq!(CsrfToken::from_stored(&"!".repeat(43)), None);
    }

    #[test]
    fn kinds_do_not_parse_as_each_other() {
        let client = ClientSecret::generate().expose();
        assert!(client.starts_with("tcs_"));
        assert!(SessionSecret::parse(&client).is_none());
        assert!(RefreshTokenSecret::parse(&client).is_none());
        assert!(ClientSecret::parse(&client).is_some());
        let refresh = RefreshTokenSecret::generate().expose();
        assert!(refresh.starts_with("trt_") && AccessTokenSecret::parse(&refresh).is_none());
        assert!(AccessTokenSecret::generate().expose().starts_with("tat_"));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let secret = SessionSecret::generate();
        let cookie = secret.expose();
        assert!(!format!("{secret:?}").contains(&cookie[4..]));
        let csrf = CsrfToken::generate();
        assert!(!format!("{csrf:?}").contains(csrf.as_str()));
    }

    impl SessionSecret {
        fn from_raw(bytes: [u8; SECRET_BYTES]) -> Self {
            Self(bytes, PhantomData)
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(input in ".{0,80}") {
            let _ = SessionSecret::parse(&input);
            let _ = SessionId::parse(&input);
        }

        #[test]
        fn any_32_bytes_round_trip(bytes in proptest::array::uniform32(any::<u8>())) {
            let secret = SessionSecret::from_raw(bytes);
            let parsed = SessionSecret::parse(&secret.expose()).unwrap();
            prop_assert_eq!(parsed.0, bytes);
        }
    }

    #[test]
    fn time_ordered_secrets_hash_in_the_order_they_were_made() {
        let first = AuthorizationCodeSecret::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = AuthorizationCodeSecret::generate();
        assert!(first.hash().as_bytes() < second.hash().as_bytes());
        assert_eq!(first.hash().as_bytes()[..TIME_BYTES], first.0[..TIME_BYTES]);
        // The rest is the digest of the whole secret, time bytes included.
        let mut forged = AuthorizationCodeSecret::parse(&first.expose()).unwrap();
        forged.0[0] ^= 1;
        assert_ne!(
            forged.hash().as_bytes()[TIME_BYTES..],
            first.hash().as_bytes()[TIME_BYTES..]
        );
        let (early, late) = (SessionId::time_ordered(), {
            std::thread::sleep(std::time::Duration::from_millis(2));
            SessionId::time_ordered()
        });
        assert_ne!(early, late);
        assert_eq!(SessionId::parse(late.as_str()), Ok(late));
        // Refresh tokens are ordered too; one issued before they were (wholly
        // random) is found under its plain SHA-256, the unordered hash.
        let (early, late) = (RefreshTokenSecret::generate(), {
            std::thread::sleep(std::time::Duration::from_millis(2));
            RefreshTokenSecret::generate()
        });
        assert!(early.hash().as_bytes() < late.hash().as_bytes());
        assert_eq!(
            early.unordered_hash().map(|h| *h.as_bytes()),
            Some(<[u8; 32]>::from(Sha256::digest(early.0)))
        );
        assert_ne!(early.unordered_hash(), Some(early.hash()));
        // Others stay wholly random: their hash is the plain SHA-256.
        let session = SessionSecret::generate();
        assert_eq!(
            *session.hash().as_bytes(),
            <[u8; 32]>::from(Sha256::digest(session.0))
        );
        assert!(session.unordered_hash().is_none());
    }

    #[test]
    fn presented_tokens_are_classified_by_prefix_and_never_cross_kinds() {
        let refresh = RefreshTokenSecret::generate().expose();
        let opaque = AccessTokenSecret::generate().expose();
        assert!(matches!(
            PresentedToken::classify(&refresh),
            PresentedToken::Refresh(_)
        ));
        assert!(matches!(
            PresentedToken::classify(&opaque),
            PresentedToken::Opaque(_)
        ));
        for malformed in [
            "trt_",
            "tat_short",
            &format!("{refresh}x"),
            &format!("{opaque} "),
        ] {
            assert!(matches!(
                PresentedToken::classify(malformed),
                PresentedToken::Malformed
            ));
        }
        assert!(matches!(
            PresentedToken::classify("eyJ.x.y"),
            PresentedToken::Jwt("eyJ.x.y")
        ));
        assert!(!PresentedToken::classify("eyJ.x.y").is_opaque());
        assert!(PresentedToken::classify("tat_").is_opaque());
    }
}
