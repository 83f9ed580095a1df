//! Authentication and authorization for axum services, the same everywhere:
//! routes declare the scopes or roles they need with [`RemoteVerifier::require`],
//! handlers take the verified claims with the [`Authenticated`] extractor, and
//! every refusal is an RFC 6750 answer.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::{Router, routing::get};
//! use tessera_verify::axum::{Authenticated, Requirement};
//! use tessera_verify::{ClientCredentials, RemoteVerifier};
//!
//! let verifier = RemoteVerifier::builder("https://id.example.com")
//!     .audience("orders")
//!     .client(ClientCredentials::new("client-id", "tcs_…"))
//!     .build()
//!     .await?;
//! let app: Router = Router::new()
//!     .route("/orders", get(|who: Authenticated| async move { who.sub.clone() }))
//!     .route_layer(verifier.require(Requirement::scope("orders:read")))
//!     .with_state(verifier);
//! # Ok(()) }
//! ```
//!
//! Tokens come as `Authorization: Bearer` or, bound to the client's key,
//! `Authorization: DPoP` with a `DPoP` proof (RFC 9449; see
//! [`crate::binding`]). A bound token sent as `Bearer`, or with a proof that is
//! not for this request, signed by another key or seen before, is refused.
//!
//! - no token: 401 with `WWW-Authenticate: Bearer realm="…"` and
//!   `WWW-Authenticate: DPoP algs="…"`, and no error code;
//! - a malformed `Authorization` header: 400 `invalid_request`;
//! - a token refused for any reason: 401 `invalid_token`, the reason in
//!   `error_description`; a refused DPoP proof: 401 `invalid_dpop_proof`. The
//!   challenge is in the scheme the token came in (`DPoP` for a bound token sent
//!   as `Bearer`, so the client learns what to send), with `algs` for `DPoP`;
//! - a valid token without the scope or role: 403 `insufficient_scope`, with the
//!   scopes needed in the challenge;
//! - a valid token whose sign-in was not strong enough for the route (an `acr`
//!   below the one required, an `amr` method missing): 401
//!   `insufficient_user_authentication` (RFC 9470), with `acr_values` in the
//!   challenge, so the client sends its user back to sign in with more;
//! - the verifier cannot decide (stale revocation feed, issuer unreachable for an
//!   opaque token): 503 with `Retry-After`, so clients don't throw away good
//!   tokens.

use std::convert::Infallible;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::axum::extract::{FromRef, FromRequestParts, OriginalUri, Request};
use ::axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use tower::{Layer, Service};

use tessera_proto::ErrorBody;
use tessera_proto::error::{
    INSUFFICIENT_SCOPE, INSUFFICIENT_USER_AUTHENTICATION, INVALID_REQUEST, INVALID_TOKEN,
    TEMPORARILY_UNAVAILABLE, UNAUTHORIZED,
};
use tessera_proto::token_type::DPOP_HEADER;

use crate::binding::{Presented, Scheme};
use crate::claims::AccessClaims;
use crate::dpop::DPOP_ALGORITHMS;
use crate::error::VerifyError;
use crate::remote::{RemoteVerifier, TokenSource};

/// The verified claims of the request's token. Taken from what a
/// [`RequireLayer`] already verified, or verified here when no layer ran.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<AccessClaims>);

impl Deref for Authenticated {
    type Target = AccessClaims;
    fn deref(&self) -> &AccessClaims {
        &self.0
    }
}

impl<S> FromRequestParts<S> for Authenticated
where
    S: Send + Sync,
    RemoteVerifier: FromRef<S>,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        if let Some(done) = parts.extensions.get::<Authenticated>() {
            return Ok(done.clone());
        }
        let verifier = RemoteVerifier::from_ref(state);
        let target = Target::of(&parts.method, &parts.uri, &parts.extensions);
        let claims = authenticate(&verifier, &target, &parts.headers).await?;
        Ok(Authenticated(Arc::new(claims)))
    }
}

/// The method and URL of a request, which a DPoP proof must name.
pub struct Target<'a> {
    pub method: &'a str,
    /// The path the client asked for (before any router nesting took a prefix).
    pub path: &'a str,
    /// The authority of an absolute request URI (HTTP/2), else `Host`'s.
    pub authority: Option<&'a str>,
}

impl<'a> Target<'a> {
    pub fn of(method: &'a Method, uri: &'a Uri, extensions: &'a http::Extensions) -> Self {
        let original = extensions.get::<OriginalUri>().map_or(uri, |o| &o.0);
        Self {
            method: method.as_str(),
            path: original.path(),
            authority: original.authority().map(|a| a.as_str()),
        }
    }
}

/// Finds the request's token and verifies it, with its DPoP proof when the
/// token is bound to a key.
pub async fn authenticate(
    verifier: &RemoteVerifier,
    target: &Target<'_>,
    headers: &HeaderMap,
) -> Result<AccessClaims, Rejection> {
    authenticate_in_scheme(verifier, target, headers)
        .await
        .map(|(claims, _)| claims)
}

/// [`authenticate`], with the scheme the token came in.
async fn authenticate_in_scheme(
    verifier: &RemoteVerifier,
    target: &Target<'_>,
    headers: &HeaderMap,
) -> Result<(AccessClaims, Scheme), Rejection> {
    let realm = verifier.realm();
    let presented = presented_of(headers, verifier.token_source())
        .map_err(|description| Rejection::malformed(realm, description))?
        .ok_or_else(|| Rejection::missing(realm))?;
    let host = target
        .authority
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()));
    let url = verifier.request_url(host, target.path);
    verifier
        .verify_request(&presented, target.method, &url)
        .await
        .map(|claims| (claims, presented.scheme))
        .map_err(|error| Rejection::refused(realm, presented.scheme, &error))
}

/// The token of a request: `Authorization: Bearer` or `DPoP` (RFC 6750 §2.1, RFC
/// 9449 §7.1) unless turned off, then the configured cookie (a bearer token).
/// `Ok(None)` when there is none; `Err` when the header is there but unusable.
pub fn presented_of<'a>(
    headers: &'a HeaderMap,
    source: &TokenSource,
) -> Result<Option<Presented<'a>>, &'static str> {
    if !source.no_header
        && let Some(presented) = Presented::from_headers(
            headers
                .get_all(header::AUTHORIZATION)
                .iter()
                .map(HeaderValue::as_bytes),
            headers
                .get_all(DPOP_HEADER)
                .iter()
                .map(HeaderValue::as_bytes),
        )?
    {
        return Ok(Some(presented));
    }
    if let Some(name) = &source.cookie {
        return Ok(cookie_value(headers, name).map(Presented::bearer));
    }
    Ok(None)
}

/// The value of cookie `name` in the request's `Cookie` headers (as sent: the
/// tokens tessera sets as cookies need no decoding).
fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(axum_extra::extract::cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name_raw() == Some(name))
        .and_then(|cookie| cookie.value_raw())
}

/// What a route needs beyond a valid token: every scope and every role listed,
/// and a sign-in at least as strong as the `acr` and with every `amr` method
/// listed (RFC 9470 step-up).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirement {
    scopes: Vec<String>,
    roles: Vec<String>,
    acr: Option<String>,
    amr: Vec<String>,
}

impl Requirement {
    /// Any valid token.
    pub fn authenticated() -> Self {
        Self::default()
    }

    pub fn scope(scope: impl Into<String>) -> Self {
        Self::default().and_scope(scope)
    }

    pub fn role(role: impl Into<String>) -> Self {
        Self::default().and_role(role)
    }

    pub fn and_scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }

    pub fn and_role(mut self, role: impl Into<String>) -> Self {
        self.roles.push(role.into());
        self
    }

    /// A sign-in at least this strong: tessera's `"2"` is two factors (see
    /// `tessera_proto::acr`); another issuer's value is matched exactly.
    pub fn and_acr(mut self, acr: impl Into<String>) -> Self {
        self.acr = Some(acr.into());
        self
    }

    /// A sign-in that used this method (RFC 8176: `mfa`, `otp`, `hwk`, …).
    pub fn and_amr(mut self, method: impl Into<String>) -> Self {
        self.amr.push(method.into());
        self
    }

    /// Whether `claims` meet the requirement; the refusal names what is missing.
    pub fn check(&self, realm: &str, claims: &AccessClaims) -> Result<(), Rejection> {
        if !self.scopes.iter().all(|s| claims.has_scope(s)) {
            return Err(Rejection::insufficient(
                realm,
                &self.scopes.join(" "),
                format!("this needs the scope {}", self.scopes.join(" ")),
            ));
        }
        if let Some(missing) = self
            .roles
            .iter()
            .find(|r| !claims.roles.iter().any(|have| have == *r))
        {
            return Err(Rejection::insufficient(
                realm,
                &self.scopes.join(" "),
                format!("this needs the role {missing}"),
            ));
        }
        if let Some(acr) = &self.acr
            && !claims
                .acr
                .as_deref()
                .is_some_and(|have| tessera_proto::acr::meets(have, acr))
        {
            return Err(Rejection::insufficient_user_authentication(
                realm,
                acr,
                format!("this needs a sign-in of acr {acr}: sign in again with more"),
            ));
        }
        if let Some(missing) = self
            .amr
            .iter()
            .find(|m| !claims.amr.iter().any(|have| have == *m))
        {
            return Err(Rejection::insufficient_user_authentication(
                realm,
                self.acr.as_deref().unwrap_or_default(),
                format!("this needs a sign-in with {missing}: sign in again with it"),
            ));
        }
        Ok(())
    }
}

impl RemoteVerifier {
    /// A layer that lets through only requests whose token is valid and meets
    /// `requirement`; the claims reach handlers as [`Authenticated`].
    pub fn require(&self, requirement: Requirement) -> RequireLayer {
        RequireLayer {
            verifier: self.clone(),
            requirement: Arc::new(requirement),
        }
    }
}

#[derive(Clone)]
pub struct RequireLayer {
    verifier: RemoteVerifier,
    requirement: Arc<Requirement>,
}

impl<S> Layer<S> for RequireLayer {
    type Service = Require<S>;
    fn layer(&self, inner: S) -> Require<S> {
        Require {
            inner,
            verifier: self.verifier.clone(),
            requirement: self.requirement.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Require<S> {
    inner: S,
    verifier: RemoteVerifier,
    requirement: Arc<Requirement>,
}

impl<S> Service<Request> for Require<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        // The clone that was polled ready serves this request (tower's rule).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        let requirement = self.requirement.clone();
        Box::pin(async move {
            let target = Target::of(request.method(), request.uri(), request.extensions());
            let (claims, scheme) =
                match authenticate_in_scheme(&verifier, &target, request.headers()).await {
                    Ok(authenticated) => authenticated,
                    Err(rejection) => return Ok(rejection.into_response()),
                };
            if let Err(rejection) = requirement.check(verifier.realm(), &claims) {
                // A client that sent a bound token is answered in its scheme.
                let rejection = match scheme {
                    Scheme::Dpop => rejection.in_dpop_scheme(),
                    Scheme::Bearer => rejection,
                };
                return Ok(rejection.into_response());
            }
            request
                .extensions_mut()
                .insert(Authenticated(Arc::new(claims)));
            inner.call(request).await
        })
    }
}

/// An RFC 6750 (or RFC 9449 §7.1) refusal.
#[derive(Debug, Clone)]
pub struct Rejection {
    status: StatusCode,
    /// The `error` code; `None` when the request carried no credentials at all.
    error: Option<&'static str>,
    description: String,
    /// `WWW-Authenticate` values, one per scheme.
    challenges: Vec<String>,
}

/// The start of a `DPoP` challenge: the proof algorithms taken (§7.1).
fn dpop_challenge() -> String {
    let algs: Vec<&str> = DPOP_ALGORITHMS.iter().map(|a| a.as_str()).collect();
    format!("DPoP algs=\"{}\"", algs.join(" "))
}

impl Rejection {
    fn challenge(realm: &str, error: Option<(&str, &str)>, scope: Option<&str>) -> String {
        let mut challenge = format!("Bearer realm=\"{}\"", quoted(realm));
        if let Some((code, description)) = error {
            challenge.push_str(&format!(
                ", error=\"{code}\", error_description=\"{}\"",
                quoted(description)
            ));
        }
        if let Some(scope) = scope.filter(|s| !s.is_empty()) {
            challenge.push_str(&format!(", scope=\"{}\"", quoted(scope)));
        }
        challenge
    }

    /// The same challenge in the `DPoP` scheme, for a client that sent (or must
    /// send) a bound token.
    fn in_dpop_scheme(mut self) -> Self {
        for challenge in &mut self.challenges {
            if let Some(rest) = challenge.strip_prefix("Bearer ") {
                *challenge = format!("{}, {rest}", dpop_challenge());
            }
        }
        self
    }

    pub fn missing(realm: &str) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: None,
            description:
                "send an access token: Authorization: Bearer <token>, or DPoP <token> with a DPoP proof"
                    .into(),
            challenges: vec![Self::challenge(realm, None, None), dpop_challenge()],
        }
    }

    pub fn malformed(realm: &str, description: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: Some(INVALID_REQUEST),
            description: description.into(),
            challenges: vec![Self::challenge(
                realm,
                Some((INVALID_REQUEST, description)),
                None,
            )],
        }
    }

    /// A token, or its proof, refused; `scheme` is the one it was sent in.
    pub fn refused(realm: &str, scheme: Scheme, error: &VerifyError) -> Self {
        let description = error.to_string();
        if error.is_temporary() {
            return Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                error: Some(TEMPORARILY_UNAVAILABLE),
                challenges: Vec::new(),
                description,
            };
        }
        let code = match error {
            VerifyError::Proof(proof) => proof.code(),
            _ => INVALID_TOKEN,
        };
        let rejection = Self {
            status: StatusCode::UNAUTHORIZED,
            error: Some(code),
            challenges: vec![Self::challenge(realm, Some((code, &description)), None)],
            description,
        };
        let dpop = scheme == Scheme::Dpop && !matches!(error, VerifyError::NotBound);
        if dpop || matches!(error, VerifyError::BoundToKey) {
            rejection.in_dpop_scheme()
        } else {
            rejection
        }
    }

    pub fn insufficient(realm: &str, scope: &str, description: String) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            error: Some(INSUFFICIENT_SCOPE),
            challenges: vec![Self::challenge(
                realm,
                Some((INSUFFICIENT_SCOPE, &description)),
                Some(scope),
            )],
            description,
        }
    }

    /// RFC 9470 §3: a 401 whose challenge names the `acr` to come back with
    /// (none when only an `amr` method is missing).
    pub fn insufficient_user_authentication(realm: &str, acr: &str, description: String) -> Self {
        let mut challenge = Self::challenge(
            realm,
            Some((INSUFFICIENT_USER_AUTHENTICATION, &description)),
            None,
        );
        if !acr.is_empty() {
            challenge.push_str(&format!(", acr_values=\"{}\"", quoted(acr)));
        }
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: Some(INSUFFICIENT_USER_AUTHENTICATION),
            challenges: vec![challenge],
            description,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `WWW-Authenticate` values this refusal sends.
    pub fn challenges(&self) -> &[String] {
        &self.challenges
    }
}

/// A quoted-string body (RFC 9110 §5.6.4): backslash-escape `"` and `\`, and drop
/// control characters, which may not appear at all.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let body = ErrorBody::new(self.error.unwrap_or(UNAUTHORIZED), self.description);
        let mut response = (self.status, ::axum::Json(body)).into_response();
        let headers = response.headers_mut();
        for challenge in &self.challenges {
            if let Ok(value) = HeaderValue::from_str(challenge) {
                headers.append(header::WWW_AUTHENTICATE, value);
            }
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_from_the_header_then_the_cookie() {
        let source = TokenSource {
            no_header: false,
            cookie: Some("__Host-tessera-token".into()),
        };
        let token = |headers: &HeaderMap, source: &TokenSource| {
            presented_of(headers, source).map(|p| p.map(|p| (p.scheme, p.token.to_owned())))
        };
        let mut headers = HeaderMap::new();
        assert_eq!(token(&headers, &source), Ok(None));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; __Host-tessera-token=from-cookie"),
        );
        assert_eq!(
            token(&headers, &source),
            Ok(Some((Scheme::Bearer, "from-cookie".into())))
        );
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer from-header"),
        );
        assert_eq!(
            token(&headers, &source),
            Ok(Some((Scheme::Bearer, "from-header".into())))
        );
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("DPoP from-header"),
        );
        assert_eq!(
            token(&headers, &source),
            Ok(Some((Scheme::Dpop, "from-header".into())))
        );
        headers.insert(DPOP_HEADER, HeaderValue::from_static("a.b.c"));
        headers.append(DPOP_HEADER, HeaderValue::from_static("d.e.f"));
        assert!(token(&headers, &source).is_err(), "two proofs");
        headers.remove(DPOP_HEADER);
        for bad in ["Basic abc", "Bearer", "Bearer a b", "DPoP  "] {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(bad));
            assert!(token(&headers, &source).is_err(), "{bad}");
        }
        headers.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert!(token(&headers, &source).is_err(), "two headers");
        let cookie_only = TokenSource {
            no_header: true,
            ..source
        };
        assert_eq!(
            token(&headers, &cookie_only),
            Ok(Some((Scheme::Bearer, "from-cookie".into())))
        );
    }

    #[test]
    fn challenges_are_quoted_and_in_the_scheme_the_token_needs() {
        let rejection = Rejection::refused("r\"x", Scheme::Bearer, &VerifyError::Expired);
        assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            rejection.challenges(),
            [
                r#"Bearer realm="r\"x", error="invalid_token", error_description="the token has expired""#
            ]
        );
        assert_eq!(
            Rejection::refused("r", Scheme::Bearer, &VerifyError::Stale).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let bound = Rejection::refused("r", Scheme::Bearer, &VerifyError::BoundToKey);
        assert!(
            bound.challenges()[0]
                .starts_with(r#"DPoP algs="ES256 EdDSA RS256", realm="r", error="invalid_token""#),
            "{:?}",
            bound.challenges()
        );
        let proof = Rejection::refused(
            "r",
            Scheme::Dpop,
            &VerifyError::Proof(crate::dpop::DpopError::Replayed),
        );
        assert!(proof.challenges()[0].contains(r#"error="invalid_dpop_proof""#));
        let missing = Rejection::missing("r");
        assert_eq!(
            missing.challenges(),
            [r#"Bearer realm="r""#, r#"DPoP algs="ES256 EdDSA RS256""#]
        );
    }
}
