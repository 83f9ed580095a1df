//! `POST /oauth2/introspect` (RFC 7662) and `POST /oauth2/revoke` (RFC 7009): the
//! form parsed, `services::introspection` asked, the answer rendered.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use tessera_proto::token_type::{BEARER, DPOP, REFRESH_TOKEN};
use tessera_proto::{Introspection as Answer, OneOrMany};

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
fn render(issuer: &str, description: Option<Description>) -> Answer {
    match description {
        None => Answer::inactive(),
        Some(Description::Refresh(family)) => Answer {
            active: true,
            token_type: Some(REFRESH_TOKEN.to_owned()),
            client_id: Some(family.client_id.to_string()),
            sub: Some(family.user.id.to_string()),
            username: Some(family.user.username.as_str().to_owned()),
            scope: Some(family.scopes.to_string()),
            iat: Some(family.created_at.as_millis() / 1000),
            exp: Some(family.expires_at.as_millis() / 1000),
            sid: Some(family.id.as_str().to_owned()),
            iss: Some(issuer.to_owned()),
            ..Answer::default()
        },
        Some(Description::Access(claims)) => Answer {
            active: true,
            acr: claims.acr,
            amr: claims.amr,
            aud: Some(OneOrMany::from_list(claims.aud)),
            client_id: claims.client_id,
            exp: Some(claims.exp),
            iat: claims.iat,
            iss: Some(claims.iss),
            jti: claims.jti,
            nbf: claims.nbf,
            roles: claims.roles,
            scope: claims.scope,
            sid: claims.sid,
            sub: Some(claims.sub),
            token_type: Some(if claims.cnf.is_some() { DPOP } else { BEARER }.to_owned()),
            cnf: claims.cnf,
            username: None,
        },
    }
}
