use std::net::IpAddr;
use std::ops::Deref;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tessera_store::Health;

use crate::http::cookie::SessionCookie;
use crate::http::origin::Origin;
use crate::services::accounts::Accounts;
use crate::services::clients::Clients;
use crate::services::sessions::SessionService;
use crate::services::throttle::Throttle;
use crate::services::tokens::TokenIssuer;

/// What every handler can reach. Built once at start-up; cloning is one `Arc` clone.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

pub struct Services {
    pub accounts: Accounts,
    pub sessions: Arc<SessionService>,
    pub clients: Clients,
    pub refresh: Arc<crate::services::refresh::RefreshTokens>,
    pub presence: Arc<crate::services::presence::Presence>,
    pub keys: Arc<crate::services::keyring::KeyRing>,
    pub refresh_store: Arc<dyn tessera_store::RefreshStore>,
    pub opaque_store: Arc<dyn tessera_store::OpaqueTokenStore>,
    /// Opaque token records by the SHA-256 of the token, so introspection needs no
    /// store read. Safe because a record never changes: its revocation comes
    /// through the revocation log (checked on every use), and this process's own
    /// revocations also evict the entry at once.
    pub opaque_cache: quick_cache::sync::Cache<[u8; 32], Arc<tessera_store::OpaqueToken>>,
    pub revocation_log: Arc<dyn tessera_store::RevocationLog>,
    pub own_tokens: Arc<crate::services::own_tokens::OwnTokens>,
    pub tokens: Arc<TokenIssuer>,
    /// `max-age` of the JWKS and the metadata.
    pub jwks_max_age: std::time::Duration,
    pub feed_heartbeat: std::time::Duration,
    pub throttle: Throttle,
    pub health: Arc<dyn Health>,
    pub metrics: PrometheusHandle,
    pub cookie: SessionCookie,
    /// The token cookie of `POST /v1/session/token`.
    pub token_cookie: SessionCookie,
    /// What tokens of the token cookie are issued as (see `ClientId::web_session`).
    pub session_token_client: tessera_store::Client,
    /// Origins allowed to send logins and cookie-authenticated unsafe requests.
    pub origins: Vec<Origin>,
    /// Where the login page may send a browser afterwards.
    pub return_to: crate::http::return_to::ReturnTo,
    /// Origins whose pages may call the token endpoint (CORS).
    pub token_cors_origins: Vec<Origin>,
    pub trusted_proxies: Vec<IpAddr>,
    pub registration_open: bool,
}

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}
