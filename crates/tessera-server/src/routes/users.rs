use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

use crate::http::error::ApiError;
use crate::http::extract::{ClientInfo, Input, SameOrigin, credentials};
use crate::services::accounts::RegisterError;
use crate::services::sign_in::{SignIn, SignUpError};
use crate::views::UserView;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Registration {
    username: String,
    password: String,
}

/// `POST /v1/users`: open registration, unless configuration closed it.
pub async fn register(
    State(sign_in): State<Arc<SignIn>>,
    _: SameOrigin,
    client: ClientInfo,
    Input(input): Input<Registration>,
) -> Result<impl IntoResponse, ApiError> {
    let (username, password) = credentials(&input.username, input.password)?;
    let user = sign_in
        .sign_up(username, password, client.address)
        .await
        .map_err(sign_up_error)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "user": UserView::from(&user) })),
    ))
}

/// A refused registration as the API (and the `/register` page) says it.
pub(crate) fn sign_up_error(error: SignUpError) -> ApiError {
    match error {
        SignUpError::Closed => ApiError::new(
            StatusCode::FORBIDDEN,
            "registration_closed",
            "registration is closed on this server; ask an administrator for an account",
        ),
        SignUpError::Throttled(refusal) => refusal.into(),
        SignUpError::Register(RegisterError::UsernameTaken) => ApiError::new(
            StatusCode::CONFLICT,
            "username_taken",
            "an account with this username already exists",
        ),
        // 409 like a taken name: the name is unavailable, whoever holds it (which
        // account it resembles is not told).
        SignUpError::Register(RegisterError::LookAlike) => ApiError::new(
            StatusCode::CONFLICT,
            "username_look_alike",
            "an account with a username that looks the same already exists \
             (Unicode confusables); choose another",
        ),
        SignUpError::Register(RegisterError::MixedScripts(e)) => ApiError::new(
            StatusCode::CONFLICT,
            "username_mixed_scripts",
            e.to_string(),
        ),
        SignUpError::Register(RegisterError::Hash(e)) => e.into(),
        SignUpError::Register(RegisterError::Store(e)) => e.into(),
    }
}
