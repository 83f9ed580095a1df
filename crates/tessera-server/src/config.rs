//! Configuration: defaults < TOML file < `TESSERA_*` environment < command-line flags.
//!
//! The whole configuration is one value built at start-up and passed down; nothing
//! reads it from a global. `tessera.example.toml` at the repository root documents
//! every key.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Where `/metrics`, `/healthz` and `/readyz` are served for operators (the
    /// public port keeps the two health checks for load balancers, not the
    /// metrics). Default: `listen` with its port + 10 (7490 for 7480).
    pub management_listen: Option<SocketAddr>,
    /// Serve HTTPS on `listen` with this certificate chain and key (PEM files,
    /// reloaded when they change). The management listener stays plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Folder holding the embedded store (`tessera.sqlite3`), unless `database`
    /// names another.
    pub data_dir: PathBuf,
    /// Where accounts, clients, keys, refresh tokens and the revocation log live:
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB`. Default: the
    /// SQLite file in `data_dir`. Instances sharing a PostgreSQL database are one
    /// service.
    pub database: Option<StoreUrl>,
    /// Redis (or Valkey) for sessions, opaque access tokens, login throttling and
    /// presence: `redis://[:PASSWORD@]HOST:PORT[/DB]`. Default: none, all of that
    /// lives in the database (and throttling counts per instance).
    pub redis: Option<StoreUrl>,
    /// The URL users reach tessera at; its origin is the one browsers' requests must
    /// come from. Default: `http://` + `listen`.
    pub public_url: Option<String>,
    pub log_format: LogFormat,
    /// Whether anyone may create an account (`POST /v1/users`, `/register`).
    /// Closed by default: an identity service that lets strangers in unasked, with
    /// no verification of who they are, is a choice to make on purpose.
    pub registration: bool,
    /// Who must sign in with a second factor (an authenticator app): `optional`
    /// (whoever set one up), `required_for_admins` or `required` (everyone). An
    /// account the policy covers that has none sets one up as it signs in, and a
    /// session from before without one does not reach the admin console and API.
    pub mfa: MfaPolicy,
    /// Further origins allowed to send cookie-authenticated requests and logins.
    pub allowed_origins: Vec<String>,
    /// Origins the login page (`/login`) may send a browser back to after login,
    /// with `?return_to=URL`: a gateway's, an application's. `public_url`'s origin
    /// always may; any other `return_to` is ignored (no open redirect).
    pub return_to_origins: Vec<String>,
    /// Peers whose `X-Forwarded-For` is believed (reverse proxies in front of tessera).
    pub trusted_proxies: Vec<IpAddr>,
    pub password: PasswordConfig,
    pub session: SessionConfig,
    pub throttle: ThrottleConfig,
    pub limits: LimitsConfig,
    pub tokens: TokensConfig,
    pub keys: KeysConfig,
    pub audit: AuditConfig,
}

/// Who must sign in with a second factor. tessera's one role is `admin`, so
/// `required_for_admins` is the per-role form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MfaPolicy {
    #[default]
    Optional,
    RequiredForAdmins,
    Required,
}

impl MfaPolicy {
    /// Whether an account with these roles must have a second factor.
    pub fn requires(self, roles: &tessera_core::Roles) -> bool {
        self.requires_for(roles.contains(tessera_core::Role::Admin))
    }

    /// [`Self::requires`], for an account that is an admin or not.
    pub fn requires_for(self, admin: bool) -> bool {
        match self {
            Self::Optional => false,
            Self::RequiredForAdmins => admin,
            Self::Required => true,
        }
    }

    /// Whether a session of this user, authenticated with `methods`, is enough
    /// for what the policy guards (the admin console and API).
    pub fn admits(self, user: &tessera_store::User, methods: tessera_core::AuthMethods) -> bool {
        !self.requires(&user.roles) || methods.is_multi_factor()
    }
}

/// The public listener's certificate (`[tls]`), as the gateway's.
pub use tessera_listener::TlsFiles;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// How long audit events are kept; older ones are purged in the background.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Whether events are stored (and readable in the console, `GET
    /// /admin/v1/events` and `tessera events`). `false` leaves only their log
    /// lines (target `tessera::audit`), for a deployment whose log pipeline keeps
    /// them; the console's events page and sign-in chart are then empty.
    pub stored: bool,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention: crate::services::audit::DEFAULT_RETENTION,
            stored: true,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// Let `serve` start without `TESSERA_MASTER_KEY` although the public URL or
    /// the issuer is not on loopback, storing the private signing keys unsealed
    /// (plain PKCS#8 in the database). Off: such a start is refused.
    pub allow_unsealed: bool,
    /// The master key that seals the private signing keys at rest: 32 random bytes
    /// as 64 hex digits or base64. Given through `TESSERA_MASTER_KEY` (or
    /// `TESSERA_KEYS__MASTER_KEY`), never written back out. Unset: the keys are
    /// stored unsealed, which `serve` refuses off loopback unless
    /// `allow_unsealed`.
    #[serde(skip_serializing)]
    pub master_key: Option<MasterKeyText>,
}

/// The environment variable holding the master key.
pub const MASTER_KEY_VAR: &str = "TESSERA_MASTER_KEY";

/// The master key as configured, not yet parsed. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct MasterKeyText(String);

impl std::fmt::Debug for MasterKeyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKeyText(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordConfig {
    /// Argon2id memory cost in KiB.
    pub memory_kib: u32,
    /// Argon2id passes.
    pub iterations: u32,
    /// Argon2id lanes.
    pub parallelism: u32,
    /// Threads that hash passwords; 0 means one per core.
    pub hash_threads: usize,
    /// Hash requests that may wait for a thread before logins answer 503.
    pub queue_depth: usize,
}

impl PasswordConfig {
    /// The Argon2id parameters, checked.
    pub fn argon2_params(&self) -> Result<argon2::Params, String> {
        argon2::Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| format!("invalid Argon2id parameters: {e}"))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// A session unused for this long ends.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A session ends this long after login, however active.
    #[serde(with = "humantime_serde")]
    pub absolute_lifetime: Duration,
    /// Mark the cookie `Secure` (and name it `__Host-tessera-session`). Turn off only
    /// for plain-HTTP deployments that are not on loopback; the cookie is then named
    /// `tessera-session`, since browsers refuse `__Host-` cookies without `Secure`.
    pub cookie_secure: bool,
    /// Sessions kept in memory for the fast check; more are read from the store.
    pub cache_capacity: usize,
    /// How long this instance trusts its caches (sessions, revoked tokens) after it
    /// last heard from the revocation log; past it, requests go to the store (and get
    /// 503 while the store is down), because another instance may have ended a
    /// session this one cannot hear about.
    #[serde(with = "humantime_serde")]
    pub cache_staleness: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Login attempts per account per minute, sustained.
    pub account_per_minute: u32,
    /// Login attempts per account allowed in a burst.
    pub account_burst: u32,
    /// Login and registration attempts per client address per minute, sustained.
    pub address_per_minute: u32,
    /// Attempts per client address allowed in a burst.
    pub address_burst: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokensConfig {
    /// The `iss` of every token, and where `/.well-known/…` documents are found.
    /// Default: the public URL.
    pub issuer: Option<String>,
    /// How long verifiers may cache the JWKS (its `Cache-Control: max-age`).
    #[serde(with = "humantime_serde")]
    pub jwks_max_age: Duration,
    /// After `tessera keys rotate`, how long the new key is only published before it
    /// starts signing, so that verifiers' cached JWKS have it. At least
    /// `jwks_max_age`.
    #[serde(with = "humantime_serde")]
    pub rotation_delay: Duration,
    /// The shared secret for clients whose tokens use HS256: at least 32 bytes. Give
    /// it through `TESSERA_TOKENS__HS256_SECRET` rather than a file. Never published.
    pub hs256_secret: Option<HmacSecret>,
    /// Origins whose pages may call the token endpoint from a browser (CORS). None by
    /// default: browsers are refused. Credentials (cookies) are never allowed.
    pub cors_origins: Vec<String>,
    /// A refresh-token family ends this long after the grant that started it,
    /// however often it is used.
    #[serde(with = "humantime_serde")]
    pub refresh_lifetime: Duration,
    /// A refresh token presented again within this time after it was exchanged is
    /// refused without revoking its family (a client racing itself); after it, the
    /// reuse revokes the family. `0s` treats every second use as theft.
    #[serde(with = "humantime_serde")]
    pub refresh_reuse_grace: Duration,
    /// How often `/v1/revocations` sends a heartbeat. Verifiers count the feed as
    /// stale after missing a few (tessera-verify: 15 s by default), so keep it well
    /// under their bound and under proxies' idle timeouts.
    #[serde(with = "humantime_serde")]
    pub feed_heartbeat: Duration,
    /// Lifetime of the access token `POST /v1/session/token` puts in the token
    /// cookie. Short: the browser asks again, and the session decides.
    #[serde(with = "humantime_serde")]
    pub session_token_ttl: Duration,
    /// The audience of those tokens. Default: the issuer.
    pub session_token_audience: Option<String>,
    /// How long an authorization code may wait for its exchange: 60 s, as OpenID
    /// Connect's advice has it; 1 s to 10 min.
    #[serde(with = "humantime_serde")]
    pub code_lifetime: Duration,
    /// How long a back-channel logout that fails is retried (with back-off)
    /// before it is given up: 1 h by default.
    #[serde(with = "humantime_serde")]
    pub backchannel_retry_for: Duration,
    /// DPoP server nonces at the token endpoint (RFC 9449 §8): every proof must
    /// carry a nonce this server gave (`DPoP-Nonce`, good for one to two minutes),
    /// so a proof made in advance by someone who got hold of a client's key for
    /// a moment is worthless later. Instances share nonces through the master key
    /// (`TESSERA_MASTER_KEY`); without one, each instance has its own.
    pub dpop_nonce: bool,
    /// How many DPoP proofs one process remembers against replay, where no
    /// shared store keeps them (SQLite alone; with Redis or PostgreSQL they are
    /// kept there). About 64 bytes each. Past that many within a proof's window
    /// (a minute), the oldest are forgotten and every proof no newer than one
    /// forgotten is refused as not fresh: the window shrinks under load, and a
    /// forgotten proof is never taken again.
    pub dpop_replay_entries: usize,
}

/// A shared secret from configuration; never shown by `Debug`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HmacSecret(pub String);

/// The URL of a store server. It may hold a password, so `Debug` and [`Self::redacted`]
/// show it without one.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StoreUrl(pub String);

impl StoreUrl {
    /// The URL with any password replaced, for messages and logs.
    pub fn redacted(&self) -> String {
        let (url, query) = match self.0.split_once('?') {
            Some((url, query)) => (url, Some(query)),
            None => (self.0.as_str(), None),
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return self.0.clone();
        };
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let mut redacted = match rest[..authority_end].rfind('@') {
            Some(at) => match rest[..at].split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:<redacted>{}", &rest[at..]),
                None => url.to_owned(),
            },
            None => url.to_owned(),
        };
        // PostgreSQL also takes `?password=` (and `sslpassword=`) in the query.
        if let Some(query) = query {
            let parameters: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.to_ascii_lowercase().contains("password") => {
                        format!("{key}=<redacted>")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            redacted = format!("{redacted}?{}", parameters.join("&"));
        }
        redacted
    }
}

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreUrl({})", self.redacted())
    }
}

impl std::fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacSecret(<redacted>)")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body accepted; larger ones get 413.
    pub body_bytes: usize,
    /// Largest request head (request line and headers); larger ones get 431.
    pub header_bytes: usize,
    /// A request taking longer than this gets 408.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// A client must send its request head within this time.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// How long shutdown waits for requests in flight.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7480)),
            management_listen: None,
            tls: None,
            data_dir: PathBuf::from("./tessera-data"),
            database: None,
            redis: None,
            public_url: None,
            log_format: LogFormat::Text,
            registration: false,
            mfa: MfaPolicy::Optional,
            allowed_origins: Vec::new(),
            return_to_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            password: PasswordConfig::default(),
            session: SessionConfig::default(),
            throttle: ThrottleConfig::default(),
            limits: LimitsConfig::default(),
            tokens: TokensConfig::default(),
            keys: KeysConfig::default(),
            audit: AuditConfig::default(),
        }
    }
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self {
            issuer: None,
            jwks_max_age: Duration::from_secs(300),
            rotation_delay: Duration::from_secs(600),
            hs256_secret: None,
            cors_origins: Vec::new(),
            refresh_lifetime: Duration::from_secs(30 * 24 * 3600),
            refresh_reuse_grace: Duration::from_secs(2),
            feed_heartbeat: Duration::from_secs(5),
            session_token_ttl: Duration::from_secs(300),
            code_lifetime: Duration::from_secs(60),
            backchannel_retry_for: Duration::from_secs(3600),
            session_token_audience: None,
            dpop_nonce: false,
            dpop_replay_entries: tessera_verify::binding::DEFAULT_REPLAY_ENTRIES,
        }
    }
}

impl Default for PasswordConfig {
    fn default() -> Self {
        // OWASP's Argon2id recommendation: m=19 MiB, t=2, p=1.
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            hash_threads: 0,
            queue_depth: 256,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(24 * 3600),
            absolute_lifetime: Duration::from_secs(7 * 24 * 3600),
            cookie_secure: true,
            cache_capacity: 250_000,
            cache_staleness: Duration::from_secs(10),
        }
    }
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            account_per_minute: 10,
            account_burst: 10,
            address_per_minute: 60,
            address_burst: 30,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            body_bytes: 64 * 1024,
            header_bytes: 16 * 1024,
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers' value.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub management_listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFiles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<StoreUrl>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<StoreUrl>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

/// Top-level keys that `TESSERA_*` variables may set; other `TESSERA_` variables (such
/// as `TESSERA_CONFIG` or `TESSERA_LOG`) belong to the command line.
const ENV_KEYS: &[&str] = &[
    "listen",
    "management_listen",
    "tls",
    "data_dir",
    "database",
    "redis",
    "public_url",
    "log_format",
    "registration",
    "mfa",
    "allowed_origins",
    "return_to_origins",
    "trusted_proxies",
    "password",
    "session",
    "throttle",
    "limits",
    "tokens",
    "keys",
    "audit",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    File {
        path: String,
        source: toml::de::Error,
    },
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Config {
    pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            // Parse the file on its own first: a typo in it is named with its key.
            toml::from_str::<Config>(&text).map_err(|source| ConfigError::File {
                path: path.display().to_string(),
                source,
            })?;
            figment = figment.merge(Toml::string(&text));
        }
        let env = Env::prefixed("TESSERA_")
            .filter(|key| {
                let key = key.as_str().to_ascii_lowercase();
                ENV_KEYS
                    .iter()
                    .any(|k| key == *k || key.starts_with(&format!("{k}__")))
            })
            .split("__");
        // The master key's own variable, older than the `TESSERA_KEYS__…` form.
        let master_key = Env::raw()
            .only(&[MASTER_KEY_VAR])
            .map(|_| "keys.master_key".into());
        let config: Config = figment
            .merge(master_key)
            .merge(env)
            .merge(Serialized::globals(overrides))
            .extract()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The master key, parsed; `None` when unset or blank.
    pub fn master_key(
        &self,
    ) -> Result<Option<tessera_keys::MasterKey>, tessera_keys::MasterKeyError> {
        match &self.keys.master_key {
            Some(MasterKeyText(text)) if !text.trim().is_empty() => {
                tessera_keys::MasterKey::parse(text).map(Some)
            }
            _ => Ok(None),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.session.idle_timeout.is_zero() || self.session.absolute_lifetime.is_zero() {
            return invalid("session.idle_timeout and session.absolute_lifetime must be positive");
        }
        if self.session.cache_staleness < Duration::from_millis(500)
            || self.session.cache_staleness > Duration::from_secs(10)
        {
            return invalid("session.cache_staleness must be between 500ms and 10s");
        }
        if self.limits.body_bytes == 0 {
            return invalid("limits.body_bytes must be positive");
        }
        if self.limits.header_bytes < 8192 {
            return invalid("limits.header_bytes must be at least 8192");
        }
        if self.throttle.account_per_minute == 0
            || self.throttle.account_burst == 0
            || self.throttle.address_per_minute == 0
            || self.throttle.address_burst == 0
        {
            return invalid("throttle rates and bursts must be positive");
        }
        if self.password.queue_depth == 0 {
            return invalid("password.queue_depth must be positive");
        }
        self.password
            .argon2_params()
            .map_err(|e| ConfigError::Invalid(format!("password: {e}")))?;
        if self.tokens.refresh_lifetime.is_zero() {
            return invalid("tokens.refresh_lifetime must be positive");
        }
        if self.tokens.feed_heartbeat < Duration::from_millis(50)
            || self.tokens.feed_heartbeat > Duration::from_secs(60)
        {
            return invalid("tokens.feed_heartbeat must be between 50ms and 60s");
        }
        if self.tokens.code_lifetime < Duration::from_secs(1)
            || self.tokens.code_lifetime > Duration::from_secs(600)
        {
            return invalid("tokens.code_lifetime must be between 1s and 10m");
        }
        if self.tokens.session_token_ttl < tessera_core::MIN_ACCESS_TTL
            || self.tokens.session_token_ttl > tessera_core::MAX_ACCESS_TTL
        {
            return invalid("tokens.session_token_ttl must be between 10s and 24h");
        }
        if let Some(audience) = &self.tokens.session_token_audience
            && tessera_core::Audience::parse(audience).is_err()
        {
            return invalid("tokens.session_token_audience is not a valid audience");
        }
        if self.tokens.rotation_delay < self.tokens.jwks_max_age {
            return invalid("tokens.rotation_delay must be at least tokens.jwks_max_age");
        }
        if let Some(secret) = &self.tokens.hs256_secret
            && secret.0.len() < 32
        {
            return invalid("tokens.hs256_secret must be at least 32 bytes");
        }
        for origin in &self.tokens.cors_origins {
            crate::http::origin::Origin::parse(origin)
                .map_err(|e| ConfigError::Invalid(format!("tokens.cors_origins: {e}")))?;
        }
        crate::http::origin::Origin::parse(&self.issuer())
            .map_err(|e| ConfigError::Invalid(format!("tokens.issuer: {e}")))?;
        crate::http::origin::Origin::parse(&self.public_url())
            .map_err(|e| ConfigError::Invalid(format!("public_url: {e}")))?;
        for origin in &self.allowed_origins {
            crate::http::origin::Origin::parse(origin)
                .map_err(|e| ConfigError::Invalid(format!("allowed_origins: {e}")))?;
        }
        for origin in &self.return_to_origins {
            crate::http::origin::Origin::parse(origin)
                .map_err(|e| ConfigError::Invalid(format!("return_to_origins: {e}")))?;
        }
        crate::http::return_to::ReturnTo::new(&self.public_url(), &self.return_to_origins)
            .map_err(ConfigError::Invalid)?;
        let management = self.management_listen()?;
        if management == self.listen && management.port() != 0 {
            return Err(ConfigError::Invalid(format!(
                "management_listen: {management} is the listen address too; the metrics \
                 must not be on the public port"
            )));
        }
        Ok(())
    }

    /// The management listener's address: `management_listen`, or `listen` with
    /// its port + 10.
    pub fn management_listen(&self) -> Result<SocketAddr, ConfigError> {
        match self.management_listen {
            Some(address) => Ok(address),
            None => tessera_core::default_management_address(self.listen).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "management_listen: the default, the listen port {} + {}, is past 65535; \
                     set management_listen (--management-listen)",
                    self.listen.port(),
                    tessera_core::MANAGEMENT_PORT_OFFSET
                ))
            }),
        }
    }

    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("{}://{}", self.scheme(), self.listen),
        }
    }

    /// `https` when the listener serves TLS.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// The issuer URL, without a trailing slash.
    pub fn issuer(&self) -> String {
        match &self.tokens.issuer {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => self.public_url(),
        }
    }

    /// Whether every URL tokens and browsers use to reach this service names this
    /// machine (loopback): then nobody else reaches it, and keys stored unsealed are
    /// as safe as the machine. With no `public_url`, that is the listen address.
    pub fn is_loopback_only(&self) -> bool {
        is_loopback_url(&self.public_url()) && is_loopback_url(&self.issuer())
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(tessera_store_sqlite::DATABASE_FILE)
    }

    pub fn hash_threads(&self) -> usize {
        match self.password.hash_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

/// Whether `url`'s host is a loopback address or `localhost` (RFC 6761: names
/// under `.localhost` are loopback too). Unparseable counts as not loopback.
fn is_loopback_url(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host == "localhost" || host.ends_with(".localhost"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A section missing from `ENV_KEYS` cannot be set by a `TESSERA_*` variable
    /// (as `audit` once could not).
    #[test]
    fn every_section_can_be_set_from_the_environment() {
        let config = Config::load(None, Overrides::default()).unwrap();
        let json = serde_json::to_value(&config).unwrap();
        for key in json.as_object().unwrap().keys() {
            assert!(ENV_KEYS.contains(&key.as_str()), "{key} is not in ENV_KEYS");
        }
    }

    #[test]
    fn defaults_are_valid() {
        let config = Config::load(None, Overrides::default()).unwrap();
        assert_eq!(config.public_url(), "http://127.0.0.1:7480");
        assert_eq!(config.password.memory_kib, 19456);
    }

    #[test]
    fn the_example_configuration_loads() {
        let example =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tessera.example.toml");
        let config = Config::load(Some(&example), Overrides::default()).unwrap();
        assert!(!config.registration, "the example shows the default");
    }

    #[test]
    fn store_urls_never_show_their_password() {
        let url = StoreUrl("postgres://tessera:hunter2@db:5432/tessera".into());
        assert_eq!(
            url.redacted(),
            "postgres://tessera:<redacted>@db:5432/tessera"
        );
        assert!(!format!("{url:?}").contains("hunter2"));
        let tricky = StoreUrl("redis://:p@ss@cache/0".into());
        assert_eq!(tricky.redacted(), "redis://:<redacted>@cache/0");
        let query =
            StoreUrl("postgres://db/t?sslmode=require&password=hunter2&SSLPassword=x".into());
        assert_eq!(
            query.redacted(),
            "postgres://db/t?sslmode=require&password=<redacted>&SSLPassword=<redacted>"
        );
        for plain in ["sqlite://./x.db", "redis://cache:6379/0", "postgres://db/t"] {
            assert_eq!(StoreUrl(plain.into()).redacted(), plain);
        }
    }

    #[test]
    fn loopback_urls_are_told_from_others() {
        for loopback in [
            "http://127.0.0.1:7480",
            "http://127.8.0.1",
            "http://[::1]:7480/",
            "http://localhost:7480",
            "https://LOCALHOST.",
            "http://id.localhost/x",
        ] {
            assert!(is_loopback_url(loopback), "{loopback}");
        }
        for other in [
            "http://0.0.0.0:7480",
            "https://id.example.com",
            "http://10.0.0.1",
            "http://[::]:80",
            "http://localhost.example.com",
            "http://127.0.0.1.nip.io",
            "not a url",
        ] {
            assert!(!is_loopback_url(other), "{other}");
        }
        let config = Config::load(None, Overrides::default()).unwrap();
        assert!(config.is_loopback_only());
        let issuer_elsewhere = Config {
            tokens: TokensConfig {
                issuer: Some("https://id.example.com".into()),
                ..TokensConfig::default()
            },
            ..config
        };
        assert!(!issuer_elsewhere.is_loopback_only());
    }

    #[test]
    fn file_typos_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, "[session]\nidle_timeut = \"1h\"\n").unwrap();
        let err = Config::load(Some(&path), Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("idle_timeut"), "{err}");
    }

    #[test]
    fn flags_beat_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9\"\n[session]\nidle_timeout = \"1h\"\n",
        )
        .unwrap();
        let config = Config::load(
            Some(&path),
            Overrides {
                listen: Some("127.0.0.1:10".parse().unwrap()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(config.listen.port(), 10);
        assert_eq!(config.session.idle_timeout, Duration::from_secs(3600));
    }
}
