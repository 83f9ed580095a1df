//! Domain types shared by every part of tessera.
//!
//! Everything here parses input at the edge (`Username::parse`, `Password::parse`,
//! `SessionSecret::parse`), so code past the edge only ever holds valid values.
//! Nothing in this crate performs I/O; secrets never appear in `Debug` output.

mod auth_methods;
mod client;
mod listen;
mod password;
mod pkce;
mod profile;
mod recovery;
mod secret;
mod timestamp;
mod totp;
mod uri;
mod user;
mod username;

pub use auth_methods::{
    ACR_ONE_FACTOR, ACR_TWO_FACTORS, ACR_VALUES, AuthMethod, AuthMethods, AuthMethodsError,
};
pub use client::{
    Audience, AudienceError, ClientId, ClientName, ClientNameError, GrantType, MAX_ACCESS_TTL,
    MIN_ACCESS_TTL, ScopeError, Scopes, TokenFormat,
};
pub use listen::{MANAGEMENT_PORT_OFFSET, default_management_address};
pub use password::{Password, PasswordError};
pub use pkce::{CodeChallenge, PkceError, S256 as PKCE_S256};
pub use profile::{DisplayName, Email, ProfileError};
pub use recovery::{RECOVERY_CODES, RecoveryCode, RecoveryCodeError};
pub use secret::{
    AccessTokenSecret, AuthorizationCodeSecret, CeremonySecret, ClientSecret, CsrfToken,
    PasswordResetSecret, PresentedToken, RefreshTokenSecret, Secret, SecretHash, SecretKind,
    SessionId, SessionIdError, SessionSecret, random_bytes,
};
/// The algorithm a client's JWT access tokens are signed with: the wire's one
/// [`tessera_proto::Algorithm`].
pub use tessera_proto::Algorithm;
pub use timestamp::Timestamp;
pub use totp::{TotpCode, TotpError, TotpRefusal, TotpSecret, TotpStep};
pub use uri::{LogoutUri, RedirectUri, UriError};
pub use user::{Role, RoleError, Roles, UserId};
pub use username::{Username, UsernameError};
