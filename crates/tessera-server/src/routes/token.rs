//! `POST /oauth2/token` (RFC 6749 §3.2): answers and errors exactly as §5.1 and §5.2
//! describe them, always with `Cache-Control: no-store`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Serialize;
use tessera_core::{Audience, GrantType, Scopes, Timestamp};
use tessera_proto::error as codes;
use tessera_proto::token_type::{ACCESS_TOKEN_TYPE, SESSION_TOKEN_TYPE};
use tessera_store::Client;

use crate::http::error::ApiError;
use crate::http::extract::{ClientInfo, OAuthForm};
use crate::routes::login::throttled;
use crate::routes::users::parse_credentials;
use crate::services::accounts::LoginError;
use crate::services::clients::{ClientAuthError, PresentedClient};
use crate::services::refresh::RefreshError;
use crate::services::tokens::{IssueError, IssuedToken, Subject, TokenRequest};
use crate::state::AppState;

/// RFC 6749 §5.2 error codes, with RFC 8707's `invalid_target`.
pub(crate) fn oauth_error(code: &'static str, description: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, description.into())
}

fn invalid_client() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        codes::INVALID_CLIENT,
        "client authentication failed",
    )
    .challenge(r#"Basic realm="tessera", charset="UTF-8""#)
}

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    /// RFC 8693 §2.2.1, for token exchange.
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_token_type: Option<&'static str>,
    token_type: &'static str,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    scope: String,
}

pub async fn token(
    State(state): State<AppState>,
    client_info: ClientInfo,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Response {
    let mut response = match grant(&state, &client_info, &headers, &params).await {
        Ok(ok) => Json(ok).into_response(),
        Err(error) => error.into_response(),
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

async fn grant(
    state: &AppState,
    client_info: &ClientInfo,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<TokenResponse, ApiError> {
    let param = |name: &str| params.get(name).map(String::as_str);
    let grant_type = param("grant_type")
        .ok_or_else(|| oauth_error(codes::INVALID_REQUEST, "grant_type is missing"))?;
    let client = authenticate(state, headers, params).await?;
    let grant = GrantType::parse(grant_type).ok_or_else(|| {
        oauth_error(
            codes::UNSUPPORTED_GRANT_TYPE,
            format!("unsupported grant_type {grant_type:?}"),
        )
    })?;
    if !client.grants.contains(&grant) {
        return Err(oauth_error(
            codes::UNAUTHORIZED_CLIENT,
            format!("this client may not use the {} grant", grant.as_str()),
        ));
    }
    let mut issued_token_type = None;
    let (issued, scopes, refresh_token) = match grant {
        GrantType::ClientCredentials => {
            let scopes =
                requested_scopes(&client.scopes, client.scopes.defaults(), param("scope"))?;
            let audience = requested_audience(state, &client, &scopes, params)?;
            let issued = issue(
                state,
                &TokenRequest {
                    client: &client,
                    subject: Subject::Client,
                    audience: audience.as_ref(),
                    scopes: &scopes,
                },
            )
            .await?;
            (issued, scopes, None)
        }
        GrantType::Password => {
            let scopes =
                requested_scopes(&client.scopes, client.scopes.defaults(), param("scope"))?;
            let audience = requested_audience(state, &client, &scopes, params)?;
            let user = password_user(state, client_info, params).await?;
            // A client allowed to refresh gets a family; its id is the tokens' sid.
            let (refresh_token, sid) = if client.grants.contains(&GrantType::RefreshToken) {
                let (token, family) = state
                    .refresh
                    .start(&client, &user, &scopes, audience.as_ref(), None)
                    .await
                    .map_err(refresh_error)?;
                state.presence.observe(family, user.id, Timestamp::now());
                (Some(token.expose()), Some(family))
            } else {
                (None, None)
            };
            let issued = issue(
                state,
                &TokenRequest {
                    client: &client,
                    subject: Subject::User {
                        user: &user,
                        session: sid,
                    },
                    audience: audience.as_ref(),
                    scopes: &scopes,
                },
            )
            .await?;
            (issued, scopes, refresh_token)
        }
        GrantType::RefreshToken => {
            let presented = param("refresh_token")
                .ok_or_else(|| oauth_error(codes::INVALID_REQUEST, "refresh_token is missing"))?;
            // RFC 6749 §6: a refresh may narrow the scope, never widen it; checked
            // before the token is spent.
            let family = match state.refresh.peek(&client, presented).await {
                Ok(family) => family,
                Err(RefreshError::Leaked(family)) => {
                    state.presence.forget(&[family]).await;
                    return Err(refresh_error(RefreshError::Leaked(family)));
                }
                Err(error) => return Err(refresh_error(error)),
            };
            // Absent, it is the scope of the grant, as first asked for (§6).
            let scopes = requested_scopes(&family.scopes, family.scopes.clone(), param("scope"))?;
            let (family, next) = state
                .refresh
                .rotate(&client, presented)
                .await
                .map_err(refresh_error)?;
            state
                .presence
                .observe(family.id, family.user.id, Timestamp::now());
            let issued = issue(
                state,
                &TokenRequest {
                    client: &client,
                    subject: Subject::User {
                        user: &family.user,
                        session: Some(family.id),
                    },
                    audience: family.audience.as_ref(),
                    scopes: &scopes,
                },
            )
            .await?;
            (issued, scopes, Some(next.expose()))
        }
        GrantType::TokenExchange => {
            let scopes =
                requested_scopes(&client.scopes, client.scopes.defaults(), param("scope"))?;
            let audience = requested_audience(state, &client, &scopes, params)?;
            let session = exchanged_session(state, params).await?;
            let issued = issue(
                state,
                &TokenRequest {
                    client: &client,
                    subject: Subject::User {
                        user: session.user(),
                        session: Some(*session.id()),
                    },
                    audience: audience.as_ref(),
                    scopes: &scopes,
                },
            )
            .await?;
            issued_token_type = Some(ACCESS_TOKEN_TYPE);
            (issued, scopes, None)
        }
    };
    metrics::counter!("tessera_token_requests_total", "outcome" => "issued").increment(1);
    Ok(TokenResponse {
        access_token: issued.access_token,
        issued_token_type,
        token_type: tessera_proto::token_type::BEARER,
        expires_in: issued.expires_in,
        refresh_token,
        scope: scopes.to_string(),
    })
}

// RFC 8693 token types: what a token exchange gives (`ACCESS_TOKEN_TYPE`), and
// the tessera session it takes (`SESSION_TOKEN_TYPE`: a browser session's cookie
// value, `tss_…`), from `tessera_proto::token_type`.

/// The live browser session a token exchange presents as its subject token. The
/// access token issued for it carries the session's id as `sid`, so logging out,
/// deleting the session or disabling the user revokes it at every verifier.
async fn exchanged_session(
    state: &AppState,
    params: &HashMap<String, String>,
) -> Result<std::sync::Arc<crate::services::sessions::ActiveSession>, ApiError> {
    let (Some(token), Some(token_type)) = (
        params.get("subject_token"),
        params.get("subject_token_type"),
    ) else {
        return Err(oauth_error(
            codes::INVALID_REQUEST,
            "token exchange needs subject_token and subject_token_type",
        ));
    };
    if token_type != SESSION_TOKEN_TYPE {
        return Err(oauth_error(
            codes::INVALID_REQUEST,
            format!("subject_token_type must be {SESSION_TOKEN_TYPE}"),
        ));
    }
    if params
        .get("requested_token_type")
        .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
    {
        return Err(oauth_error(
            codes::INVALID_REQUEST,
            format!("only {ACCESS_TOKEN_TYPE} can be requested"),
        ));
    }
    let secret = tessera_core::SessionSecret::parse(token)
        .ok_or_else(|| oauth_error(codes::INVALID_GRANT, "the subject token is not a session"))?;
    state
        .sessions
        .authenticate(&secret)
        .await?
        .ok_or_else(|| oauth_error(codes::INVALID_GRANT, "the session has ended or expired"))
}

/// The user of a password grant: credentials checked, throttled like a login.
async fn password_user(
    state: &AppState,
    client_info: &ClientInfo,
    params: &HashMap<String, String>,
) -> Result<tessera_store::User, ApiError> {
    let (Some(username), Some(password)) = (params.get("username"), params.get("password")) else {
        return Err(oauth_error(
            codes::INVALID_REQUEST,
            "the password grant needs username and password",
        ));
    };
    let (username, password) = parse_credentials(username, password.clone())
        .map_err(|e| oauth_error(codes::INVALID_REQUEST, e.description().to_owned()))?;
    state
        .throttle
        .login(&username, client_info.address)
        .await
        .map_err(throttled)?;
    match state.accounts.check_password(&username, password).await {
        Ok(user) => Ok(user),
        Err(LoginError::InvalidCredentials) => Err(oauth_error(
            codes::INVALID_GRANT,
            "invalid username or password",
        )),
        Err(LoginError::Disabled) => Err(oauth_error(
            codes::INVALID_GRANT,
            "this account is disabled",
        )),
        Err(LoginError::Hash(e)) => Err(e.into()),
        Err(LoginError::Store(e)) => Err(e.into()),
    }
}

fn refresh_error(error: RefreshError) -> ApiError {
    match error {
        RefreshError::Store(e) => e.into(),
        other => oauth_error(codes::INVALID_GRANT, other.to_string()),
    }
}

/// The client a request to an OAuth endpoint comes from, authenticated; 401
/// `invalid_client` otherwise.
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<Client, ApiError> {
    let presented = presented_client(headers, params)?;
    match state.clients.authenticate(&presented).await {
        Ok(client) => Ok(client),
        Err(ClientAuthError::Failed) => {
            metrics::counter!("tessera_client_auth_failures_total").increment(1);
            Err(invalid_client())
        }
        Err(ClientAuthError::Store(e)) => Err(e.into()),
    }
}

async fn issue(state: &AppState, request: &TokenRequest<'_>) -> Result<IssuedToken, ApiError> {
    state.tokens.issue(request).await.map_err(|error| {
        tracing::error!(%error, "could not issue a token");
        match error {
            IssueError::Store(e) => ApiError::store(e),
            IssueError::NoKey(_) | IssueError::Sign => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                codes::TEMPORARILY_UNAVAILABLE,
                "no signing key is available; try again shortly",
            ),
        }
    })
}

/// The client's credentials from HTTP Basic (RFC 6749 §2.3.1: each part form-encoded)
/// or from the body; using both is refused.
fn presented_client(
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<PresentedClient, ApiError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .map(|value| parse_basic(value).ok_or_else(invalid_client))
        .transpose()?;
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    match basic {
        Some(basic) => {
            if body_secret.is_some() {
                return Err(oauth_error(
                    codes::INVALID_REQUEST,
                    "use one client authentication method, not Basic and client_secret together",
                ));
            }
            if body_id.is_some_and(|id| *id != basic.id) {
                return Err(oauth_error(
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
            None => Err(invalid_client()),
        },
    }
}

fn parse_basic(value: &HeaderValue) -> Option<PresentedClient> {
    let value = value.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some(PresentedClient {
        id: form_decode(id)?,
        secret: Some(form_decode(secret)?),
    })
}

/// Undoes `application/x-www-form-urlencoded` on one value (`+` is a space).
fn form_decode(part: &str) -> Option<String> {
    percent_encoding::percent_decode_str(&part.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The scopes to grant: those asked for, which must all be in `allowed` (the
/// client's, or on refresh the grant's), or `default` when the request names none.
/// An empty `scope` asks for no scope at all.
fn requested_scopes(
    allowed: &Scopes,
    default: Scopes,
    asked: Option<&str>,
) -> Result<Scopes, ApiError> {
    let Some(asked) = asked else {
        return Ok(default);
    };
    let asked =
        Scopes::parse(asked).map_err(|e| oauth_error(codes::INVALID_SCOPE, e.to_string()))?;
    if !asked.is_subset(allowed) {
        return Err(oauth_error(
            codes::INVALID_SCOPE,
            format!(
                "the scope may include only: {}",
                if allowed.is_empty() {
                    "no scopes".to_owned()
                } else {
                    allowed.to_string()
                }
            ),
        ));
    }
    Ok(asked)
}

/// The audience to grant (`None`: tessera itself, the issuer). Asked for with
/// `audience` (RFC 8693) or `resource` (RFC 8707), it must be one of the client's
/// audiences or the issuer; by default it is the client's first audience, or the
/// issuer for a client without audiences. tessera's own scopes go only into
/// tokens for tessera: a request for them defaults to the issuer, and naming
/// another audience with them is refused, so a token a resource service receives
/// can never act on tessera.
fn requested_audience(
    state: &AppState,
    client: &Client,
    scopes: &Scopes,
    params: &HashMap<String, String>,
) -> Result<Option<Audience>, ApiError> {
    let asked = match (params.get("audience"), params.get("resource")) {
        (Some(_), Some(_)) => {
            return Err(oauth_error(
                codes::INVALID_REQUEST,
                "give audience or resource, not both",
            ));
        }
        (Some(a), None) | (None, Some(a)) => a.as_str(),
        (None, None) if scopes.any_privileged() => return Ok(None),
        (None, None) => return Ok(client.audiences.first().cloned()),
    };
    if asked == state.tokens.issuer() {
        return Ok(None);
    }
    if scopes.any_privileged() {
        return Err(oauth_error(
            codes::INVALID_TARGET,
            format!(
                "tessera's own scopes ({}) are granted only in tokens for tessera itself; \
                 ask for them without an audience, or for {}",
                tessera_proto::scope::PRIVILEGED.join(", "),
                state.tokens.issuer()
            ),
        ));
    }
    client
        .audiences
        .iter()
        .find(|a| a.as_str() == asked)
        .cloned()
        .map(Some)
        .ok_or_else(|| {
            oauth_error(
                codes::INVALID_TARGET,
                format!("this client may not get tokens for the audience {asked:?}"),
            )
        })
}
