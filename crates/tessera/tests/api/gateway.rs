//! `tessera gateway`, end to end: a real tessera, the real binary running the
//! gateway, and upstream services (axum, in this process) that report what they
//! received.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use futures::{SinkExt, StreamExt};
use reqwest::header;
use serde_json::{Value, json};
use tessera_verify::RemoteVerifier;

use crate::harness::*;
use crate::tokens::{Registered, add_client};

/// What the upstream saw: every bearer token, in order.
#[derive(Clone, Default)]
struct Seen {
    tokens: Arc<Mutex<Vec<String>>>,
}

impl Seen {
    fn tokens(&self) -> Vec<String> {
        self.tokens.lock().unwrap().clone()
    }
}

fn record_token(seen: &Seen, headers: &HeaderMap) {
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        seen.tokens.lock().unwrap().push(token.to_owned());
    }
}

/// Answers with the request it received: URI, version and headers.
async fn echo(State(seen): State<Seen>, request: Request) -> axum::Json<Value> {
    record_token(&seen, request.headers());
    let mut headers = serde_json::Map::new();
    for name in request.headers().keys() {
        let values: Vec<Value> = request
            .headers()
            .get_all(name)
            .iter()
            .map(|v| Value::from(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        headers.insert(name.as_str().to_owned(), Value::Array(values));
    }
    axum::Json(json!({
        "uri": request.uri().to_string(),
        "version": format!("{:?}", request.version()),
        "headers": headers,
    }))
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(3)).await;
    "too late"
}

/// Counts the bytes of a body as they arrive, never holding more than a chunk.
async fn upload(request: Request) -> String {
    let mut body = request.into_body().into_data_stream();
    let mut total = 0u64;
    while let Some(chunk) = body.next().await {
        total += chunk.unwrap().len() as u64;
    }
    total.to_string()
}

/// A WebSocket that says whether it came with a gateway token (and without the
/// session cookie), then echoes.
async fn ws(upgrade: WebSocketUpgrade, State(seen): State<Seen>, headers: HeaderMap) -> Response {
    record_token(&seen, &headers);
    let authorized = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes().starts_with(b"Bearer "))
        && !headers
            .get(header::COOKIE)
            .is_some_and(|v| String::from_utf8_lossy(v.as_bytes()).contains("tessera-session"));
    upgrade.on_upgrade(move |mut socket: WebSocket| async move {
        let hello = if authorized {
            "authorized"
        } else {
            "not authorized"
        };
        if socket.send(Message::Text(hello.into())).await.is_err() {
            return;
        }
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Text(_) | Message::Binary(_))
                && socket.send(message).await.is_err()
            {
                break;
            }
        }
    })
}

fn upstream_app(seen: &Seen) -> Router {
    Router::new()
        .route("/api/ws", get(ws))
        .route("/api/upload", post(upload))
        .route("/public/slow", get(slow))
        .fallback(echo)
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(seen.clone())
}

async fn start_upstream() -> (String, Seen) {
    let seen = Seen::default();
    let app = upstream_app(&seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, seen)
}

/// The gateway binary, stopped on drop.
pub(crate) struct GatewayProcess {
    child: Child,
    pub(crate) base: String,
    /// The management listener's URL (metrics, health).
    pub(crate) management: String,
    _dir: tempfile::TempDir,
}

impl GatewayProcess {
    pub(crate) fn start(config: &str, secret: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new(binary())
            .args(["gateway", "--config"])
            .arg(&path)
            .env("TESSERA_GATEWAY_CLIENT_SECRET", secret)
            .env("TESSERA_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("gateway.log")).unwrap(),
            ))
            .spawn()
            .unwrap();
        let mut banner = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = banner.next().unwrap().unwrap();
        let base = first
            .trim()
            .strip_prefix("tessera gateway listening on ")
            .unwrap_or_else(|| panic!("unexpected banner {first:?}"))
            .to_owned();
        let management = banner
            .take(3)
            .map(Result::unwrap)
            .find_map(|line| {
                let url = line.trim().strip_prefix("management")?;
                Some(url.split_whitespace().next()?.to_owned())
            })
            .unwrap_or_else(|| panic!("the gateway's banner has no management line"));
        Self {
            child,
            base,
            management,
            _dir: dir,
        }
    }

    /// What the gateway has logged so far (its stderr).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// The gateway's metrics, from its management listener.
    pub(crate) async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.management))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The most memory the process has held (VmHWM), in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Fixture {
    server: TestServer,
    gateway: GatewayProcess,
    seen: Seen,
    http: reqwest::Client,
    client: Registered,
}

/// A port nothing listens on.
pub(crate) fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn fixture() -> Fixture {
    fixture_with("", &[]).await
}

/// With more `[[route]]`s, and more environment for the gateway.
async fn fixture_with(routes: &str, env: &[(&str, &str)]) -> Fixture {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let client = add_client(
        &server,
        "gateway",
        &[
            "--grant",
            "token_exchange,client_credentials",
            "--scope",
            "revocations orders:read",
            "--audience",
            "orders",
            "--access-ttl",
            "60s",
        ],
    );
    let (upstream, seen) = start_upstream().await;
    let issuer = &server.base;
    let config = format!(
        r#"
listen = "127.0.0.1:0"
tessera_url = "{issuer}"
client_id = "{id}"
login_url = "{issuer}/login"
upstream_timeout = "500ms"

[[route]]
prefix = "/api/"
upstream = "{upstream}"
audience = "orders"
scopes = ["orders:read"]

[[route]]
prefix = "/maybe/"
upstream = "{upstream}"
audience = "orders"
auth = "optional"

[[route]]
prefix = "/public/"
upstream = "{upstream}"
auth = "anonymous"

[[route]]
prefix = "/stripped/"
upstream = "{upstream}/base"
auth = "anonymous"
strip_prefix = true

[[route]]
prefix = "/down/"
upstream = "http://127.0.0.1:{closed}"
auth = "anonymous"
{routes}
"#,
        id = client.id,
        closed = closed_port(),
    );
    let gateway = GatewayProcess::start(&config, client.secret.as_deref().unwrap(), env);
    Fixture {
        server,
        gateway,
        seen,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        client,
    }
}

impl Fixture {
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.gateway.url(path))
    }

    async fn echo_as(&self, path: &str, browser: &Browser) -> reqwest::Response {
        self.get(path)
            .header(header::COOKIE, &browser.cookie)
            .send()
            .await
            .unwrap()
    }

    /// Requests to tessera's token endpoint so far, whatever their outcome.
    async fn token_requests(&self) -> u64 {
        self.server
            .metrics()
            .await
            .lines()
            .filter(|l| l.starts_with("tessera_token_requests_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}

fn headers_of(body: &Value) -> &serde_json::Map<String, Value> {
    body["headers"].as_object().unwrap()
}

fn header_of<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body["headers"][name][0].as_str()
}

#[tokio::test]
async fn gateway_without_a_session_answers_apis_401_and_sends_pages_to_log_in() {
    let f = fixture().await;

    let response = f
        .get("/api/orders?page=2")
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(error_of(response).await, (401, "unauthenticated".into()));

    let page = f
        .get("/api/orders?page=2")
        .header(header::ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 302);
    let return_to = format!("{}/api/orders?page=2", f.gateway.base)
        .replace(':', "%3A")
        .replace('/', "%2F")
        .replace('?', "%3F")
        .replace('=', "%3D");
    assert_eq!(
        page.headers()[header::LOCATION],
        format!("{}/login?return_to={return_to}", f.server.base).as_str()
    );

    // A cookie that is no session, or a session that has ended, is no session; a
    // form post is not a navigation.
    for cookie in [
        "__Host-tessera-session=tss_forged",
        "__Host-tessera-session=tss_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let response = f
            .get("/api/orders")
            .header(header::COOKIE, cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(response).await, (401, "unauthenticated".into()));
    }
    let post = f
        .http
        .post(f.gateway.url("/api/orders"))
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 401);

    let response = f.get("/nowhere").send().await.unwrap();
    assert_eq!(error_of(response).await, (404, "not_found".into()));
    assert!(f.seen.tokens().is_empty(), "nothing reached the upstream");
}

#[tokio::test]
async fn gateway_forwards_a_session_as_a_jwt_for_the_route_audience_and_nothing_forged() {
    let f = fixture().await;
    let alice = f.server.login("alice").await;
    let response = f
        .get("/api/orders?page=2")
        .header(
            header::COOKIE,
            format!("theme=dark; {}; lang=en", alice.cookie),
        )
        .header(header::AUTHORIZATION, "Bearer forged")
        .header("x-tessera-user", "admin")
        .header("x-tessera-roles", "admin")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-host", "evil.example")
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "req-42");
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["uri"], "/api/orders?page=2");

    let authorization = header_of(&seen, "authorization").unwrap();
    let jwt = authorization.strip_prefix("Bearer ").unwrap();
    assert_ne!(jwt, "forged");
    assert_eq!(
        headers_of(&seen)["authorization"].as_array().unwrap().len(),
        1
    );
    let verifier = RemoteVerifier::builder(&f.server.base)
        .audience("orders")
        .follow_revocations(false)
        .build()
        .await
        .unwrap();
    let claims = verifier.verify(jwt).await.unwrap();
    assert_eq!(claims.aud, ["orders"]);
    assert_eq!(claims.sub, alice.login["user"]["id"].as_str().unwrap());
    assert_eq!(claims.sid.as_deref(), Some(alice.session_id.as_str()));
    assert_eq!(claims.client_id.as_deref(), Some(f.client.id.as_str()));
    assert_eq!(
        claims.scope.as_deref(),
        Some("orders:read"),
        "the route's scopes, never the gateway's own revocations scope"
    );
    assert!(claims.exp - claims.iat.unwrap() <= 60);

    assert_eq!(header_of(&seen, "cookie"), Some("theme=dark; lang=en"));
    assert!(!headers_of(&seen).contains_key("x-tessera-user"));
    assert!(!headers_of(&seen).contains_key("x-tessera-roles"));
    assert_eq!(header_of(&seen, "x-request-id"), Some("req-42"));
    assert_eq!(header_of(&seen, "x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(header_of(&seen, "x-forwarded-proto"), Some("http"));
    assert_eq!(
        header_of(&seen, "x-forwarded-host"),
        f.gateway.base.strip_prefix("http://")
    );
    assert_eq!(seen["version"], "HTTP/1.1");

    // Without a request id the gateway makes one, the same both ways.
    let response = f.echo_as("/api/x", &alice).await;
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let seen: Value = response.json().await.unwrap();
    assert_eq!(header_of(&seen, "x-request-id"), Some(id.as_str()));
    assert!(
        !headers_of(&seen).contains_key("cookie"),
        "nothing left: no header"
    );

    // Optional routes: a token with a session, nothing (not even a forged one)
    // without.
    let seen: Value = f.echo_as("/maybe/x", &alice).await.json().await.unwrap();
    let jwt = header_of(&seen, "authorization")
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap()
        .to_owned();
    // That route names no scopes, so its token carries none: never the gateway
    // client's own (`revocations`), and an upstream replaying it at tessera is
    // refused as a token for another audience.
    let claims = verifier.verify(&jwt).await.unwrap();
    assert_eq!(
        claims.scope, None,
        "a route without scopes got {:?}",
        claims.scope
    );
    for path in ["/v1/revocations", "/admin/v1/users"] {
        let replayed = f
            .http
            .get(f.server.url(path))
            .bearer_auth(&jwt)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(replayed).await,
            (401, "invalid_token".into()),
            "{path}"
        );
    }
    let seen: Value = f
        .get("/maybe/x")
        .header(header::AUTHORIZATION, "Bearer forged")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!headers_of(&seen).contains_key("authorization"));
}

#[tokio::test]
async fn gateway_anonymous_routes_never_look_at_the_session() {
    let f = fixture().await;
    let alice = f.server.login("alice").await;
    let before = f.token_requests().await;
    let seen: Value = f
        .get("/public/page")
        .header(header::COOKIE, &alice.cookie)
        .header(header::AUTHORIZATION, "Basic b3duOmNyZWRz")
        .header("x-tessera-user", "admin")
        .header("x-forwarded-for", "6.6.6.6")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(header_of(&seen, "cookie"), Some(alice.cookie.as_str()));
    assert_eq!(
        header_of(&seen, "authorization"),
        Some("Basic b3duOmNyZWRz"),
        "the client's own credentials, for the upstream to judge"
    );
    assert!(!headers_of(&seen).contains_key("x-tessera-user"));
    assert_eq!(header_of(&seen, "x-forwarded-for"), Some("127.0.0.1"));
    assert!(header_of(&seen, "x-request-id").is_some());
    assert_eq!(f.token_requests().await, before, "no exchange");

    let seen: Value = f
        .get("/stripped/a/b?c=d")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen["uri"], "/base/a/b?c=d");

    // HTTP/2 to the gateway (prior knowledge), HTTP/1.1 to the upstream.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = h2.get(f.gateway.url("/public/h2")).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["version"], "HTTP/1.1");
    assert_eq!(
        header_of(&seen, "x-forwarded-host"),
        f.gateway.base.strip_prefix("http://")
    );

    // Hop-by-hop headers, and those Connection names, stop at the gateway.
    let answer = raw_request(
        &f.gateway.base,
        b"GET /public/hop HTTP/1.1\r\nHost: app.example\r\nConnection: close, X-Hop\r\n\
          X-Hop: secret\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n\
          TE: trailers\r\n\r\n",
    )
    .await;
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let body = body.find('{').map_or(body, |at| &body[at..]);
    let body = &body[..=body.rfind('}').unwrap()];
    let seen: Value = serde_json::from_str(body).unwrap();
    for name in [
        "x-hop",
        "keep-alive",
        "proxy-connection",
        "te",
        "connection",
    ] {
        assert!(!headers_of(&seen).contains_key(name), "{name}: {seen}");
    }
    assert_eq!(header_of(&seen, "x-forwarded-host"), Some("app.example"));
    assert!(!answer.to_ascii_lowercase().contains("keep-alive: "));

    // Dot segments are refused, not routed by their raw path (clients such as
    // reqwest resolve them before sending: raw bytes here).
    for path in ["/public/../api/x", "/public/%2e%2E/api/x"] {
        let answer = raw_request(
            &f.gateway.base,
            format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
    }
}

#[tokio::test]
async fn gateway_refuses_a_session_soon_after_logout_through_the_feed() {
    let f = fixture().await;
    let alice = f.server.login("alice").await;
    assert_eq!(f.echo_as("/api/x", &alice).await.status(), 200);
    let logout = f
        .server
        .unsafe_as(reqwest::Method::POST, "/v1/logout", &alice)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    let started = Instant::now();
    eventually("the gateway refuses the ended session", || async {
        f.echo_as("/api/x", &alice).await.status() == 401
    })
    .await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "refused after {took:?}: through the feed, not the JWT's 60 s"
    );
    eprintln!("logout reached the gateway in {took:?}");

    // A session ended from another one (DELETE /v1/sessions/{id}) likewise.
    let phone = f.server.login("alice").await;
    let laptop = f.server.login("alice").await;
    assert_eq!(f.echo_as("/api/x", &phone).await.status(), 200);
    let ended = f
        .server
        .unsafe_as(
            reqwest::Method::DELETE,
            &format!("/v1/sessions/{}", phone.session_id),
            &laptop,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 204);
    let started = Instant::now();
    eventually("the gateway refuses the deleted session", || async {
        f.echo_as("/api/x", &phone).await.status() == 401
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(f.echo_as("/api/x", &laptop).await.status(), 200);
}

#[tokio::test]
async fn gateway_stops_forwarding_tokens_of_a_retired_key() {
    let f = fixture().await;
    let alice = f.server.login("alice").await;
    assert_eq!(f.echo_as("/api/x", &alice).await.status(), 200);
    let old = f.seen.tokens().pop().unwrap();
    let kid = jsonwebtoken::decode_header(&old).unwrap().kid.unwrap();
    let retire = f.server.cli(&["keys", "retire", &kid], "");
    assert!(
        retire.status.success(),
        "{}",
        String::from_utf8_lossy(&retire.stderr)
    );
    // The session is alive: once the retirement reaches the gateway, it exchanges
    // again and forwards a token signed by the successor (a 503 while tessera's
    // key ring catches up is allowed; the old token is not).
    eventually(
        "a token of the successor key reaches the upstream",
        || async {
            let status = f.echo_as("/api/x", &alice).await.status();
            let last = f.seen.tokens().pop().unwrap();
            status == 200 && jsonwebtoken::decode_header(&last).unwrap().kid.unwrap() != kid
        },
    )
    .await;
    for _ in 0..5 {
        let response = f.echo_as("/api/x", &alice).await;
        assert_eq!(response.status(), 200);
        let last = f.seen.tokens().pop().unwrap();
        assert_ne!(
            jsonwebtoken::decode_header(&last).unwrap().kid.unwrap(),
            kid
        );
    }
}

#[tokio::test]
async fn gateway_answers_503_for_new_sessions_while_tessera_is_down() {
    let f = fixture().await;
    let known = f.server.login("alice").await;
    let new = f.server.login("alice").await;
    assert_eq!(f.echo_as("/api/x", &known).await.status(), 200);
    let killed = Command::new("kill")
        .args(["-KILL", &f.server.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    let response = f.echo_as("/api/x", &new).await;
    assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    assert_eq!(
        error_of(response).await,
        (503, "temporarily_unavailable".into()),
        "a session that cannot be checked is never let through, nor sent to log in"
    );
    // What the gateway already knows (a cached JWT, the feed not yet stale) and
    // anonymous routes keep working.
    assert_eq!(f.echo_as("/api/x", &known).await.status(), 200);
    assert_eq!(f.get("/public/x").send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn gateway_refuses_a_kicked_user() {
    let f = fixture().await;
    let alice = f.server.login("alice").await;
    assert_eq!(f.echo_as("/api/x", &alice).await.status(), 200);
    let started = Instant::now();
    let kick = f.server.cli(&["sessions", "kick", "alice"], "");
    assert!(
        kick.status.success(),
        "{}",
        String::from_utf8_lossy(&kick.stderr)
    );
    eventually("the gateway refuses the kicked user", || async {
        f.echo_as("/api/x", &alice).await.status() == 401
    })
    .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "refused after {took:?}");

    // Logging in again works at once.
    let again = f.server.login("alice").await;
    assert_eq!(f.echo_as("/api/x", &again).await.status(), 200);
}

#[tokio::test]
async fn gateway_exchanges_once_for_many_requests_of_a_session() {
    let f = fixture().await;
    let alice = f.server.login("alice").await;
    let before = f.token_requests().await;
    // Ten at once on a cold cache: one exchange (single-flight)...
    let first = futures::future::join_all((0..10).map(|_| f.echo_as("/api/x", &alice))).await;
    assert!(first.iter().all(|r| r.status() == 200));
    // ...and forty more, one after another, reuse it.
    for _ in 0..40 {
        assert_eq!(f.echo_as("/api/x", &alice).await.status(), 200);
    }
    let tokens: HashSet<String> = f.seen.tokens().into_iter().collect();
    assert_eq!(tokens.len(), 1, "one JWT for fifty requests");
    assert_eq!(f.token_requests().await - before, 1, "one token exchange");

    // Another route with the same audience and scopes shares it; another session
    // has its own.
    assert_eq!(f.echo_as("/maybe/x", &alice).await.status(), 200);
    let second = f.server.login("alice").await;
    assert_eq!(f.echo_as("/api/x", &second).await.status(), 200);
    let tokens: HashSet<String> = f.seen.tokens().into_iter().collect();
    assert_eq!(tokens.len(), 3, "the optional route asks for no scopes");

    // The gateway's own metrics say the same, on its management listener.
    let metrics = f.gateway.metrics().await;
    for expected in [
        r#"tessera_gateway_requests_total{route="/api",method="GET",status="200"} 51"#,
        r#"tessera_gateway_exchanges_total{outcome="token"} 3"#,
        r#"tessera_gateway_token_cache_total{result="miss"} 3"#,
        "tessera_gateway_upstream_duration_seconds_bucket{route=\"/api\"",
        "tessera_gateway_exchange_duration_seconds_count 3",
        "tessera_gateway_feed_silence_seconds ",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in\n{metrics}"
        );
    }
    let hits: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(r#"tessera_gateway_token_cache_total{result="hit"} "#))
        .and_then(|v| v.parse().ok())
        .unwrap_or_default();
    assert!(hits >= 40.0, "cache hits {hits}\n{metrics}");
}

/// One log line per request at INFO: the route's prefix, never the path as sent
/// (nor its query), the status, the time, the request id; never a cookie.
#[tokio::test]
async fn gateway_logs_one_line_per_request_without_the_path_or_the_cookie() {
    let f = fixture_with(
        "",
        &[("TESSERA_LOG", "info"), ("TESSERA_LOG_FORMAT", "json")],
    )
    .await;
    let alice = f.server.login("alice").await;
    let answer = f
        .get("/api/orders/secret-looking-path?code=not-for-logs")
        .header(header::COOKIE, &alice.cookie)
        .header("x-request-id", "gateway-trace-0001")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    // The line is written as the answer goes out.
    let mut line = None;
    for _ in 0..50 {
        line = f
            .gateway
            .log()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["fields"]["request_id"] == "gateway-trace-0001");
        if line.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let line = line.unwrap_or_else(|| panic!("no request line in\n{}", f.gateway.log()));
    assert_eq!(line["target"], "tessera::request");
    assert_eq!(line["fields"]["route"], "/api");
    assert_eq!(line["fields"]["status"], 200);
    assert_eq!(line["fields"]["method"], "GET");
    let log = f.gateway.log();
    assert!(!log.contains("secret-looking-path") && !log.contains("not-for-logs"));
    let session_secret = alice.cookie.split_once('=').unwrap().1;
    assert!(!log.contains(session_secret), "the cookie reached the log");
}

/// The gateway's management listener answers health and metrics, and nothing
/// of the proxy; the public port's paths all belong to the routes (a gateway
/// cannot take `/healthz` from an upstream that has one), so the gateway's own
/// health is on the management listener only.
#[tokio::test]
async fn gateway_management_listener_serves_health_and_metrics_only() {
    let f = fixture().await;
    let http = reqwest::Client::new();
    for (path, status) in [
        ("/healthz", 200),
        ("/readyz", 200),
        ("/metrics", 200),
        ("/api/x", 404),
        ("/public/x", 404),
    ] {
        let answer = http
            .get(format!("{}{path}", f.gateway.management))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), status, "{path} on the management listener");
    }
    let posted = http
        .post(format!("{}/metrics", f.gateway.management))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 405);
    // The public port has no /metrics of its own: no route, 404.
    let public = f.get("/metrics").send().await.unwrap();
    assert_eq!(public.status(), 404);
    assert!(!public.text().await.unwrap().contains("tessera_gateway_"));
}

#[tokio::test]
async fn gateway_answers_502_for_an_upstream_that_is_down_and_504_for_a_slow_one() {
    let f = fixture().await;
    let response = f.get("/down/x").send().await.unwrap();
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(error_of(response).await, (502, "bad_gateway".into()));

    let started = Instant::now();
    let response = f.get("/public/slow").send().await.unwrap();
    let took = started.elapsed();
    assert_eq!(error_of(response).await, (504, "gateway_timeout".into()));
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[tokio::test]
async fn gateway_passes_a_websocket_upgrade_through() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

    let f = fixture().await;
    let alice = f.server.login("alice").await;
    let url = f.gateway.url("/api/ws").replacen("http://", "ws://", 1);

    let mut request = url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert(header::COOKIE, alice.cookie.parse().unwrap());
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.status(), 101);
    assert!(response.headers().contains_key("x-request-id"));
    let hello = socket.next().await.unwrap().unwrap();
    assert_eq!(hello, WsMessage::Text("authorized".into()));
    for text in ["hello", "through the gateway"] {
        socket.send(WsMessage::Text(text.into())).await.unwrap();
        let echoed = socket.next().await.unwrap().unwrap();
        assert_eq!(echoed, WsMessage::Text(text.into()));
    }
    let big = vec![7u8; 1 << 20];
    socket
        .send(WsMessage::Binary(big.clone().into()))
        .await
        .unwrap();
    let echoed = socket.next().await.unwrap().unwrap();
    assert_eq!(echoed.into_data().len(), big.len());
    socket.close(None).await.unwrap();

    // Without a session the upgrade is refused like any request.
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("expected a 401, got {other:?}"),
    }
}

#[tokio::test]
async fn gateway_streams_a_large_upload_without_buffering_it() {
    const CHUNK: usize = 1 << 20;
    const CHUNKS: usize = 50;
    let f = fixture().await;
    let alice = f.server.login("alice").await;
    assert_eq!(f.echo_as("/api/x", &alice).await.status(), 200);
    let before = f.gateway.peak_rss_kib();

    let chunks =
        futures::stream::iter((0..CHUNKS).map(|_| Ok::<_, std::io::Error>(bytes_of(CHUNK))));
    let started = Instant::now();
    let response = f
        .http
        .post(f.gateway.url("/api/upload"))
        .header(header::COOKIE, &alice.cookie)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), (CHUNK * CHUNKS).to_string());
    let took = started.elapsed();
    let after = f.gateway.peak_rss_kib();
    eprintln!(
        "50 MiB through the gateway in {took:?}; its peak RSS {before} KiB before, {after} KiB after"
    );
    assert!(
        after < 32 * 1024 && after - before < 16 * 1024,
        "the gateway held {after} KiB at its peak (from {before} KiB) for a 50 MiB body"
    );
}

fn bytes_of(len: usize) -> Vec<u8> {
    vec![b'x'; len]
}

/// An upstream behind TLS, with a self-signed certificate for 127.0.0.1 only;
/// returns its port and the certificate (PEM).
async fn start_tls_upstream(seen: &Seen) -> (u16, String) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = upstream_app(seen);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (port, certified.cert.pem())
}

#[tokio::test]
async fn gateway_forwards_to_https_upstreams_it_can_verify() {
    let seen = Seen::default();
    let (port, pem) = start_tls_upstream(&seen).await;
    let (untrusted, _) = start_tls_upstream(&seen).await;
    let dir = tempfile::tempdir().unwrap();
    let roots = dir.path().join("roots.pem");
    std::fs::write(&roots, pem).unwrap();
    let routes = format!(
        r#"
[[route]]
prefix = "/secure/"
upstream = "https://127.0.0.1:{port}"
audience = "orders"

[[route]]
prefix = "/untrusted/"
upstream = "https://127.0.0.1:{untrusted}"
auth = "anonymous"
"#
    );
    // The system's roots, as rustls-native-certs reads them: SSL_CERT_FILE.
    let f = fixture_with(&routes, &[("SSL_CERT_FILE", roots.to_str().unwrap())]).await;
    let alice = f.server.login("alice").await;
    let response = f.echo_as("/secure/x", &alice).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["uri"], "/secure/x");
    assert!(
        header_of(&body, "authorization")
            .unwrap()
            .starts_with("Bearer ey")
    );
    assert_eq!(seen.tokens().len(), 1, "the JWT went over TLS");

    // A certificate the gateway does not trust is refused: 502, nothing sent.
    let response = f.get("/untrusted/x").send().await.unwrap();
    assert_eq!(error_of(response).await, (502, "bad_gateway".into()));
    assert_eq!(seen.tokens().len(), 1);
}

/// An upstream that records the exact request line of each request it receives
/// (a framework would show it decoded or normalised), and answers `200 ok`.
struct RawUpstream {
    address: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl RawUpstream {
    async fn start() -> Self {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let recorded = lines.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    let mut stream = BufReader::new(stream);
                    let mut line = Vec::new();
                    if stream.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let line = String::from_utf8_lossy(&line);
                    recorded
                        .lock()
                        .unwrap()
                        .push(line.trim_end_matches(['\r', '\n']).to_owned());
                    // The rest of the head; the requests here have no body.
                    loop {
                        let mut header = Vec::new();
                        if stream.read_until(b'\n', &mut header).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if header == b"\r\n" {
                            break;
                        }
                    }
                    // One request per connection: the gateway's pool cannot then
                    // pick a connection this end is closing.
                    let _ = stream
                        .get_mut()
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                });
            }
        });
        Self { address, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

/// A gateway whose one route `/s` (anonymous, so no tessera is needed) strips its
/// prefix and forwards to `upstream` under `/base`.
fn path_gateway(upstream: &RawUpstream, allow_encoded_slashes: bool) -> GatewayProcess {
    let closed = closed_port();
    let config = format!(
        r#"
listen = "127.0.0.1:0"
tessera_url = "http://127.0.0.1:{closed}"
client_id = "unused"
login_url = "http://127.0.0.1:{closed}/login"

[[route]]
prefix = "/s"
upstream = "http://{address}/base"
auth = "anonymous"
strip_prefix = true
{allow}
"#,
        address = upstream.address,
        allow = if allow_encoded_slashes {
            "allow_encoded_slashes = true"
        } else {
            ""
        },
    );
    GatewayProcess::start(&config, "unused", &[])
}

/// Sends `GET target` byte for byte (HTTP clients normalise paths before sending)
/// and returns the status and body.
async fn raw_get(gateway: &GatewayProcess, target: &str) -> (u16, String) {
    let answer = raw_request(
        &gateway.base,
        format!("GET {target} HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await;
    let status = answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("{target}: not an HTTP answer: {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned();
    (status, body)
}

/// Asserts that the gateway answered `target` itself, with `status` and `error`
/// in its JSON shape.
async fn assert_refused(gateway: &GatewayProcess, target: &str, status: u16, code: &str) {
    let (got, body) = raw_get(gateway, target).await;
    assert_eq!(got, status, "{target}: {body}");
    let body: Value =
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("{target}: not JSON: {body}"));
    assert_eq!(body["error"], code, "{target}: {body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{target}: {body}"
    );
}

#[tokio::test]
async fn gateway_matches_whole_segments_and_checks_the_path_it_sends() {
    let upstream = RawUpstream::start().await;
    let gateway = path_gateway(&upstream, false);

    // Not route /s at all: its prefix is not a whole segment of these.
    for target in ["/sx/y", "/s../secret", "/s%2e%2e/secret", "/s%2fsecret"] {
        assert_refused(&gateway, target, 404, "not_found").await;
    }
    // Route /s, but what it would send upstream is refused.
    for target in [
        "/s/../secret",
        "/s/%2e%2e/secret",
        "/s/%2E./secret",
        "/s/.%2e/secret",
        "/s/..;/secret",
        "/s/a/..",
        "/s/a%2fb",
        "/s/a%2Fb",
        "/s/a%5cb",
        "/s/a%5Cb",
        "/s/a\\b",
        "/s/a%2eb",
    ] {
        assert_refused(&gateway, target, 400, "invalid_request").await;
    }
    assert_eq!(
        upstream.lines(),
        Vec::<String>::new(),
        "nothing was forwarded"
    );

    // What passes arrives as expected, the query exactly as sent.
    let passes = [
        ("/s/x?q=1", "GET /base/x?q=1 HTTP/1.1"),
        ("/s", "GET /base HTTP/1.1"),
        ("/s/", "GET /base/ HTTP/1.1"),
        ("/s?q=1", "GET /base?q=1 HTTP/1.1"),
        (
            "/s/x?next=%2F..%2Fa&b=../c&d=%2e",
            "GET /base/x?next=%2F..%2Fa&b=../c&d=%2e HTTP/1.1",
        ),
        ("/s/a..b/c.", "GET /base/a..b/c. HTTP/1.1"),
        // One level of decoding: the upstream gets the text %2e, not a dot.
        ("/s/%252e%252e/x", "GET /base/%252e%252e/x HTTP/1.1"),
    ];
    for (target, _) in passes {
        assert_eq!(
            raw_get(&gateway, target).await,
            (200, "ok".to_owned()),
            "{target}"
        );
    }
    let expected: Vec<&str> = passes.iter().map(|(_, line)| *line).collect();
    assert_eq!(upstream.lines(), expected);
}

#[tokio::test]
async fn gateway_route_allowing_encoded_slashes_passes_them_verbatim_never_a_dot_segment() {
    let upstream = RawUpstream::start().await;
    let gateway = path_gateway(&upstream, true);

    for target in [
        "/s/x%2f..%2fsecret",
        "/s/x%2F%2e%2E%2Fsecret",
        "/s/x%5c..%5csecret",
        "/s/x\\..\\secret",
        "/s/%2e%2e/secret",
        "/s/.%2e/secret",
        "/s/../secret",
    ] {
        assert_refused(&gateway, target, 400, "invalid_request").await;
    }
    assert_refused(&gateway, "/sx/y", 404, "not_found").await;
    assert_eq!(
        upstream.lines(),
        Vec::<String>::new(),
        "nothing was forwarded"
    );

    let passes = [
        ("/s/a%2fb", "GET /base/a%2fb HTTP/1.1"),
        ("/s/a%2Fb?q=%2f", "GET /base/a%2Fb?q=%2f HTTP/1.1"),
        ("/s/a%5Cb", "GET /base/a%5Cb HTTP/1.1"),
        ("/s/a\\b", "GET /base/a\\b HTTP/1.1"),
        ("/s/v1%2e2", "GET /base/v1%2e2 HTTP/1.1"),
    ];
    for (target, _) in passes {
        assert_eq!(
            raw_get(&gateway, target).await,
            (200, "ok".to_owned()),
            "{target}"
        );
    }
    let expected: Vec<&str> = passes.iter().map(|(_, line)| *line).collect();
    assert_eq!(upstream.lines(), expected);
}

/// `[tls]` in the gateway's configuration: it serves HTTPS (the same reloading
/// certificate files as tessera's `--tls-cert`), and its public URL, which
/// browsers are sent back to after logging in, says https.
#[tokio::test]
async fn gateway_serves_https_with_its_own_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let tls = format!(
        "\n[tls]\ncert = {:?}\nkey = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    let f = fixture_with(&tls, &[]).await;
    assert!(f.gateway.base.starts_with("https://"), "{}", f.gateway.base);
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_der(certified.cert.der()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let public = client.get(f.gateway.url("/public/x")).send().await.unwrap();
    assert_eq!(public.status(), 200);
    // A navigation without a session goes to log in, to come back over https.
    let page = client
        .get(f.gateway.url("/api/x"))
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 302);
    let location = page.headers()[header::LOCATION].to_str().unwrap();
    assert!(
        location.contains("return_to=https%3A%2F%2F127.0.0.1"),
        "{location}"
    );
    // Plain HTTP on the TLS port is not served.
    let plain = reqwest::get(f.gateway.url("/public/x").replace("https://", "http://")).await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
}
