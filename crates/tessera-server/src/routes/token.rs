//! `POST /oauth2/token` (RFC 6749 §3.2): answers and errors exactly as §5.1 and §5.2
//! describe them, always with `Cache-Control: no-store`. The form is parsed into a
//! [`GrantRequest`] here; `services::grants` decides it. A missing or unknown
//! grant type is refused at once; a refusal of the grant's parameters reaches only
//! a client that is authenticated and allowed the grant type (`Grants::grant`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, header};
use tessera_core::{GrantType, Scopes, SessionSecret};
use tessera_proto::TokenResponse;
use tessera_proto::error as codes;
use tessera_proto::token_type::{
    ACCESS_TOKEN_TYPE, BEARER, DPOP, DPOP_NONCE_HEADER, SESSION_TOKEN_TYPE,
};

use crate::http::error::ApiError;
use crate::http::extract::{ClientInfo, OAuthRequest, credentials, dpop_proof};
use crate::services::codes::CodeExchange;
use crate::services::grants::{GrantRequest, Granted, Grants};
use crate::services::oauth::OAuthError;

impl From<Granted> for TokenResponse {
    fn from(granted: Granted) -> Self {
        Self {
            access_token: granted.access_token,
            issued_token_type: granted.exchanged.then(|| ACCESS_TOKEN_TYPE.to_owned()),
            token_type: if granted.bound { DPOP } else { BEARER }.to_owned(),
            expires_in: granted.expires_in,
            refresh_token: granted.refresh_token,
            id_token: granted.id_token,
            scope: granted.scopes.to_string(),
        }
    }
}

pub async fn token(
    State(grants): State<Arc<Grants>>,
    caller: ClientInfo,
    headers: HeaderMap,
    request: Result<OAuthRequest, ApiError>,
) -> Response {
    let answer = async {
        let request = request?;
        let grant_type = grant_type(&request)?;
        let grant = grant_request(grant_type, &request);
        let proof = dpop_proof(&headers)?;
        let granted = grants
            .grant(&request.client, grant_type, grant, caller.address, proof)
            .await?;
        Ok::<_, ApiError>(TokenResponse::from(granted))
    };
    let mut response = match answer.await {
        Ok(ok) => Json(ok).into_response(),
        Err(error) => error.into_response(),
    };
    let h = response.headers_mut();
    // Every answer carries the current nonce when nonces are on (RFC 9449 §8.2),
    // so a client always has a fresh one for its next proof.
    if let Some(nonce) = grants.dpop_nonce()
        && let Ok(value) = HeaderValue::from_str(&nonce)
    {
        h.insert(DPOP_NONCE_HEADER, value);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn grant_type(request: &OAuthRequest) -> Result<GrantType, ApiError> {
    let grant_type = request.required("grant_type")?;
    GrantType::parse(grant_type).ok_or_else(|| {
        ApiError::oauth(
            codes::UNSUPPORTED_GRANT_TYPE,
            format!("unsupported grant_type {grant_type:?}"),
        )
    })
}

fn grant_request(grant: GrantType, request: &OAuthRequest) -> Result<GrantRequest, OAuthError> {
    let scope = request
        .param("scope")
        .map(Scopes::parse)
        .transpose()
        .map_err(|e| OAuthError::refused(codes::INVALID_SCOPE, e.to_string()))?;
    Ok(match grant {
        GrantType::ClientCredentials => GrantRequest::ClientCredentials {
            scope,
            target: target(request)?,
        },
        GrantType::Password => {
            let (Some(username), Some(password)) =
                (request.param("username"), request.param("password"))
            else {
                return Err(OAuthError::invalid_request(
                    "the password grant needs username and password",
                ));
            };
            let (username, password) = credentials(username, password.to_owned())
                .map_err(|e| OAuthError::invalid_request(e.description().to_owned()))?;
            GrantRequest::Password {
                username,
                password,
                scope,
                target: target(request)?,
            }
        }
        GrantType::RefreshToken => GrantRequest::RefreshToken {
            refresh_token: request
                .param("refresh_token")
                .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?
                .to_owned(),
            scope,
        },
        GrantType::AuthorizationCode => GrantRequest::AuthorizationCode(CodeExchange {
            code: request
                .param("code")
                .ok_or_else(|| OAuthError::invalid_request("code is missing"))?
                .to_owned(),
            redirect_uri: request.param("redirect_uri").map(str::to_owned),
            code_verifier: request.param("code_verifier").map(str::to_owned),
        }),
        GrantType::TokenExchange => GrantRequest::TokenExchange {
            session: exchanged_session(request)?,
            scope,
            target: target(request)?,
        },
    })
}

/// The audience asked for, with `audience` (RFC 8693) or `resource` (RFC 8707).
fn target(request: &OAuthRequest) -> Result<Option<String>, OAuthError> {
    match (request.param("audience"), request.param("resource")) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "give audience or resource, not both",
        )),
        (Some(a), None) | (None, Some(a)) => Ok(Some(a.to_owned())),
        (None, None) => Ok(None),
    }
}

/// The browser session a token exchange presents as its subject token.
fn exchanged_session(request: &OAuthRequest) -> Result<SessionSecret, OAuthError> {
    let (Some(token), Some(token_type)) = (
        request.param("subject_token"),
        request.param("subject_token_type"),
    ) else {
        return Err(OAuthError::invalid_request(
            "token exchange needs subject_token and subject_token_type",
        ));
    };
    if token_type != SESSION_TOKEN_TYPE {
        return Err(OAuthError::invalid_request(format!(
            "subject_token_type must be {SESSION_TOKEN_TYPE}"
        )));
    }
    if request
        .param("requested_token_type")
        .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
    {
        return Err(OAuthError::invalid_request(format!(
            "only {ACCESS_TOKEN_TYPE} can be requested"
        )));
    }
    SessionSecret::parse(token)
        .ok_or_else(|| OAuthError::invalid_grant("the subject token is not a session"))
}
