//! From a session cookie to a JWT for an audience: token exchange at tessera, a
//! cache per (session, audience and scopes), and the revocation feed that empties
//! it.
//!
//! The cache is keyed by the SHA-256 of the cookie value, so the gateway's memory
//! never holds a session secret longer than a request. A cached JWT is checked
//! with the [`RemoteVerifier`] before each use: that is local (microseconds), and
//! it is how logout, kick, session deletion and key retirement reach the gateway
//! within the feed's latency rather than after the JWT's lifetime. A refused JWT is
//! dropped and the session exchanged again, which tessera refuses
//! (`invalid_grant`) for a session that has ended.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tessera_verify::{AccessClaims, RemoteVerifier, RevokedBy, VerifyError};

use tessera_proto::ErrorBody;
use tessera_proto::error::{INVALID_GRANT, USE_DPOP_NONCE};
use tessera_proto::token_type::{SESSION_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT};

use crate::config::ClientSecret;
use crate::dpop::DpopKey;

/// A JWT is exchanged again this long before it expires, so that an upstream never
/// receives one that expires in flight.
pub const RENEW_BEFORE: Duration = Duration::from_secs(10);
/// How long "this cookie is no session" is remembered. A session secret is random
/// and an ended session never comes back, so the answer cannot go wrong; the bound
/// only keeps memory for cookies that stopped coming.
const NO_SESSION_FOR: Duration = Duration::from_secs(60);
const CACHE_ENTRIES: usize = 100_000;
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a JWT is asked for: one audience with one set of scopes. Routes that ask
/// the same share cached tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub audience: String,
    /// Space-separated; empty asks for no scopes.
    pub scope: String,
    /// Bound to the gateway's DPoP key.
    pub dpop: bool,
}

/// The answer for a request's cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A JWT to forward, live as far as the gateway knows.
    Token(Arc<str>),
    /// The cookie is not a live session.
    NoSession,
}

/// tessera could not be asked, or answered something unexpected: the request gets
/// a 503, never an unauthenticated pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

#[derive(Clone, Hash, PartialEq, Eq)]
struct Key {
    session: [u8; 32],
    profile: usize,
}

#[derive(Clone)]
enum Cached {
    /// With the claims verified when it was obtained: re-use costs only a look in
    /// the revocation set, not a signature verification.
    Token {
        jwt: Arc<str>,
        claims: Arc<AccessClaims>,
        renew_at: Instant,
    },
    NoSession {
        until: Instant,
    },
}

/// A newly exchanged token, checked.
enum Fresh {
    Cacheable {
        jwt: Arc<str>,
        claims: Arc<AccessClaims>,
        expires_in: Duration,
    },
    Uncached(Arc<str>),
    NoSession,
}

enum Exchanged {
    Token { jwt: Arc<str>, expires_in: Duration },
    NoSession,
}

pub struct Sessions {
    http: reqwest::Client,
    token_endpoint: String,
    client_id: String,
    client_secret: ClientSecret,
    verifier: RemoteVerifier,
    profiles: Vec<Profile>,
    cache: quick_cache::sync::Cache<Key, Cached>,
    /// The key bound tokens are bound to, when a route asks for them.
    dpop: Option<DpopKey>,
    /// The last `DPoP-Nonce` tessera's token endpoint gave, for the next proof
    /// (tessera asks for nonces when `tokens.dpop_nonce` is on).
    dpop_nonce: std::sync::Mutex<Option<String>>,
}

impl Sessions {
    pub fn new(
        verifier: RemoteVerifier,
        client_id: String,
        client_secret: ClientSecret,
        profiles: Vec<Profile>,
        connect_timeout: Duration,
        dpop: Option<DpopKey>,
    ) -> Result<Self, reqwest::Error> {
        let token_endpoint = verifier
            .metadata()
            .token_endpoint
            .clone()
            .unwrap_or_else(|| {
                format!(
                    "{}/oauth2/token",
                    verifier.metadata().issuer.trim_end_matches('/')
                )
            });
        Ok(Self {
            http: reqwest::Client::builder()
                .connect_timeout(connect_timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            token_endpoint,
            client_id,
            client_secret,
            verifier,
            profiles,
            cache: quick_cache::sync::Cache::new(CACHE_ENTRIES),
            dpop,
            dpop_nonce: std::sync::Mutex::new(None),
        })
    }

    /// A proof for forwarding `token` (bound to the gateway's key) in a request
    /// of `method` to `url`; `None` without a key.
    pub fn proof(&self, method: &str, url: &str, token: &str) -> Option<String> {
        let key = self.dpop.as_ref()?;
        key.proof(method, url, Some(token), None)
            .map_err(|error| tracing::error!(%error, "cannot sign a DPoP proof"))
            .ok()
    }

    pub fn verifier(&self) -> &RemoteVerifier {
        &self.verifier
    }

    /// The revocation feed's state, for readiness and metrics: how long since it
    /// spoke, and whether that is within the staleness bound.
    pub fn feed(&self) -> (Option<Duration>, bool) {
        (
            self.verifier.feed_silence(),
            self.verifier.feed_is_fresh().unwrap_or(true),
        )
    }

    /// A JWT for `profile` on behalf of the session whose secret is `cookie`.
    /// Concurrent requests for the same key wait for one exchange.
    pub async fn token_for(&self, cookie: &str, profile: usize) -> Result<Outcome, Unavailable> {
        // Not even shaped like a session secret: no need to ask tessera.
        if tessera_core::SessionSecret::parse(cookie).is_none() {
            return Ok(Outcome::NoSession);
        }
        let key = Key {
            session: Sha256::digest(cookie.as_bytes()).into(),
            profile,
        };
        // A refused cached entry is dropped and the loop goes round once more; a
        // third round means entries keep turning bad under us: give up for now.
        for _ in 0..3 {
            match self.cache.get_value_or_guard_async(&key).await {
                Ok(Cached::Token {
                    jwt,
                    claims,
                    renew_at,
                }) => {
                    if renew_at > Instant::now() {
                        match self.verifier.recheck(&claims) {
                            Ok(_) => {
                                metrics::counter!("tessera_gateway_token_cache_total", "result" => "hit")
                                    .increment(1);
                                return Ok(Outcome::Token(jwt));
                            }
                            Err(error) => {
                                tracing::debug!(%error, "a cached token is refused; exchanging again");
                            }
                        }
                    }
                    self.cache.remove_if(&key, |cached| {
                        matches!(cached, Cached::Token { jwt: held, .. } if Arc::ptr_eq(held, &jwt))
                    });
                }
                Ok(Cached::NoSession { until }) => {
                    if until > Instant::now() {
                        return Ok(Outcome::NoSession);
                    }
                    self.cache.remove_if(&key, |cached| {
                        matches!(cached, Cached::NoSession { until: held } if *held == until)
                    });
                }
                Err(guard) => {
                    metrics::counter!("tessera_gateway_token_cache_total", "result" => "miss")
                        .increment(1);
                    let now = Instant::now();
                    let profile_spec = self.profiles.get(profile).ok_or(Unavailable)?;
                    return Ok(match self.fresh(cookie, profile_spec).await? {
                        Fresh::NoSession => {
                            let _ = guard.insert(Cached::NoSession {
                                until: now + NO_SESSION_FOR,
                            });
                            Outcome::NoSession
                        }
                        Fresh::Cacheable {
                            jwt,
                            claims,
                            expires_in,
                        } => {
                            if let Some(fresh_for) = expires_in.checked_sub(RENEW_BEFORE) {
                                let _ = guard.insert(Cached::Token {
                                    jwt: jwt.clone(),
                                    claims,
                                    renew_at: now + fresh_for,
                                });
                            }
                            Outcome::Token(jwt)
                        }
                        Fresh::Uncached(jwt) => Outcome::Token(jwt),
                    });
                }
            }
        }
        Err(Unavailable)
    }

    /// Exchanges the session and checks the new token as a cached one would be.
    async fn fresh(&self, cookie: &str, profile: &Profile) -> Result<Fresh, Unavailable> {
        for attempt in 0..2 {
            let (jwt, expires_in) = match self.exchange(cookie, profile).await? {
                Exchanged::NoSession => return Ok(Fresh::NoSession),
                Exchanged::Token { jwt, expires_in } => (jwt, expires_in),
            };
            let verified = match (&self.dpop, profile.dpop) {
                (Some(key), true) => match self.verifier.verify_token(&jwt).await {
                    // Bound, and to this gateway's key: anything else would be
                    // refused upstream.
                    Ok(claims) if claims.jkt() == Some(key.jkt()) => Ok(claims),
                    Ok(_) => Err(VerifyError::NotBound),
                    Err(error) => Err(error),
                },
                _ => self.verifier.verify(&jwt).await,
            };
            match verified {
                Ok(claims) => {
                    return Ok(Fresh::Cacheable {
                        jwt,
                        claims: Arc::new(claims),
                        expires_in,
                    });
                }
                // The feed is silent, or the token is signed by a key this
                // verifier has not fetched yet (a rotation with --now, the successor
                // of a retired key: the JWKS is fetched again at most every 5 s),
                // yet tessera has just checked the session itself: forward, but do
                // not cache, so the next request asks tessera again.
                Err(VerifyError::Stale | VerifyError::UnknownKey) => {
                    return Ok(Fresh::Uncached(jwt));
                }
                // The session ended between the exchange and now.
                Err(VerifyError::Revoked(RevokedBy::Session)) => return Ok(Fresh::NoSession),
                // A user cut-off (a kick) refuses tokens issued in its very second,
                // a new session's too, and a key retired a moment ago may still
                // have signed: every verifier would refuse this token, the next
                // second's will pass. Wait that second out once.
                Err(VerifyError::Revoked(RevokedBy::User | RevokedBy::Key)) if attempt == 0 => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(error) => {
                    tracing::error!(
                        %error,
                        audience = %profile.audience,
                        "tessera issued a token the gateway cannot verify: \
                         check the gateway client's algorithm and audiences"
                    );
                    return Err(Unavailable);
                }
            }
        }
        Err(Unavailable)
    }

    async fn exchange(&self, cookie: &str, profile: &Profile) -> Result<Exchanged, Unavailable> {
        let started = Instant::now();
        let exchanged = self.exchange_once(cookie, profile).await;
        let outcome = match &exchanged {
            Ok(Exchanged::Token { .. }) => "token",
            Ok(Exchanged::NoSession) => "no_session",
            Err(Unavailable) => "failed",
        };
        metrics::counter!("tessera_gateway_exchanges_total", "outcome" => outcome).increment(1);
        metrics::histogram!("tessera_gateway_exchange_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        exchanged
    }

    async fn exchange_once(
        &self,
        cookie: &str,
        profile: &Profile,
    ) -> Result<Exchanged, Unavailable> {
        // Twice at most: a proof refused for its nonce (none yet, or a stale one)
        // goes once more with the fresh one the answer carries (RFC 9449 §8).
        for attempt in 0..2 {
            let response = self.send_exchange(cookie, profile).await?;
            let fresh_nonce = self.keep_nonce(&response);
            let status = response.status();
            if status == reqwest::StatusCode::OK {
                let answer: tessera_proto::TokenResponse =
                    response.json().await.map_err(|error| {
                        tracing::warn!(%error, "tessera's token answer is unreadable");
                        Unavailable
                    })?;
                return Ok(Exchanged::Token {
                    jwt: answer.access_token.into(),
                    expires_in: Duration::from_secs(answer.expires_in),
                });
            }
            let error = response
                .json::<ErrorBody<'static>>()
                .await
                .map(|e| e.error.into_owned())
                .unwrap_or_default();
            if status == reqwest::StatusCode::BAD_REQUEST && error == INVALID_GRANT {
                return Ok(Exchanged::NoSession);
            }
            if error == USE_DPOP_NONCE && fresh_nonce && attempt == 0 {
                continue;
            }
            tracing::error!(
                %status,
                error,
                audience = %profile.audience,
                "tessera refused the token exchange: check the gateway client's grants, \
                 scopes and audiences"
            );
            break;
        }
        Err(Unavailable)
    }

    /// The token exchange for `profile`, with a proof of the gateway's key (and
    /// the nonce last given) when the route binds its tokens.
    async fn send_exchange(
        &self,
        cookie: &str,
        profile: &Profile,
    ) -> Result<reqwest::Response, Unavailable> {
        let mut request = self.http.post(&self.token_endpoint);
        if profile.dpop
            && let Some(key) = &self.dpop
        {
            let nonce = self
                .dpop_nonce
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            let proof = key
                .proof("POST", &self.token_endpoint, None, nonce.as_deref())
                .map_err(|error| {
                    tracing::error!(%error, "cannot sign a DPoP proof");
                    Unavailable
                })?;
            request = request.header(tessera_proto::token_type::DPOP_HEADER, proof);
        }
        request
            .basic_auth(&self.client_id, Some(self.client_secret.expose()))
            .form(&[
                ("grant_type", TOKEN_EXCHANGE_GRANT),
                ("subject_token", cookie),
                ("subject_token_type", SESSION_TOKEN_TYPE),
                ("audience", profile.audience.as_str()),
                // Always sent, even empty: without it tessera would grant every
                // scope of the gateway's client, `revocations` included.
                ("scope", profile.scope.as_str()),
            ])
            .timeout(EXCHANGE_TIMEOUT)
            .send()
            .await
            .map_err(|error| {
                tracing::warn!(%error, endpoint = %self.token_endpoint, "token exchange failed");
                Unavailable
            })
    }

    /// Keeps the `DPoP-Nonce` `response` carries for the next proof; whether it
    /// carried a new one.
    fn keep_nonce(&self, response: &reqwest::Response) -> bool {
        let Some(nonce) = response
            .headers()
            .get(tessera_proto::token_type::DPOP_NONCE_HEADER)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let mut kept = self
            .dpop_nonce
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.as_deref() == Some(nonce) {
            return false;
        }
        *kept = Some(nonce.to_owned());
        true
    }
}
