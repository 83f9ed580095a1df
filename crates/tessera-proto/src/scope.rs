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
