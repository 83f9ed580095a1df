//! `GET|POST /oauth2/userinfo` (OpenID Connect Core §5.3), with RFC 6750's errors
//! and challenges. The token comes in the `Authorization: Bearer` header, or
//! as `DPoP` with its proof when it is bound to a key (RFC 9449 §7).

use std::sync::Arc;

use axum::Json;
use axum::extract::{OriginalUri, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode};
use tessera_proto::error as codes;

use crate::http::error::ApiError;
use tessera_verify::{Scheme, VerifyError};

use crate::http::extract::{BEARER_SCOPE, presented, token_refused};
use crate::services::dpop::CHALLENGE_INSUFFICIENT_SCOPE;
use crate::services::userinfo::{UserInfoError, UserInfoService};

pub async fn userinfo(
    State(service): State<Arc<UserInfoService>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let presented = presented(&headers)?;
    let scheme = presented.scheme;
    match service
        .user_info(&presented, method.as_str(), uri.path())
        .await
    {
        Ok(info) => Ok(Json(info).into_response()),
        Err(UserInfoError::InvalidToken(why)) => Err(token_refused(
            VerifyError::Malformed(why),
            scheme,
            why.to_owned(),
        )),
        Err(UserInfoError::Binding(error)) => {
            let description = error.to_string();
            Err(token_refused(error, scheme, description))
        }
        Err(UserInfoError::InsufficientScope) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::INSUFFICIENT_SCOPE,
            "userinfo needs a token with the openid scope",
        )
        .challenge(match scheme {
            Scheme::Bearer => BEARER_SCOPE,
            Scheme::Dpop => CHALLENGE_INSUFFICIENT_SCOPE,
        })),
        Err(UserInfoError::OAuth(error)) => Err(error.into()),
    }
}
