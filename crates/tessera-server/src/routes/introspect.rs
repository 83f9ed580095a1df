//! `POST /oauth2/introspect` (RFC 7662) and `POST /oauth2/revoke` (RFC 7009): the
//! form parsed, `services::introspection` asked, the answer rendered.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use crate::http::error::ApiError;
use crate::http::extract::OAuthRequest;
use crate::services::introspection::{Description, Introspection};

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub async fn introspect(
    State(introspection): State<Arc<Introspection>>,
    request: Result<OAuthRequest, ApiError>,
) -> Response {
    let answer = async {
        let request = request?;
        let token = request.required("token")?;
        let description = introspection.introspect(&request.client, token).await?;
        Ok::<_, ApiError>(render(introspection.issuer(), description))
    };
    no_store(match answer.await {
        Ok(body) => Json(body).into_response(),
        Err(error) => error.into_response(),
    })
}

pub async fn revoke(
    State(introspection): State<Arc<Introspection>>,
    request: Result<OAuthRequest, ApiError>,
) -> Response {
    let answer = async {
        let request = request?;
        let token = request.required("token")?;
        introspection.revoke(&request.client, token).await?;
        Ok::<_, ApiError>(())
    };
    no_store(match answer.await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(error) => error.into_response(),
    })
}

/// The RFC 7662 answer: `{"active": false}` and nothing more for anything not live.
fn render(issuer: &str, description: Option<Description>) -> Value {
    match description {
        None => json!({"active": false}),
        Some(Description::Refresh(family)) => json!({
            "active": true,
            "token_type": "refresh_token",
            "client_id": family.client_id,
            "sub": family.user.id,
            "username": family.user.username.as_str(),
            "scope": family.scopes,
            "iat": family.created_at.as_millis() / 1000,
            "exp": family.expires_at.as_millis() / 1000,
            "sid": family.id,
            "iss": issuer,
        }),
        Some(Description::Access(claims)) => {
            let mut body = serde_json::to_value(&claims).unwrap_or_else(|_| json!({}));
            if let Some(object) = body.as_object_mut() {
                object.insert("active".into(), json!(true));
                object.insert("token_type".into(), json!("Bearer"));
                if let [single] = claims.aud.as_slice() {
                    object.insert("aud".into(), json!(single));
                }
            }
            body
        }
    }
}
