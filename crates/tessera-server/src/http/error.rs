//! The one error type handlers return, and the middleware that gives every error
//! response, including those made by layers (404, 405, 408, 413), the JSON shape
//! `{"error": "<code>", "error_description": "<text>"}`.

use std::borrow::Cow;
use std::time::Duration;

use axum::Json;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use tessera_proto::ErrorBody;
use tessera_proto::error as codes;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    description: Cow<'static, str>,
    retry_after: Option<Duration>,
    /// `WWW-Authenticate` challenges, each its own header field.
    challenges: Vec<&'static str>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        description: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            retry_after: None,
            challenges: Vec::new(),
        }
    }

    /// Adds a `WWW-Authenticate` challenge (401 answers).
    pub fn challenge(mut self, value: &'static str) -> Self {
        self.challenges.push(value);
        self
    }

    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    /// How long a client should wait before retrying, if it should.
    pub fn retry_after_duration(&self) -> Option<Duration> {
        self.retry_after
    }

    pub fn bad_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::INVALID_REQUEST, description)
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            codes::UNAUTHENTICATED,
            "no valid session: log in first",
        )
    }

    pub fn not_found(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, description)
    }

    /// The store did not answer. Logged here once, with the cause; clients get a
    /// retryable 503 that leaks nothing of it.
    pub fn store(error: tessera_store::StoreError) -> Self {
        tracing::error!(%error, "store unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::TEMPORARILY_UNAVAILABLE,
            "the store is not answering; try again shortly",
        )
        .retry_after(Duration::from_secs(1))
    }
}

impl ApiError {
    /// A 400 with an OAuth error code (RFC 6749 §5.2, RFC 8707's `invalid_target`).
    pub fn oauth(code: &'static str, description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, description)
    }

    /// 401 `invalid_client`, with the Basic challenge RFC 6749 §5.2 asks for.
    pub fn invalid_client() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            codes::INVALID_CLIENT,
            "client authentication failed",
        )
        .challenge(r#"Basic realm="tessera", charset="UTF-8""#)
    }

    /// This instance has not heard from the revocation log for longer than it may
    /// trust its caches: it cannot tell whether a session or token was revoked.
    pub fn stale() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::TEMPORARILY_UNAVAILABLE,
            "this instance has lost contact with the store and cannot tell what was \
             revoked; try again shortly",
        )
        .retry_after(Duration::from_secs(1))
    }
}

impl From<tessera_store::StoreError> for ApiError {
    fn from(error: tessera_store::StoreError) -> Self {
        Self::store(error)
    }
}

impl From<crate::services::throttle::Throttled> for ApiError {
    fn from(refusal: crate::services::throttle::Throttled) -> Self {
        match refusal {
            crate::services::throttle::Throttled::Wait(wait) => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "too many attempts; wait before trying again",
            )
            .retry_after(wait),
            crate::services::throttle::Throttled::Store(error) => Self::store(error),
        }
    }
}

impl From<crate::services::oauth::OAuthError> for ApiError {
    fn from(error: crate::services::oauth::OAuthError) -> Self {
        use crate::services::oauth::OAuthError;
        match error {
            OAuthError::Refused { code, description } => Self::oauth(code, description),
            OAuthError::InvalidClient => Self::invalid_client(),
            OAuthError::Forbidden { code, description } => {
                Self::new(StatusCode::FORBIDDEN, code, description)
            }
            OAuthError::Throttled(refusal) => refusal.into(),
            OAuthError::Stale => Self::stale(),
            OAuthError::NoSigningKey => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                codes::TEMPORARILY_UNAVAILABLE,
                "no signing key is available; try again shortly",
            ),
            OAuthError::Hash(e) => e.into(),
            OAuthError::Store(e) => Self::store(e),
        }
    }
}

impl From<crate::services::second_factor::SecondFactorError> for ApiError {
    fn from(error: crate::services::second_factor::SecondFactorError) -> Self {
        use crate::services::second_factor::SecondFactorError as E;
        let description = error.to_string();
        match error {
            E::NoSuchUser => Self::not_found(description),
            E::AlreadyEnrolled | E::NotEnrolling | E::NotEnrolled => {
                Self::new(StatusCode::CONFLICT, "conflict", description)
            }
            E::Refused(_) => Self::new(StatusCode::BAD_REQUEST, "invalid_code", description),
            E::Link(_) => Self::bad_request(description),
            E::Sealing(_) => {
                tracing::error!(error = %description, "a TOTP secret could not be opened");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    codes::SERVER_ERROR,
                    "this account's second factor cannot be read: ask an administrator",
                )
            }
            E::Store(e) => Self::store(e),
        }
    }
}

impl From<crate::services::self_service::FactorChangeError> for ApiError {
    fn from(error: crate::services::self_service::FactorChangeError) -> Self {
        use crate::services::self_service::FactorChangeError as E;
        match error {
            E::WrongPassword => Self::new(
                StatusCode::FORBIDDEN,
                "invalid_credentials",
                "the current password is not right",
            ),
            E::Required => Self::new(StatusCode::CONFLICT, "conflict", error.to_string()),
            E::Throttled(wait) => wait.into(),
            E::Factors(e) => e.into(),
            E::Passkey(e) => e.into(),
            E::Hash(e) => e.into(),
            E::Store(e) => Self::store(e),
        }
    }
}

impl From<crate::services::passkeys::PasskeyError> for ApiError {
    fn from(error: crate::services::passkeys::PasskeyError) -> Self {
        use crate::services::passkeys::PasskeyError as E;
        match error {
            // As a closed registration: this service does not offer it.
            E::Unavailable(_) => Self::new(
                StatusCode::FORBIDDEN,
                "passkeys_unavailable",
                error.to_string(),
            ),
            E::Expired => Self::new(
                StatusCode::BAD_REQUEST,
                "ceremony_expired",
                error.to_string(),
            ),
            E::Refused(_) | E::CounterWentBack => Self::new(
                StatusCode::UNAUTHORIZED,
                "passkey_refused",
                error.to_string(),
            ),
            E::AlreadyRegistered => Self::new(StatusCode::CONFLICT, "conflict", error.to_string()),
            E::BadName => Self::bad_request(error.to_string()),
            E::NoSuchUser => Self::unauthenticated(),
            E::Store(e) => Self::store(e),
        }
    }
}

impl From<crate::services::passwords::HashError> for ApiError {
    fn from(error: crate::services::passwords::HashError) -> Self {
        match error {
            crate::services::passwords::HashError::Busy => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                codes::TEMPORARILY_UNAVAILABLE,
                "too many logins in progress; try again shortly",
            )
            .retry_after(Duration::from_secs(1)),
            crate::services::passwords::HashError::Failed(reason) => {
                tracing::error!(%reason, "password hashing failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    codes::SERVER_ERROR,
                    "password hashing failed",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody::new(self.code, &*self.description);
        let mut response = (self.status, Json(body)).into_response();
        for challenge in self.challenges {
            response.headers_mut().append(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if let Some(wait) = self.retry_after {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}

fn default_error(status: StatusCode) -> ApiError {
    let (code, description): (&'static str, &'static str) = match status {
        StatusCode::NOT_FOUND => (codes::NOT_FOUND, "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => (codes::METHOD_NOT_ALLOWED, "method not allowed here"),
        StatusCode::REQUEST_TIMEOUT => (codes::REQUEST_TIMEOUT, "the request took too long"),
        StatusCode::PAYLOAD_TOO_LARGE => {
            (codes::PAYLOAD_TOO_LARGE, "the request body is too large")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            (codes::UNSUPPORTED_MEDIA_TYPE, "unsupported content type")
        }
        s if s.is_server_error() => (codes::SERVER_ERROR, "the server failed to answer"),
        _ => (codes::INVALID_REQUEST, "the request was refused"),
    };
    ApiError::new(status, code, description)
}

/// Replaces the body of any error response that is not already JSON.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    // JSON errors are ours already; HTML ones are the login page's, for people.
    let deliberate = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
        });
    if deliberate {
        return response;
    }
    let (parts, _) = response.into_parts();
    let mut replaced = default_error(status).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            replaced.headers_mut().insert(name.clone(), value.clone());
        }
    }
    replaced
}

impl From<crate::services::keyring::KeyRingError> for ApiError {
    fn from(error: crate::services::keyring::KeyRingError) -> Self {
        use crate::services::keyring::KeyRingError;
        match error {
            KeyRingError::Store(e) => ApiError::store(e),
            // A key that cannot be made or sealed: the server's state, not the
            // request's; said as it is, for the operator.
            other => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "keys_unavailable",
                other.to_string(),
            ),
        }
    }
}
