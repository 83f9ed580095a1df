//! One request through the gateway: pick the route, turn the session into a JWT,
//! rewrite the headers, forward with the body streaming, and bring the answer (or
//! the upgraded connection) back.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode, Uri, Version, header};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use tessera_proto::ErrorBody;
use tessera_proto::error as codes;

use crate::config::{Auth, Config, Route};
use crate::error::StartError;
use crate::headers::{self, X_REQUEST_ID};
use crate::paths;
use crate::sessions::{Outcome, Profile, Sessions};

/// What the gateway answers with: the upstream's body, streamed, or its own.
pub type Body = Either<Incoming, Full<Bytes>>;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

struct CompiledRoute {
    route: Route,
    /// Index into the session profiles; `None` for anonymous routes.
    profile: Option<usize>,
}

/// The gateway: its routes, the session-to-token flow and the upstream client.
pub struct Gateway {
    /// Longest prefix first, so the first match is the longest.
    routes: Vec<CompiledRoute>,
    sessions: Option<Sessions>,
    client: Client<Connector, Incoming>,
    session_cookie: String,
    login_url: String,
    public_url: String,
    upstream_timeout: Duration,
    trusted_proxies: Vec<IpAddr>,
}

impl Gateway {
    /// Builds the gateway for `config`, reached by browsers at `public_url`. With
    /// any route that looks at sessions, this reads tessera's metadata and keys
    /// and starts following its revocation feed, so tessera must be up.
    pub async fn new(config: Config, public_url: String) -> Result<Self, StartError> {
        let mut profiles: Vec<Profile> = Vec::new();
        let mut routes: Vec<CompiledRoute> =
            config
                .routes
                .into_iter()
                .map(|route| {
                    let profile =
                        match (&route.auth, &route.audience) {
                            (Auth::Anonymous, _) | (_, None) => None,
                            (_, Some(audience)) => {
                                let wanted = Profile {
                                    audience: audience.clone(),
                                    scope: route.scopes.join(" "),
                                    dpop: route.dpop,
                                };
                                Some(profiles.iter().position(|p| *p == wanted).unwrap_or_else(
                                    || {
                                        profiles.push(wanted);
                                        profiles.len() - 1
                                    },
                                ))
                            }
                        };
                    CompiledRoute { route, profile }
                })
                .collect();
        routes.sort_by_key(|r| std::cmp::Reverse(r.route.prefix.len()));

        let sessions = if profiles.is_empty() {
            None
        } else {
            let mut builder = tessera_verify::RemoteVerifier::builder(&config.tessera_url).client(
                tessera_verify::ClientCredentials::new(
                    config.client_id.clone(),
                    config.client_secret.expose(),
                ),
            );
            let mut audiences: Vec<&str> = profiles.iter().map(|p| p.audience.as_str()).collect();
            audiences.dedup();
            for audience in audiences {
                builder = builder.audience(audience);
            }
            let verifier = builder
                .build()
                .await
                .map_err(|source| StartError::Tessera {
                    url: config.tessera_url.clone(),
                    source,
                })?;
            let dpop = profiles
                .iter()
                .any(|p| p.dpop)
                .then(crate::dpop::DpopKey::generate)
                .transpose()
                .map_err(|e| StartError::Http(e.to_string()))?;
            Some(
                Sessions::new(
                    verifier,
                    config.client_id,
                    config.client_secret,
                    profiles,
                    config.connect_timeout,
                    dpop,
                )
                .map_err(|e| StartError::Http(e.to_string()))?,
            )
        };

        let needs_tls = routes
            .iter()
            .any(|r| r.route.upstream.scheme == http::uri::Scheme::HTTPS);
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_nodelay(true);
        http.enforce_http(false);
        let connector = crate::tls::connector(http, needs_tls)?;
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(Self {
            routes,
            sessions,
            client,
            session_cookie: config.session_cookie,
            login_url: config.login_url,
            public_url,
            upstream_timeout: config.upstream_timeout,
            trusted_proxies: config
                .trusted_proxies
                .iter()
                .map(IpAddr::to_canonical)
                .collect(),
        })
    }

    /// The verifier following tessera's revocation feed, when a route uses sessions.
    pub fn verifier(&self) -> Option<&tessera_verify::RemoteVerifier> {
        self.sessions.as_ref().map(Sessions::verifier)
    }

    /// Answers one request from `peer`. Every answer carries the request's
    /// `X-Request-Id`, the gateway's own errors too.
    pub async fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let started = std::time::Instant::now();
        let request_id = headers::request_id(request.headers());
        let method = request.method().clone();
        let compiled = self.route_for(request.uri().path());
        let mut response = self.forward(compiled, request, peer, &request_id).await;
        response.headers_mut().insert(X_REQUEST_ID, request_id);
        // The route's prefix as configured: a handful of values, never the path.
        let route = compiled.map_or("unmatched", |c| c.route.prefix.as_str());
        metrics::counter!(
            "tessera_gateway_requests_total",
            "route" => route.to_owned(),
            "method" => method.as_str().to_owned(),
            "status" => response.status().as_str().to_owned()
        )
        .increment(1);
        let elapsed = started.elapsed();
        metrics::histogram!("tessera_gateway_request_duration_seconds", "route" => route.to_owned())
            .record(elapsed.as_secs_f64());
        // One line per request, as tessera's own: the route's prefix (never the
        // path as sent), the status, the time, the request id. Never a header.
        tracing::info!(
            target: "tessera::request",
            method = %method,
            route,
            status = response.status().as_u16(),
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            request_id = response
                .headers()
                .get(X_REQUEST_ID)
                .and_then(|id| id.to_str().ok())
                .unwrap_or("-"),
            "request"
        );
        response
    }

    /// The revocation feed's state (see [`Sessions::feed`]); a gateway without
    /// session routes follows no feed and is always fresh.
    pub fn feed(&self) -> (Option<Duration>, bool) {
        self.sessions.as_ref().map_or((None, true), Sessions::feed)
    }

    fn route_for(&self, path: &str) -> Option<&CompiledRoute> {
        self.routes
            .iter()
            .find(|r| paths::matches(&r.route.prefix, path))
    }

    async fn forward(
        &self,
        compiled: Option<&CompiledRoute>,
        mut request: Request<Incoming>,
        peer: SocketAddr,
        request_id: &HeaderValue,
    ) -> Response<Body> {
        let Some(compiled) = compiled else {
            return error(StatusCode::NOT_FOUND, "not_found", "no route for this path");
        };
        let route = &compiled.route;
        // Before the session: a path that will not be forwarded costs no token
        // exchange, and is no reason to send a browser to log in.
        let uri = match upstream_uri(route, request.uri()) {
            Ok(uri) => uri,
            Err(description) => {
                return error(StatusCode::BAD_REQUEST, codes::INVALID_REQUEST, description);
            }
        };
        let upgrade =
            request.version() == Version::HTTP_11 && headers::asks_upgrade(request.headers());
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
        let (mut parts, body) = request.into_parts();

        let token = match (route.auth, compiled.profile, &self.sessions) {
            (Auth::Anonymous, _, _) => None,
            (_, Some(profile), Some(sessions)) => {
                parts.headers.remove(header::AUTHORIZATION);
                match headers::take_cookie(&mut parts.headers, &self.session_cookie) {
                    None => None,
                    Some(cookie) => match sessions.token_for(&cookie, profile).await {
                        Ok(Outcome::Token(jwt)) => Some(jwt),
                        Ok(Outcome::NoSession) => None,
                        Err(_) => {
                            let mut response = error(
                                StatusCode::SERVICE_UNAVAILABLE,
                                codes::TEMPORARILY_UNAVAILABLE,
                                "sessions cannot be checked right now; try again shortly",
                            );
                            response
                                .headers_mut()
                                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                            return response;
                        }
                    },
                }
            }
            // Config makes every session and optional route name an audience.
            _ => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    codes::SERVER_ERROR,
                    "this route has no audience",
                );
            }
        };
        if route.auth == Auth::Session && token.is_none() {
            return self.no_session(&parts);
        }

        let host = parts.headers.get(header::HOST).cloned().or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        headers::remove_owned(&mut parts.headers);
        headers::remove_hop_by_hop(&mut parts.headers, upgrade);
        // The upstream gets its own authority as Host (set by the client from the
        // URI); the one the browser used goes in X-Forwarded-Host.
        parts.headers.remove(header::HOST);
        let peer_ip = peer.ip().to_canonical();
        headers::set_forwarded(
            &mut parts.headers,
            peer_ip,
            self.trusted_proxies.contains(&peer_ip),
            host,
        );
        parts.headers.insert(X_REQUEST_ID, request_id.clone());
        // A route with sessions speaks for the browser: whatever proof a client
        // sent is not the gateway's (an anonymous route passes both through).
        if route.auth != Auth::Anonymous {
            parts.headers.remove(tessera_proto::token_type::DPOP_HEADER);
        }
        if let Some(jwt) = &token {
            // A bound token goes with a proof for this very request: the method
            // and the upstream URL (no query), as the upstream checks them.
            let proof = match (route.dpop, &self.sessions) {
                (true, Some(sessions)) => {
                    let htu = format!(
                        "{}://{}{}",
                        uri.scheme_str().unwrap_or("http"),
                        uri.authority().map_or("", |a| a.as_str()),
                        uri.path()
                    );
                    match sessions.proof(parts.method.as_str(), &htu, jwt) {
                        Some(proof) => Some(proof),
                        None => {
                            return error(
                                StatusCode::SERVICE_UNAVAILABLE,
                                codes::TEMPORARILY_UNAVAILABLE,
                                "the gateway cannot sign a DPoP proof right now",
                            );
                        }
                    }
                }
                _ => None,
            };
            let scheme = if proof.is_some() { "DPoP" } else { "Bearer" };
            if let Ok(value) = HeaderValue::from_str(&format!("{scheme} {jwt}")) {
                parts.headers.insert(header::AUTHORIZATION, value);
            }
            if let Some(value) = proof.and_then(|p| HeaderValue::from_str(&p).ok()) {
                parts
                    .headers
                    .insert(tessera_proto::token_type::DPOP_HEADER, value);
            }
        }
        parts.uri = uri;
        parts.version = Version::HTTP_11;

        let sent = self.client.request(Request::from_parts(parts, body));
        let asked = std::time::Instant::now();
        let answered = tokio::time::timeout(self.upstream_timeout, sent).await;
        metrics::histogram!(
            "tessera_gateway_upstream_duration_seconds",
            "route" => route.prefix.clone()
        )
        .record(asked.elapsed().as_secs_f64());
        let mut response = match answered {
            Err(_) => {
                tracing::warn!(upstream = %route.upstream, "the upstream did not answer in time");
                return error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "gateway_timeout",
                    format!(
                        "the upstream did not answer within {}",
                        humantime::format_duration(self.upstream_timeout)
                    ),
                );
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %error_chain(&e), upstream = %route.upstream, "upstream request failed");
                return error(
                    StatusCode::BAD_GATEWAY,
                    "bad_gateway",
                    if e.is_connect() {
                        "the upstream cannot be reached"
                    } else {
                        "the upstream failed to answer"
                    },
                );
            }
            Ok(Ok(response)) => response,
        };

        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            let Some(client_upgrade) = client_upgrade else {
                return error(
                    StatusCode::BAD_GATEWAY,
                    "bad_gateway",
                    "the upstream switched protocols unasked",
                );
            };
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            tokio::spawn(async move {
                match tokio::try_join!(client_upgrade, upstream_upgrade) {
                    Ok((client, upstream)) => {
                        let mut client = TokioIo::new(client);
                        let mut upstream = TokioIo::new(upstream);
                        if let Err(error) =
                            tokio::io::copy_bidirectional(&mut client, &mut upstream).await
                        {
                            tracing::debug!(%error, "upgraded connection ended with an error");
                        }
                    }
                    Err(error) => tracing::debug!(%error, "the upgrade did not complete"),
                }
            });
            let (mut parts, _) = response.into_parts();
            headers::remove_hop_by_hop(&mut parts.headers, true);
            return Response::from_parts(parts, Either::Right(Full::new(Bytes::new())));
        }

        let (mut parts, body) = response.into_parts();
        headers::remove_hop_by_hop(&mut parts.headers, false);
        Response::from_parts(parts, Either::Left(body))
    }

    /// A `session` route without a live session: browsers navigating go to log in
    /// and come back; API calls get a 401 they can act on.
    fn no_session(&self, parts: &Parts) -> Response<Body> {
        if headers::is_navigation(&parts.method, &parts.headers) {
            let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let location =
                headers::login_redirect(&self.login_url, &self.public_url, path_and_query);
            if let Ok(location) = HeaderValue::from_str(&location) {
                let mut response = Response::new(Either::Right(Full::new(Bytes::new())));
                *response.status_mut() = StatusCode::FOUND;
                let h = response.headers_mut();
                h.insert(header::LOCATION, location);
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                return response;
            }
        }
        error(
            StatusCode::UNAUTHORIZED,
            codes::UNAUTHENTICATED,
            "no valid session: log in first",
        )
    }
}

/// The gateway's own answers: `{"error", "error_description"}`, as tessera's.
pub fn error(
    status: StatusCode,
    code: &'static str,
    description: impl Into<String>,
) -> Response<Body> {
    let body = ErrorBody::new(code, description.into());
    let body = serde_json::to_string(&body).unwrap_or_default();
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Where the request goes: the upstream's scheme, authority and the path of
/// [`paths::upstream_path`], then the query as the client sent it. The path is
/// checked ([`paths::check`]) as it stands in the built URI, which is what the
/// upstream's request line carries, so nothing is sent that was not checked.
fn upstream_uri(route: &Route, uri: &Uri) -> Result<Uri, &'static str> {
    const UNFORWARDABLE: &str = "the request target cannot be forwarded";
    let mut target = paths::upstream_path(
        &route.prefix,
        route.strip_prefix,
        &route.upstream.base_path,
        uri.path(),
    )
    .ok_or(UNFORWARDABLE)?;
    if let Some(query) = uri.query() {
        target.push('?');
        target.push_str(query);
    }
    let built = Uri::builder()
        .scheme(route.upstream.scheme.clone())
        .authority(route.upstream.authority.clone())
        .path_and_query(target)
        .build()
        .map_err(|_| UNFORWARDABLE)?;
    paths::check(built.path(), route.allow_encoded_slashes).map_err(paths::Refusal::description)?;
    Ok(built)
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::config::Upstream;

    fn route(prefix: &str, upstream: &str, strip_prefix: bool, allow: bool) -> Route {
        let uri: Uri = upstream.parse().unwrap();
        Route {
            prefix: prefix.to_owned(),
            upstream: Upstream {
                scheme: uri.scheme().unwrap().clone(),
                authority: uri.authority().unwrap().clone(),
                base_path: uri.path().trim_end_matches('/').to_owned(),
            },
            audience: None,
            auth: Auth::Anonymous,
            scopes: Vec::new(),
            strip_prefix,
            allow_encoded_slashes: allow,
            dpop: false,
        }
    }

    #[test]
    fn upstream_uris_keep_or_strip_the_prefix_and_keep_the_query() {
        let cases = [
            (
                "/api",
                "http://u:1",
                false,
                "/api/orders?x=1",
                "http://u:1/api/orders?x=1",
            ),
            (
                "/api",
                "http://u:1",
                true,
                "/api/orders?x=1",
                "http://u:1/orders?x=1",
            ),
            (
                "/api",
                "http://u:1/v2/",
                true,
                "/api/orders",
                "http://u:1/v2/orders",
            ),
            ("/api", "http://u:1", true, "/api", "http://u:1/"),
            (
                "/api",
                "http://u:1/v2",
                true,
                "/api?a=b",
                "http://u:1/v2?a=b",
            ),
            ("/", "http://u:1/base", false, "/", "http://u:1/base/"),
            // The query is the client's, byte for byte: it is no path.
            (
                "/s",
                "http://u:1/base",
                true,
                "/s/x?next=%2F..%2Fa&b=../c&d=%2e",
                "http://u:1/base/x?next=%2F..%2Fa&b=../c&d=%2e",
            ),
        ];
        for (prefix, upstream, strip, request, expected) in cases {
            let uri: Uri = request.parse().unwrap();
            let got = upstream_uri(&route(prefix, upstream, strip, false), &uri).unwrap();
            assert_eq!(got.to_string(), expected, "{prefix} {upstream} {request}");
        }
    }

    #[test]
    fn upstream_uris_are_refused_on_the_path_as_sent() {
        let strict = route("/s", "http://u:1/base", true, false);
        let allowing = route("/s", "http://u:1/base", true, true);
        for request in [
            "/s/../secret",
            "/s/%2e%2e/secret",
            "/s/.%2E/secret",
            "/s/..;/secret",
            "/s/a/..",
            "/s/x%2f..%2fsecret",
            "/s/x%5c..%5csecret",
            "/s/x\\..\\secret",
        ] {
            let uri: Uri = request.parse().unwrap();
            for route in [&strict, &allowing] {
                assert_eq!(
                    upstream_uri(route, &uri),
                    Err(paths::Refusal::DotSegment.description()),
                    "{request}"
                );
            }
        }
        for request in ["/s/a%2fb", "/s/a%2Fb", "/s/a%5cb", "/s/a\\b", "/s/a%2eb"] {
            let uri: Uri = request.parse().unwrap();
            assert_eq!(
                upstream_uri(&strict, &uri),
                Err(paths::Refusal::Encoded.description()),
                "{request}"
            );
            let passed = upstream_uri(&allowing, &uri).unwrap();
            assert_eq!(
                passed.path(),
                format!("/base{}", &request[2..]),
                "verbatim: {request}"
            );
        }
        // No segment-boundary match, nothing to send: the route is not this one.
        for request in ["/sx/y", "/s../secret", "/s%2e%2e/secret"] {
            let uri: Uri = request.parse().unwrap();
            assert!(upstream_uri(&allowing, &uri).is_err(), "{request}");
        }
        // The base path is part of what is checked.
        let uri: Uri = "/s/x".parse().unwrap();
        let odd = route("/s", "http://u:1/a/../b", true, false);
        assert!(upstream_uri(&odd, &uri).is_err());
    }

    #[test]
    fn errors_are_json_with_a_description() {
        let response = error(StatusCode::BAD_GATEWAY, "bad_gateway", "down");
        assert_eq!(response.status(), 502);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let Either::Right(body) = response.into_body() else {
            panic!("the gateway's own body")
        };
        let _ = body;
    }
}
