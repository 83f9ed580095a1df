//! Extractors that turn a request into validated input, or into the right 4xx.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tessera_proto::error as codes;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::de::DeserializeOwned;

use tessera_core::{ClientId, Password, Role, UserId, Username};
use tessera_proto::token_type::DPOP_HEADER;
use tessera_store::Actor;
use tessera_verify::{Presented, Scheme, VerifyError};

use crate::http::RequestActor;
use crate::http::error::ApiError;
use crate::http::origin::Origin;
use crate::services::audit::Caller;
use crate::services::clients::PresentedClient;
use crate::services::dpop;
use crate::services::sessions::ActiveSession;
use crate::state::AppState;

enum BodyKind {
    Json,
    Form,
}

fn body_kind(headers: &HeaderMap) -> Option<BodyKind> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = content_type.split(';').next()?.trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Some(BodyKind::Json)
    } else if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Some(BodyKind::Form)
    } else {
        None
    }
}

async fn read_body(request: Request) -> Result<Bytes, ApiError> {
    // The size limit is enforced by the body-limit layer; reading past it fails here.
    Bytes::from_request(request, &())
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    codes::PAYLOAD_TOO_LARGE,
                    "the request body is too large",
                )
            } else {
                ApiError::bad_request("the request body could not be read")
            }
        })
}

/// A request body given as JSON or as an HTML form, parsed into `T`.
pub struct Input<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Input<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &S) -> Result<Self, ApiError> {
        let Some(kind) = body_kind(request.headers()) else {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                codes::UNSUPPORTED_MEDIA_TYPE,
                "send application/json or application/x-www-form-urlencoded",
            ));
        };
        let body = read_body(request).await?;
        let parsed = match kind {
            BodyKind::Json => serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?,
            BodyKind::Form => serde_urlencoded::from_bytes(&body)
                .map_err(|e| ApiError::bad_request(format!("invalid form body: {e}")))?,
        };
        Ok(Self(parsed))
    }
}

/// An OAuth request body: `application/x-www-form-urlencoded` only (RFC 6749 §3.2),
/// each parameter at most once, empty values treated as absent (§3.1) except
/// `scope`: `scope=` asks for no scope. Dropping it would turn "nothing" into
/// "the defaults", and a request must never get more than it named.
pub struct OAuthForm(pub std::collections::HashMap<String, String>);

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &S) -> Result<Self, ApiError> {
        if !matches!(body_kind(request.headers()), Some(BodyKind::Form)) {
            return Err(ApiError::bad_request(
                "send the parameters as application/x-www-form-urlencoded",
            ));
        }
        let body = read_body(request).await?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid form body: {e}")))?;
        let mut params = std::collections::HashMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            if value.is_empty() && name != "scope" {
                continue;
            }
            if params.contains_key(&name) {
                return Err(ApiError::bad_request(format!(
                    "the parameter {name:?} is given more than once"
                )));
            }
            params.insert(name, value);
        }
        Ok(Self(params))
    }
}

/// A username and password as typed, parsed: `invalid_username` or
/// `invalid_password` with the reason otherwise.
pub fn credentials(username: &str, password: String) -> Result<(Username, Password), ApiError> {
    let username = Username::parse(username)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_username", e.to_string()))?;
    Ok((username, new_password(password)?))
}

/// A password as typed, checked against the rules every password follows.
pub fn new_password(password: String) -> Result<Password, ApiError> {
    Password::parse(password)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_password", e.to_string()))
}

/// An OAuth request: its form and the client it says it comes from, by HTTP Basic
/// (RFC 6749 §2.3.1: each part form-encoded) or by `client_id` (and
/// `client_secret`) in the body; using both is refused. Who the client is, is
/// checked by the service; this only reads what was presented.
pub struct OAuthRequest {
    pub client: PresentedClient,
    pub params: std::collections::HashMap<String, String>,
}

impl OAuthRequest {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// A parameter the request must have: `invalid_request` without it.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.param(name)
            .ok_or_else(|| ApiError::oauth(codes::INVALID_REQUEST, format!("{name} is missing")))
    }
}

impl<S: Send + Sync> FromRequest<S> for OAuthRequest {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let basic = request
            .headers()
            .get(header::AUTHORIZATION)
            .map(|value| parse_basic(value).ok_or_else(ApiError::invalid_client))
            .transpose()?;
        let extensions = request.extensions().clone();
        let OAuthForm(params) = OAuthForm::from_request(request, state).await?;
        let client = presented_client(basic, &params)?;
        // As presented: whether it authenticates is the status's to say.
        RequestActor::note(&extensions, || format!("client:{}", client.id));
        Ok(Self { client, params })
    }
}

fn presented_client(
    basic: Option<PresentedClient>,
    params: &std::collections::HashMap<String, String>,
) -> Result<PresentedClient, ApiError> {
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    match basic {
        Some(basic) => {
            if body_secret.is_some() {
                return Err(ApiError::oauth(
                    codes::INVALID_REQUEST,
                    "use one client authentication method, not Basic and client_secret together",
                ));
            }
            if body_id.is_some_and(|id| *id != basic.id) {
                return Err(ApiError::oauth(
                    codes::INVALID_REQUEST,
                    "client_id differs from the one in the Authorization header",
                ));
            }
            Ok(basic)
        }
        None => match body_id {
            Some(id) => Ok(PresentedClient {
                id: id.clone(),
                secret: body_secret.cloned(),
            }),
            None => Err(ApiError::invalid_client()),
        },
    }
}

fn parse_basic(value: &http::HeaderValue) -> Option<PresentedClient> {
    use base64::Engine;
    let value = value.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let (id, secret) = String::from_utf8(decoded)
        .ok()?
        .split_once(':')
        .map(|(i, s)| (i.to_owned(), s.to_owned()))?;
    Some(PresentedClient {
        id: form_decode(&id)?,
        secret: Some(form_decode(&secret)?),
    })
}

/// Undoes `application/x-www-form-urlencoded` on one value (`+` is a space).
fn form_decode(part: &str) -> Option<String> {
    percent_encoding::percent_decode_str(&part.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The verified claims of the access token of a request: one of this issuer's,
/// live and unrevoked, sent as `Authorization: Bearer`, or as `DPoP` with its
/// proof when it is bound to a key. Failures answer 401 with an RFC 6750 (or
/// RFC 9449) challenge.
pub struct BearerToken(pub tessera_verify::AccessClaims, pub Scheme);

pub const BEARER_INVALID: &str = r#"Bearer realm="tessera", error="invalid_token""#;
pub const BEARER_MISSING: &str = r#"Bearer realm="tessera""#;
pub const BEARER_SCOPE: &str = r#"Bearer realm="tessera", error="insufficient_scope""#;
pub const BEARER_MALFORMED: &str = r#"Bearer realm="tessera", error="invalid_request""#;

/// The access token of a request's `Authorization` header (`Bearer` or `DPoP`)
/// and its `DPoP` proof, or the RFC 6750 answer to a request without one.
pub fn presented(headers: &HeaderMap) -> Result<Presented<'_>, ApiError> {
    Presented::from_headers(
        headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .map(HeaderValue::as_bytes),
        headers
            .get_all(DPOP_HEADER)
            .iter()
            .map(HeaderValue::as_bytes),
    )
    // Malformed (two `Authorization` headers, two proofs, an unknown scheme): a
    // bad request, not a bad token (RFC 6750 §3.1), as `tessera-verify`'s layer
    // answers it.
    .map_err(|why| {
        ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID_REQUEST, why)
            .challenge(BEARER_MALFORMED)
    })?
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            codes::INVALID_REQUEST,
            "send an access token: Authorization: Bearer <token>",
        )
        // Both schemes taken here, so a client learns DPoP is (RFC 9449 §7.1).
        .challenge(BEARER_MISSING)
        .challenge(crate::services::dpop::CHALLENGE_MISSING)
    })
}

/// The answer to a token (or its proof) refused, in the scheme it came in
/// (`DPoP` for a bound token sent as `Bearer`, so the client learns what to send).
pub fn token_refused(error: VerifyError, scheme: Scheme, description: String) -> ApiError {
    if error.is_temporary() {
        return ApiError::stale();
    }
    let (code, challenge) = match &error {
        VerifyError::Proof(proof) => (proof.code(), dpop::CHALLENGE_INVALID_PROOF),
        VerifyError::BoundToKey => (codes::INVALID_TOKEN, dpop::CHALLENGE_INVALID_TOKEN),
        VerifyError::NotBound => (codes::INVALID_TOKEN, BEARER_INVALID),
        _ if scheme == Scheme::Dpop => (codes::INVALID_TOKEN, dpop::CHALLENGE_INVALID_TOKEN),
        _ => (codes::INVALID_TOKEN, BEARER_INVALID),
    };
    ApiError::new(StatusCode::UNAUTHORIZED, code, description).challenge(challenge)
}

impl FromRequestParts<AppState> for BearerToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = presented(&parts.headers)?;
        let invalid = |error: VerifyError, description: String| {
            token_refused(error, presented.scheme, description)
        };
        let claims = state
            .services()
            .own_tokens
            .verify_for_tessera(presented.token)
            .await
            .map_err(|error| match error {
                VerifyError::Stale => ApiError::stale(),
                VerifyError::WrongAudience => invalid(
                    error,
                    "this token is not for tessera: its audience must be tessera's issuer URL"
                        .to_owned(),
                ),
                VerifyError::AlgorithmNotAllowed => invalid(
                    error,
                    "tessera's own endpoints take only tokens signed with its published keys \
                     (never HS256)"
                        .to_owned(),
                ),
                error => {
                    let description = error.to_string();
                    invalid(error, description)
                }
            })?;
        let path = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or(parts.uri.path(), |original| original.0.path());
        state
            .services()
            .dpop
            .check(&claims, &presented, parts.method.as_str(), path)
            .await
            .map_err(|error| {
                let description = error.to_string();
                invalid(error, description)
            })?;
        // A client's own token (client_credentials) is only as good as the client:
        // one removed since is refused here even before its cut-off is read.
        if claims.client_id.as_deref() == Some(claims.sub.as_str()) {
            let client = match tessera_core::ClientId::parse(&claims.sub) {
                Some(id) => state.services().clients.get(&id).await?,
                None => None,
            };
            if client.is_none() {
                return Err(invalid(
                    VerifyError::Revoked(tessera_verify::RevokedBy::Client),
                    "the client this token was issued to does not exist".to_owned(),
                ));
            }
        }
        RequestActor::note(&parts.extensions, || {
            if claims.client_id.as_deref() == Some(claims.sub.as_str()) {
                format!("client:{}", claims.sub)
            } else {
                format!("user:{}", claims.sub)
            }
        });
        let scheme = presented.scheme;
        Ok(Self(claims, scheme))
    }
}

impl BearerToken {
    /// 403 `insufficient_scope` unless the token carries `scope`.
    pub fn require_scope(&self, scope: &'static str) -> Result<(), ApiError> {
        if self.0.has_scope(scope) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                codes::INSUFFICIENT_SCOPE,
                format!("this needs a token with the {scope:?} scope"),
            )
            .challenge(match self.1 {
                Scheme::Bearer => BEARER_SCOPE,
                Scheme::Dpop => dpop::CHALLENGE_INSUFFICIENT_SCOPE,
            }))
        }
    }
}

/// Where the request came from, and with which browser.
pub struct ClientInfo {
    pub address: IpAddr,
    pub user_agent: Option<String>,
}

const USER_AGENT_MAX_CHARS: usize = 256;

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .ok_or_else(|| ApiError::bad_request("no peer address"))?;
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(USER_AGENT_MAX_CHARS).collect());
        Ok(Self {
            address: client_address(peer, &parts.headers, &state.services().edge.trusted_proxies),
            user_agent,
        })
    }
}

/// The client's address: the peer's, unless the peer is a trusted proxy, in which
/// case the nearest `X-Forwarded-For` hop that is not itself a trusted proxy.
fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    hops.into_iter()
        .rev()
        .find(|hop| !trusted.contains(hop))
        .unwrap_or(peer)
}

/// Refuses requests that a browser sent from a foreign page: login, registration and
/// every cookie-authenticated unsafe request pass through here.
pub fn check_origin(headers: &HeaderMap, origins: &[Origin]) -> Result<(), ApiError> {
    let refuse = |why: &'static str| {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_origin_request",
            why,
        ))
    };
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = origin
            .to_str()
            .ok()
            .and_then(|o| crate::http::origin::Origin::parse(o).ok())
            .is_some_and(|o| origins.contains(&o));
        return if allowed {
            Ok(())
        } else {
            refuse("the Origin of this request is not allowed")
        };
    }
    match headers.get("sec-fetch-site").map(|v| v.as_bytes()) {
        None | Some(b"same-origin") | Some(b"none") => Ok(()),
        Some(_) => refuse("cross-site requests are not allowed (Sec-Fetch-Site)"),
    }
}

/// A request from an origin allowed to log in or register.
pub struct SameOrigin;

impl FromRequestParts<AppState> for SameOrigin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        check_origin(&parts.headers, &state.services().edge.origins).map(|()| SameOrigin)
    }
}

async fn session_of(headers: &HeaderMap, state: &AppState) -> Result<Arc<ActiveSession>, ApiError> {
    let services = state.services();
    let secret = services
        .cookies
        .session
        .secret(headers)
        .map_err(|_| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "ambiguous_session",
                "the request carries two different session cookies; sign in again",
            )
        })?
        .ok_or_else(ApiError::unauthenticated)?;
    services
        .sessions
        .authenticate(&secret)
        .await?
        .ok_or_else(ApiError::unauthenticated)
}

/// Notes the session's user as who the request came from (the request log).
fn note_user(extensions: &http::Extensions, session: &ActiveSession) {
    RequestActor::note(extensions, || format!("user:{}", session.user().id));
}

/// The caller's session, from the session cookie. Only for safe (read-only) routes:
/// unsafe ones take [`CsrfProtectedSession`].
pub struct CookieSession(pub Arc<ActiveSession>);

impl FromRequestParts<AppState> for CookieSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let session = session_of(&parts.headers, state).await?;
        note_user(&parts.extensions, &session);
        Ok(Self(session))
    }
}

/// The caller's session for an unsafe request: same origin, and the session's CSRF
/// token in `X-CSRF-Token` or a `csrf_token` form field. Reads the body for the form
/// field, so it is the handler's last extractor.
pub struct CsrfProtectedSession(pub Arc<ActiveSession>);

#[derive(serde::Deserialize)]
struct CsrfForm {
    csrf_token: Option<String>,
}

impl FromRequest<AppState> for CsrfProtectedSession {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        check_origin(request.headers(), &state.services().edge.origins)?;
        let session = session_of(request.headers(), state).await?;
        note_user(request.extensions(), &session);
        let presented = match request.headers().get("x-csrf-token") {
            Some(value) => value.to_str().ok().map(str::to_owned),
            None if matches!(body_kind(request.headers()), Some(BodyKind::Form)) => {
                let body = read_body(request).await?;
                serde_urlencoded::from_bytes::<CsrfForm>(&body)
                    .ok()
                    .and_then(|f| f.csrf_token)
            }
            None => None,
        };
        csrf_matches(&session, presented.as_deref())?;
        Ok(Self(session))
    }
}

/// [`CsrfProtectedSession`] for a JSON request whose body the handler reads:
/// the token only in `X-CSRF-Token`, and the body left alone.
pub struct CsrfHeaderSession(pub Arc<ActiveSession>);

impl FromRequestParts<AppState> for CsrfHeaderSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        check_origin(&parts.headers, &state.services().edge.origins)?;
        let session = session_of(&parts.headers, state).await?;
        note_user(&parts.extensions, &session);
        let presented = parts
            .headers
            .get("x-csrf-token")
            .and_then(|value| value.to_str().ok());
        csrf_matches(&session, presented)?;
        Ok(Self(session))
    }
}

fn csrf_matches(session: &ActiveSession, presented: Option<&str>) -> Result<(), ApiError> {
    let Some(presented) = presented else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf_token_missing",
            "send the session's csrf_token in the X-CSRF-Token header",
        ));
    };
    if !session.csrf_token().matches(presented) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf_token_invalid",
            "the CSRF token does not match this session",
        ));
    }
    Ok(())
}

/// A yes/no field as JSON gives it (`true`) or as a form does (`"true"`,
/// `"false"`; a form's flattened fields all arrive as text).
pub fn form_bool<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Either {
        Bool(bool),
        Text(String),
    }
    match <Either as serde::Deserialize>::deserialize(deserializer)? {
        Either::Bool(value) => Ok(value),
        Either::Text(text) => match text.as_str() {
            "true" => Ok(true),
            "false" | "" => Ok(false),
            _ => Err(serde::de::Error::custom("expected true or false")),
        },
    }
}

/// The scope an access token needs for the admin API.
pub const ADMIN_SCOPE: &str = tessera_proto::scope::ADMIN;

/// An administrator of this tessera, for `/admin/v1/`. Either a session whose user has
/// the admin role (with the CSRF check on unsafe methods), or an access token with
/// the `admin` scope. A token issued to a user must also carry the admin role: the
/// scope alone would let any user of a client that may ask for it become an admin.
/// Reads the body for the CSRF form field, so it is the handler's last extractor.
pub struct Admin {
    /// Who, as the audit log names them: the user, or the client a token was
    /// issued to for itself.
    pub caller: Caller,
}

/// An admin whose session began without the second factor the `mfa` policy
/// asks of admins (RFC 9470's error, in this API's shape).
fn second_factor_needed() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "insufficient_user_authentication",
        "the mfa policy asks administrators to sign in with a second factor: sign in \
         again with your authenticator app (set one up on your account page)",
    )
}

fn not_an_admin() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "this needs an administrator: a session of a user with the admin role, or an \
         access token with the admin scope",
    )
}

impl FromRequest<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let (mut parts, body) = request.into_parts();
        let address = ClientInfo::from_request_parts(&mut parts, state)
            .await?
            .address;
        let request = Request::from_parts(parts, body);
        let caller = |actor| Caller {
            actor,
            address: Some(address),
        };
        if request.headers().contains_key(header::AUTHORIZATION) {
            let (mut parts, _) = request.into_parts();
            let bearer = BearerToken::from_request_parts(&mut parts, state).await?;
            bearer.require_scope(ADMIN_SCOPE)?;
            let claims = bearer.0;
            let issued_to_client = claims.client_id.as_deref() == Some(claims.sub.as_str());
            if !issued_to_client && !claims.roles.iter().any(|r| r == Role::Admin.as_str()) {
                return Err(not_an_admin());
            }
            // The subject is the client itself, or the admin user.
            let actor = if issued_to_client {
                ClientId::parse(&claims.sub).map(Actor::Client)
            } else {
                UserId::parse(&claims.sub).map(Actor::User)
            };
            let actor = actor.ok_or_else(not_an_admin)?;
            // A user's token counts as the sign-in behind it: the browser session
            // its `sid` names (a refresh family's tokens name the family, and are
            // refused here while the policy asks for a second factor).
            if !issued_to_client && state.services().admin.asks_admins_for_second_factor() {
                let session = match claims.sid.as_deref().map(tessera_core::SessionId::parse) {
                    Some(Ok(sid)) => state.services().sessions.live(&sid).await?,
                    _ => None,
                };
                if !session.is_some_and(|s| s.methods().is_multi_factor()) {
                    return Err(second_factor_needed());
                }
            }
            return Ok(Self {
                caller: caller(actor),
            });
        }
        let session = if request.method().is_safe() {
            let session = session_of(request.headers(), state).await?;
            note_user(request.extensions(), &session);
            session
        } else {
            CsrfProtectedSession::from_request(request, state).await?.0
        };
        if !session.user().roles.contains(Role::Admin) {
            return Err(not_an_admin());
        }
        if !state.services().admin.admits(&session) {
            return Err(second_factor_needed());
        }
        Ok(Self {
            caller: caller(Actor::User(session.user().id)),
        })
    }
}

/// An administrator and the JSON body of their request: [`Admin`] reads the body
/// for a CSRF form field, so a handler that needs both takes this instead. A
/// session's CSRF token comes in the `X-CSRF-Token` header here.
pub struct AdminInput<T>(pub Admin, pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for AdminInput<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let headers_only = Request::from_parts(parts.clone(), axum::body::Body::empty());
        let admin = Admin::from_request(headers_only, state).await?;
        let Input(input) = Input::from_request(Request::from_parts(parts, body), state).await?;
        Ok(Self(admin, input))
    }
}

/// The request's `DPoP` proof: at most one header (RFC 9449 §4.3 item 1).
pub fn dpop_proof(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let mut proofs = headers.get_all(DPOP_HEADER).iter();
    let (Some(proof), None) = (proofs.next(), proofs.next()) else {
        return if headers.contains_key(DPOP_HEADER) {
            Err(ApiError::oauth(
                codes::INVALID_DPOP_PROOF,
                "send one DPoP header, not several",
            ))
        } else {
            Ok(None)
        };
    };
    proof
        .to_str()
        .map(Some)
        .map_err(|_| ApiError::oauth(codes::INVALID_DPOP_PROOF, "the DPoP header is not text"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "1.1.1.1, 2.2.2.2".parse().unwrap());
        assert_eq!(client_address(proxy, &headers, &[]), proxy);
        assert_eq!(
            client_address(proxy, &headers, &[proxy]),
            "2.2.2.2".parse::<IpAddr>().unwrap()
        );
        let two: IpAddr = "2.2.2.2".parse().unwrap();
        assert_eq!(
            client_address(proxy, &headers, &[proxy, two]),
            "1.1.1.1".parse::<IpAddr>().unwrap()
        );
    }
}
