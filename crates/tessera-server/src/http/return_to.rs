//! Where a browser may be sent back to after signing in on `/login`.
//!
//! An open redirect on a login page turns tessera's name into a phishing tool, so a
//! `return_to` is parsed the way browsers parse a `Location` (WHATWG URL, via the
//! `url` crate), resolved against tessera's own URL, and followed only if its origin
//! is tessera's or one configured in `return_to_origins`, with no userinfo. Anything
//! else is ignored, and the browser stays on tessera.

use url::Url;

pub struct ReturnTo {
    base: Url,
    /// ASCII serialisations of the allowed origins.
    allowed: Vec<String>,
}

impl ReturnTo {
    pub fn new(public_url: &str, origins: &[String]) -> Result<Self, String> {
        let base = Url::parse(public_url).map_err(|e| format!("public_url: {e}"))?;
        let mut allowed = vec![base.origin().ascii_serialization()];
        for origin in origins {
            let url = Url::parse(origin).map_err(|e| format!("return_to_origins: {e}"))?;
            // The sign-in page lists these origins in its CSP `form-action`, which
            // browsers hold the redirect after the form post to. CSP has no syntax
            // for an IPv6 address: the browser would stop on tessera every time.
            if matches!(url.host(), Some(url::Host::Ipv6(_))) {
                return Err(format!(
                    "return_to_origins: {origin:?} has an IPv6 address for a host, which \
                     browsers cannot be allowed to return to (a Content-Security-Policy \
                     cannot name one); use a host name"
                ));
            }
            allowed.push(url.origin().ascii_serialization());
        }
        Ok(Self { base, allowed })
    }

    /// The URL to send the browser to, if `requested` may be followed.
    pub fn check(&self, requested: &str) -> Option<Url> {
        let url = self.base.join(requested.trim()).ok()?;
        let safe = matches!(url.scheme(), "http" | "https")
            && url.username().is_empty()
            && url.password().is_none()
            && self.allowed.contains(&url.origin().ascii_serialization());
        safe.then_some(url)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn return_to() -> ReturnTo {
        ReturnTo::new(
            "https://id.example.com",
            &[
                "https://app.example.com".into(),
                "http://127.0.0.1:7481".into(),
            ],
        )
        .unwrap()
    }

    #[test]
    fn allowed_origins_and_own_paths_are_followed() {
        let r = return_to();
        for (asked, to) in [
            (
                "https://app.example.com/orders?x=1",
                "https://app.example.com/orders?x=1",
            ),
            ("https://APP.example.com:443/", "https://app.example.com/"),
            ("http://127.0.0.1:7481/api/", "http://127.0.0.1:7481/api/"),
            ("/sessions", "https://id.example.com/sessions"),
            ("https://id.example.com/x", "https://id.example.com/x"),
        ] {
            assert_eq!(
                r.check(asked).map(String::from),
                Some(to.to_owned()),
                "{asked}"
            );
        }
    }

    #[test]
    fn everything_else_is_refused() {
        let r = return_to();
        for asked in [
            "https://evil.example.org/",
            "//evil.example.org/",
            "/\\evil.example.org/",
            "\\\\evil.example.org",
            "http://app.example.com/", // another scheme is another origin
            "https://app.example.com:8443/",
            "https://app.example.com@evil.example.org/",
            "https://user:pw@app.example.com/",
            "javascript:alert(1)",
            "data:text/html,hi",
            "http://127.0.0.1:7482/",
        ] {
            assert!(r.check(asked).is_none(), "{asked}");
        }
    }

    #[test]
    fn ipv6_origins_are_refused_since_no_csp_can_allow_them() {
        let error = ReturnTo::new("http://127.0.0.1:7480", &["http://[::1]:7481".into()])
            .err()
            .unwrap();
        assert!(error.contains("IPv6"), "{error}");
        assert!(ReturnTo::new("http://[::1]:7480", &["http://localhost:7481".into()]).is_ok());
    }
}
