//! Domain types shared by every part of tessera.
//!
//! Everything here parses input at the edge (`Username::parse`, `Password::parse`,
//! `SessionSecret::parse`), so code past the edge only ever holds valid values.
//! Nothing in this crate performs I/O; secrets never appear in `Debug` output.

mod client;
mod password;
mod secret;
mod timestamp;
mod user;
mod username;

pub use client::{
    Audience, AudienceError, ClientId, ClientName, ClientNameError, GrantType, MAX_ACCESS_TTL,
    MIN_ACCESS_TTL, PRIVILEGED_SCOPES, ScopeError, Scopes, TOKEN_EXCHANGE_GRANT, TokenAlgorithm,
    TokenFormat,
};
pub use password::{Password, PasswordError};
pub use secret::{
    AccessTokenSecret, ClientSecret, CsrfToken, PresentedToken, RefreshTokenSecret, Secret,
    SecretHash, SecretKind, SessionId, SessionIdError, SessionSecret, random_bytes,
};
pub use timestamp::Timestamp;
pub use user::{Role, RoleError, Roles, UserId};
pub use username::{Username, UsernameError};
