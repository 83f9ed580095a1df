//! The URIs a client registers for the browser flow: where tessera may send the
//! browser back (`RedirectUri`, also used after logout) and where it posts
//! back-channel logout tokens (`LogoutUri`).
//!
//! A registered URI is kept exactly as written and matched as a string (RFC 9700
//! §4.1.3: no pattern, no prefix, no normalisation, since each of those has let an
//! attacker pick a redirect target). The one exception is RFC 8252 §7.3: a native
//! app's loopback redirect (`http://127.0.0.1/…` or `http://[::1]/…`) matches with
//! any port, because the app listens on whichever port the system gives it; the
//! browser is then sent to the registered URI with the presented port, never to a
//! string tessera did not compare.

use std::fmt;

use serde::{Serialize, Serializer};

/// Longer URIs are refused: far beyond any real callback, and bounded so that a
/// stored client stays small.
const MAX_LEN: usize = 2000;

/// The loopback IP literals of RFC 8252 §7.3, each as it starts a URI.
const LOOPBACK_IPS: [&str; 2] = ["http://127.0.0.1", "http://[::1]"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("a URI is at most {MAX_LEN} characters")]
    TooLong,
    #[error("a URI is printable ASCII without spaces: percent-encode anything else")]
    NotPrintable,
    #[error("{0:?} is not an absolute URI")]
    NotAbsolute(String),
    #[error("a registered URI has no fragment (#…)")]
    Fragment,
    #[error("a registered URI has no user name or password")]
    UserInfo,
    #[error(
        "http is allowed only on loopback (127.0.0.1, [::1] or localhost); use https, or a \
         private-use scheme with a dot for a native app (com.example.app:/callback)"
    )]
    PlainHttp,
    #[error(
        "unsupported scheme {0:?}: use https, http on loopback, or a private-use scheme \
         with a dot (com.example.app:/callback)"
    )]
    Scheme(String),
}

/// A redirect URI a client registered (RFC 6749 §3.1.2): absolute, no fragment, no
/// user info; `https`, `http` on loopback only, or a native app's private-use
/// scheme named after a domain (RFC 8252 §7.1, so it contains a dot).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RedirectUri(String);

impl RedirectUri {
    pub fn parse(input: &str) -> Result<Self, UriError> {
        let url = absolute(input)?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => return Err(UriError::PlainHttp),
            scheme if scheme.contains('.') => {}
            scheme => return Err(UriError::Scheme(scheme.to_owned())),
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where to send the browser when a request presented `presented`: this URI
    /// when the two are the same string, or, for a loopback IP redirect, this URI
    /// with the presented port when they differ in the port alone. `None` when
    /// `presented` is not this URI.
    pub fn target_for(&self, presented: &str) -> Option<String> {
        if presented == self.0 {
            return Some(self.0.clone());
        }
        let (registered, _) = split_loopback_port(&self.0)?;
        let (presented_rest, port) = split_loopback_port(presented)?;
        let port = port?;
        if registered != presented_rest {
            return None;
        }
        let prefix = LOOPBACK_IPS
            .iter()
            .find(|ip| self.0.starts_with(*ip))
            .copied()?;
        let path = &registered[prefix.len()..];
        Some(format!("{prefix}:{port}{path}"))
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for RedirectUri {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A client's back-channel logout endpoint (OpenID Connect Back-Channel Logout 1.0
/// §2.2): an absolute `https` or `http` URL without fragment or user info. Plain
/// `http` is allowed anywhere: tessera posts to it from the server side (often an
/// internal address), and what it posts, a signed logout token, grants nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutUri(String);

impl LogoutUri {
    pub fn parse(input: &str) -> Result<Self, UriError> {
        let url = absolute(input)?;
        // `url` refuses an `http(s)` URL without a host, so these have one.
        match url.scheme() {
            "https" | "http" => Ok(Self(input.to_owned())),
            scheme => Err(UriError::Scheme(scheme.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LogoutUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for LogoutUri {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// The checks every registered URI passes, on the string as written: `url` would
/// quietly drop surrounding spaces and tabs, which must not make two spellings of
/// one registration.
fn absolute(input: &str) -> Result<url::Url, UriError> {
    if input.len() > MAX_LEN {
        return Err(UriError::TooLong);
    }
    if !input.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(UriError::NotPrintable);
    }
    if input.contains('#') {
        return Err(UriError::Fragment);
    }
    let url = url::Url::parse(input).map_err(|_| UriError::NotAbsolute(input.to_owned()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UriError::UserInfo);
    }
    Ok(url)
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A loopback IP URI as written, without its port, and the port (`None` when it
/// has none). `None` for any other URI, or a port that is not 1–65535 in digits.
fn split_loopback_port(uri: &str) -> Option<(String, Option<u16>)> {
    let prefix = LOOPBACK_IPS.iter().find(|ip| uri.starts_with(*ip))?;
    let rest = &uri[prefix.len()..];
    let Some(after_colon) = rest.strip_prefix(':') else {
        return (rest.is_empty() || rest.starts_with(['/', '?'])).then(|| (uri.to_owned(), None));
    };
    let digits = after_colon
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after_colon.len());
    let (port, path) = after_colon.split_at(digits);
    if !(1..=5).contains(&port.len()) || !(path.is_empty() || path.starts_with(['/', '?'])) {
        return None;
    }
    let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
    Some((format!("{prefix}{path}"), Some(port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_that_are_registered() {
        for ok in [
            "https://app.example/callback",
            "https://app.example:8443/cb?tenant=a",
            "http://127.0.0.1/cb",
            "http://127.0.0.1:7000/cb",
            "http://[::1]:7000/cb",
            "http://localhost:3000/cb",
            "com.example.app:/oauth2redirect",
        ] {
            assert_eq!(
                RedirectUri::parse(ok).map(|u| u.0),
                Ok(ok.to_owned()),
                "{ok}"
            );
        }
    }

    #[test]
    fn redirect_uris_that_are_refused() {
        let cases: &[(&str, UriError)] = &[
            ("/callback", UriError::NotAbsolute("/callback".into())),
            ("https://app.example/cb#x", UriError::Fragment),
            ("https://a@app.example/cb", UriError::UserInfo),
            ("https://a:b@app.example/cb", UriError::UserInfo),
            ("http://app.example/cb", UriError::PlainHttp),
            ("http://127.0.0.1.evil.example/cb", UriError::PlainHttp),
            ("javascript:alert(1)", UriError::Scheme("javascript".into())),
            ("data:text/html,hi", UriError::Scheme("data".into())),
            ("myapp:/cb", UriError::Scheme("myapp".into())),
            (" https://app.example/cb", UriError::NotPrintable),
            ("https://app.example/c b", UriError::NotPrintable),
            ("https://app.example/\tcb", UriError::NotPrintable),
            ("https://app.example/caf\u{e9}", UriError::NotPrintable),
        ];
        for (input, error) in cases {
            assert_eq!(RedirectUri::parse(input).as_ref(), Err(error), "{input}");
        }
        let long = format!("https://app.example/{}", "a".repeat(MAX_LEN));
        assert_eq!(RedirectUri::parse(&long), Err(UriError::TooLong));
    }

    #[test]
    fn a_redirect_uri_matches_only_itself() {
        let uri = RedirectUri::parse("https://app.example/cb").unwrap();
        assert_eq!(
            uri.target_for("https://app.example/cb").as_deref(),
            Some("https://app.example/cb")
        );
        for other in [
            "https://app.example/cb/",
            "https://app.example/cb?x=1",
            "https://APP.example/cb",
            "https://app.example:443/cb",
            "https://app.example/cb/../cb",
            "https://app.example/%63b",
            "https://app.example/cb#",
            "https://app.example.evil/cb",
            "http://app.example/cb",
        ] {
            assert_eq!(uri.target_for(other), None, "{other}");
        }
    }

    #[test]
    fn a_loopback_ip_redirect_matches_any_port_and_nothing_else() {
        let uri = RedirectUri::parse("http://127.0.0.1/cb").unwrap();
        assert_eq!(
            uri.target_for("http://127.0.0.1:51234/cb").as_deref(),
            Some("http://127.0.0.1:51234/cb")
        );
        let with_port = RedirectUri::parse("http://[::1]:8080/cb?x=1").unwrap();
        assert_eq!(
            with_port.target_for("http://[::1]:9/cb?x=1").as_deref(),
            Some("http://[::1]:9/cb?x=1")
        );
        for other in [
            "http://127.0.0.1:51234/cb2",
            "http://127.0.0.1:51234/cb/",
            "http://127.0.0.1:0/cb",
            "http://127.0.0.1:65536/cb",
            "http://127.0.0.1:123456/cb",
            "http://127.0.0.1:/cb",
            "http://127.0.0.1:80x/cb",
            "http://127.0.0.1:80@evil.example/cb",
            "http://127.0.0.1.evil.example:80/cb",
            "http://[::1]:80/cb",
            "https://127.0.0.1:80/cb",
        ] {
            assert_eq!(uri.target_for(other), None, "{other}");
        }
        // `localhost` is matched exactly: RFC 8252 §8.3 does not recommend it, and
        // its port rule is for IP literals.
        let localhost = RedirectUri::parse("http://localhost:3000/cb").unwrap();
        assert_eq!(localhost.target_for("http://localhost:3001/cb"), None);
    }

    #[test]
    fn logout_uris() {
        assert!(LogoutUri::parse("https://app.example/backchannel").is_ok());
        assert!(LogoutUri::parse("http://orders.internal:8080/logout").is_ok());
        assert_eq!(
            LogoutUri::parse("com.example.app:/logout"),
            Err(UriError::Scheme("com.example.app".into()))
        );
        assert_eq!(
            LogoutUri::parse("https://app.example/l#x"),
            Err(UriError::Fragment)
        );
    }
}
