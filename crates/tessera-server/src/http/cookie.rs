//! The session cookie: its name, attributes, and reading it back.

use std::time::Duration;

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use http::{HeaderMap, HeaderValue};
use tessera_core::SessionSecret;

pub struct SessionCookie {
    name: &'static str,
    secure: bool,
    max_age: Duration,
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
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    fn build(&self, value: String, max_age: Duration) -> HeaderValue {
        let cookie = Cookie::build((self.name, value))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .max_age(time::Duration::seconds(
                i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
            ))
            .build();
        // Cookie values we build are base64url and fixed names: always valid headers.
        HeaderValue::from_str(&cookie.encoded().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    pub fn set(&self, secret: &SessionSecret) -> HeaderValue {
        self.build(secret.expose(), self.max_age)
    }

    pub fn clear(&self) -> HeaderValue {
        self.build(String::new(), Duration::ZERO)
    }

    /// The secret the request's cookie carries. Only the cookie is read: a session id
    /// in the URL, a form field or another header is never honoured.
    pub fn secret(&self, headers: &HeaderMap) -> Option<SessionSecret> {
        let jar = CookieJar::from_headers(headers);
        SessionSecret::parse(jar.get(self.name)?.value())
    }
}
