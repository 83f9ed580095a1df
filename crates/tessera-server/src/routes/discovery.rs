//! Public documents: the JWKS and the authorization server metadata (RFC 8414).
//! Both may be cached and fetched from any origin; they hold nothing secret.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::json;
use tessera_core::GrantType;

use crate::services::discovery::Discovery;

fn public_cache(max_age: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("public, max-age={max_age}"))
        .unwrap_or(HeaderValue::from_static("public, max-age=60"))
}

/// `GET /.well-known/jwks.json`: the published public keys, with `max-age` and a
/// strong `ETag` (answering `If-None-Match` with 304).
pub async fn jwks(State(discovery): State<Arc<Discovery>>, headers: HeaderMap) -> Response {
    let keys = discovery.keys();
    let etag = HeaderValue::from_str(&keys.jwks_etag).ok();
    let cache = public_cache(discovery.max_age().as_secs());
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|t| t.trim() == keys.jwks_etag || t.trim() == "*")
        });
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "application/jwk-set+json")],
            keys.jwks.clone(),
        )
            .into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, cache);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    if let Some(etag) = etag {
        h.insert(header::ETAG, etag);
    }
    response
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414).
pub async fn metadata(State(discovery): State<Arc<Discovery>>) -> Response {
    let issuer = discovery.issuer();
    let body = json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        // tessera's extension: the revocation feed tessera-verify follows.
        "revocation_feed_endpoint": format!("{issuer}/v1/revocations"),
        // tessera's extension: where resource services report sessions they saw.
        "activity_endpoint": format!("{issuer}/v1/activity"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "grant_types_supported": [
            GrantType::Password.as_str(),
            GrantType::RefreshToken.as_str(),
            GrantType::ClientCredentials.as_str(),
            GrantType::TokenExchange.as_str(),
        ],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "response_types_supported": [],
        "access_token_signing_alg_values_supported": tessera_proto::Algorithm::ALL,
    });
    let mut response = axum::Json(body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        public_cache(discovery.max_age().as_secs()),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}
