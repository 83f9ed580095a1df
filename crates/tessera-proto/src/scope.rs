//! tessera's own scope names: what a client must hold to use tessera's privileged
//! endpoints. They are granted only when asked for by name.

/// The admin API.
pub const ADMIN: &str = "admin";

/// Reading the revocation feed (`GET /v1/revocations`).
pub const REVOCATIONS: &str = "revocations";

/// Introspecting tokens issued to other clients (`POST /oauth2/introspect`).
pub const INTROSPECT: &str = "introspect";

/// Every privileged scope.
pub const PRIVILEGED: [&str; 3] = [ADMIN, REVOCATIONS, INTROSPECT];

/// OpenID Connect's scopes (Core §3.1.2.1, §5.4, §11): the browser flow grants them
/// to any client registered for it, as the claims they stand for are the user's to
/// give.
pub mod oidc {
    /// An OpenID Connect request: an ID token, and `sub` from userinfo.
    pub const OPENID: &str = "openid";
    /// `name`, `preferred_username`, `updated_at`.
    pub const PROFILE: &str = "profile";
    /// `email`, `email_verified`.
    pub const EMAIL: &str = "email";
    /// A refresh token that outlives the browser session; only for clients
    /// registered with this scope.
    pub const OFFLINE_ACCESS: &str = "offline_access";
    /// The scopes every client of the browser flow may ask for.
    pub const STANDARD: [&str; 3] = [OPENID, PROFILE, EMAIL];
}
