//! Public documents: the JWKS and the authorization server metadata (RFC 8414).
//! Both may be cached and fetched from any origin; they hold nothing secret.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use tessera_core::GrantType;
use tessera_proto::metadata::auth_method::{CLIENT_SECRET_BASIC, CLIENT_SECRET_POST, NONE};
use tessera_proto::scope::oidc;
use tessera_proto::{Algorithm, ServerMetadata};

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

/// `GET /.well-known/oauth-authorization-server` (RFC 8414) and
/// `GET /.well-known/openid-configuration` (OpenID Connect Discovery 1.0): one
/// document, so that the two can never disagree.
pub async fn metadata(State(discovery): State<Arc<Discovery>>) -> Response {
    let issuer = discovery.issuer();
    let endpoint = |path: &str| Some(format!("{issuer}{path}"));
    let names = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    let with_public = [CLIENT_SECRET_BASIC, CLIENT_SECRET_POST, NONE];
    let body = ServerMetadata {
        issuer: issuer.to_owned(),
        jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        authorization_endpoint: endpoint("/oauth2/authorize"),
        token_endpoint: endpoint("/oauth2/token"),
        userinfo_endpoint: endpoint("/oauth2/userinfo"),
        end_session_endpoint: endpoint("/oauth2/logout"),
        pushed_authorization_request_endpoint: endpoint("/oauth2/par"),
        introspection_endpoint: endpoint("/oauth2/introspect"),
        revocation_endpoint: endpoint("/oauth2/revoke"),
        revocation_feed_endpoint: endpoint("/v1/revocations"),
        activity_endpoint: endpoint("/v1/activity"),
        scopes_supported: names(&[
            oidc::OPENID,
            oidc::PROFILE,
            oidc::EMAIL,
            oidc::OFFLINE_ACCESS,
        ]),
        // The code flow only: implicit and hybrid flows put tokens in the URL.
        response_types_supported: names(&["code"]),
        response_modes_supported: names(&["query"]),
        grant_types_supported: [
            GrantType::AuthorizationCode,
            GrantType::Password,
            GrantType::RefreshToken,
            GrantType::ClientCredentials,
            GrantType::TokenExchange,
        ]
        .iter()
        .map(|g| g.as_str().to_owned())
        .collect(),
        token_endpoint_auth_methods_supported: names(&with_public),
        introspection_endpoint_auth_methods_supported: names(&[
            CLIENT_SECRET_BASIC,
            CLIENT_SECRET_POST,
        ]),
        revocation_endpoint_auth_methods_supported: names(&with_public),
        access_token_signing_alg_values_supported: Algorithm::ALL
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect(),
        code_challenge_methods_supported: names(&[tessera_core::PKCE_S256]),
        authorization_response_iss_parameter_supported: Some(true),
        subject_types_supported: names(&["public"]),
        id_token_signing_alg_values_supported: Algorithm::ASYMMETRIC
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect(),
        claims_supported: names(&[
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "sid",
            "azp",
            "amr",
            "acr",
            "at_hash",
            "name",
            "preferred_username",
            "updated_at",
            "email",
            "email_verified",
        ]),
        prompt_values_supported: names(&["none", "login", "consent", "select_account"]),
        acr_values_supported: names(&tessera_core::ACR_VALUES),
        dpop_signing_alg_values_supported: crate::services::dpop::ALGORITHMS
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect(),
        claims_parameter_supported: Some(false),
        request_parameter_supported: Some(false),
        // By reference only through /oauth2/par (RFC 9126), not fetched from a URL.
        request_uri_parameter_supported: Some(false),
        require_pushed_authorization_requests: Some(false),
        backchannel_logout_supported: Some(true),
        backchannel_logout_session_supported: Some(true),
    };
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
