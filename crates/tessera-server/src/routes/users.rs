use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use tessera_core::{Password, Roles, Username};

use crate::http::error::ApiError;
use crate::http::extract::{ClientInfo, Input, SameOrigin};
use crate::services::accounts::RegisterError;
use crate::state::AppState;
use crate::views::UserView;

#[derive(Deserialize)]
pub struct Registration {
    username: String,
    password: String,
}

pub fn parse_credentials(
    username: &str,
    password: String,
) -> Result<(Username, Password), ApiError> {
    let username = Username::parse(username)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_username", e.to_string()))?;
    let password = Password::parse(password)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_password", e.to_string()))?;
    Ok((username, password))
}

/// `POST /v1/users`: open registration, unless configuration closed it.
pub async fn register(
    State(state): State<AppState>,
    _: SameOrigin,
    client: ClientInfo,
    Input(input): Input<Registration>,
) -> Result<impl IntoResponse, ApiError> {
    if !state.registration_open {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "registration_closed",
            "registration is closed on this server; ask an administrator for an account",
        ));
    }
    let (username, password) = parse_credentials(&input.username, input.password)?;
    state
        .throttle
        .address(client.address)
        .await
        .map_err(crate::routes::login::throttled)?;
    let user = state
        .accounts
        .register(username, password, Roles::default())
        .await
        .map_err(|e| match e {
            RegisterError::UsernameTaken => ApiError::new(
                StatusCode::CONFLICT,
                "username_taken",
                "an account with this username already exists",
            ),
            // 409 like a taken name: the name is unavailable, whoever holds it (which
            // account it resembles is not told).
            RegisterError::LookAlike => ApiError::new(
                StatusCode::CONFLICT,
                "username_look_alike",
                "an account with a username that looks the same already exists \
                 (Unicode confusables); choose another",
            ),
            RegisterError::MixedScripts(e) => ApiError::new(
                StatusCode::CONFLICT,
                "username_mixed_scripts",
                e.to_string(),
            ),
            RegisterError::Hash(e) => e.into(),
            RegisterError::Store(e) => e.into(),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "user": UserView::from(&user) })),
    ))
}
