//! `/v1/account/passkeys`: a signed-in person's passkeys through the JSON API
//! (the account page's script uses the same). Adding one is a ceremony in two
//! requests, the first of which asks for the password (a passkey signs in on its
//! own, so an open session must not be enough to plant one); removing one is a
//! `DELETE`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use tessera_core::{Password, Timestamp};

use webauthn_rs::prelude::RegisterPublicKeyCredential;

use crate::http::error::ApiError;
use crate::http::extract::{
    ClientInfo, CookieSession, CsrfHeaderSession, CsrfProtectedSession, Input,
};
use crate::routes::login::{PasskeyChallenge, no_store, parse_ceremony};
use crate::services::passkeys::PasskeyCredential;
use crate::services::self_service::SelfService;

/// A passkey as the API shows it; never its public key or counter.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PasskeyView {
    /// The credential id, base64url: what `DELETE` takes.
    pub id: String,
    pub name: String,
    /// Whether the passkey may be copied to the person's other devices (a
    /// synced passkey, `amr` `swk`) or stays on one authenticator (`hwk`).
    pub synced: bool,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>)]
    pub last_used_at: Option<Timestamp>,
}

impl PasskeyView {
    pub fn of(passkey: &PasskeyCredential) -> Self {
        Self {
            id: URL_SAFE_NO_PAD.encode(&passkey.credential_id),
            name: passkey.name.clone(),
            synced: passkey.backup_eligible,
            created_at: passkey.created_at,
            last_used_at: passkey.last_used_at,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewPasskeyForm {
    /// What to call it ("Laptop", "Phone"): 1 to 64 characters.
    pub name: String,
    pub current_password: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasskeyRegistrationForm {
    /// The `ceremony` of `POST /v1/account/passkeys/options`.
    pub ceremony: String,
    /// `navigator.credentials.create`'s answer, in its JSON form.
    #[schema(value_type = Object)]
    pub credential: Box<RegisterPublicKeyCredential>,
}

/// `GET /v1/account/passkeys`: the caller's passkeys, oldest first.
pub async fn list(
    State(service): State<Arc<SelfService>>,
    CookieSession(session): CookieSession,
) -> Result<Response, ApiError> {
    let passkeys = service.passkeys(&session).await?;
    let views: Vec<PasskeyView> = passkeys.iter().map(PasskeyView::of).collect();
    Ok(Json(serde_json::json!({ "passkeys": views })).into_response())
}

/// `POST /v1/account/passkeys/options`: the password again, and the options for
/// `navigator.credentials.create`.
pub async fn options(
    State(service): State<Arc<SelfService>>,
    client: ClientInfo,
    CsrfHeaderSession(session): CsrfHeaderSession,
    Input(input): Input<NewPasskeyForm>,
) -> Result<Response, ApiError> {
    let password = Password::parse(input.current_password).map_err(|_| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "invalid_credentials",
            "the current password is not right",
        )
    })?;
    let (ceremony, options) = service
        .begin_passkey(&session, &input.name, password, client.address)
        .await?;
    Ok(no_store(Json(PasskeyChallenge {
        ceremony: ceremony.expose(),
        options,
    })))
}

/// `POST /v1/account/passkeys`: the authenticator's answer; keeps the passkey.
pub async fn add(
    State(service): State<Arc<SelfService>>,
    client: ClientInfo,
    CsrfHeaderSession(session): CsrfHeaderSession,
    Input(input): Input<PasskeyRegistrationForm>,
) -> Result<Response, ApiError> {
    let pending = parse_ceremony(&input.ceremony)?;
    let added = service
        .add_passkey(&session, &pending, &input.credential, client.address)
        .await?;
    Ok((StatusCode::CREATED, Json(PasskeyView::of(&added))).into_response())
}

/// `DELETE /v1/account/passkeys/{id}`: removes one.
pub async fn remove(
    State(service): State<Arc<SelfService>>,
    Path(id): Path<String>,
    client: ClientInfo,
    CsrfProtectedSession(session): CsrfProtectedSession,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found("you have no passkey with this id");
    let id = URL_SAFE_NO_PAD
        .decode(id.as_bytes())
        .map_err(|_| not_found())?;
    if !service
        .remove_passkey(&session, &id, client.address)
        .await?
    {
        return Err(not_found());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
