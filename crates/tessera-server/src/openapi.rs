//! The OpenAPI 3.1 document of tessera's JSON API, served at `GET /openapi.json`.
//!
//! Every JSON endpoint of `app::router` is an operation here: its method and path,
//! who may call it, the body it takes (the request types are the routes' own,
//! deriving their schemas) and what it answers. The pages for people (`/login`,
//! `/account`, `/admin`, `/register`, `/reset`, the authorization and logout
//! pages) are HTML and not in it. `crates/tessera/tests/api/openapi.rs` holds the
//! two in step: every JSON route of the router is in the document and every
//! operation of the document is a route; a property-based fuzzer (schemathesis)
//! runs against a live server from the document.
//!
//! Errors have one shape everywhere (`{"error", "error_description"}`, RFC 6749's
//! names), documented once as the `4XX` answer of every operation.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Every error's body.
#[derive(ToSchema)]
#[schema(as = Error)]
#[allow(dead_code)]
pub struct ErrorSchema {
    /// A machine-readable code (`invalid_request`, `unauthenticated`, …).
    error: String,
    /// What went wrong, in words.
    error_description: String,
}

/// The body of `POST /oauth2/token` (form-encoded). Which members count depends on
/// `grant_type`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TokenRequest {
    /// `authorization_code`, `refresh_token`, `client_credentials`, `password`, or
    /// `urn:ietf:params:oauth:grant-type:token-exchange`.
    grant_type: String,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    username: Option<String>,
    password: Option<String>,
    scope: Option<String>,
    audience: Option<String>,
    resource: Option<String>,
    subject_token: Option<String>,
    subject_token_type: Option<String>,
    /// With `client_secret_post`, or a public client; else use HTTP Basic.
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// The body of `POST /oauth2/introspect` and `POST /oauth2/revoke` (form-encoded).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TokenReference {
    token: String,
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// The body of `POST /oauth2/par` (form-encoded): an authorization request.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PushedRequest {
    response_type: String,
    client_id: String,
    redirect_uri: String,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    /// RFC 9449 §10: the SHA-256 thumbprint of the DPoP key the code is bound to.
    dpop_jkt: Option<String>,
    prompt: Option<String>,
    max_age: Option<String>,
    login_hint: Option<String>,
    client_secret: Option<String>,
}

/// How a caller proves who it is.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "__Host-tessera-session",
                "The browser session's cookie (`tessera-session` when session.cookie_secure \
                 is off). Unsafe methods also need the session's CSRF token in X-CSRF-Token \
                 and a same-origin Origin.",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token tessera issued, for tessera itself"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "client",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "An OAuth client's id and secret (client_secret_basic), each \
                         form-encoded first (RFC 6749 §2.3.1)",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tessera",
        description = "tessera's JSON API: accounts and sessions, OAuth 2 and OpenID \
                       Connect, the revocation feed, administration. Errors are \
                       `{\"error\", \"error_description\"}` with a 4xx status."
    ),
    paths(
        operations::healthz,
        operations::readyz,
        operations::openapi,
        operations::register,
        operations::login,
        operations::login_second_factor,
        operations::login_second_factor_passkey_options,
        operations::login_passkey_options,
        operations::login_passkey,
        operations::account_passkeys,
        operations::account_passkey_options,
        operations::account_add_passkey,
        operations::account_remove_passkey,
        operations::session,
        operations::logout,
        operations::session_token,
        operations::sessions,
        operations::end_other_sessions,
        operations::end_session,
        operations::grants,
        operations::withdraw_grant,
        operations::revocations,
        operations::activity,
        operations::par,
        operations::token,
        operations::userinfo_get,
        operations::userinfo_post,
        operations::introspect,
        operations::revoke,
        operations::admin_users,
        operations::admin_user,
        operations::admin_change_user,
        operations::admin_user_sessions,
        operations::admin_end_session,
        operations::admin_kick,
        operations::admin_disable,
        operations::admin_enable,
        operations::admin_set_roles,
        operations::admin_reset_link,
        operations::admin_reset_factors,
        operations::admin_clients,
        operations::admin_add_client,
        operations::admin_client,
        operations::admin_remove_client,
        operations::admin_rotate_secret,
        operations::admin_keys,
        operations::admin_online,
        operations::admin_events,
        operations::jwks,
        operations::oauth_metadata,
        operations::openid_configuration,
    ),
    components(schemas(ErrorSchema)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "health", description = "For load balancers and monitoring"),
        (name = "sessions", description = "Accounts and browser sessions"),
        (name = "oauth", description = "OAuth 2 and OpenID Connect"),
        (name = "feed", description = "What verifiers follow"),
        (name = "admin", description = "Administration: an admin's session or a token with the admin scope"),
        (name = "discovery", description = "Keys and metadata"),
    )
)]
pub struct ApiDoc;

/// The document as JSON, made once.
pub fn document() -> &'static str {
    static DOCUMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        ApiDoc::openapi()
            .to_json()
            .unwrap_or_else(|_| "{}".to_owned())
    });
    &DOCUMENT
}

/// `GET /openapi.json`.
pub async fn serve_document() -> impl axum::response::IntoResponse {
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        document(),
    )
}

/// One stub per operation: the `#[utoipa::path]` attributes are the document.
/// They sit here, beside one another, rather than on the handlers, so that the
/// contract reads as one list; the test in `tests/api/openapi.rs` keeps this list
/// and the router the same.
#[allow(dead_code)]
mod operations {
    use super::{ErrorSchema, PushedRequest, TokenReference, TokenRequest};
    use crate::routes::activity::Report;
    use crate::routes::admin::{NewClient, ProfilePatch, RolesBody};
    use crate::routes::login::{
        LoginForm, PasskeyLoginForm, SecondFactorForm, SecondFactorRequired,
    };
    use crate::routes::passkeys::{NewPasskeyForm, PasskeyRegistrationForm, PasskeyView};
    use crate::routes::users::Registration;

    /// Liveness: the process answers.
    #[utoipa::path(get, path = "/healthz", tag = "health",
        responses((status = 200, description = "alive", body = Value)))]
    pub fn healthz() {}

    /// Readiness: the store answers.
    #[utoipa::path(get, path = "/readyz", tag = "health",
        responses((status = 200, description = "ready", body = Value),
                  (status = 503, description = "a store does not answer", body = ErrorSchema)))]
    pub fn readyz() {}

    /// This document.
    #[utoipa::path(get, path = "/openapi.json", tag = "discovery",
        responses((status = 200, description = "the OpenAPI 3.1 document", body = Value)))]
    pub fn openapi() {}

    /// Create an account (when registration is open). The new user is not signed in.
    #[utoipa::path(post, path = "/v1/users", tag = "sessions",
        request_body(content((Registration = "application/json"), (Registration = "application/x-www-form-urlencoded"))),
        responses((status = 201, description = "created: `{\"user\"}`", body = Value),
                  (status = "4XX", description = "refused: closed, taken, invalid", body = ErrorSchema)))]
    pub fn register() {}

    /// Sign in with a password: a session cookie and `{"user", "session", "csrf_token"}`;
    /// for an account with a second factor, `401 second_factor_required` and a
    /// `tessera-sign-in` cookie for `POST /v1/login/second-factor`.
    #[utoipa::path(post, path = "/v1/login", tag = "sessions",
        request_body(content((LoginForm = "application/json"), (LoginForm = "application/x-www-form-urlencoded"))),
        responses((status = 200, description = "signed in; the cookie is set", body = Value),
                  (status = 401, description = "`second_factor_required` (the sign-in cookie is set), or wrong credentials", body = SecondFactorRequired),
                  (status = "4XX", description = "wrong credentials, throttled, foreign origin", body = ErrorSchema),
                  (status = 503, description = "too many logins waiting for a hash", body = ErrorSchema)))]
    pub fn login() {}

    /// The second step of a sign-in: a code from the account's authenticator app,
    /// or one of its recovery codes, with the sign-in cookie the password set. A
    /// session cookie and `{"user", "session", "csrf_token"}`.
    #[utoipa::path(post, path = "/v1/login/second-factor", tag = "sessions",
        request_body(content((SecondFactorForm = "application/json"), (SecondFactorForm = "application/x-www-form-urlencoded"))),
        responses((status = 200, description = "signed in; the session cookie is set, the sign-in cookie cleared", body = Value),
                  (status = "4XX", description = "`invalid_code` (wrong or used), `sign_in_expired` (start again), throttled, foreign origin", body = ErrorSchema)))]
    pub fn login_second_factor() {}

    /// A challenge for a passkey of the account whose sign-in the sign-in cookie
    /// holds: `{"ceremony", "options"}`; the answer goes to
    /// `POST /v1/login/second-factor` as `{"ceremony", "credential"}`.
    #[utoipa::path(post, path = "/v1/login/second-factor/passkey-options", tag = "sessions",
        responses((status = 200, description = "`{\"ceremony\", \"options\": {\"publicKey\"}}`", body = Value),
                  (status = "4XX", description = "`sign_in_expired`, `passkey_refused` (the account has none), foreign origin", body = ErrorSchema)))]
    pub fn login_second_factor_passkey_options() {}

    /// A challenge for signing in with a passkey alone, no username
    /// (discoverable credentials): `{"ceremony", "options"}`.
    #[utoipa::path(post, path = "/v1/login/passkey/options", tag = "sessions",
        responses((status = 200, description = "`{\"ceremony\", \"options\": {\"publicKey\"}}`", body = Value),
                  (status = "4XX", description = "throttled, foreign origin; 403 `passkeys_unavailable` where the public URL names no host", body = ErrorSchema)))]
    pub fn login_passkey_options() {}

    /// Sign in with a passkey: a session cookie and `{"user", "session", "csrf_token"}`;
    /// the session's `amr` is `hwk` or `swk`, and `mfa`.
    #[utoipa::path(post, path = "/v1/login/passkey", tag = "sessions",
        request_body(content((PasskeyLoginForm = "application/json"))),
        responses((status = 200, description = "signed in; the cookie is set", body = Value),
                  (status = "4XX", description = "`passkey_refused` (wrong origin or RP id, no user verification, unknown passkey, counter went backwards), `ceremony_expired` (used or too old), throttled, disabled", body = ErrorSchema)))]
    pub fn login_passkey() {}

    /// The caller's passkeys, oldest first.
    #[utoipa::path(get, path = "/v1/account/passkeys", tag = "sessions", security(("session" = [])),
        responses((status = 200, description = "`{\"passkeys\": [PasskeyView]}`", body = Value),
                  (status = "4XX", description = "no valid session", body = ErrorSchema)))]
    pub fn account_passkeys() {}

    /// Start adding a passkey: the password again (a passkey signs in alone) and
    /// its name; `{"ceremony", "options"}` for `navigator.credentials.create`.
    #[utoipa::path(post, path = "/v1/account/passkeys/options", tag = "sessions", security(("session" = [])),
        request_body(content((NewPasskeyForm = "application/json"))),
        responses((status = 200, description = "`{\"ceremony\", \"options\": {\"publicKey\"}}`", body = Value),
                  (status = "4XX", description = "wrong password, bad name, throttled, no session or CSRF token", body = ErrorSchema)))]
    pub fn account_passkey_options() {}

    /// Finish adding a passkey: the authenticator's answer.
    #[utoipa::path(post, path = "/v1/account/passkeys", tag = "sessions", security(("session" = [])),
        request_body(content((PasskeyRegistrationForm = "application/json"))),
        responses((status = 201, description = "the passkey", body = PasskeyView),
                  (status = "4XX", description = "`passkey_refused`, `ceremony_expired`, registered already, no session or CSRF token", body = ErrorSchema)))]
    pub fn account_add_passkey() {}

    /// Remove one of the caller's passkeys.
    #[utoipa::path(delete, path = "/v1/account/passkeys/{id}", tag = "sessions", security(("session" = [])),
        params(("id" = String, Path, description = "the passkey's id (base64url credential id)")),
        responses((status = 204, description = "removed"),
                  (status = 409, description = "the last second factor of an account the `mfa` policy covers", body = ErrorSchema),
                  (status = "4XX", description = "no such passkey, no session or CSRF token", body = ErrorSchema)))]
    pub fn account_remove_passkey() {}

    /// The caller's session: `{"user", "session", "csrf_token"}`.
    #[utoipa::path(get, path = "/v1/session", tag = "sessions", security(("session" = [])),
        responses((status = 200, description = "the session", body = Value),
                  (status = "4XX", description = "no valid session", body = ErrorSchema)))]
    pub fn session() {}

    /// End the caller's session everywhere.
    #[utoipa::path(post, path = "/v1/logout", tag = "sessions", security(("session" = [])),
        responses((status = 204, description = "ended; the cookie is cleared"),
                  (status = "4XX", description = "no valid session, no CSRF token", body = ErrorSchema)))]
    pub fn logout() {}

    /// An access token for the caller's session (a browser app calling its APIs).
    #[utoipa::path(post, path = "/v1/session/token", tag = "sessions", security(("session" = [])),
        responses((status = 200, description = "`{\"access_token\", \"token_type\", \"expires_in\"}`", body = Value),
                  (status = "4XX", description = "no valid session", body = ErrorSchema)))]
    pub fn session_token() {}

    /// The caller's live sessions.
    #[utoipa::path(get, path = "/v1/sessions", tag = "sessions", security(("session" = [])),
        responses((status = 200, description = "`{\"sessions\": [...]}`", body = Value),
                  (status = "4XX", description = "no valid session", body = ErrorSchema)))]
    pub fn sessions() {}

    /// End every session of the caller's but this one.
    #[utoipa::path(delete, path = "/v1/sessions", tag = "sessions", security(("session" = [])),
        responses((status = 200, description = "`{\"ended\"}`", body = Value),
                  (status = "4XX", description = "no valid session", body = ErrorSchema)))]
    pub fn end_other_sessions() {}

    /// End one of the caller's sessions.
    #[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "sessions", security(("session" = [])),
        params(("id" = String, Path, description = "the session's public id")),
        responses((status = 204, description = "ended"),
                  (status = "4XX", description = "no such session of the caller's", body = ErrorSchema)))]
    pub fn end_session() {}

    /// The apps the caller allowed, with what they may do and when they were last used.
    #[utoipa::path(get, path = "/v1/grants", tag = "sessions", security(("session" = [])),
        responses((status = 200, description = "`{\"grants\": [...]}`", body = Value),
                  (status = "4XX", description = "no valid session", body = ErrorSchema)))]
    pub fn grants() {}

    /// Withdraw a consent: what the app holds is revoked.
    #[utoipa::path(delete, path = "/v1/grants/{client_id}", tag = "sessions", security(("session" = [])),
        params(("client_id" = String, Path, description = "the app's client id")),
        responses((status = 204, description = "withdrawn"),
                  (status = "4XX", description = "no such consent", body = ErrorSchema)))]
    pub fn withdraw_grant() {}

    /// The revocation feed: Server-Sent Events (`revocation`, `heartbeat`,
    /// `reconnect`), resumable with `Last-Event-ID`. Needs the `revocations` scope.
    #[utoipa::path(get, path = "/v1/revocations", tag = "feed", security(("bearer" = [])),
        params(("Last-Event-ID" = Option<String>, Header, description = "resume after this sequence")),
        responses((status = 200, description = "an event stream", content_type = "text/event-stream"),
                  (status = "4XX", description = "no token, or not the revocations scope", body = ErrorSchema)))]
    pub fn revocations() {}

    /// Verifiers report which sessions they saw in use (for "who is online").
    #[utoipa::path(post, path = "/v1/activity", tag = "feed", security(("bearer" = [])),
        request_body(content((Report = "application/json"))),
        responses((status = 204, description = "counted"),
                  (status = "4XX", description = "refused", body = ErrorSchema)))]
    pub fn activity() {}

    /// Push an authorization request (RFC 9126): a `request_uri` for /oauth2/authorize.
    #[utoipa::path(post, path = "/oauth2/par", tag = "oauth", security(("client" = [])),
        request_body(content((PushedRequest = "application/x-www-form-urlencoded"))),
        responses((status = 201, description = "`{\"request_uri\", \"expires_in\"}`", body = Value),
                  (status = "4XX", description = "an OAuth error", body = ErrorSchema)))]
    pub fn par() {}

    /// The token endpoint (RFC 6749 §3.2).
    #[utoipa::path(post, path = "/oauth2/token", tag = "oauth", security(("client" = [])),
        request_body(content((TokenRequest = "application/x-www-form-urlencoded"))),
        responses((status = 200, description = "`{\"access_token\", \"token_type\", \"expires_in\", …}`", body = Value),
                  (status = "4XX", description = "an OAuth error", body = ErrorSchema)))]
    pub fn token() {}

    /// The signed-in user's claims (OpenID Connect Core §5.3).
    #[utoipa::path(get, path = "/oauth2/userinfo", tag = "oauth", security(("bearer" = [])),
        responses((status = 200, description = "the claims the token's scopes allow", body = Value),
                  (status = "4XX", description = "no valid token", body = ErrorSchema)))]
    pub fn userinfo_get() {}

    /// The same, by POST.
    #[utoipa::path(post, path = "/oauth2/userinfo", tag = "oauth", security(("bearer" = [])),
        responses((status = 200, description = "the claims the token's scopes allow", body = Value),
                  (status = "4XX", description = "no valid token", body = ErrorSchema)))]
    pub fn userinfo_post() {}

    /// Token introspection (RFC 7662).
    #[utoipa::path(post, path = "/oauth2/introspect", tag = "oauth", security(("client" = [])),
        request_body(content((TokenReference = "application/x-www-form-urlencoded"))),
        responses((status = 200, description = "`{\"active\", …}`", body = Value),
                  (status = "4XX", description = "an OAuth error", body = ErrorSchema)))]
    pub fn introspect() {}

    /// Token revocation (RFC 7009).
    #[utoipa::path(post, path = "/oauth2/revoke", tag = "oauth", security(("client" = [])),
        request_body(content((TokenReference = "application/x-www-form-urlencoded"))),
        responses((status = 200, description = "revoked, or never known"),
                  (status = "4XX", description = "an OAuth error", body = ErrorSchema)))]
    pub fn revoke() {}

    /// Users whose username contains `q`, a page at a time.
    #[utoipa::path(get, path = "/admin/v1/users", tag = "admin", security(("session" = []), ("bearer" = [])),
        params(("q" = Option<String>, Query, description = "part of a username"),
               ("after" = Option<String>, Query, description = "the `next` of the page before"),
               ("limit" = Option<u32>, Query, description = "1 to 500, default 100")),
        responses((status = 200, description = "`{\"users\": [...], \"next\"}`", body = Value),
                  (status = "4XX", description = "not an admin, bad query", body = ErrorSchema)))]
    pub fn admin_users() {}

    /// One user and their profile.
    #[utoipa::path(get, path = "/admin/v1/users/{id}", tag = "admin", security(("session" = []), ("bearer" = [])),
        params(("id" = String, Path, description = "the user's id")),
        responses((status = 200, description = "`{\"user\", \"profile\"}`", body = Value),
                  (status = "4XX", description = "not an admin, no such user", body = ErrorSchema)))]
    pub fn admin_user() {}

    /// Change a user's profile: members left out keep their value, `null` clears.
    #[utoipa::path(patch, path = "/admin/v1/users/{id}", tag = "admin", security(("session" = []), ("bearer" = [])),
        params(("id" = String, Path, description = "the user's id")),
        request_body(content((ProfilePatch = "application/json"))),
        responses((status = 200, description = "`{\"user\", \"profile\"}`", body = Value),
                  (status = "4XX", description = "not an admin, no such user, invalid", body = ErrorSchema)))]
    pub fn admin_change_user() {}

    /// A user's live sessions.
    #[utoipa::path(get, path = "/admin/v1/users/{id}/sessions", tag = "admin", security(("session" = []), ("bearer" = [])),
        params(("id" = String, Path, description = "the user's id")),
        responses((status = 200, description = "`{\"user\", \"sessions\"}`", body = Value),
                  (status = "4XX", description = "not an admin, no such user", body = ErrorSchema)))]
    pub fn admin_user_sessions() {}

    /// End one session of a user's.
    #[utoipa::path(delete, path = "/admin/v1/users/{id}/sessions/{sid}", tag = "admin", security(("session" = []), ("bearer" = [])),
        params(("id" = String, Path, description = "the user's id"),
               ("sid" = String, Path, description = "the session's public id")),
        responses((status = 204, description = "ended"),
                  (status = "4XX", description = "not an admin, no such session", body = ErrorSchema)))]
    pub fn admin_end_session() {}

    /// End everything a user holds; every verifier refuses their tokens at once.
    #[utoipa::path(post, path = "/admin/v1/users/{id}/kick", tag = "admin", security(("session" = []), ("bearer" = [])),
        params(("id" = String, Path, description = "the user's id")),
        responses((status = 200, description = "what was ended", body = Value),
                  (status = "4XX", description = "not an admin, no such user", body = ErrorSchema)))]
    pub fn admin_kick() {}

    /// A kick that stays: the account cannot sign in until enabled.
    #[utoipa::path(post, path = "/admin/v1/users/{id}/disable", tag = "admin", security(("session" = []), ("bearer" = [])),
        params(("id" = String, Path, description = "the user's id")),
        responses((status = 200, description = "what was ended", body = Value),
                  (status = "4XX", description = "not an admin, no such user", body = ErrorSchema)))]
    pub fn admin_disable() {}

    /// Let a disabled account sign in again.
    #[utoipa::path(post, path = "/admin/v1/users/{id}/enable", tag = "admin", security(("session" = []), ("bearer" = [])),
        params(("id" = String, Path, description = "the user's id")),
        responses((status = 200, description = "`{\"user\"}`", body = Value),
                  (status = "4XX", description = "not an admin, no such user", body = ErrorSchema)))]
    pub fn admin_enable() {}

    /// Set a user's roles as a whole; taking one away ends what they hold.
    #[utoipa::path(put, path = "/admin/v1/users/{id}/roles", tag = "admin", security(("session" = []), ("bearer" = [])),
        params(("id" = String, Path, description = "the user's id")),
        request_body(content((RolesBody = "application/json"))),
        responses((status = 200, description = "`{\"user\", …}`", body = Value),
                  (status = "4XX", description = "not an admin, no such user, unknown role", body = ErrorSchema)))]
    pub fn admin_set_roles() {}

    /// A one-time password-reset link for a user (1 hour).
    #[utoipa::path(post, path = "/admin/v1/users/{id}/reset-link", tag = "admin", security(("session" = []), ("bearer" = [])),
        params(("id" = String, Path, description = "the user's id")),
        responses((status = 201, description = "`{\"url\", \"expires_at\", \"user\"}`", body = Value),
                  (status = "4XX", description = "not an admin, no such user, disabled", body = ErrorSchema)))]
    pub fn admin_reset_link() {}

    /// Take away a user's second factors (authenticator app, recovery codes): for a
    /// person who lost both. Recorded in the audit log.
    #[utoipa::path(post, path = "/admin/v1/users/{id}/reset-factors", tag = "admin", security(("session" = []), ("bearer" = [])),
        params(("id" = String, Path, description = "the user's id")),
        responses((status = 200, description = "`{\"user\", \"second_factor_removed\"}`", body = Value),
                  (status = "4XX", description = "not an admin, no such user", body = ErrorSchema)))]
    pub fn admin_reset_factors() {}

    /// Every OAuth client.
    #[utoipa::path(get, path = "/admin/v1/clients", tag = "admin", security(("session" = []), ("bearer" = [])),
        responses((status = 200, description = "`{\"clients\": [...]}`", body = Value),
                  (status = "4XX", description = "not an admin", body = ErrorSchema)))]
    pub fn admin_clients() {}

    /// Register a client; its secret is shown once.
    #[utoipa::path(post, path = "/admin/v1/clients", tag = "admin", security(("session" = []), ("bearer" = [])),
        request_body(content((NewClient = "application/json"))),
        responses((status = 201, description = "the client, and `client_secret` once", body = Value),
                  (status = "4XX", description = "not an admin, invalid, name taken", body = ErrorSchema)))]
    pub fn admin_add_client() {}

    /// One client.
    #[utoipa::path(get, path = "/admin/v1/clients/{id}", tag = "admin", security(("session" = []), ("bearer" = [])),
        params(("id" = String, Path, description = "the client's id")),
        responses((status = 200, description = "`{\"client\"}`", body = Value),
                  (status = "4XX", description = "not an admin, no such client", body = ErrorSchema)))]
    pub fn admin_client() {}

    /// Remove a client: every token issued to it is refused from now on.
    #[utoipa::path(delete, path = "/admin/v1/clients/{id}", tag = "admin", security(("session" = []), ("bearer" = [])),
        params(("id" = String, Path, description = "the client's id")),
        responses((status = 204, description = "removed"),
                  (status = "4XX", description = "not an admin, no such client", body = ErrorSchema)))]
    pub fn admin_remove_client() {}

    /// A new secret for a confidential client; the old one stops working.
    #[utoipa::path(post, path = "/admin/v1/clients/{id}/secret", tag = "admin", security(("session" = []), ("bearer" = [])),
        params(("id" = String, Path, description = "the client's id")),
        responses((status = 200, description = "`{\"client_id\", \"client_secret\"}`", body = Value),
                  (status = "4XX", description = "not an admin, no such client, public client", body = ErrorSchema)))]
    pub fn admin_rotate_secret() {}

    /// The signing keys and their state.
    #[utoipa::path(get, path = "/admin/v1/keys", tag = "admin", security(("session" = []), ("bearer" = [])),
        responses((status = 200, description = "`{\"keys\": [...]}`", body = Value),
                  (status = "4XX", description = "not an admin", body = ErrorSchema)))]
    pub fn admin_keys() {}

    /// Who was online in the last `window` seconds.
    #[utoipa::path(get, path = "/admin/v1/online", tag = "admin", security(("session" = []), ("bearer" = [])),
        params(("window" = Option<u64>, Query, description = "seconds, default 300")),
        responses((status = 200, description = "`{\"users\", \"sessions\", \"window_seconds\"}`", body = Value),
                  (status = "4XX", description = "not an admin, bad window", body = ErrorSchema)))]
    pub fn admin_online() {}

    /// The audit log, newest first, a page at a time.
    #[utoipa::path(get, path = "/admin/v1/events", tag = "admin", security(("session" = []), ("bearer" = [])),
        params(("user" = Option<String>, Query, description = "a username or user id"),
               ("kind" = Option<String>, Query, description = "an event kind, e.g. login"),
               ("since" = Option<String>, Query, description = "RFC 3339"),
               ("until" = Option<String>, Query, description = "RFC 3339"),
               ("before" = Option<i64>, Query, description = "the `next` of the page before"),
               ("limit" = Option<u32>, Query, description = "1 to 500, default 100")),
        responses((status = 200, description = "`{\"events\": [...], \"next\"}`", body = Value),
                  (status = "4XX", description = "not an admin, bad query", body = ErrorSchema)))]
    pub fn admin_events() {}

    /// The public signing keys (RFC 7517).
    #[utoipa::path(get, path = "/.well-known/jwks.json", tag = "discovery",
        responses((status = 200, description = "`{\"keys\": [...]}`", body = Value,
                   content_type = "application/jwk-set+json")))]
    pub fn jwks() {}

    /// Authorization server metadata (RFC 8414).
    #[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "discovery",
        responses((status = 200, description = "the metadata", body = Value)))]
    pub fn oauth_metadata() {}

    /// OpenID Connect Discovery 1.0: the same members.
    #[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "discovery",
        responses((status = 200, description = "the metadata", body = Value)))]
    pub fn openid_configuration() {}
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    /// Every `$ref` points at a schema the document has.
    #[test]
    fn the_document_is_whole() {
        let document: serde_json::Value = serde_json::from_str(super::document()).unwrap();
        assert_eq!(document["openapi"], "3.1.0");
        let text = super::document();
        for reference in text.split("\"$ref\":\"").skip(1) {
            let target = reference.split('"').next().unwrap();
            let name = target.trim_start_matches("#/components/schemas/");
            assert!(
                document["components"]["schemas"][name].is_object(),
                "{target} is not in the document"
            );
        }
    }
}
