//! tessera's cookies: the session cookie (a session secret) and the token cookie
//! (a short-lived access token, for services that read the token from a cookie).

use std::time::Duration;

use axum_extra::extract::cookie::{Cookie, SameSite};
use http::{HeaderMap, HeaderValue};
use tessera_core::{Secret, SecretKind, SessionSecret};

pub struct SessionCookie {
    name: &'static str,
    secure: bool,
    max_age: Duration,
    same_site: SameSite,
}

impl SessionCookie {
    /// With `secure`, the cookie is `__Host-tessera-session`: the prefix makes browsers
    /// insist on `Secure`, `Path=/` and no `Domain`, so no sibling host can plant or
    /// shadow it. Without, it must drop the prefix, which browsers would refuse.
    pub fn new(secure: bool, max_age: Duration) -> Self {
        Self {
            name: if secure {
                "__Host-tessera-session"
            } else {
                "tessera-session"
            },
            secure,
            max_age,
            same_site: SameSite::Lax,
        }
    }

    /// The token cookie, `__Host-tessera-token` (same prefix rule). `SameSite=Strict`:
    /// the services that accept it take it as a bearer credential, so it must not
    /// ride along on requests other sites start.
    pub fn token(secure: bool, max_age: Duration) -> Self {
        Self {
            name: if secure {
                "__Host-tessera-token"
            } else {
                "tessera-token"
            },
            secure,
            max_age,
            same_site: SameSite::Strict,
        }
    }

    /// The cookie of a sign-in between its factors, `__Host-tessera-sign-in`
    /// (same prefix rule), holding a ceremony's secret for as long as the
    /// ceremony lasts. `SameSite=Strict`: only tessera's own second-step page
    /// posts it.
    pub fn pending(secure: bool, max_age: Duration) -> Self {
        Self {
            name: if secure {
                "__Host-tessera-sign-in"
            } else {
                "tessera-sign-in"
            },
            secure,
            max_age,
            same_site: SameSite::Strict,
        }
    }

    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// Sets the cookie to `value` (an access token).
    pub fn set_value(&self, value: String) -> HeaderValue {
        self.build(value, self.max_age)
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    fn build(&self, value: String, max_age: Duration) -> HeaderValue {
        let cookie = Cookie::build((self.name, value))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(self.same_site)
            .max_age(time::Duration::seconds(
                i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
            ))
            .build();
        // Cookie values we build are base64url and fixed names: always valid headers.
        HeaderValue::from_str(&cookie.encoded().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    pub fn set<K: SecretKind>(&self, secret: &Secret<K>) -> HeaderValue {
        self.build(secret.expose(), self.max_age)
    }

    pub fn clear(&self) -> HeaderValue {
        self.build(String::new(), Duration::ZERO)
    }

    /// The secret the request's cookie carries. Only the cookie is read: a session id
    /// in the URL, a form field or another header is never honoured. Two cookies of
    /// this name with different values are refused rather than resolved by order: a
    /// sibling host can plant a second one (cookie tossing), and which one a server
    /// picks must not decide whose session a request runs in.
    pub fn secret(&self, headers: &HeaderMap) -> Result<Option<SessionSecret>, AmbiguousCookie> {
        self.secret_of(headers)
    }

    /// [`Self::secret`], for a cookie holding another kind of secret.
    pub fn secret_of<K: SecretKind>(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<Secret<K>>, AmbiguousCookie> {
        let mut found: Option<String> = None;
        let pairs = headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(Cookie::split_parse_encoded)
            .filter_map(Result::ok);
        for cookie in pairs {
            if cookie.name() != self.name {
                continue;
            }
            match &found {
                Some(value) if value != cookie.value() => return Err(AmbiguousCookie),
                Some(_) => {}
                None => found = Some(cookie.value().to_owned()),
            }
        }
        Ok(found.as_deref().and_then(Secret::parse))
    }
}

/// A request carried two session cookies with different values.
#[derive(Debug)]
pub struct AmbiguousCookie;

/// The cookies tessera sets: the session's, the token cookie of
/// `POST /v1/session/token`, and a sign-in's between its factors.
pub struct Cookies {
    pub session: SessionCookie,
    pub token: SessionCookie,
    pub pending: SessionCookie,
}
