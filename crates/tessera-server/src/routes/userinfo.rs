//! `GET|POST /oauth2/userinfo` (OpenID Connect Core §5.3), with RFC 6750's errors
//! and challenges. The token comes in the `Authorization: Bearer` header.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use tessera_proto::error as codes;

use crate::http::error::ApiError;
use crate::http::extract::{BEARER_INVALID, BEARER_SCOPE, bearer};
use crate::services::userinfo::{UserInfoError, UserInfoService};

pub async fn userinfo(
    State(service): State<Arc<UserInfoService>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = bearer(&headers)?;
    match service.user_info(token).await {
        Ok(info) => Ok(Json(info).into_response()),
        Err(UserInfoError::InvalidToken(why)) => {
            Err(
                ApiError::new(StatusCode::UNAUTHORIZED, codes::INVALID_TOKEN, why)
                    .challenge(BEARER_INVALID),
            )
        }
        Err(UserInfoError::InsufficientScope) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::INSUFFICIENT_SCOPE,
            "userinfo needs a token with the openid scope",
        )
        .challenge(BEARER_SCOPE)),
        Err(UserInfoError::OAuth(error)) => Err(error.into()),
    }
}
