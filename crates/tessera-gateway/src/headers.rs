//! The header rules, as pure functions over a `HeaderMap` so that each is tested on
//! its own.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
/// The prefix of the headers the gateway owns: a client can never set them.
const TESSERA_PREFIX: &str = "x-tessera-";
const MAX_REQUEST_ID: usize = 128;

/// Removes the hop-by-hop headers (RFC 9110 §7.6.1): `Connection` and every header
/// it names, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`,
/// `Transfer-Encoding` and `Upgrade`. They describe one connection, not the
/// message: passed on, they would make the next hop frame or keep the connection
/// as the previous one asked (request smuggling, stuck connections). For an
/// upgrade (`upgrade`), `Connection: upgrade` and the `Upgrade` header are put
/// back, since the upgrade is exactly what must reach the other side.
pub fn remove_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let upgrade_value = upgrade
        .then(|| headers.get(header::UPGRADE).cloned())
        .flatten();
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        KEEP_ALIVE,
        PROXY_CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    if let Some(value) = upgrade_value {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, value);
    }
}

/// Whether `Connection` names `upgrade` and an `Upgrade` header says to what: an
/// HTTP/1.1 upgrade request such as a WebSocket handshake.
pub fn asks_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// Takes the cookie `name` out of the `Cookie` headers, keeping every other cookie
/// (in their order, in one header), and dropping the header if nothing is left.
/// Returns the first non-empty value found. Works on bytes: a `Cookie` header that
/// is not UTF-8 is still searched, so that it cannot smuggle the session past.
pub fn take_cookie(headers: &mut HeaderMap, name: &str) -> Option<String> {
    if !headers.contains_key(header::COOKIE) {
        return None;
    }
    let mut found = None;
    let mut kept: Vec<&[u8]> = Vec::new();
    let values: Vec<HeaderValue> = headers.get_all(header::COOKIE).iter().cloned().collect();
    for value in &values {
        for pair in value.as_bytes().split(|b| *b == b';') {
            let pair = pair.trim_ascii();
            if pair.is_empty() {
                continue;
            }
            let (key, val) = match pair.iter().position(|b| *b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            if key.trim_ascii() == name.as_bytes() {
                if found.is_none() && !val.is_empty() {
                    found = std::str::from_utf8(val.trim_ascii())
                        .ok()
                        .map(str::to_owned);
                }
            } else {
                kept.push(pair);
            }
        }
    }
    headers.remove(header::COOKIE);
    if !kept.is_empty() {
        let joined = kept.join(&b"; "[..]);
        // Parts of a valid header value joined by "; " are a valid header value.
        if let Ok(value) = HeaderValue::from_bytes(&joined) {
            headers.insert(header::COOKIE, value);
        }
    }
    found
}

/// Removes every `X-Tessera-*` header: those are the gateway's to set, and an
/// upstream that trusted one a client forged would take the client's word for
/// who it is.
pub fn remove_owned(headers: &mut HeaderMap) {
    let owned: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with(TESSERA_PREFIX))
        .cloned()
        .collect();
    for name in owned {
        headers.remove(name);
    }
}

/// The client's `X-Request-Id` when it is sane (one header, 1 to 128 visible ASCII
/// characters: it ends up in logs), else a new UUID.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    let mut sent = headers.get_all(X_REQUEST_ID).iter();
    match (sent.next(), sent.next()) {
        (Some(value), None)
            if (1..=MAX_REQUEST_ID).contains(&value.len())
                && value.as_bytes().iter().all(|b| (0x21..=0x7e).contains(b)) =>
        {
            value.clone()
        }
        _ => {
            let id = uuid::Uuid::now_v7().to_string();
            HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("-"))
        }
    }
}

/// Sets `X-Forwarded-For`, `-Proto` and `-Host` for the upstream. From a trusted
/// proxy, what it sent is kept (`For` gets the peer appended); from anyone else it
/// is replaced, since a client could claim any address. `Forwarded` (RFC 7239)
/// from an untrusted peer is dropped for the same reason.
pub fn set_forwarded(
    headers: &mut HeaderMap,
    peer: IpAddr,
    trusted: bool,
    host: Option<HeaderValue>,
) {
    let peer_value = HeaderValue::from_str(&peer.to_string()).ok();
    if trusted {
        let sent: Vec<&str> = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let chain = if sent.is_empty() {
            peer.to_string()
        } else {
            format!("{}, {peer}", sent.join(", "))
        };
        if let Ok(value) = HeaderValue::from_str(&chain) {
            headers.insert(X_FORWARDED_FOR, value);
        }
        if !headers.contains_key(X_FORWARDED_PROTO) {
            headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
        }
        if !headers.contains_key(X_FORWARDED_HOST)
            && let Some(host) = host
        {
            headers.insert(X_FORWARDED_HOST, host);
        }
    } else {
        headers.remove(header::FORWARDED);
        headers.remove(X_FORWARDED_FOR);
        if let Some(value) = peer_value {
            headers.insert(X_FORWARDED_FOR, value);
        }
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
        match host {
            Some(host) => {
                headers.insert(X_FORWARDED_HOST, host);
            }
            None => {
                headers.remove(X_FORWARDED_HOST);
            }
        }
    }
}

/// A browser navigating to a page (`GET`/`HEAD` that accepts `text/html`): it is
/// sent to log in; anything else (an API call) gets a 401 it can act on.
pub fn is_navigation(method: &http::Method, headers: &HeaderMap) -> bool {
    (method == http::Method::GET || method == http::Method::HEAD)
        && headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("text/html"))
}

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `login_url` with `return_to` = the URL the browser asked for, percent-encoded.
pub fn login_redirect(login_url: &str, public_url: &str, path_and_query: &str) -> String {
    let return_to = format!("{public_url}{path_and_query}");
    let separator = if login_url.contains('?') { '&' } else { '?' };
    format!(
        "{login_url}{separator}return_to={}",
        utf8_percent_encode(&return_to, QUERY_VALUE)
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    fn names(headers: &HeaderMap) -> Vec<&str> {
        let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_go() {
        let mut headers = map(&[
            ("connection", "keep-alive, X-Secret"),
            ("connection", "close"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-checksum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("accept", "*/*"),
        ]);
        remove_hop_by_hop(&mut headers, false);
        assert_eq!(names(&headers), ["accept"]);
    }

    #[test]
    fn an_upgrade_keeps_exactly_its_upgrade() {
        let mut headers = map(&[
            ("connection", "Upgrade, x-private"),
            ("x-private", "1"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("keep-alive", "timeout=5"),
        ]);
        assert!(asks_upgrade(&headers));
        remove_hop_by_hop(&mut headers, true);
        assert_eq!(
            names(&headers),
            ["connection", "sec-websocket-key", "upgrade"]
        );
        assert_eq!(headers[header::CONNECTION], "upgrade");
        assert_eq!(headers[header::UPGRADE], "websocket");
        assert!(!asks_upgrade(&map(&[("upgrade", "websocket")])));
        assert!(!asks_upgrade(&map(&[("connection", "upgrade")])));
    }

    #[test]
    fn the_session_cookie_is_taken_and_the_others_kept() {
        let mut headers = map(&[
            (
                "cookie",
                "theme=dark; __Host-tessera-session=tss_abc; lang=en",
            ),
            ("cookie", "cart=3"),
        ]);
        let value = take_cookie(&mut headers, "__Host-tessera-session");
        assert_eq!(value.as_deref(), Some("tss_abc"));
        assert_eq!(
            headers.get_all(header::COOKIE).iter().collect::<Vec<_>>(),
            ["theme=dark; lang=en; cart=3"]
        );

        let mut alone = map(&[("cookie", "__Host-tessera-session=tss_abc")]);
        assert!(take_cookie(&mut alone, "__Host-tessera-session").is_some());
        assert!(
            !alone.contains_key(header::COOKIE),
            "nothing left: no header"
        );

        // Every copy goes, the first non-empty one counts; a prefix of the name is
        // another cookie.
        let mut copies = map(&[(
            "cookie",
            "__Host-tessera-session=; __Host-tessera-session=tss_1;__Host-tessera-session=tss_2; __Host-tessera-sessionx=y",
        )]);
        assert_eq!(
            take_cookie(&mut copies, "__Host-tessera-session").as_deref(),
            Some("tss_1")
        );
        assert_eq!(copies[header::COOKIE], "__Host-tessera-sessionx=y");

        let mut none = map(&[("cookie", "a=1")]);
        assert_eq!(take_cookie(&mut none, "__Host-tessera-session"), None);
        assert_eq!(none[header::COOKIE], "a=1");
    }

    #[test]
    fn a_cookie_header_that_is_not_utf8_still_loses_the_session() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_bytes(b"name=caf\xe9; s=tss_x").unwrap(),
        );
        assert_eq!(take_cookie(&mut headers, "s").as_deref(), Some("tss_x"));
        assert_eq!(headers[header::COOKIE].as_bytes(), b"name=caf\xe9");
    }

    #[test]
    fn tessera_headers_are_the_gateways() {
        let mut headers = map(&[
            ("x-tessera-user", "admin"),
            ("X-Tessera-Roles", "admin"),
            ("x-tesserae", "kept"),
            ("accept", "*/*"),
        ]);
        remove_owned(&mut headers);
        assert_eq!(names(&headers), ["accept", "x-tesserae"]);
    }

    #[test]
    fn request_ids_are_kept_when_sane() {
        let sane = map(&[("x-request-id", "abc-123")]);
        assert_eq!(request_id(&sane), "abc-123");
        let long = "a".repeat(129);
        for bad in [
            map(&[("x-request-id", "has space")]),
            map(&[("x-request-id", long.as_str())]),
            map(&[("x-request-id", "")]),
            map(&[("x-request-id", "a"), ("x-request-id", "b")]),
            HeaderMap::new(),
        ] {
            let id = request_id(&bad);
            assert!(
                uuid::Uuid::parse_str(id.to_str().unwrap()).is_ok(),
                "{id:?}"
            );
        }
    }

    #[test]
    fn forwarded_headers_come_from_the_connection_unless_the_peer_is_trusted() {
        let forged = || {
            map(&[
                ("x-forwarded-for", "1.2.3.4"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "evil.example"),
                ("forwarded", "for=1.2.3.4"),
            ])
        };
        let peer: IpAddr = "10.0.0.7".parse().unwrap();
        let host = Some(HeaderValue::from_static("app.example"));

        let mut headers = forged();
        set_forwarded(&mut headers, peer, false, host.clone());
        assert_eq!(headers[X_FORWARDED_FOR], "10.0.0.7");
        assert_eq!(headers[X_FORWARDED_PROTO], "http");
        assert_eq!(headers[X_FORWARDED_HOST], "app.example");
        assert!(!headers.contains_key(header::FORWARDED));

        let mut headers = forged();
        set_forwarded(&mut headers, peer, true, host.clone());
        assert_eq!(headers[X_FORWARDED_FOR], "1.2.3.4, 10.0.0.7");
        assert_eq!(headers[X_FORWARDED_PROTO], "https");
        assert_eq!(headers[X_FORWARDED_HOST], "evil.example");

        let mut headers = HeaderMap::new();
        set_forwarded(&mut headers, peer, true, host);
        assert_eq!(headers[X_FORWARDED_FOR], "10.0.0.7");
        assert_eq!(headers[X_FORWARDED_PROTO], "http");
        assert_eq!(headers[X_FORWARDED_HOST], "app.example");
    }

    #[test]
    fn navigations_are_page_loads() {
        let html = map(&[("accept", "text/html,application/xhtml+xml,*/*;q=0.8")]);
        let json = map(&[("accept", "application/json")]);
        assert!(is_navigation(&http::Method::GET, &html));
        assert!(is_navigation(&http::Method::HEAD, &html));
        assert!(!is_navigation(&http::Method::POST, &html));
        assert!(!is_navigation(&http::Method::GET, &json));
        assert!(!is_navigation(&http::Method::GET, &HeaderMap::new()));
    }

    #[test]
    fn the_login_redirect_carries_the_public_url_encoded() {
        assert_eq!(
            login_redirect(
                "http://id.example/login",
                "https://app.example",
                "/orders?id=1&x=a b"
            ),
            "http://id.example/login?return_to=https%3A%2F%2Fapp.example%2Forders%3Fid%3D1%26x%3Da%20b"
        );
        assert!(
            login_redirect("http://id.example/login?lang=en", "http://a", "/")
                .starts_with("http://id.example/login?lang=en&return_to=")
        );
    }
}
