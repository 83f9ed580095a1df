//! `POST /oauth2/introspect` (RFC 7662) and `POST /oauth2/revoke` (RFC 7009).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use tessera_core::{AccessTokenSecret, ClientId, RefreshTokenSecret, Timestamp, UserId};
use tessera_proto::error as codes;
use tessera_proto::token_type::{
    BEARER, OPAQUE_ACCESS_TOKEN_PREFIX, REFRESH_TOKEN, REFRESH_TOKEN_PREFIX,
};
use tessera_proto::{Introspection, OneOrMany};
use tessera_store::{EndReason, Revoked};

use crate::http::error::ApiError;
use crate::http::extract::OAuthForm;
use crate::routes::token::{authenticate, oauth_error};
use crate::state::AppState;

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Answers `{"active": false}` for anything forged, expired, revoked or unknown,
/// with no further detail (RFC 7662 §2.2). Only confidential clients may ask, and
/// only about their own tokens unless they have the `introspect` scope; refresh
/// tokens are described only to the client they were issued to.
pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Response {
    no_store(match introspection(&state, &headers, &params).await {
        Ok(body) => Json(body).into_response(),
        Err(error) => error.into_response(),
    })
}

async fn introspection(
    state: &AppState,
    headers: &HeaderMap,
    params: &std::collections::HashMap<String, String>,
) -> Result<Introspection, ApiError> {
    let client = authenticate(state, headers, params).await?;
    if client.secret_hash.is_none() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::UNAUTHORIZED_CLIENT,
            "introspection is for confidential clients",
        ));
    }
    let token = params
        .get("token")
        .ok_or_else(|| oauth_error(codes::INVALID_REQUEST, "token is missing"))?;
    metrics::counter!("tessera_introspections_total").increment(1);
    if !state.own_tokens.is_fresh() {
        return Err(ApiError::stale());
    }
    let (issued_to, answer) = describe_token(state, &client, token).await?;
    // Other clients' tokens are described only to a client trusted with that
    // (a resource service checking the tokens it is sent); anything else learns
    // nothing, not even whether the token is live.
    if !client.scopes.contains(INTROSPECT_SCOPE) && issued_to != Some(client.id) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::INSUFFICIENT_SCOPE,
            "introspecting tokens issued to other clients needs the introspect scope",
        ));
    }
    Ok(answer)
}

/// The scope a client needs to introspect tokens issued to other clients.
pub const INTROSPECT_SCOPE: &str = tessera_proto::scope::INTROSPECT;

/// The client a token was issued to (when it is one of ours, live or not) and the
/// RFC 7662 answer for it.
async fn describe_token(
    state: &AppState,
    client: &tessera_store::Client,
    token: &str,
) -> Result<(Option<ClientId>, Introspection), ApiError> {
    let inactive = Introspection::inactive();
    if token.starts_with(REFRESH_TOKEN_PREFIX) {
        let Some(secret) = RefreshTokenSecret::parse(token) else {
            return Ok((None, inactive));
        };
        let Some(family) = state.refresh_store.family_by_token(&secret.hash()).await? else {
            return Ok((None, inactive));
        };
        let live = family.expires_at > Timestamp::now() && !family.user.disabled;
        // Refresh tokens are described only to the client they were issued to.
        if !live || family.client_id != client.id {
            return Ok((Some(family.client_id), inactive));
        }
        return Ok((
            Some(family.client_id),
            Introspection {
                active: true,
                token_type: Some(REFRESH_TOKEN.to_owned()),
                client_id: Some(family.client_id.to_string()),
                sub: Some(family.user.id.to_string()),
                username: Some(family.user.username.as_str().to_owned()),
                scope: Some(family.scopes.to_string()),
                iat: Some(family.created_at.as_millis() / 1000),
                exp: Some(family.expires_at.as_millis() / 1000),
                sid: Some(family.id.as_str().to_owned()),
                iss: Some(state.tokens.issuer().to_owned()),
                ..Introspection::default()
            },
        ));
    }
    if token.starts_with(OPAQUE_ACCESS_TOKEN_PREFIX) {
        let Some(secret) = AccessTokenSecret::parse(token) else {
            return Ok((None, inactive));
        };
        let hash = secret.hash();
        let record = match state.opaque_cache.get(hash.as_bytes()) {
            Some(record) => record,
            None => {
                let Some(record) = state.opaque_store.opaque_token(&hash).await? else {
                    return Ok((None, inactive));
                };
                let record = std::sync::Arc::new(record);
                state.opaque_cache.insert(*hash.as_bytes(), record.clone());
                record
            }
        };
        let issued_to = Some(record.client_id);
        if record.expires_at <= Timestamp::now() {
            return Ok((issued_to, inactive));
        }
        let claims = tessera_verify::AccessClaims {
            iss: state.tokens.issuer().to_owned(),
            sub: record.subject.clone(),
            aud: vec![record.audience.as_ref().map_or_else(
                || state.tokens.issuer().to_owned(),
                |a| a.as_str().to_owned(),
            )],
            exp: record.expires_at.as_millis() / 1000,
            iat: Some(record.issued_at.as_millis() / 1000),
            nbf: None,
            jti: Some(record.jti.clone()),
            client_id: Some(record.client_id.to_string()),
            scope: (!record.scopes.is_empty()).then(|| record.scopes.to_string()),
            sid: record.session.map(|s| s.as_str().to_owned()),
            roles: record.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            kid: None,
        };
        if state
            .own_tokens
            .is_revoked(&claims)
            .await
            .map_err(|_| ApiError::stale())?
        {
            return Ok((issued_to, inactive));
        }
        return Ok((issued_to, describe(&claims)));
    }
    match state.own_tokens.verify(token).await {
        Ok(claims) => Ok((issued_client(&claims), describe(&claims))),
        Err(tessera_verify::VerifyError::Stale) => Err(ApiError::stale()),
        // Ours but not live (expired, revoked): whose it was still decides who may ask.
        Err(_) => Ok((
            state
                .own_tokens
                .verify_signed(token)
                .ok()
                .and_then(|claims| issued_client(&claims)),
            inactive,
        )),
    }
}

fn issued_client(claims: &tessera_verify::AccessClaims) -> Option<ClientId> {
    claims.client_id.as_deref().and_then(ClientId::parse)
}

/// The RFC 7662 answer for a live access token.
fn describe(claims: &tessera_verify::AccessClaims) -> Introspection {
    Introspection {
        active: true,
        aud: Some(OneOrMany::from_list(claims.aud.clone())),
        client_id: claims.client_id.clone(),
        exp: Some(claims.exp),
        iat: claims.iat,
        iss: Some(claims.iss.clone()),
        jti: claims.jti.clone(),
        nbf: claims.nbf,
        roles: claims.roles.clone(),
        scope: claims.scope.clone(),
        sid: claims.sid.clone(),
        sub: Some(claims.sub.clone()),
        token_type: Some(BEARER.to_owned()),
        username: None,
    }
}

/// Revokes a refresh token (its whole family, with the session it came from) or a
/// JWT (by `jti`, for verifiers following the revocation feed). Per RFC 7009 §2.2 the
/// answer is 200 whether or not the token was valid; a client may revoke only its
/// own tokens (another's is refused with `unauthorized_client`, §2.1). When it
/// answers, this instance already refuses what it revoked (`OwnTokens` reads the
/// log before its next answer); others follow the feed.
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Response {
    no_store(match revocation(&state, &headers, &params).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(error) => error.into_response(),
    })
}

async fn revocation(
    state: &AppState,
    headers: &HeaderMap,
    params: &std::collections::HashMap<String, String>,
) -> Result<(), ApiError> {
    let client = authenticate(state, headers, params).await?;
    let token = params
        .get("token")
        .ok_or_else(|| oauth_error(codes::INVALID_REQUEST, "token is missing"))?;
    // RFC 7009 §2.1: a token issued to another client is refused, and stays live.
    let not_yours = || {
        oauth_error(
            codes::UNAUTHORIZED_CLIENT,
            "this token was issued to another client; only that client may revoke it",
        )
    };
    let now = Timestamp::now();
    if token.starts_with(REFRESH_TOKEN_PREFIX) {
        if let Some(secret) = RefreshTokenSecret::parse(token)
            && let Some(family) = state.refresh_store.family_by_token(&secret.hash()).await?
        {
            if family.client_id != client.id {
                return Err(not_yours());
            }
            state
                .refresh_store
                .revoke_family(&family.id, Some(family.user.id), EndReason::Revoked, now)
                .await?;
            state.presence.forget(&[family.id]).await;
            metrics::counter!("tessera_revocations_total", "kind" => "refresh").increment(1);
        }
        return Ok(());
    }
    if token.starts_with(OPAQUE_ACCESS_TOKEN_PREFIX) {
        if let Some(secret) = AccessTokenSecret::parse(token)
            && let Some(record) = state.opaque_store.opaque_token(&secret.hash()).await?
        {
            if record.client_id != client.id {
                return Err(not_yours());
            }
            if state
                .opaque_store
                .revoke_opaque_token(&secret.hash(), &client.id, now)
                .await?
            {
                // Before answering, so the next introspection here cannot find it cached.
                state.opaque_cache.remove(secret.hash().as_bytes());
                metrics::counter!("tessera_revocations_total", "kind" => "opaque").increment(1);
            }
        }
        return Ok(());
    }
    if let Ok(claims) = state.own_tokens.verify_signed(token) {
        if issued_client(&claims) != Some(client.id) {
            return Err(not_yours());
        }
        if let Some(jti) = claims.jti {
            let expires = Timestamp::from_millis(claims.exp.saturating_mul(1000));
            state
                .revocation_log
                .append_revocation(
                    Revoked::Token(jti),
                    UserId::parse(&claims.sub),
                    EndReason::Revoked,
                    now,
                    expires,
                )
                .await?;
            metrics::counter!("tessera_revocations_total", "kind" => "jwt").increment(1);
        }
    }
    Ok(())
}
