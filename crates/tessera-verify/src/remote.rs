//! The verifier a resource service runs against a tessera issuer.
//!
//! Built from the issuer URL: the RFC 8414 metadata names the JWKS, the token and
//! introspection endpoints and the revocation feed. Verification of a JWT stays
//! local; the network is used only
//! - to fetch the JWKS: at start, every `max-age`, and once (single-flight, at most
//!   once per cool-down) when a token names a key we don't know, so `keys rotate
//!   --now` on the issuer is followed without a restart;
//! - to follow `/v1/revocations`, so a revoked session, token, key or user is
//!   refused within the feed's latency, and to know how fresh that view is: with no
//!   word from the feed for longer than the staleness bound, tokens are refused
//!   (fail closed) unless the service chose to accept them. A heartbeat carries
//!   the log's sequence: one below our position means the issuer's log was
//!   replaced (a restored backup, a database numbered anew), and the feed is read
//!   again from its start, keeping what is already known revoked;
//! - to introspect opaque `tat_` tokens, with a cache whose hits are still checked
//!   against the revocation set;
//! - when asked (`report_activity`), to tell the issuer in batches which sessions'
//!   tokens it accepted, for the issuer's count of who is online.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jsonwebtoken::jwk::JwkSet;
use sha2::{Digest, Sha256};
use tokio::task::AbortHandle;

use tessera_proto::feed::{
    HEARTBEAT_EVENT, Heartbeat, LAST_EVENT_ID, RECONNECT_EVENT, REVOCATION_EVENT, RevocationEntry,
    RevocationKind,
};

use tessera_proto::token_type::{ACCESS_TOKEN_HINT, BEARER, DPOP, OPAQUE_ACCESS_TOKEN_PREFIX};
use tessera_proto::{Algorithm, Introspection};

use crate::binding::{Presented, ProofChecker};
use crate::claims::AccessClaims;
use crate::error::VerifyError;
use crate::keys::VerifyingKeys;
use crate::revocation::RevocationEvent;
use crate::verifier::{Policy, Verifier, unix_now};

/// Why a [`RemoteVerifier`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot fetch {what} from {url}: {reason}")]
    Fetch {
        what: &'static str,
        url: String,
        reason: String,
    },
    #[error("the metadata at {url} names issuer {found:?}, not {expected:?}")]
    IssuerMismatch {
        url: String,
        expected: String,
        found: String,
    },
    #[error("{0}")]
    Config(&'static str),
}

/// What the issuer's metadata (RFC 8414) tells a verifier: the wire's one
/// [`ServerMetadata`](tessera_proto::ServerMetadata).
pub use tessera_proto::ServerMetadata as Metadata;

/// Fetches and checks the metadata of `issuer`: the document must name exactly the
/// issuer it was fetched for (RFC 8414 §3.3), or anyone who can serve it could
/// point us at their own keys.
pub async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Metadata, SetupError> {
    let url = format!(
        "{}/.well-known/oauth-authorization-server",
        issuer.trim_end_matches('/')
    );
    let (metadata, _): (Metadata, _) = fetch_json(http, &url, "the issuer metadata").await?;
    if metadata.issuer != issuer {
        return Err(SetupError::IssuerMismatch {
            url,
            expected: issuer.to_owned(),
            found: metadata.issuer,
        });
    }
    Ok(metadata)
}

/// Fetches the JWKS at `url`. Symmetric keys are never taken from a URL.
pub async fn fetch_jwks(http: &reqwest::Client, url: &str) -> Result<KeySet, SetupError> {
    let (set, max_age): (JwkSet, _) = fetch_json(http, url, "the JWKS").await?;
    Ok(KeySet {
        keys: VerifyingKeys::from_jwks(&set, false),
        max_age,
    })
}

/// A fetched JWKS and how long the issuer says it may be cached.
pub struct KeySet {
    pub keys: VerifyingKeys,
    pub max_age: Option<Duration>,
}

fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|directive| {
        let (name, value) = directive.trim().split_once('=')?;
        name.eq_ignore_ascii_case("max-age")
            .then(|| value.trim().parse().ok().map(Duration::from_secs))
            .flatten()
    })
}

/// GETs `url` as JSON, with the `max-age` of its `Cache-Control`.
async fn fetch_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    what: &'static str,
) -> Result<(T, Option<Duration>), SetupError> {
    let fetch_error = |reason: String| SetupError::Fetch {
        what,
        url: url.to_owned(),
        reason,
    };
    let response = http
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| fetch_error(e.to_string()))?;
    let max_age = response
        .headers()
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(max_age);
    let body = response
        .json()
        .await
        .map_err(|e| fetch_error(e.to_string()))?;
    Ok((body, max_age))
}

/// A confidential client's credentials: used to read the revocation feed (a
/// `client_credentials` token with the `revocations` scope) and to introspect
/// opaque tokens (which other clients' tokens are, so the client needs the
/// `introspect` scope). The secret never appears in `Debug`.
#[derive(Clone)]
pub struct ClientCredentials {
    pub id: String,
    secret: String,
}

impl ClientCredentials {
    pub fn new(id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            secret: secret.into(),
        }
    }
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// What to do with tokens while the revocation feed is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenStale {
    /// Refuse every token (503 through the axum layer) until the feed is back.
    Refuse,
    /// Accept tokens that pass every local check, at the risk of honouring one
    /// revoked in the meantime. For services that prefer availability.
    Accept,
}

/// Where a request's token is looked for.
#[derive(Debug, Clone, Default)]
pub struct TokenSource {
    /// Read `Authorization: Bearer` (on unless turned off).
    pub no_header: bool,
    /// Read this cookie (for tokens tessera set as `__Host-tessera-token`).
    pub cookie: Option<String>,
}

/// Settings of a [`RemoteVerifier`]; see [`RemoteVerifier::builder`].
#[derive(Debug, Clone)]
pub struct Builder {
    issuer: String,
    audiences: Vec<String>,
    algorithms: Vec<Algorithm>,
    leeway: Option<Duration>,
    client: Option<ClientCredentials>,
    follow_revocations: bool,
    max_staleness: Duration,
    when_stale: WhenStale,
    jwks_cooldown: Duration,
    introspection_cache: Duration,
    startup_wait: Duration,
    source: TokenSource,
    realm: Option<String>,
    report_activity: Option<Duration>,
    public_url: Option<String>,
}

/// How long without a word from the feed before its view counts as stale: three
/// of tessera's default heartbeats.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(15);
/// The least time between two JWKS fetches caused by unknown `kid`s.
pub const DEFAULT_JWKS_COOLDOWN: Duration = Duration::from_secs(5);
/// How long a positive introspection answer is reused (never past the token's
/// `exp`; revocations still apply to cached answers).
pub const DEFAULT_INTROSPECTION_CACHE: Duration = Duration::from_secs(60);
/// How long a negative introspection answer is reused, bounding the load forged
/// tokens can put on the issuer.
const NEGATIVE_CACHE: Duration = Duration::from_secs(5);
const INTROSPECTION_CACHE_ENTRIES: usize = 100_000;
const MIN_JWKS_REFRESH: Duration = Duration::from_secs(30);
const MAX_JWKS_REFRESH: Duration = Duration::from_secs(3600);

impl Builder {
    /// A token must name at least one of the audiences given.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// The asymmetric algorithms accepted (default EdDSA, ES256, RS256).
    pub fn algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.algorithms = algorithms
            .iter()
            .copied()
            .filter(|a| *a != Algorithm::HS256)
            .collect();
        self
    }

    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = Some(leeway);
        self
    }

    /// The confidential client this service is registered as: enables the
    /// revocation feed (the client needs the `revocations` scope) and introspection
    /// of opaque tokens (it needs the `introspect` scope).
    pub fn client(mut self, credentials: ClientCredentials) -> Self {
        self.client = Some(credentials);
        self
    }

    /// Whether to follow the revocation feed (default: yes when a client is set).
    /// Without it, revoked tokens stay valid until they expire.
    pub fn follow_revocations(mut self, follow: bool) -> Self {
        self.follow_revocations = follow;
        self
    }

    pub fn max_staleness(mut self, bound: Duration) -> Self {
        self.max_staleness = bound;
        self
    }

    pub fn when_stale(mut self, policy: WhenStale) -> Self {
        self.when_stale = policy;
        self
    }

    pub fn jwks_cooldown(mut self, cooldown: Duration) -> Self {
        self.jwks_cooldown = cooldown;
        self
    }

    pub fn introspection_cache(mut self, ttl: Duration) -> Self {
        self.introspection_cache = ttl;
        self
    }

    /// How long `build` waits for the revocation feed's first heartbeat, so a
    /// service does not start by accepting tokens revoked before it started.
    pub fn startup_wait(mut self, wait: Duration) -> Self {
        self.startup_wait = wait;
        self
    }

    /// Read the token from this cookie too (after the `Authorization` header).
    pub fn token_cookie(mut self, name: impl Into<String>) -> Self {
        self.source.cookie = Some(name.into());
        self
    }

    /// Read the token only from the cookie, never from the header.
    pub fn cookie_only(mut self) -> Self {
        self.source.no_header = true;
        self
    }

    /// The realm in `WWW-Authenticate` challenges (default: the issuer).
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// The URL clients reach this service at (`https://api.example.com`), which
    /// the `htu` of their DPoP proofs must name, followed by the request's path.
    /// Without it, the URL is `http://` and the request's `Host` header: set it
    /// behind TLS or a proxy, or proofs for the real URL are refused.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into().trim_end_matches('/').to_owned());
        self
    }

    /// Reports to the issuer, every `every`, the sessions (`sid`, with the `sub`)
    /// of the tokens this verifier accepted, at most once per session per minute,
    /// so that the issuer counts their users as online. Needs the client
    /// credentials (the report uses the revocation feed's token). Off by default.
    pub fn report_activity(mut self, every: Duration) -> Self {
        self.report_activity = Some(every.max(Duration::from_millis(100)));
        self
    }

    /// Discovers the issuer, fetches its keys and, when following revocations,
    /// starts the feed and waits (up to the startup wait) for its first heartbeat.
    /// Needs a Tokio runtime.
    pub async fn build(self) -> Result<RemoteVerifier, SetupError> {
        if self.audiences.is_empty() {
            return Err(SetupError::Config(
                "a resource service must name its audience",
            ));
        }
        if self.source.no_header && self.source.cookie.is_none() {
            return Err(SetupError::Config(
                "cookie_only needs a token_cookie to read",
            ));
        }
        if self.report_activity.is_some() && self.client.is_none() {
            return Err(SetupError::Config(
                "reporting activity needs client credentials with the revocations scope",
            ));
        }
        let follow = self.follow_revocations && self.client.is_some();
        if self.follow_revocations && self.client.is_none() {
            return Err(SetupError::Config(
                "following revocations needs client credentials with the revocations scope \
                 (or follow_revocations(false))",
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| SetupError::Fetch {
                what: "an HTTP client",
                url: self.issuer.clone(),
                reason: e.to_string(),
            })?;
        let metadata = discover(&http, &self.issuer).await?;
        let fetched = fetch_jwks(&http, &metadata.jwks_uri).await?;
        let mut policy = Policy::new(metadata.issuer.clone(), "");
        policy.audiences = self.audiences;
        policy.algorithms = self.algorithms;
        if let Some(leeway) = self.leeway {
            policy.leeway = leeway;
        }
        let feed_url = metadata
            .revocation_feed_endpoint
            .clone()
            .unwrap_or_else(|| format!("{}/v1/revocations", metadata.issuer.trim_end_matches('/')));
        let activity_url = metadata
            .activity_endpoint
            .clone()
            .unwrap_or_else(|| format!("{}/v1/activity", metadata.issuer.trim_end_matches('/')));
        let shared = Arc::new(Shared {
            activity: self.report_activity.map(|_| Activity {
                pending: StdMutex::new(Vec::new()),
                reported: quick_cache::sync::Cache::new(ACTIVITY_SESSIONS),
            }),
            verifier: Verifier::new(policy, fetched.keys),
            http,
            realm: self.realm.unwrap_or_else(|| metadata.issuer.clone()),
            metadata,
            client: self.client,
            source: self.source,
            jwks: tokio::sync::Mutex::new(Instant::now()),
            jwks_cooldown: self.jwks_cooldown,
            feed: follow.then(|| FeedHealth {
                epoch: Instant::now(),
                heard_ms: AtomicU64::new(0),
                max_staleness: self.max_staleness,
                when_stale: self.when_stale,
                heard: tokio::sync::Notify::new(),
            }),
            feed_token: tokio::sync::Mutex::new(None),
            introspected: quick_cache::sync::Cache::new(INTROSPECTION_CACHE_ENTRIES),
            introspection_ttl: self.introspection_cache,
            proofs: ProofChecker::default(),
            public_url: self.public_url,
            tasks: StdMutex::new(Vec::new()),
        });
        let refresh_every = fetched
            .max_age
            .unwrap_or(Duration::from_secs(300))
            .clamp(MIN_JWKS_REFRESH, MAX_JWKS_REFRESH);
        let mut tasks = vec![
            tokio::spawn(refresh_keys_periodically(
                Arc::downgrade(&shared),
                refresh_every,
            ))
            .abort_handle(),
        ];
        if let Some(every) = self.report_activity {
            tasks.push(
                tokio::spawn(report_activity_periodically(
                    Arc::downgrade(&shared),
                    activity_url,
                    every,
                ))
                .abort_handle(),
            );
        }
        if let Some(feed) = &shared.feed {
            let heard = feed.heard.notified();
            tasks.push(tokio::spawn(follow_feed(Arc::downgrade(&shared), feed_url)).abort_handle());
            tasks.push(tokio::spawn(prune_periodically(Arc::downgrade(&shared))).abort_handle());
            if tokio::time::timeout(self.startup_wait, heard)
                .await
                .is_err()
            {
                tracing::warn!(
                    issuer = %shared.metadata.issuer,
                    "the revocation feed has not answered yet; tokens are refused until it does"
                );
            }
        }
        if let Ok(mut list) = shared.tasks.lock() {
            list.extend(tasks);
        }
        Ok(RemoteVerifier(shared))
    }
}

/// A verifier following one issuer; cheap to clone (one shared state).
#[derive(Clone)]
pub struct RemoteVerifier(Arc<Shared>);

impl fmt::Debug for RemoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteVerifier")
            .field("issuer", &self.0.metadata.issuer)
            .field("client", &self.0.client)
            .finish_non_exhaustive()
    }
}

struct Shared {
    verifier: Verifier,
    http: reqwest::Client,
    metadata: Metadata,
    realm: String,
    client: Option<ClientCredentials>,
    source: TokenSource,
    /// When the JWKS was last fetched; the lock makes unknown-`kid` refreshes
    /// single-flight.
    jwks: tokio::sync::Mutex<Instant>,
    jwks_cooldown: Duration,
    feed: Option<FeedHealth>,
    feed_token: tokio::sync::Mutex<Option<(String, Instant)>>,
    /// SHA-256 of an opaque token → its introspected claims (`None`: inactive).
    introspected: quick_cache::sync::Cache<[u8; 32], Introspected>,
    introspection_ttl: Duration,
    /// DPoP proofs: their window, the keys seen, and the replays refused (this
    /// process's: a proof is good once per service instance).
    proofs: ProofChecker,
    public_url: Option<String>,
    activity: Option<Activity>,
    tasks: StdMutex<Vec<AbortHandle>>,
}

/// Sessions seen, waiting to be reported; and when each was last queued, so that
/// a session is reported at most once a minute however busy it is.
struct Activity {
    pending: StdMutex<Vec<(String, String)>>,
    reported: quick_cache::sync::Cache<String, Instant>,
}

/// Sessions remembered for the once-a-minute rule; beyond, a session may be
/// reported more often, which only costs the issuer a write.
const ACTIVITY_SESSIONS: usize = 100_000;
const REPORT_EVERY_SESSION: Duration = Duration::from_secs(60);
/// The most sightings per report (the issuer's limit).
const REPORT_BATCH: usize = 500;

impl Activity {
    fn saw(&self, claims: &AccessClaims) {
        let Some(sid) = &claims.sid else {
            return;
        };
        let now = Instant::now();
        if self
            .reported
            .get(sid)
            .is_some_and(|at| now.duration_since(at) < REPORT_EVERY_SESSION)
        {
            return;
        }
        self.reported.insert(sid.clone(), now);
        if let Ok(mut pending) = self.pending.lock() {
            pending.push((sid.clone(), claims.sub.clone()));
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Ok(tasks) = self.tasks.lock() {
            for task in tasks.iter() {
                task.abort();
            }
        }
    }
}

#[derive(Clone)]
struct Introspected {
    claims: Option<Arc<AccessClaims>>,
    until: Instant,
}

struct FeedHealth {
    epoch: Instant,
    /// Milliseconds after `epoch` when the feed last spoke, plus one (0: never).
    heard_ms: AtomicU64,
    max_staleness: Duration,
    when_stale: WhenStale,
    heard: tokio::sync::Notify,
}

impl FeedHealth {
    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.heard_ms.store(ms.saturating_add(1), Ordering::Relaxed);
        self.heard.notify_waiters();
    }

    /// How long since the feed last spoke; `None` if it never has.
    fn silence(&self) -> Option<Duration> {
        match self.heard_ms.load(Ordering::Relaxed) {
            0 => None,
            heard => Some(
                self.epoch
                    .elapsed()
                    .saturating_sub(Duration::from_millis(heard - 1)),
            ),
        }
    }

    fn is_fresh(&self) -> bool {
        self.silence().is_some_and(|s| s <= self.max_staleness)
    }
}

impl RemoteVerifier {
    /// Starts configuring a verifier for the issuer at `issuer` (its exact `iss`).
    pub fn builder(issuer: impl Into<String>) -> Builder {
        Builder {
            issuer: issuer.into(),
            audiences: Vec::new(),
            algorithms: Algorithm::ASYMMETRIC.to_vec(),
            leeway: None,
            client: None,
            follow_revocations: true,
            max_staleness: DEFAULT_MAX_STALENESS,
            when_stale: WhenStale::Refuse,
            jwks_cooldown: DEFAULT_JWKS_COOLDOWN,
            introspection_cache: DEFAULT_INTROSPECTION_CACHE,
            startup_wait: Duration::from_secs(5),
            source: TokenSource::default(),
            realm: None,
            report_activity: None,
            public_url: None,
        }
    }

    pub fn metadata(&self) -> &Metadata {
        &self.0.metadata
    }

    /// The local verifier underneath (policy, keys, revocation set).
    pub fn local(&self) -> &Verifier {
        &self.0.verifier
    }

    pub fn token_source(&self) -> &TokenSource {
        &self.0.source
    }

    pub fn realm(&self) -> &str {
        &self.0.realm
    }

    /// How long since the revocation feed last spoke (`None`: never, or not
    /// followed).
    pub fn feed_silence(&self) -> Option<Duration> {
        self.0.feed.as_ref().and_then(FeedHealth::silence)
    }

    /// Whether the revocation feed spoke within the staleness bound (`None`: not
    /// followed).
    pub fn feed_is_fresh(&self) -> Option<bool> {
        self.0.feed.as_ref().map(FeedHealth::is_fresh)
    }

    /// The sequence of the last revocation applied.
    pub fn revocation_position(&self) -> u64 {
        self.0.verifier.update_revocations(|set| set.position())
    }

    /// Verifies a token presented as a bearer token: a JWT locally, an opaque
    /// `tat_` token by (cached) introspection; either way the revocation set has
    /// the last word. A token bound to a key (DPoP) is refused: it is good only
    /// with a proof, through [`Self::verify_request`].
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        self.verify_request(&Presented::bearer(token), "", "").await
    }

    /// Verifies the token a request presented (either scheme), and for a token
    /// bound to a key its DPoP proof for a request of `method` to `url` (see
    /// [`crate::binding`]).
    pub async fn verify_request(
        &self,
        presented: &Presented<'_>,
        method: &str,
        url: &str,
    ) -> Result<AccessClaims, VerifyError> {
        let claims = self.verify_any(presented.token).await?;
        self.0
            .proofs
            .check(&claims, presented, method, url, unix_now())?;
        if let Some(activity) = &self.0.activity {
            activity.saw(&claims);
        }
        Ok(claims)
    }

    /// The URL a request for `path_and_query` was sent to, as its DPoP proof
    /// must name it: the public URL when one is set, else `http://` and `host`.
    pub fn request_url(&self, host: Option<&str>, path: &str) -> String {
        match (&self.0.public_url, host) {
            (Some(base), _) => format!("{base}{path}"),
            (None, Some(host)) => format!("http://{host}{path}"),
            (None, None) => String::new(),
        }
    }

    /// Verifies a token whatever it is bound to, for a caller that holds the key
    /// itself (the gateway, checking the bound tokens it obtained): the caller
    /// compares `cnf` with its own key.
    pub async fn verify_token(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        self.verify_any(token).await
    }

    /// The token's claims, whatever it is bound to.
    async fn verify_any(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        self.check_fresh()?;
        if token.starts_with(OPAQUE_ACCESS_TOKEN_PREFIX) {
            return self.introspect(token).await;
        }
        match self.0.verifier.verify_token(token) {
            Err(VerifyError::UnknownKey) => {
                self.refresh_keys_for_unknown_kid().await;
                self.0.verifier.verify_token(token)
            }
            other => other,
        }
    }

    /// Checks claims this verifier accepted before against what has been revoked
    /// since (and the feed's freshness), without the signature work again: for a
    /// caller that caches verified tokens and re-uses them (a gateway). The caller
    /// keeps to the token's `exp` itself.
    pub fn recheck(&self, claims: &AccessClaims) -> Result<(), VerifyError> {
        self.check_fresh()?;
        match self.0.verifier.revocation_of(claims) {
            Some(by) => Err(VerifyError::Revoked(by)),
            None => Ok(()),
        }
    }

    fn check_fresh(&self) -> Result<(), VerifyError> {
        match &self.0.feed {
            Some(feed) if feed.when_stale == WhenStale::Refuse && !feed.is_fresh() => {
                Err(VerifyError::Stale)
            }
            _ => Ok(()),
        }
    }

    /// Fetches the JWKS again unless it was fetched within the cool-down. Callers
    /// that arrive while a fetch is under way wait for it instead of starting
    /// their own.
    async fn refresh_keys_for_unknown_kid(&self) {
        let mut last = self.0.jwks.lock().await;
        if last.elapsed() < self.0.jwks_cooldown {
            return;
        }
        *last = Instant::now();
        match fetch_jwks(&self.0.http, &self.0.metadata.jwks_uri).await {
            Ok(fetched) => self.0.verifier.replace_keys(fetched.keys),
            Err(error) => tracing::warn!(%error, "JWKS refresh for an unknown kid failed"),
        }
    }

    async fn introspect(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = Instant::now();
        let answer = match self.0.introspected.get(&key) {
            Some(cached) if cached.until > now => cached,
            _ => {
                let answer = self.ask_issuer(token).await?;
                self.0.introspected.insert(key, answer.clone());
                answer
            }
        };
        let claims = answer.claims.ok_or(VerifyError::Malformed(
            "the token is not active at its issuer",
        ))?;
        self.0.verifier.check_claims(&claims)?;
        Ok((*claims).clone())
    }

    async fn ask_issuer(&self, token: &str) -> Result<Introspected, VerifyError> {
        let (Some(client), Some(endpoint)) =
            (&self.0.client, &self.0.metadata.introspection_endpoint)
        else {
            return Err(VerifyError::Unavailable);
        };
        let response = self
            .0
            .http
            .post(endpoint)
            .basic_auth(&client.id, Some(&client.secret))
            .form(&[("token", token), ("token_type_hint", ACCESS_TOKEN_HINT)])
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| {
                tracing::warn!(%error, "introspection failed");
                VerifyError::Unavailable
            })?;
        let answer: Introspection = response.json().await.map_err(|error| {
            tracing::warn!(%error, "introspection answered something unreadable");
            VerifyError::Unavailable
        })?;
        let now = Instant::now();
        Ok(match claims_of(answer) {
            Some(claims) => {
                let left = u64::try_from(claims.exp.saturating_sub(unix_now())).unwrap_or(0);
                Introspected {
                    until: now + self.0.introspection_ttl.min(Duration::from_secs(left)),
                    claims: Some(Arc::new(claims)),
                }
            }
            None => Introspected {
                claims: None,
                until: now + NEGATIVE_CACHE,
            },
        })
    }

    /// A bearer token for the revocation feed, renewed shortly before it expires.
    async fn feed_token(&self, renew: bool) -> Option<String> {
        let client = self.0.client.as_ref()?;
        let endpoint = self.0.metadata.token_endpoint.as_ref()?;
        let mut cached = self.0.feed_token.lock().await;
        if !renew
            && let Some((token, until)) = cached.as_ref()
            && *until > Instant::now()
        {
            return Some(token.clone());
        }
        let answer: tessera_proto::TokenResponse = self
            .0
            .http
            .post(endpoint)
            .basic_auth(&client.id, Some(&client.secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", tessera_proto::scope::REVOCATIONS),
            ])
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| tracing::warn!(%error, "cannot get a token for the revocation feed"))
            .ok()?
            .json()
            .await
            .ok()?;
        let until = Instant::now() + Duration::from_secs(answer.expires_in.saturating_sub(10));
        *cached = Some((answer.access_token.clone(), until));
        Some(answer.access_token)
    }
}

/// Claims of an introspection answer for an active access token; anything else
/// is inactive (a refresh token is not something to call an API with). `nbf` is
/// not taken: tessera's tokens carry none, and it never was. A token said to be
/// `DPoP` must come with the key it is bound to (`cnf`), and whatever `cnf` an
/// answer has binds the token.
fn claims_of(answer: Introspection) -> Option<AccessClaims> {
    let bound = match answer.token_type.as_deref() {
        None | Some(BEARER) => false,
        Some(DPOP) => true,
        Some(_) => return None,
    };
    if !answer.active || (bound && answer.cnf.is_none()) {
        return None;
    }
    Some(AccessClaims {
        iss: answer.iss?,
        sub: answer.sub?,
        aud: answer.aud?.into_list(),
        exp: answer.exp?,
        iat: answer.iat,
        nbf: None,
        jti: answer.jti,
        client_id: answer.client_id,
        scope: answer.scope,
        sid: answer.sid,
        roles: answer.roles,
        acr: answer.acr,
        amr: answer.amr,
        cnf: answer.cnf,
        kid: None,
    })
}

/// The event of a feed entry; `None` for a kind this verifier does not know.
fn event_of(entry: RevocationEntry) -> Option<RevocationEvent> {
    let kind = entry.kind.parse::<RevocationKind>().ok()?;
    let before = match kind {
        // An unreadable cut-off refuses everything the user or client holds.
        RevocationKind::User | RevocationKind::Client => cut_off(&entry.at),
        RevocationKind::Session | RevocationKind::Token | RevocationKind::Key => 0,
    };
    Some(RevocationEvent::new(kind, entry.id, before))
}

/// A feed entry's `at` (RFC 3339) as Unix seconds; `i64::MAX` when unreadable.
fn cut_off(at: &str) -> i64 {
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .map_or(i64::MAX, time::OffsetDateTime::unix_timestamp)
}

/// Follows the feed for as long as the verifier lives, resuming after the last
/// sequence applied whenever the connection drops, and starting over when the log
/// turns out to be behind that (see [`replaced_log`]).
async fn follow_feed(shared: std::sync::Weak<Shared>, url: String) {
    let mut backoff = Duration::from_millis(50);
    let mut renew = false;
    loop {
        let mut replaced = false;
        let Some(verifier) = shared.upgrade().map(RemoteVerifier) else {
            return;
        };
        let opened = open_feed(&verifier, &url, &mut renew).await;
        drop(verifier);
        let Some(response) = opened else {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
            continue;
        };
        let mut events = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
        let mut told_to_reconnect = false;
        while let Some(Ok(event)) = events.next().await {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            backoff = Duration::from_millis(50);
            // The instance is stopping: go elsewhere now, without a pause.
            if event.event == RECONNECT_EVENT {
                told_to_reconnect = true;
                break;
            }
            if event.event == REVOCATION_EVENT {
                match serde_json::from_str::<RevocationEntry>(&event.data) {
                    Ok(entry) => {
                        let (sequence, expires_at) = (entry.sequence, entry.expires_at);
                        if let Some(revoked) = event_of(entry) {
                            shared
                                .verifier
                                .update_revocations(|set| set.apply(sequence, revoked, expires_at));
                        } else {
                            // An unknown kind from a newer issuer: skip it, but
                            // move past it so a resume does not replay it forever.
                            shared
                                .verifier
                                .update_revocations(|set| set.advance(sequence));
                        }
                    }
                    Err(error) => {
                        tracing::error!(%error, data = %event.data, "unreadable revocation event")
                    }
                }
            }
            if event.event == HEARTBEAT_EVENT && replaced_log(&shared, &event.data) {
                replaced = true;
                break;
            }
            // Both revocations and heartbeats show the feed is alive. A heartbeat
            // comes only once the stream has caught up, so the first one marks
            // the view complete.
            if let Some(feed) = &shared.feed
                && (event.event == HEARTBEAT_EVENT || feed.heard_ms.load(Ordering::Relaxed) != 0)
            {
                feed.touch();
            }
        }
        // Starting over, or an instance going away, is not a failure: reconnect
        // at once.
        if !replaced && !told_to_reconnect {
            tokio::time::sleep(backoff).await;
        }
    }
}

/// Whether the heartbeat in `data` says the issuer's log is behind this verifier's
/// position. The log never numbers backwards, so it is not the log we followed:
/// the issuer moved to a database whose log was numbered anew, or restored a
/// backup. Resuming after our position would skip every entry until its numbers
/// pass ours, so the position is forgotten (every entry known stays: refusing
/// a token a little longer is safe) and the feed is read again from its start.
/// Until that read's heartbeat the view is incomplete, so it counts as stale.
fn replaced_log(shared: &Shared, data: &str) -> bool {
    let Ok(heartbeat) = serde_json::from_str::<Heartbeat>(data) else {
        return false;
    };
    let position = shared.verifier.update_revocations(|set| {
        let position = set.position();
        if heartbeat.sequence < position {
            set.rewind();
        }
        position
    });
    if heartbeat.sequence >= position {
        return false;
    }
    tracing::warn!(
        issuer = %shared.metadata.issuer,
        position,
        log = heartbeat.sequence,
        "the issuer's revocation log is behind this verifier's position: it was replaced \
         (a migration or a restored backup); reading it again from the start"
    );
    if let Some(feed) = &shared.feed {
        feed.heard_ms.store(0, Ordering::Relaxed);
    }
    true
}

/// Opens the feed after the last sequence applied; `None` (logged) if it cannot.
/// A refused token is renewed on the next attempt.
async fn open_feed(
    verifier: &RemoteVerifier,
    url: &str,
    renew: &mut bool,
) -> Option<reqwest::Response> {
    let position = verifier.revocation_position();
    let token = verifier.feed_token(*renew).await?;
    let mut request = verifier
        .0
        .http
        .get(url)
        .bearer_auth(&token)
        .header(reqwest::header::ACCEPT, "text/event-stream");
    if position > 0 {
        request = request.header(LAST_EVENT_ID, position.to_string());
    }
    match request.send().await {
        Ok(response) if response.status().is_success() => {
            *renew = false;
            Some(response)
        }
        Ok(response) => {
            *renew = response.status() == reqwest::StatusCode::UNAUTHORIZED;
            tracing::warn!(status = %response.status(), "the revocation feed refused us");
            None
        }
        Err(error) => {
            tracing::debug!(%error, "cannot reach the revocation feed");
            None
        }
    }
}

async fn refresh_keys_periodically(shared: std::sync::Weak<Shared>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(verifier) = shared.upgrade().map(RemoteVerifier) else {
            return;
        };
        match fetch_jwks(&verifier.0.http, &verifier.0.metadata.jwks_uri).await {
            Ok(fetched) => verifier.0.verifier.replace_keys(fetched.keys),
            Err(error) => tracing::warn!(%error, "periodic JWKS refresh failed"),
        }
    }
}

async fn prune_periodically(shared: std::sync::Weak<Shared>) {
    loop {
        tokio::time::sleep(Duration::from_secs(60)).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let now = unix_now();
        shared.verifier.update_revocations(|set| set.prune(now));
    }
}

/// Sends the sessions seen since the last report, every `every`, for as long as the
/// verifier lives. Best effort: a failed report is logged and its sessions dropped
/// (they are seen again within the minute if still in use).
async fn report_activity_periodically(
    shared: std::sync::Weak<Shared>,
    url: String,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let Some(activity) = &shared.activity else {
            return;
        };
        let seen = match activity.pending.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending),
            Err(_) => return,
        };
        if seen.is_empty() {
            continue;
        }
        let verifier = RemoteVerifier(shared.clone());
        let Some(token) = verifier.feed_token(false).await else {
            continue;
        };
        for batch in seen.chunks(REPORT_BATCH) {
            let body = serde_json::json!({
                "seen": batch
                    .iter()
                    .map(|(sid, sub)| serde_json::json!({"sid": sid, "sub": sub}))
                    .collect::<Vec<_>>(),
            });
            let sent = shared
                .http
                .post(&url)
                .bearer_auth(&token)
                .json(&body)
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .and_then(reqwest::Response::error_for_status);
            if let Err(error) = sent {
                tracing::warn!(%error, "cannot report activity to the issuer");
            }
        }
    }
}
