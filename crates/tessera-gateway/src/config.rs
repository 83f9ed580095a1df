//! The gateway's configuration: one TOML file, read and checked once at start.
//!
//! Every key is known (`deny_unknown_fields`: a typo is an error, not a silently
//! ignored setting), and every error names the key it is about. The client secret
//! may come from `TESSERA_GATEWAY_CLIENT_SECRET` instead of the file, so that the
//! file can be shared and committed; it never appears in `Debug`.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use http::Uri;
use serde::Deserialize;

use crate::paths;

/// The environment variable that may hold the client secret (it wins over the file).
pub const SECRET_ENV: &str = "TESSERA_GATEWAY_CLIENT_SECRET";
/// tessera's session cookie when it runs with `session.cookie_secure` (the default).
pub const DEFAULT_SESSION_COOKIE: &str = "__Host-tessera-session";
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Auth {
    /// A live session is required; the upstream always gets a JWT.
    #[default]
    Session,
    /// With a live session the upstream gets a JWT, without one the request goes
    /// through without any.
    Optional,
    /// The session is never looked at; cookies pass untouched.
    Anonymous,
}

/// Where a route's requests go: `http://` or `https://`, a host and port, and an
/// optional base path that request paths are appended to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
    /// Without a trailing `/`; empty for none.
    pub base_path: String,
}

impl Upstream {
    fn parse(key: &str, value: &str) -> Result<Self, ConfigError> {
        let uri: Uri = value
            .parse()
            .map_err(|e| invalid(key, format!("{value:?} is not a URL: {e}")))?;
        let scheme = uri
            .scheme()
            .filter(|s| **s == http::uri::Scheme::HTTP || **s == http::uri::Scheme::HTTPS)
            .cloned()
            .ok_or_else(|| invalid(key, format!("{value:?}: use an http:// or https:// URL")))?;
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| invalid(key, format!("{value:?} names no host")))?;
        if authority.as_str().contains('@') {
            return Err(invalid(key, "credentials in the URL are not supported"));
        }
        if uri.query().is_some() {
            return Err(invalid(key, "an upstream URL cannot have a query"));
        }
        Ok(Self {
            scheme,
            authority,
            base_path: uri.path().trim_end_matches('/').to_owned(),
        })
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.base_path)
    }
}

#[derive(Debug, Clone)]
pub struct Route {
    /// Matched against the start of the request path on a segment boundary; the
    /// longest match wins. Kept without a trailing `/` (but `/` for the root):
    /// `/orders` and `/orders/` are one prefix, which matches `/orders` and
    /// `/orders/…`, never `/ordersx`.
    pub prefix: String,
    pub upstream: Upstream,
    /// The JWT's audience (required unless the route is anonymous).
    pub audience: Option<String>,
    pub auth: Auth,
    /// Asked for in the token exchange, and so carried by the JWT.
    pub scopes: Vec<String>,
    /// Remove the prefix from the path sent upstream.
    pub strip_prefix: bool,
    /// Let `%2e`, `%2f`, `%5c` and `\` through (see [`crate::paths::check`]);
    /// dot segments stay refused in every reading of them.
    pub allow_encoded_slashes: bool,
    /// Bind the route's JWTs to the gateway's own key (DPoP): the gateway signs a
    /// fresh proof for every request it forwards, so a token lifted from the
    /// upstream (its logs, a compromised service) is useless anywhere else.
    pub dpop: bool,
}

/// A secret that never shows in `Debug`.
#[derive(Clone)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Where `/metrics`, `/healthz` and `/readyz` are served for operators; by
    /// default `listen` with its port + 10 (7491 for 7481).
    pub management_listen: SocketAddr,
    /// Serve HTTPS with these PEM files (reloaded when they change).
    pub tls: Option<tessera_listener::TlsFiles>,
    /// The URL browsers reach the gateway at, without a trailing `/`; `None`:
    /// `http://` + the address it listens on.
    pub public_url: Option<String>,
    /// tessera's issuer URL, without a trailing `/`.
    pub tessera_url: String,
    pub client_id: String,
    pub client_secret: ClientSecret,
    pub login_url: String,
    pub session_cookie: String,
    pub connect_timeout: Duration,
    pub upstream_timeout: Duration,
    pub trusted_proxies: Vec<IpAddr>,
    pub routes: Vec<Route>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: SocketAddr,
    management_listen: Option<SocketAddr>,
    tls: Option<tessera_listener::TlsFiles>,
    public_url: Option<String>,
    tessera_url: String,
    client_id: String,
    client_secret: Option<String>,
    login_url: String,
    session_cookie: Option<String>,
    connect_timeout: Option<humantime_serde::Serde<Duration>>,
    upstream_timeout: Option<humantime_serde::Serde<Duration>>,
    #[serde(default)]
    trusted_proxies: Vec<IpAddr>,
    #[serde(default, rename = "route")]
    routes: Vec<FileRoute>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRoute {
    prefix: String,
    upstream: String,
    audience: Option<String>,
    #[serde(default)]
    auth: Auth,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    strip_prefix: bool,
    #[serde(default)]
    allow_encoded_slashes: bool,
    #[serde(default)]
    dpop: bool,
}

impl Config {
    /// Reads `path`, with the secret from [`SECRET_ENV`] when that is set.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let secret = std::env::var(SECRET_ENV).ok().filter(|s| !s.is_empty());
        Self::parse(&text, secret).map_err(|error| match error {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses and checks a configuration; `env_secret` overrides `client_secret`.
    pub fn parse(text: &str, env_secret: Option<String>) -> Result<Self, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: "the configuration".to_owned(),
            message: e.to_string(),
        })?;
        let tessera_url = absolute_url("tessera_url", &file.tessera_url)?;
        let login_url = absolute_url("login_url", &file.login_url)?;
        let public_url = file
            .public_url
            .as_deref()
            .map(|u| absolute_url("public_url", u))
            .transpose()?;
        if file.client_id.trim().is_empty() {
            return Err(invalid("client_id", "must not be empty"));
        }
        let client_secret = env_secret
            .or(file.client_secret)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                invalid(
                    "client_secret",
                    format!("missing: set it in the file or in {SECRET_ENV}"),
                )
            })?;
        let session_cookie = file
            .session_cookie
            .unwrap_or_else(|| DEFAULT_SESSION_COOKIE.to_owned());
        if session_cookie.is_empty() || !session_cookie.bytes().all(is_token_byte) {
            return Err(invalid(
                "session_cookie",
                format!("{session_cookie:?} is not a cookie name"),
            ));
        }
        let management_listen = match file.management_listen {
            Some(address) => address,
            None => tessera_core::default_management_address(file.listen).ok_or_else(|| {
                invalid(
                    "management_listen",
                    format!(
                        "the default, the listen port {} + {}, is past 65535: set it",
                        file.listen.port(),
                        tessera_core::MANAGEMENT_PORT_OFFSET
                    ),
                )
            })?,
        };
        if management_listen == file.listen && management_listen.port() != 0 {
            return Err(invalid(
                "management_listen",
                "is the listen address too; the metrics must not be on the public port",
            ));
        }
        let connect_timeout = positive(
            "connect_timeout",
            file.connect_timeout.map_or(DEFAULT_CONNECT_TIMEOUT, |d| *d),
        )?;
        let upstream_timeout = positive(
            "upstream_timeout",
            file.upstream_timeout
                .map_or(DEFAULT_UPSTREAM_TIMEOUT, |d| *d),
        )?;
        if file.routes.is_empty() {
            return Err(invalid(
                "route",
                "no [[route]]: the gateway would refuse everything",
            ));
        }
        let mut prefixes = HashSet::new();
        let routes = file
            .routes
            .into_iter()
            .enumerate()
            .map(|(i, route)| {
                let key = |name: &str| format!("route[{i}].{name}");
                let prefix = canonical_prefix(&key("prefix"), &route.prefix)?;
                if !prefixes.insert(prefix.clone()) {
                    return Err(invalid(
                        key("prefix"),
                        format!(
                            "{:?} is the prefix of an earlier route too (a trailing / makes no difference)",
                            route.prefix
                        ),
                    ));
                }
                let upstream = Upstream::parse(&key("upstream"), &route.upstream)?;
                // Every path sent upstream starts with the base path: one the
                // check refuses would make the route refuse everything.
                if let Err(refusal) = paths::check(&upstream.base_path, route.allow_encoded_slashes)
                {
                    return Err(invalid(
                        key("upstream"),
                        format!("{:?}: {}", route.upstream, refusal.description()),
                    ));
                }
                let audience = route.audience.filter(|a| !a.is_empty());
                if route.auth != Auth::Anonymous && audience.is_none() {
                    return Err(invalid(
                        key("audience"),
                        "a session or optional route needs the audience its JWTs are for",
                    ));
                }
                if route.dpop && route.auth == Auth::Anonymous {
                    return Err(invalid(
                        key("dpop"),
                        "an anonymous route forwards no token to bind",
                    ));
                }
                for scope in &route.scopes {
                    let valid = !scope.is_empty()
                        && scope.len() <= 128
                        && scope.bytes().all(|b| {
                            b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)
                        });
                    if !valid {
                        return Err(invalid(key("scopes"), format!("{scope:?} is not a scope")));
                    }
                }
                Ok(Route {
                    prefix,
                    upstream,
                    audience,
                    auth: route.auth,
                    scopes: route.scopes,
                    strip_prefix: route.strip_prefix,
                    allow_encoded_slashes: route.allow_encoded_slashes,
                    dpop: route.dpop,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            listen: file.listen,
            management_listen,
            tls: file.tls,
            public_url,
            tessera_url,
            client_id: file.client_id,
            client_secret: ClientSecret(client_secret),
            login_url,
            session_cookie,
            connect_timeout,
            upstream_timeout,
            trusted_proxies: file.trusted_proxies,
            routes,
        })
    }
}

/// A route prefix in its one form: without a trailing `/` (the root stays `/`).
/// The prefix must itself be a path the gateway would forward, with no empty
/// segment: routes match the raw path, so a prefix no request can carry is a
/// mistake better reported at start.
fn canonical_prefix(key: &str, value: &str) -> Result<String, ConfigError> {
    if !value.starts_with('/') || value.contains(['?', '#']) {
        return Err(invalid(
            key,
            format!("{value:?} must be a path starting with /"),
        ));
    }
    let stem = value.strip_suffix('/').unwrap_or(value);
    if stem.split('/').skip(1).any(str::is_empty) {
        return Err(invalid(key, format!("{value:?} has an empty segment (//)")));
    }
    if let Err(refusal) = paths::check(value, false) {
        return Err(invalid(
            key,
            format!("{value:?}: {}", refusal.description()),
        ));
    }
    Ok(if stem.is_empty() { "/" } else { stem }.to_owned())
}

/// An `http(s)://host[:port][/path]` URL without a query, returned without a
/// trailing `/`.
fn absolute_url(key: &str, value: &str) -> Result<String, ConfigError> {
    let upstream = Upstream::parse(key, value)?;
    Ok(upstream.to_string())
}

fn positive(key: &str, value: Duration) -> Result<Duration, ConfigError> {
    if value.is_zero() {
        return Err(invalid(key, "must be longer than zero"));
    }
    Ok(value)
}

/// RFC 9110 `tchar`, which is what a cookie name is made of.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const GOOD: &str = r#"
        listen = "127.0.0.1:7481"
        tessera_url = "http://127.0.0.1:7480/"
        client_id = "gw"
        client_secret = "tcs_file"
        login_url = "http://127.0.0.1:7480/login"

        [[route]]
        prefix = "/api/"
        upstream = "http://127.0.0.1:9000"
        audience = "orders"
        scopes = ["orders:read"]

        [[route]]
        prefix = "/"
        upstream = "http://127.0.0.1:9001/static/"
        auth = "anonymous"
        strip_prefix = true
    "#;

    fn error_of(text: &str) -> String {
        Config::parse(text, None).unwrap_err().to_string()
    }

    #[test]
    fn a_good_file_gets_its_defaults() {
        let config = Config::parse(GOOD, None).unwrap();
        assert_eq!(config.tessera_url, "http://127.0.0.1:7480");
        assert_eq!(config.public_url, None);
        assert_eq!(config.session_cookie, DEFAULT_SESSION_COOKIE);
        assert_eq!(config.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(config.upstream_timeout, DEFAULT_UPSTREAM_TIMEOUT);
        assert_eq!(config.routes[0].auth, Auth::Session);
        assert!(!config.routes[0].strip_prefix);
        assert_eq!(config.routes[1].auth, Auth::Anonymous);
        assert_eq!(config.routes[1].audience, None);
        assert_eq!(config.routes[1].upstream.base_path, "/static");
        assert_eq!(config.client_secret.expose(), "tcs_file");
        assert_eq!(
            config.management_listen,
            "127.0.0.1:7491".parse::<SocketAddr>().unwrap()
        );
    }

    #[test]
    fn the_management_listener_is_never_the_public_port() {
        let error = error_of(&GOOD.replace(
            "listen = ",
            "management_listen = \"127.0.0.1:7481\"\nlisten = ",
        ));
        assert!(error.contains("management_listen"), "{error}");
        let error = error_of(&GOOD.replace("127.0.0.1:7481", "127.0.0.1:65530"));
        assert!(error.contains("management_listen"), "{error}");
        let moved = GOOD.replace("listen = ", "management_listen = \"[::1]:9999\"\nlisten = ");
        assert_eq!(
            Config::parse(&moved, None).unwrap().management_listen,
            "[::1]:9999".parse::<SocketAddr>().unwrap()
        );
    }

    #[test]
    fn the_secret_from_the_environment_wins_and_never_shows() {
        let config = Config::parse(GOOD, Some("tcs_env".into())).unwrap();
        assert_eq!(config.client_secret.expose(), "tcs_env");
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("tcs_env") && debug.contains("<redacted>"),
            "{debug}"
        );
        let without = GOOD.replace("client_secret = \"tcs_file\"", "");
        assert!(error_of(&without).starts_with("client_secret: missing"));
        assert!(Config::parse(&without, Some("tcs_env".into())).is_ok());
    }

    #[test]
    fn an_anonymous_route_cannot_ask_for_dpop() {
        let error =
            error_of(&GOOD.replace("auth = \"anonymous\"", "auth = \"anonymous\"\ndpop = true"));
        assert!(error.contains(".dpop: an anonymous route"), "{error}");
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let error = error_of(&GOOD.replace("listen =", "listn = \"x\"\nlisten ="));
        assert!(error.contains("unknown field `listn`"), "{error}");
        let error = error_of(&GOOD.replace("strip_prefix = true", "strip = true"));
        assert!(error.contains("unknown field `strip`"), "{error}");
        let error = error_of(&GOOD.replace("strip_prefix = true", "allow_encoded_slash = true"));
        assert!(
            error.contains("unknown field `allow_encoded_slash`")
                && error.contains("allow_encoded_slashes"),
            "{error}"
        );
    }

    #[test]
    fn prefixes_are_kept_without_their_trailing_slash() {
        let config = Config::parse(GOOD, None).unwrap();
        assert_eq!(config.routes[0].prefix, "/api");
        assert_eq!(config.routes[1].prefix, "/");
        assert!(!config.routes[0].allow_encoded_slashes);
        let text = GOOD.replace("prefix = \"/api/\"", "prefix = \"/api/v2\"");
        assert_eq!(
            Config::parse(&text, None).unwrap().routes[0].prefix,
            "/api/v2"
        );
    }

    #[test]
    fn prefixes_and_base_paths_must_be_paths_the_gateway_forwards() {
        for (from, to, expected) in [
            // One prefix, however it is written.
            ("prefix = \"/\"", "prefix = \"/api\"", "route[1].prefix"),
            (
                "prefix = \"/api/\"",
                "prefix = \"/api//\"",
                "route[0].prefix",
            ),
            ("prefix = \"/api/\"", "prefix = \"//\"", "route[0].prefix"),
            (
                "prefix = \"/api/\"",
                "prefix = \"/a//b\"",
                "route[0].prefix",
            ),
            (
                "prefix = \"/api/\"",
                "prefix = \"/a/../b\"",
                "route[0].prefix",
            ),
            (
                "prefix = \"/api/\"",
                "prefix = \"/a/%2E%2e\"",
                "route[0].prefix",
            ),
            (
                "prefix = \"/api/\"",
                "prefix = \"/a%2fb\"",
                "route[0].prefix",
            ),
            (
                "prefix = \"/api/\"",
                "prefix = \"/a\\\\b\"",
                "route[0].prefix",
            ),
            (
                "\"http://127.0.0.1:9001/static/\"",
                "\"http://127.0.0.1:9001/a/../static/\"",
                "route[1].upstream",
            ),
            (
                "\"http://127.0.0.1:9001/static/\"",
                "\"http://127.0.0.1:9001/a%2fb/\"",
                "route[1].upstream",
            ),
        ] {
            let text = GOOD.replacen(from, to, 1);
            assert_ne!(text, GOOD, "{from} is not in the sample");
            let error = error_of(&text);
            assert!(error.starts_with(expected), "{expected}: {error}");
        }
        // A route that allows encoded slashes may have them in its base path,
        // never a dot segment.
        let allowing = GOOD.replace(
            "strip_prefix = true",
            "strip_prefix = true\nallow_encoded_slashes = true",
        );
        let config = Config::parse(&allowing.replace("/static/\"", "/a%2fb/\""), None).unwrap();
        assert!(config.routes[1].allow_encoded_slashes);
        assert_eq!(config.routes[1].upstream.base_path, "/a%2fb");
        let error = error_of(&allowing.replace("/static/\"", "/a%2f..%2fb/\""));
        assert!(error.starts_with("route[1].upstream"), "{error}");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (from, to, expected) in [
            (
                "auth = \"anonymous\"",
                "auth = \"maybe\"",
                "unknown variant `maybe`",
            ),
            ("audience = \"orders\"", "", "route[0].audience"),
            ("prefix = \"/api/\"", "prefix = \"api\"", "route[0].prefix"),
            ("prefix = \"/\"", "prefix = \"/api/\"", "route[1].prefix"),
            (
                "\"http://127.0.0.1:9000\"",
                "\"ftp://127.0.0.1:9000\"",
                "route[0].upstream",
            ),
            (
                "\"http://127.0.0.1:9000\"",
                "\"http://127.0.0.1:9000/?a=b\"",
                "route[0].upstream",
            ),
            ("[\"orders:read\"]", "[\"orders read\"]", "route[0].scopes"),
            (
                "login_url = \"http://127.0.0.1:7480/login\"",
                "login_url = \"/login\"",
                "login_url",
            ),
            (
                "tessera_url = \"http://127.0.0.1:7480/\"",
                "tessera_url = \"127.0.0.1:7480\"",
                "tessera_url",
            ),
            (
                "client_id = \"gw\"",
                "client_id = \"gw\"\nsession_cookie = \"a b\"",
                "session_cookie",
            ),
            (
                "client_id = \"gw\"",
                "client_id = \"gw\"\nupstream_timeout = \"0s\"",
                "upstream_timeout",
            ),
            (
                "client_id = \"gw\"",
                "client_id = \"gw\"\nconnect_timeout = \"soon\"",
                "connect_timeout",
            ),
            ("listen = \"127.0.0.1:7481\"", "listen = \"here\"", "listen"),
        ] {
            let text = GOOD.replacen(from, to, 1);
            assert_ne!(text, GOOD, "{from} is not in the sample");
            let error = error_of(&text);
            assert!(error.contains(expected), "{expected}: {error}");
        }
        let error = error_of(&GOOD[..GOOD.find("[[route]]").unwrap()]);
        assert!(error.starts_with("route:"), "{error}");
    }

    #[test]
    fn timeouts_are_humantime() {
        let text = GOOD.replace(
            "client_id = \"gw\"",
            "client_id = \"gw\"\nconnect_timeout = \"250ms\"\nupstream_timeout = \"2m\"",
        );
        let config = Config::parse(&text, None).unwrap();
        assert_eq!(config.connect_timeout, Duration::from_millis(250));
        assert_eq!(config.upstream_timeout, Duration::from_secs(120));
    }
}
