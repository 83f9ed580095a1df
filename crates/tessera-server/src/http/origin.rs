//! Web origins (scheme, host, port) as browsers send them in the `Origin` header.

use std::fmt;

use http::Uri;

#[derive(Clone, PartialEq, Eq)]
pub struct Origin(String);

impl Origin {
    /// Parses an origin or a URL (its path is dropped), lower-cased, with the
    /// scheme's default port removed, so `HTTPS://Example.com:443/x` and
    /// `https://example.com` are the same origin.
    pub fn parse(input: &str) -> Result<Self, String> {
        let uri: Uri = input
            .parse()
            .map_err(|_| format!("{input:?} is not a URL"))?;
        let scheme = uri
            .scheme_str()
            .map(str::to_ascii_lowercase)
            .ok_or_else(|| format!("{input:?} has no scheme"))?;
        if scheme != "http" && scheme != "https" {
            return Err(format!("{input:?} is neither http nor https"));
        }
        let host = uri
            .host()
            .map(str::to_ascii_lowercase)
            .ok_or_else(|| format!("{input:?} has no host"))?;
        let default_port = if scheme == "https" { 443 } else { 80 };
        Ok(Self(match uri.port_u16() {
            Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
            _ => format!("{scheme}://{host}"),
        }))
    }

    /// The serialised origin, as browsers send it (`https://host[:port]`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn normalises() {
        assert_eq!(
            Origin::parse("HTTPS://Example.com:443/path").unwrap(),
            Origin::parse("https://example.com").unwrap()
        );
        assert_ne!(
            Origin::parse("http://example.com:8080").unwrap(),
            Origin::parse("http://example.com").unwrap()
        );
        assert!(Origin::parse("null").is_err());
        assert!(Origin::parse("ftp://x").is_err());
    }
}
