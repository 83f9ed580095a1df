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
use tessera_core::{Audience, GrantType, Scopes};
use tessera_store::Client;

use crate::accounts::LoginError;
use crate::clients::{ClientAuthError, PresentedClient};
use crate::error::ApiError;
use crate::http::extract::{ClientInfo, OAuthForm};
use crate::routes::login::throttled;
use crate::routes::users::parse_credentials;
use crate::state::AppState;
use crate::tokens::{IssueError, IssuedToken, Subject, TokenRequest};

/// RFC 6749 §5.2 error codes, with RFC 8707's `invalid_target`.
fn oauth_error(code: &'static str, description: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, description.into())
}

fn invalid_client() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "client authentication failed",
    )
    .challenge(r#"Basic realm="tessera", charset="UTF-8""#)
}

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
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
        .ok_or_else(|| oauth_error("invalid_request", "grant_type is missing"))?;
    let presented = presented_client(headers, params)?;
    let client = match state.clients.authenticate(&presented).await {
        Ok(client) => client,
        Err(ClientAuthError::Failed) => {
            metrics::counter!("tessera_token_requests_total", "outcome" => "invalid_client")
                .increment(1);
            return Err(invalid_client());
        }
        Err(ClientAuthError::Store(e)) => return Err(e.into()),
    };
    let grant = GrantType::parse(grant_type).ok_or_else(|| {
        oauth_error(
            "unsupported_grant_type",
            format!("unsupported grant_type {grant_type:?}"),
        )
    })?;
    if !client.grants.contains(&grant) {
        return Err(oauth_error(
            "unauthorized_client",
            format!("this client may not use the {} grant", grant.as_str()),
        ));
    }
    let scopes = requested_scopes(&client, param("scope"))?;
    let audience = requested_audience(&client, param("audience"), param("resource"))?;
    let issued = match grant {
        GrantType::ClientCredentials => issue(
            state,
            &TokenRequest {
                client: &client,
                subject: Subject::Client,
                audience: audience.as_ref(),
                scopes: &scopes,
            },
        )?,
        GrantType::Password => {
            let (Some(username), Some(password)) = (param("username"), param("password")) else {
                return Err(oauth_error(
                    "invalid_request",
                    "the password grant needs username and password",
                ));
            };
            let (username, password) = parse_credentials(username, password.to_owned())
                .map_err(|e| oauth_error("invalid_request", e.description().to_owned()))?;
            state
                .throttle
                .login(&username, client_info.address)
                .map_err(throttled)?;
            let user = match state.accounts.check_password(&username, password).await {
                Ok(user) => user,
                Err(LoginError::InvalidCredentials) => {
                    return Err(oauth_error("invalid_grant", "invalid username or password"));
                }
                Err(LoginError::Disabled) => {
                    return Err(oauth_error("invalid_grant", "this account is disabled"));
                }
                Err(LoginError::Hash(e)) => return Err(e.into()),
                Err(LoginError::Store(e)) => return Err(e.into()),
            };
            issue(
                state,
                &TokenRequest {
                    client: &client,
                    subject: Subject::User {
                        user: &user,
                        session: None,
                    },
                    audience: audience.as_ref(),
                    scopes: &scopes,
                },
            )?
        }
        GrantType::RefreshToken | GrantType::TokenExchange => {
            return Err(oauth_error(
                "unsupported_grant_type",
                format!("the {} grant is not available yet", grant.as_str()),
            ));
        }
    };
    metrics::counter!("tessera_token_requests_total", "outcome" => "issued").increment(1);
    Ok(TokenResponse {
        access_token: issued.access_token,
        token_type: "Bearer",
        expires_in: issued.expires_in,
        scope: scopes.to_string(),
    })
}

fn issue(state: &AppState, request: &TokenRequest<'_>) -> Result<IssuedToken, ApiError> {
    state.tokens.issue(request).map_err(|error| {
        tracing::error!(%error, "could not issue a token");
        match error {
            IssueError::NoKey(_) | IssueError::Sign => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
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
                    "invalid_request",
                    "use one client authentication method, not Basic and client_secret together",
                ));
            }
            if body_id.is_some_and(|id| *id != basic.id) {
                return Err(oauth_error(
                    "invalid_request",
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

/// The scopes to grant: those asked for, which must all be allowed to the client, or
/// by default all the client's.
fn requested_scopes(client: &Client, asked: Option<&str>) -> Result<Scopes, ApiError> {
    let Some(asked) = asked else {
        return Ok(client.scopes.clone());
    };
    let asked = Scopes::parse(asked).map_err(|e| oauth_error("invalid_scope", e.to_string()))?;
    if !asked.is_subset(&client.scopes) {
        return Err(oauth_error(
            "invalid_scope",
            format!(
                "this client may ask only for: {}",
                if client.scopes.is_empty() {
                    "no scopes".to_owned()
                } else {
                    client.scopes.to_string()
                }
            ),
        ));
    }
    Ok(asked)
}

/// The audience to grant: the one asked for (`audience`, RFC 8693, or `resource`,
/// RFC 8707), which must be one of the client's, or by default the client's first.
/// A client without audiences gets tokens for tessera itself (the issuer).
fn requested_audience(
    client: &Client,
    audience: Option<&str>,
    resource: Option<&str>,
) -> Result<Option<Audience>, ApiError> {
    let asked = match (audience, resource) {
        (Some(_), Some(_)) => {
            return Err(oauth_error(
                "invalid_request",
                "give audience or resource, not both",
            ));
        }
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return Ok(client.audiences.first().cloned()),
    };
    client
        .audiences
        .iter()
        .find(|a| a.as_str() == asked)
        .cloned()
        .map(Some)
        .ok_or_else(|| {
            oauth_error(
                "invalid_target",
                format!("this client may not get tokens for the audience {asked:?}"),
            )
        })
}
