//! The application: opens the stores, builds the services over them, mounts the
//! routes on the router with its middleware, and serves until a signal.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;

use crate::http::EdgePolicy;
use crate::http::cookie::Cookies;
use crate::services::{
    self, accounts, clients, contact, keyring, own_tokens, presence, refresh, throttle, tokens,
};
use crate::{http, stores};
use ::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::Router;
use axum::middleware;
use axum::routing::{delete, get, post};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::http::error::json_errors;
use crate::http::{one_authorization, track_request};
use crate::routes::{
    account, account_factors, activity, admin, authorize, consents, console, discovery,
    end_session, health, introspect, login, login_page, passkeys, register_page, reset_page,
    revocations, session, sessions, token, userinfo, users,
};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use crate::config::LimitsConfig;
use crate::config::{Config, MASTER_KEY_VAR};
use crate::http::cookie::SessionCookie;
use crate::http::origin::Origin;
use crate::services::passwords::PasswordHasher;
use crate::services::sessions::{SessionPolicy, SessionService, SessionUpkeep};
use crate::state::{AppState, Services};

/// The store and the services over it, as both the server and the CLI use them.
pub struct Core {
    pub stores: stores::Stores,
    pub accounts: accounts::Accounts,
    pub sessions: Arc<SessionService>,
    pub clients: clients::Clients,
    pub keys: Arc<keyring::KeyRing>,
    pub refresh: Arc<refresh::RefreshTokens>,
    pub presence: Arc<presence::Presence>,
    pub audit: Arc<services::audit::Audit>,
    /// What an operator does, over HTTP or from the CLI.
    pub admin: Arc<services::admin::Administration>,
    /// Accounts' TOTP authenticators and recovery codes.
    pub second_factors: Arc<services::second_factor::SecondFactors>,
    pub passkeys: Arc<services::passkeys::Passkeys>,
    /// When the revocation log was last read; bounds how long caches are trusted.
    pub log_contact: Arc<contact::Contact>,
    /// When every store last answered a ping.
    pub store_contact: Arc<contact::Contact>,
    upkeep: SessionUpkeep,
    presence_writer: presence::PresenceWriter,
}

impl Core {
    /// Opens (creating and migrating if needed) the configured stores.
    pub async fn open(config: &Config, hash_threads: usize) -> anyhow::Result<Self> {
        // The data dir is made by the SQLite store as it opens, private to this user.
        let stores = stores::Stores::open(config).await?;
        let hasher =
            PasswordHasher::start(&config.password, hash_threads).map_err(anyhow::Error::msg)?;
        let policy = SessionPolicy {
            idle_timeout: config.session.idle_timeout,
            absolute_lifetime: config.session.absolute_lifetime,
        };
        let (presence, presence_writer) =
            presence::Presence::new(stores.set.presence.clone(), config.session.cache_capacity);
        let audit = Arc::new(services::audit::Audit::new(
            stores.set.audit.clone(),
            config.audit.stored,
        ));
        let log_contact = Arc::new(contact::Contact::new(config.session.cache_staleness));
        let store_contact = Arc::new(contact::Contact::new(config.session.cache_staleness));
        // The whole set, not just its session store: its purge also purges the
        // database when sessions live elsewhere.
        let (sessions, upkeep) = SessionService::new(
            Arc::new(stores.set.clone()),
            policy,
            config.session.cache_capacity,
            presence.clone(),
            log_contact.clone(),
            store_contact.clone(),
            audit.clone(),
        );
        let accounts = accounts::Accounts::new(
            stores.set.accounts.clone(),
            sessions.clone(),
            stores.set.refresh.clone(),
            stores.set.log.clone(),
            presence.clone(),
            Arc::new(hasher),
            stores.set.clients.clone(),
        );
        let keys = Arc::new(
            keyring::KeyRing::open(
                stores.set.keys.clone(),
                config.master_key()?.map(Arc::new),
                config.tokens.rotation_delay,
            )
            .await?,
        );
        let clients = clients::Clients::new(stores.set.clients.clone(), stores.set.log.clone());
        let second_factors = Arc::new(services::second_factor::SecondFactors::new(
            stores.set.accounts.clone(),
            keys.master_key(),
            services::second_factor::issuer_name(&config.public_url()),
        ));
        let passkeys = Arc::new(services::passkeys::Passkeys::new(
            &config.public_url(),
            stores.set.accounts.clone(),
            stores.set.ceremonies.clone(),
        ));
        let admin = Arc::new(services::admin::Administration::new(
            accounts.clone(),
            sessions.clone(),
            clients.clone(),
            keys.clone(),
            presence.clone(),
            audit.clone(),
            config.tokens.session_token_ttl,
            config.tokens.hs256_secret.is_some(),
            &config.public_url(),
            second_factors.clone(),
            config.mfa,
        ));
        Ok(Self {
            clients,
            admin,
            second_factors,
            passkeys,
            refresh: Arc::new(refresh::RefreshTokens::new(
                stores.set.refresh.clone(),
                config.tokens.refresh_lifetime,
                config.tokens.refresh_reuse_grace,
                audit.clone(),
            )),
            keys,
            stores,
            accounts,
            sessions,
            presence,
            audit,
            log_contact,
            store_contact,
            upkeep,
            presence_writer,
        })
    }
}

fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    const LATENCY_BUCKETS: &[f64] = &[
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    ];
    tessera_listener::install_metrics(&[
        ("tessera_http_request_duration_seconds", LATENCY_BUCKETS),
        ("tessera_password_hash_seconds", LATENCY_BUCKETS),
        ("tessera_store_batch_seconds", LATENCY_BUCKETS),
        (
            "tessera_store_batch_requests",
            &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0],
        ),
    ])
    .context("cannot install the metrics recorder")
}

/// Where a started server listens, for the banner.
#[derive(Debug, Clone)]
pub struct Listening {
    /// The public port's bound address.
    pub address: SocketAddr,
    /// The management listener's bound address (metrics, health).
    pub management: SocketAddr,
    pub public_url: String,
    /// No account exists yet (the banner says how to create the first admin).
    pub no_users: bool,
}

/// Runs the server until SIGINT or SIGTERM. `on_listening` is called once both
/// sockets are open and the store is ready.
pub async fn serve(
    mut config: Config,
    on_listening: impl FnOnce(&Listening),
) -> anyhow::Result<()> {
    let metrics = install_metrics()?;
    // Before opening anything: a refused start must not leave a plain key behind.
    if config.master_key()?.is_none() && !config.is_loopback_only() && !config.keys.allow_unsealed {
        anyhow::bail!(
            "refusing to start with the private signing keys unsealed: {MASTER_KEY_VAR} is \
             not set, and the public URL {} (issuer {}) is not on loopback, so anyone who \
             can read the database could sign tokens this service accepts. Set \
             {MASTER_KEY_VAR} to 32 random bytes (64 hex digits or base64, e.g. `openssl \
             rand -hex 32`) to seal them, or set keys.allow_unsealed = true in the config \
             (TESSERA_KEYS__ALLOW_UNSEALED=true) to run unsealed on purpose",
            config.public_url(),
            config.issuer()
        );
    }
    // Both ports before the store: a taken port must not leave a new database behind.
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    let management_address = config.management_listen()?;
    let management_listener = TcpListener::bind(management_address)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {management_address} for metrics and health checks \
                 (management_listen, --management-listen)"
            )
        })?;
    let management = management_listener.local_addr()?;
    let tls = match &config.tls {
        Some(files) => Some(tessera_listener::acceptor(files.clone()).context("tls")?),
        None => None,
    };
    // With `--listen …:0` the port is known only now; the services that write the
    // public URL into what they answer (reset links) get this one.
    let public_url = match &config.public_url {
        Some(_) => config.public_url(),
        None => format!("{}://{address}", config.scheme()),
    };
    config.public_url = Some(public_url.clone());
    let core = Core::open(&config, config.hash_threads()).await?;
    let stopping = Stopping::on_signal();
    let sealed = core.keys.is_sealed();
    metrics::gauge!("tessera_keys_sealed").set(if sealed { 1.0 } else { 0.0 });
    if !sealed {
        tracing::warn!(
            "{MASTER_KEY_VAR} is not set: the private signing keys are stored unsealed \
             (plain PKCS#8) in the database, and anyone who can read it can sign tokens \
             this service accepts; set {MASTER_KEY_VAR} to seal them"
        );
    }
    let mut origins = vec![Origin::parse(&public_url).map_err(anyhow::Error::msg)?];
    for origin in &config.allowed_origins {
        origins.push(Origin::parse(origin).map_err(anyhow::Error::msg)?);
    }
    if !config.session.cookie_secure && !address.ip().is_loopback() {
        tracing::warn!("session.cookie_secure is off: session cookies will travel over plain HTTP");
    }

    tokio::spawn(
        core.sessions
            .clone()
            .follow_revocations(core.stores.set.log.clone()),
    );
    tokio::spawn(core.keys.clone().follow());
    let issuer = match &config.tokens.issuer {
        Some(_) => config.issuer(),
        None => public_url.clone(),
    };
    let hmac = config
        .tokens
        .hs256_secret
        .as_ref()
        .map(|secret| tessera_keys::HmacKey::new(secret.0.as_bytes()));
    let own_tokens = Arc::new(own_tokens::OwnTokens::new(
        &issuer,
        core.keys.clone(),
        config
            .tokens
            .hs256_secret
            .as_ref()
            .map(|s| s.0.as_bytes().to_vec()),
        core.log_contact.clone(),
        core.stores.set.log.clone(),
        core.stores.revocations_appended.clone(),
    ));
    tokio::spawn(own_tokens.clone().follow());
    let tokens = Arc::new(tokens::TokenIssuer::new(
        issuer,
        core.keys.clone(),
        hmac,
        core.stores.set.opaque.clone(),
    ));
    tokio::spawn(
        Arc::new(services::backchannel::Backchannel::new(
            core.stores.set.backchannel.clone(),
            core.stores.set.refresh.clone(),
            core.stores.set.log.clone(),
            core.clients.clone(),
            tokens.clone(),
            config.tokens.backchannel_retry_for,
        )?)
        .run(),
    );
    let (stop_upkeep, upkeep_stopped) = tokio::sync::oneshot::channel::<()>();
    let upkeep = tokio::spawn(core.sessions.clone().upkeep(core.upkeep, async move {
        let _ = upkeep_stopped.await;
    }));
    tokio::spawn(core.presence_writer.run());
    tokio::spawn(core.audit.clone().purge(config.audit.retention));
    tokio::spawn(
        core.admin
            .clone()
            .sample_online(services::presence::DEFAULT_WINDOW),
    );
    tokio::spawn(ping_stores(
        core.stores.set.clone(),
        core.store_contact.clone(),
    ));
    let throttle = Arc::new(throttle::Throttle::new(
        &config.throttle,
        core.stores.rate_limits.clone(),
    ));
    let no_users = core.accounts.list().await?.is_empty();
    let issuer = tokens.issuer().to_owned();
    let session_tokens = Arc::new(tokens::SessionTokens::new(
        tokens.clone(),
        session_token_client(&config)?,
    ));
    let introspection = Arc::new(services::introspection::Introspection::new(
        issuer.clone(),
        core.clients.clone(),
        own_tokens.clone(),
        core.presence.clone(),
        core.stores.set.refresh.clone(),
        core.stores.set.opaque.clone(),
        core.stores.set.log.clone(),
    ));
    // Shared when more than one instance may serve: Redis or PostgreSQL.
    let shared_proofs = matches!(
        crate::stores::DatabaseLocation::of(&config)?,
        crate::stores::DatabaseLocation::Postgres(_)
    ) || config.redis.is_some();
    let nonce_key = match (config.tokens.dpop_nonce, config.master_key()?) {
        (false, _) => None,
        (true, Some(key)) => Some(key),
        (true, None) => {
            if shared_proofs {
                // Each instance would seal with a key of its own, and a client
                // sent between them would be told `use_dpop_nonce` again and again.
                tracing::warn!(
                    "tokens.dpop_nonce is on without TESSERA_MASTER_KEY: each instance \
                     seals its nonces with a key of its own, so instances behind one \
                     balancer refuse each other's; set TESSERA_MASTER_KEY on all of them"
                );
            }
            Some(tessera_keys::MasterKey::random()?)
        }
    };
    let dpop = Arc::new(services::dpop::DpopProofs::new(
        &config.public_url(),
        shared_proofs.then(|| core.stores.set.ceremonies.clone()),
        nonce_key,
        config.tokens.dpop_replay_entries,
    ));
    let authorization = Arc::new(services::authorize::Authorization::new(
        issuer.clone(),
        core.clients.clone(),
        core.sessions.clone(),
        core.accounts.clone(),
        core.stores.set.codes.clone(),
        config.tokens.code_lifetime,
        core.audit.clone(),
        core.stores.set.refresh.clone(),
        core.stores.set.backchannel.clone(),
        dpop.clone(),
        core.keys.clone(),
    ));
    let state = AppState::new(Services {
        end_session: Arc::new(services::end_session::EndSession::new(
            issuer.clone(),
            core.keys.clone(),
            core.clients.clone(),
            core.sessions.clone(),
        )),
        authorization: authorization.clone(),
        reset_links: Arc::new(services::reset_links::ResetLinks::new(
            core.accounts.clone(),
            core.admin.clone(),
            core.audit.clone(),
        )),
        self_service: Arc::new(services::self_service::SelfService::new(
            core.accounts.clone(),
            core.sessions.clone(),
            authorization,
            throttle.clone(),
            core.audit.clone(),
            core.second_factors.clone(),
            core.passkeys.clone(),
            config.mfa,
        )),
        grants: Arc::new(services::grants::Grants::new(
            core.clients.clone(),
            services::codes::Codes::new(
                core.stores.set.exchange.clone(),
                core.stores.set.refresh.clone(),
                core.stores.set.log.clone(),
                core.sessions.clone(),
                core.audit.clone(),
            ),
            core.accounts.clone(),
            core.sessions.clone(),
            core.refresh.clone(),
            core.presence.clone(),
            tokens.clone(),
            throttle.clone(),
            core.audit.clone(),
            core.second_factors.clone(),
            config.mfa,
            dpop.clone(),
        )),
        userinfo: Arc::new(services::userinfo::UserInfoService::new(
            introspection.clone(),
            core.accounts.clone(),
            dpop.clone(),
        )),
        dpop,
        introspection,
        feed: Arc::new(services::feed::RevocationFeed::new(
            core.stores.set.log.clone(),
            own_tokens.clone(),
            core.clients.clone(),
            config.tokens.feed_heartbeat,
            stopping.0.clone(),
        )),
        activity: Arc::new(services::activity::Activity::new(
            core.sessions.clone(),
            core.stores.set.refresh.clone(),
            core.presence.clone(),
            throttle.clone(),
        )),
        sign_in: Arc::new(services::sign_in::SignIn::new(
            core.accounts.clone(),
            core.sessions.clone(),
            core.second_factors.clone(),
            core.passkeys.clone(),
            core.stores.set.ceremonies.clone(),
            throttle.clone(),
            core.audit.clone(),
            config.registration,
            config.mfa,
        )),
        admin: core.admin.clone(),
        session_tokens,
        sessions: core.sessions.clone(),
        discovery: Arc::new(services::discovery::Discovery::new(
            tokens.clone(),
            config.tokens.jwks_max_age,
        )),
        readiness: Arc::new(services::readiness::Readiness::new(
            Arc::new(core.stores.set.clone()),
            core.keys.clone(),
        )),
        metrics,
        own_tokens,
        clients: core.clients.clone(),
        cookies: Arc::new(Cookies {
            session: SessionCookie::new(
                config.session.cookie_secure,
                config.session.absolute_lifetime,
            ),
            token: SessionCookie::token(
                config.session.cookie_secure,
                config.tokens.session_token_ttl,
            ),
            pending: SessionCookie::pending(
                config.session.cookie_secure,
                services::sign_in::BETWEEN_FACTORS,
            ),
        }),
        edge: Arc::new(EdgePolicy {
            return_to: http::return_to::ReturnTo::new(&public_url, &config.return_to_origins)
                .map_err(anyhow::Error::msg)?,
            origins,
            token_cors_origins: config
                .tokens
                .cors_origins
                .iter()
                .map(|o| Origin::parse(o).map_err(anyhow::Error::msg))
                .collect::<anyhow::Result<_>>()?,
            trusted_proxies: config.trusted_proxies.clone(),
        }),
        throttle,
    });
    spawn_housekeeping(state.clone());

    let app = router(state.clone(), &config.limits);
    let operators = management_router(state);
    on_listening(&Listening {
        address,
        management,
        public_url: public_url.clone(),
        no_users,
    });
    tracing::info!(%address, %management, %public_url, "listening");
    tokio::join!(
        http::serve(listener, app, &config.limits, tls, stopping.wait()),
        http::serve(
            management_listener,
            operators,
            &config.limits,
            None,
            stopping.wait()
        ),
    );
    // Write the session activity not yet recorded before the store closes.
    let _ = stop_upkeep.send(());
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), upkeep).await;
    core.stores.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Pings every store each second, so that caches in front of one that stopped
/// answering are trusted no longer than `session.cache_staleness`.
async fn ping_stores(stores: tessera_store::StoreSet, contact: Arc<contact::Contact>) {
    use tessera_store::Health;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match stores.ping().await {
            Ok(()) => contact.heard(),
            Err(error) => tracing::warn!(%error, "a store is not answering"),
        }
    }
}

fn spawn_housekeeping(state: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
        loop {
            tick.tick().await;
            state.services().throttle.forget_idle_keys();
        }
    });
}

/// The in-memory client that session tokens are issued as: no grants, no secret,
/// the configured audience and lifetime, the default algorithm.
fn session_token_client(config: &Config) -> anyhow::Result<tessera_store::Client> {
    let audiences = match &config.tokens.session_token_audience {
        Some(audience) => vec![tessera_core::Audience::parse(audience).map_err(|_| {
            anyhow::anyhow!("tokens.session_token_audience is not a valid audience")
        })?],
        None => Vec::new(),
    };
    Ok(tessera_store::Client {
        id: tessera_core::ClientId::web_session(),
        name: tessera_core::ClientName::parse("tessera web session")
            .map_err(|_| anyhow::anyhow!("client name"))?,
        secret_hash: None,
        grants: Vec::new(),
        scopes: tessera_core::Scopes::default(),
        audiences,
        token_format: tessera_core::TokenFormat::Jwt,
        algorithm: tessera_core::Algorithm::default(),
        access_ttl: config.tokens.session_token_ttl,
        dpop_bound_access_tokens: false,
        created_at: tessera_core::Timestamp::now(),
        code_flow: tessera_store::CodeFlow::default(),
    })
}

/// The process is stopping: told once on SIGINT or SIGTERM, heard by every
/// listener.
#[derive(Clone)]
struct Stopping(tokio::sync::watch::Receiver<bool>);

impl Stopping {
    fn on_signal() -> Self {
        let (tell, hear) = tokio::sync::watch::channel(false);
        let signal = tessera_listener::shutdown_signal();
        tokio::spawn(async move {
            signal.await;
            let _ = tell.send(true);
        });
        Self(hear)
    }

    /// Resolves once the process is stopping.
    fn wait(&self) -> impl std::future::Future<Output = ()> + use<> {
        let mut hear = self.0.clone();
        async move {
            // An error means the sender is gone, which only happens once it sent.
            let _ = hear.wait_for(|stopping| *stopping).await;
        }
    }
}

/// The DPoP request header (a browser client's proofs) and the nonce response
/// header, named for CORS.
const DPOP: HeaderName = HeaderName::from_static(tessera_proto::token_type::DPOP_HEADER);
const DPOP_NONCE: HeaderName =
    HeaderName::from_static(tessera_proto::token_type::DPOP_NONCE_HEADER);

/// CORS for the token endpoint: only the configured origins, no credentials.
fn token_cors(origins: &[Origin]) -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.as_str()).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([::http::Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, DPOP])
        .expose_headers([DPOP_NONCE])
        .max_age(std::time::Duration::from_secs(600))
}

/// CORS for bearer-token endpoints any web page may call (userinfo): no cookies
/// are read there, so any origin may send a token it holds.
fn public_cors() -> tower_http::cors::CorsLayer {
    use tower_http::cors::{Any, CorsLayer};
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([::http::Method::GET, ::http::Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, DPOP])
        .max_age(std::time::Duration::from_secs(600))
}

/// What operators' monitoring reads, on its own listener: the metrics, which say
/// more about the service than the public should learn (who signs in how often,
/// what fails), and the two health checks.
pub fn management_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .with_state(state)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

pub fn router(state: AppState, limits: &LimitsConfig) -> Router {
    let cors = token_cors(&state.services().edge.token_cors_origins);
    Router::new()
        // For load balancers; the metrics are only on the management listener.
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(crate::openapi::serve_document))
        .route("/v1/users", post(users::register))
        .route("/v1/login", post(login::login))
        .route("/v1/login/second-factor", post(login::second_factor))
        .route(
            "/v1/login/second-factor/passkey-options",
            post(login::second_factor_passkey_options),
        )
        .route("/v1/login/passkey/options", post(login::passkey_options))
        .route("/v1/login/passkey", post(login::passkey))
        .route(
            "/v1/account/passkeys",
            get(passkeys::list).post(passkeys::add),
        )
        .route("/v1/account/passkeys/options", post(passkeys::options))
        .route("/v1/account/passkeys/{id}", delete(passkeys::remove))
        .route("/login", get(login_page::show).post(login_page::submit))
        .route(
            "/login/second-factor", // login_page::SECOND_STEP_PAGE
            get(login_page::show_second_step).post(login_page::submit_second_step),
        )
        .route(
            "/register",
            get(register_page::show).post(register_page::submit),
        )
        .route("/account", get(account::show))
        .route("/account/profile", post(account::profile))
        .route("/account/password", post(account::password))
        .route("/account/sessions/end", post(account::end_session))
        .route(
            "/account/sessions/end-others",
            post(account::end_other_sessions),
        )
        .route("/account/apps/remove", post(account::remove_app))
        .route("/account/sign-out", post(account::sign_out))
        .route("/account/totp/begin", post(account_factors::begin))
        .route("/account/totp/cancel", post(account_factors::cancel))
        .route("/account/totp/confirm", post(account_factors::confirm))
        .route("/account/totp/remove", post(account_factors::remove))
        .route(
            "/account/passkeys/remove",
            post(account_factors::remove_passkey),
        )
        .route(
            "/account/recovery-codes",
            post(account_factors::new_recovery_codes),
        )
        .route("/admin", get(console::dashboard))
        .route("/admin/users", get(console::users))
        .route("/admin/users/{id}", get(console::user))
        .route("/admin/users/{id}/{action}", post(console::user_action))
        .route(
            "/admin/clients",
            get(console::clients::list).post(console::clients::add),
        )
        .route(
            "/admin/clients/{id}/{action}",
            post(console::clients::action),
        )
        .route("/admin/keys", get(console::keys))
        .route("/admin/keys/rotate", post(console::rotate_key))
        .route("/admin/keys/retire", post(console::retire_key))
        .route("/admin/events", get(console::events))
        .route("/v1/session", get(session::current))
        .route("/v1/logout", post(session::logout))
        .route("/v1/session/token", post(session::token))
        .route(
            "/v1/sessions",
            get(sessions::list).delete(sessions::delete_others),
        )
        .route("/v1/sessions/{id}", delete(sessions::delete_one))
        .route("/v1/grants", get(consents::list))
        .route("/v1/grants/{client_id}", delete(consents::withdraw))
        .route("/v1/revocations", get(revocations::feed))
        .route("/v1/activity", post(activity::report))
        .route(
            "/oauth2/authorize",
            get(authorize::authorize).post(authorize::authorize_post),
        )
        .route("/oauth2/consent", post(authorize::consent))
        .route("/oauth2/par", post(authorize::push))
        .route(
            "/oauth2/logout",
            get(end_session::logout).post(end_session::logout_post),
        )
        .route("/oauth2/token", post(token::token).layer(cors))
        .route(
            "/oauth2/userinfo",
            get(userinfo::userinfo)
                .post(userinfo::userinfo)
                .layer(public_cors()),
        )
        .route("/oauth2/introspect", post(introspect::introspect))
        .route("/oauth2/revoke", post(introspect::revoke))
        .route("/admin/v1/users", get(admin::users))
        .route(
            "/admin/v1/users/{id}",
            get(admin::user).patch(admin::change_user),
        )
        .route("/admin/v1/users/{id}/sessions", get(admin::sessions))
        .route(
            "/admin/v1/users/{id}/sessions/{sid}",
            delete(admin::end_session),
        )
        .route("/admin/v1/users/{id}/kick", post(admin::kick))
        .route("/admin/v1/users/{id}/disable", post(admin::disable))
        .route("/admin/v1/users/{id}/enable", post(admin::enable))
        .route(
            "/admin/v1/users/{id}/roles",
            axum::routing::put(admin::set_roles),
        )
        .route("/admin/v1/users/{id}/reset-link", post(admin::reset_link))
        .route(
            "/admin/v1/users/{id}/reset-factors",
            post(admin::reset_factors),
        )
        .route("/reset", get(reset_page::show).post(reset_page::submit))
        .route(
            "/admin/v1/clients",
            get(admin::clients).post(admin::add_client),
        )
        .route(
            "/admin/v1/clients/{id}",
            get(admin::client).delete(admin::remove_client),
        )
        .route(
            "/admin/v1/clients/{id}/secret",
            post(admin::rotate_client_secret),
        )
        .route("/admin/v1/keys", get(admin::keys))
        .route("/admin/v1/online", get(admin::online))
        .route("/admin/v1/events", get(admin::events))
        .route("/.well-known/jwks.json", get(discovery::jwks))
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::metadata),
        )
        .route(
            "/.well-known/openid-configuration",
            get(discovery::metadata),
        )
        .with_state(state)
        .layer(middleware::from_fn(one_authorization))
        .layer(RequestBodyLimitLayer::new(limits.body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn(track_request))
        // Answers carry session data and CSRF tokens: no cache may keep them.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}
