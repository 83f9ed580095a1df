//! `tessera-verify` as a resource service runs it: the example service in
//! `examples/resource-service`, on a loopback port, verifying tokens from a real
//! tessera server through its metadata, JWKS, revocation feed and introspection.

use std::time::Duration;

use reqwest::header;
use serde_json::Value;
use tessera_verify::{ClientCredentials, RemoteVerifier, WhenStale};

use crate::harness::*;
use crate::tokens::{Registered, access_token, add_client, claims_of, client_credentials, revoke};

/// A heartbeat fast enough that staleness can be tested in about a second.
const FAST_FEED: &[(&str, &str)] = &[("TESSERA_TOKENS__FEED_HEARTBEAT", "200ms")];

pub(crate) struct Resource {
    pub base: String,
    pub http: reqwest::Client,
    pub verifier: RemoteVerifier,
}

impl Resource {
    pub(crate) async fn start(
        server: &TestServer,
        tune: impl FnOnce(tessera_verify::remote::Builder) -> tessera_verify::remote::Builder,
    ) -> Self {
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let feed = add_client(
            server,
            &format!("orders-service-{n}"),
            &[
                "--grant",
                "client_credentials",
                "--scope",
                "revocations introspect",
            ],
        );
        let builder = RemoteVerifier::builder(&server.base)
            .audience("orders")
            .client(ClientCredentials::new(
                feed.id,
                feed.secret.expect("a confidential client"),
            ))
            .jwks_cooldown(Duration::from_millis(500));
        let verifier = tune(builder).build().await.expect("verifier");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = resource_service::app(verifier.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base,
            http: reqwest::Client::new(),
            verifier,
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    async fn status(&self, path: &str, token: &str) -> u16 {
        self.get(path, Some(token)).await.status().as_u16()
    }
}

fn app_client(server: &TestServer, name: &str, extra: &[&str]) -> Registered {
    let mut args = vec![
        "--grant",
        "password,refresh_token",
        "--public",
        "--audience",
        "orders",
        "--scope",
        "orders:read orders:write",
    ];
    args.extend_from_slice(extra);
    add_client(server, name, &args)
}

async fn password_token(server: &TestServer, app: &Registered, user: &str, scope: &str) -> Value {
    let response = server
        .client
        .post(server.url("/oauth2/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", app.id.as_str()),
            ("username", user),
            ("password", PASSWORD),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap();
    access_token(response).await.0
}

fn challenge(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn routes_enforce_their_declared_scopes_and_roles_with_rfc_6750_answers() {
    let server = TestServer::start_with(FAST_FEED).await;
    server.add_user("alice", &[]);
    server.add_user("root", &["admin"]);
    let app = app_client(&server, "app", &[]);
    let resource = Resource::start(&server, |b| b).await;

    let response = resource.get("/me", None).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        challenge(&response),
        format!(r#"Bearer realm="{}""#, server.base),
        "no token: a challenge without an error code"
    );

    let reader = password_token(&server, &app, "alice", "orders:read").await;
    let reader = reader["access_token"].as_str().unwrap();
    let me: Value = resource
        .get("/me", Some(reader))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["scope"], "orders:read");
    assert_eq!(resource.status("/orders", reader).await, 200);

    let response = resource
        .http
        .post(format!("{}/orders", resource.base))
        .bearer_auth(reader)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(
        challenge(&response).contains(r#"error="insufficient_scope""#)
            && challenge(&response).contains(r#"scope="orders:write""#),
        "{}",
        challenge(&response)
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");

    assert_eq!(resource.status("/admin/report", reader).await, 403);
    let admin = password_token(&server, &app, "root", "orders:read orders:write").await;
    let admin = admin["access_token"].as_str().unwrap();
    assert_eq!(resource.status("/admin/report", admin).await, 200);
    let created = resource
        .http
        .post(format!("{}/orders", resource.base))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    // A token for another audience, a forged one, and a malformed header.
    let other = add_client(&server, "other", &["--grant", "client_credentials"]);
    let (_, foreign) = access_token(client_credentials(&server, &other, &[]).await).await;
    let response = resource.get("/me", Some(&foreign)).await;
    assert_eq!(response.status(), 401);
    assert!(challenge(&response).contains("another audience"));
    let mut forged = reader.to_owned();
    forged.pop();
    forged.push(if reader.ends_with('A') { 'B' } else { 'A' });
    let response = resource.get("/me", Some(&forged)).await;
    assert_eq!(response.status(), 401);
    assert!(challenge(&response).contains(r#"error="invalid_token""#));
    let response = resource
        .http
        .get(format!("{}/me", resource.base))
        .header(header::AUTHORIZATION, "Basic YTpi")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        resource
            .http
            .get(format!("{}/healthz", resource.base))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "routes that declare nothing stay open"
    );
}

#[tokio::test]
async fn revocations_reach_the_resource_service_through_the_feed() {
    let server = TestServer::start_with(FAST_FEED).await;
    server.add_user("alice", &[]);
    let app = app_client(&server, "app", &[]);
    let resource = Resource::start(&server, |b| b).await;
    let scope = "orders:read";

    // A JWT revoked by jti.
    let grant = password_token(&server, &app, "alice", scope).await;
    let token = grant["access_token"].as_str().unwrap().to_owned();
    assert_eq!(resource.status("/orders", &token).await, 200);
    revoke(&server, &app, &token).await;
    eventually("a token revoked by jti is refused", || async {
        resource.status("/orders", &token).await == 401
    })
    .await;
    let response = resource.get("/orders", Some(&token)).await;
    assert!(challenge(&response).contains("revoked"));

    // A refresh family (its sid) revoked: its access tokens go with it.
    let grant = password_token(&server, &app, "alice", scope).await;
    let token = grant["access_token"].as_str().unwrap().to_owned();
    assert_eq!(resource.status("/orders", &token).await, 200);
    revoke(&server, &app, grant["refresh_token"].as_str().unwrap()).await;
    eventually("a token of a revoked family is refused", || async {
        resource.status("/orders", &token).await == 401
    })
    .await;

    // A kicked user: even a token bound to no session or family (a client without
    // refresh tokens) is refused, by the user cut-off; another user's is not.
    server.add_user("bob", &[]);
    let plain = add_client(
        &server,
        "plain",
        &[
            "--grant",
            "password",
            "--public",
            "--audience",
            "orders",
            "--scope",
            scope,
        ],
    );
    let bobs = password_token(&server, &plain, "bob", scope).await;
    let bobs = bobs["access_token"].as_str().unwrap().to_owned();
    let alices = password_token(&server, &plain, "alice", scope).await;
    let alices = alices["access_token"].as_str().unwrap().to_owned();
    assert!(claims_of(&bobs).get("sid").is_none());
    assert_eq!(resource.status("/orders", &bobs).await, 200);
    assert!(
        server
            .cli(&["sessions", "kick", "bob"], "")
            .status
            .success()
    );
    eventually("a kicked user's token is refused", || async {
        resource.status("/orders", &bobs).await == 401
    })
    .await;
    assert!(challenge(&resource.get("/orders", Some(&bobs)).await).contains("revoked"));
    assert_eq!(resource.status("/orders", &alices).await, 200);

    // A disabled user: every family of theirs ends.
    let grant = password_token(&server, &app, "alice", scope).await;
    let token = grant["access_token"].as_str().unwrap().to_owned();
    assert_eq!(resource.status("/orders", &token).await, 200);
    assert!(
        server
            .cli(&["user", "disable", "alice"], "")
            .status
            .success()
    );
    eventually("a disabled user's token is refused", || async {
        resource.status("/orders", &token).await == 401
    })
    .await;
    assert!(resource.verifier.revocation_position() >= 3);
}

#[tokio::test]
async fn rotated_keys_are_fetched_on_first_sight_and_retired_ones_refused() {
    let server = TestServer::start_with(FAST_FEED).await;
    server.add_user("alice", &[]);
    let app = app_client(&server, "app", &[]);
    let resource = Resource::start(&server, |b| b).await;
    let first = password_token(&server, &app, "alice", "orders:read").await;
    let first = first["access_token"].as_str().unwrap().to_owned();
    assert_eq!(resource.status("/orders", &first).await, 200);
    let old_kid = kid_of(&first);

    // `rotate --now`: the next tokens carry a kid the verifier has never seen.
    assert!(
        server
            .cli(&["keys", "rotate", "--now"], "")
            .status
            .success()
    );
    let mut fresh = String::new();
    for _ in 0..100 {
        let grant = password_token(&server, &app, "alice", "orders:read").await;
        fresh = grant["access_token"].as_str().unwrap().to_owned();
        if kid_of(&fresh) != old_kid {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(kid_of(&fresh), old_kid, "the server signs with the new key");
    eventually("a token of the new key is accepted", || async {
        resource.status("/orders", &fresh).await == 200
    })
    .await;
    assert_eq!(resource.status("/orders", &first).await, 200);

    // Retiring the old key refuses what it signed.
    assert!(
        server
            .cli(&["keys", "retire", &old_kid], "")
            .status
            .success()
    );
    eventually("a token of a retired key is refused", || async {
        resource.status("/orders", &first).await == 401
    })
    .await;
    assert_eq!(resource.status("/orders", &fresh).await, 200);
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[tokio::test]
async fn opaque_tokens_are_introspected_cached_and_still_revocable() {
    let server = TestServer::start_with(FAST_FEED).await;
    let opaque = add_client(
        &server,
        "opaque",
        &[
            "--grant",
            "client_credentials",
            "--audience",
            "orders",
            "--scope",
            "orders:read",
            "--token-format",
            "opaque",
        ],
    );
    let resource = Resource::start(&server, |b| b).await;
    let (_, token) = access_token(client_credentials(&server, &opaque, &[]).await).await;
    assert!(token.starts_with("tat_"));
    for _ in 0..3 {
        assert_eq!(resource.status("/orders", &token).await, 200);
    }
    let response = resource.get("/orders", Some("tat_forged")).await;
    assert_eq!(response.status(), 401);
    revoke(&server, &opaque, &token).await;
    eventually(
        "a revoked opaque token is refused despite the cache",
        || async { resource.status("/orders", &token).await == 401 },
    )
    .await;
}

#[tokio::test]
async fn a_silent_feed_fails_closed_unless_told_otherwise_and_recovers() {
    let server = TestServer::start_with(FAST_FEED).await;
    server.add_user("alice", &[]);
    let app = app_client(&server, "app", &[]);
    let strict = Resource::start(&server, |b| b.max_staleness(Duration::from_secs(1))).await;
    let lenient = Resource::start(&server, |b| {
        b.max_staleness(Duration::from_secs(1))
            .when_stale(WhenStale::Accept)
    })
    .await;
    let grant = password_token(&server, &app, "alice", "orders:read").await;
    let token = grant["access_token"].as_str().unwrap().to_owned();
    assert_eq!(strict.status("/orders", &token).await, 200);

    // Freeze the server: the feed goes silent, though the connection stays open.
    let pid = server.pid().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let response = strict.get("/orders", Some(&token)).await;
    let stale_status = response.status().as_u16();
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    let lenient_status = lenient.status("/orders", &token).await;
    std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap();
    assert_eq!(stale_status, 503, "a stale view refuses, and says to retry");
    assert!(retry_after.is_some());
    assert_eq!(lenient_status, 200, "fail-open was chosen");
    assert!(strict.verifier.feed_silence().unwrap() >= Duration::from_secs(1));

    eventually("the feed resumes and tokens pass again", || async {
        strict.status("/orders", &token).await == 200
    })
    .await;
}

/// `tessera token …`, which needs no store.
fn token_cli(args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(binary())
        .arg("token")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn json_out(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "not JSON: {} / {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test]
async fn token_verify_checks_like_a_resource_service_and_inspect_only_decodes() {
    let secret = "a shared secret that is long enough, really";
    let server = TestServer::start_with(&[("TESSERA_TOKENS__HS256_SECRET", secret)]).await;
    server.add_user("alice", &[]);
    let app = app_client(&server, "app", &[]);
    let grant = password_token(&server, &app, "alice", "orders:read").await;
    let token = grant["access_token"].as_str().unwrap();
    let base = server.base.as_str();

    // Through the issuer's metadata and JWKS, token as argument or on stdin.
    let out = token_cli(&["verify", token, "--issuer", base, "--aud", "orders"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_out(&out)["scope"], "orders:read");
    let out = token_cli(&["verify", "--issuer", base, "--aud", "orders"], token);
    assert!(out.status.success());

    // Refusals are typed, with exit status 1.
    for (args, code) in [
        (vec!["--aud", "billing"], "wrong_audience"),
        (vec!["--iss", "https://elsewhere.example"], "wrong_issuer"),
    ] {
        let mut all = vec!["verify", token, "--issuer", base];
        all.extend(args);
        let out = token_cli(&all, "");
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(json_out(&out)["error"], code);
    }
    let (head, _) = token.rsplit_once('.').unwrap();
    let stripped = format!("{head}.");
    let out = token_cli(&["verify", &stripped, "--issuer", base], "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_out(&out)["error"], "malformed");

    // A local key file: an HS256 token checked against an oct key.
    let svc = add_client(
        &server,
        "svc",
        &["--grant", "client_credentials", "--alg", "HS256"],
    );
    let (_, hs) = access_token(client_credentials(&server, &svc, &[]).await).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.json");
    use base64::Engine;
    let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    std::fs::write(
        &file,
        serde_json::json!({"keys": [{"kty": "oct", "alg": "HS256", "k": k}]}).to_string(),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let out = token_cli(&["verify", &hs, "--jwks", file, "--iss", base], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(json_out(&out)["client_id"], svc.id.as_str());
    // …and the EdDSA token is not something that file can vouch for.
    let out = token_cli(&["verify", token, "--jwks", file, "--iss", base], "");
    assert_eq!(json_out(&out)["error"], "unknown_key");

    // inspect decodes, and says it did not verify.
    let out = token_cli(&["inspect"], &stripped);
    assert!(out.status.success());
    let shown = json_out(&out);
    assert_eq!(shown["verified"], false);
    assert_eq!(shown["header"]["typ"], "at+jwt");
    assert_eq!(shown["payload"]["scope"], "orders:read");
    assert!(String::from_utf8_lossy(&out.stderr).contains("NOT VERIFIED"));
    let out = token_cli(&["inspect", "tat_abc"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("opaque"));
}

#[tokio::test]
async fn a_token_cookie_is_verified_like_a_header_and_ends_with_its_session() {
    let server = TestServer::start_with(&[
        ("TESSERA_TOKENS__FEED_HEARTBEAT", "200ms"),
        ("TESSERA_TOKENS__SESSION_TOKEN_AUDIENCE", "orders"),
    ])
    .await;
    server.add_user("alice", &["admin"]);
    let browser = server.login("alice").await;
    let resource = Resource::start(&server, |b| b.token_cookie("__Host-tessera-token")).await;

    // Unsafe without the CSRF token, like every cookie-authenticated change.
    let response = server
        .client
        .post(server.url("/v1/session/token"))
        .header(header::COOKIE, &browser.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    let response = server
        .unsafe_as(reqwest::Method::POST, "/v1/session/token", &browser)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    let set = response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["cookie"], "__Host-tessera-token");
    assert!(
        body.get("access_token").is_none(),
        "never readable by scripts"
    );
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=300",
    ] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    let pair = set.split(';').next().unwrap().to_owned();
    let token = pair.split_once('=').unwrap().1.to_owned();
    assert_eq!(kid_of(&token).len(), 43, "a JWT signed by the key ring");

    let with_cookie = |path: &'static str| {
        let request = resource
            .http
            .get(format!("{}{path}", resource.base))
            .header(header::COOKIE, format!("other=1; {pair}"));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(with_cookie("/me").await, 200);
    assert_eq!(with_cookie("/admin/report").await, 200, "roles ride along");
    assert_eq!(
        with_cookie("/orders").await,
        403,
        "a session token has no scopes"
    );
    let me: Value = resource
        .http
        .get(format!("{}/me", resource.base))
        .header(header::COOKIE, &pair)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["sid"], browser.session_id.as_str());
    assert_eq!(me["client_id"], "00000000-0000-0000-0000-000000000000");

    let response = server
        .unsafe_as(reqwest::Method::POST, "/v1/logout", &browser)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let cleared: Vec<_> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with("__Host-tessera-token=;") && c.contains("Max-Age=0")),
        "{cleared:?}"
    );
    eventually("the token cookie dies with its session", || async {
        with_cookie("/me").await == 401
    })
    .await;
}

/// How many times the JWKS was served, from the server's own metrics.
async fn jwks_fetches(server: &TestServer) -> u64 {
    server
        .metrics()
        .await
        .lines()
        .filter(|l| {
            l.starts_with("tessera_http_request_duration_seconds_count")
                && l.contains(r#"route="/.well-known/jwks.json""#)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn unknown_kids_cause_one_jwks_fetch_per_cool_down_however_many_arrive() {
    let server = TestServer::start_with(FAST_FEED).await;
    server.add_user("alice", &[]);
    let app = app_client(&server, "app", &[]);
    let resource = Resource::start(&server, |b| b.jwks_cooldown(Duration::from_secs(30))).await;
    let grant = password_token(&server, &app, "alice", "orders:read").await;
    let token = grant["access_token"].as_str().unwrap().to_owned();
    let (_, rest) = token.split_once('.').unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let before = jwks_fetches(&server).await;
    // 40 concurrent requests, each naming a kid nobody has.
    let forged: Vec<String> = (0..40)
        .map(|n| {
            let header =
                serde_json::json!({"alg": "EdDSA", "typ": "at+jwt", "kid": format!("unknown-{n}")});
            format!("{}.{rest}", b64.encode(header.to_string()))
        })
        .collect();
    let statuses =
        futures::future::join_all(forged.iter().map(|t| resource.status("/orders", t))).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    let response = resource.get("/orders", Some(&forged[0])).await;
    assert!(
        challenge(&response).contains("unknown"),
        "{}",
        challenge(&response)
    );
    let fetched = jwks_fetches(&server).await - before;
    assert!(fetched <= 1, "{fetched} JWKS fetches for 41 unknown kids");
    assert_eq!(resource.status("/orders", &token).await, 200);
}

/// A TCP proxy on a fixed address in front of whichever server runs now, as a
/// load balancer is: the issuer URL a verifier knows outlives the server process.
struct Proxy {
    base: String,
    target: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Proxy {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let target = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let current = target.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let to = current.lock().unwrap().clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { base, target }
    }

    fn point_at(&self, server: &TestServer) {
        *self.target.lock().unwrap() = server.base.trim_start_matches("http://").to_owned();
    }
}

/// Copies every file under `from` into `to`, keeping relative paths.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    for file in files_under(from) {
        let relative = file.strip_prefix(from).unwrap();
        let target = to.join(relative);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target).unwrap();
    }
}

/// Polls for up to 15 s: the verifier reconnects with a back-off of up to 2 s.
async fn within_15s(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: still not true after 15 s");
}

#[tokio::test]
async fn a_verifier_ahead_of_a_restored_backup_reads_the_feed_again_and_refuses_new_revocations() {
    let proxy = Proxy::start().await;
    let mut server = TestServer::start_with(&[
        ("TESSERA_TOKENS__ISSUER", proxy.base.as_str()),
        // The verifier's open stream would hold up each stop.
        ("TESSERA_LIMITS__SHUTDOWN_GRACE", "100ms"),
        FAST_FEED[0],
    ])
    .await;
    proxy.point_at(&server);
    server.add_user("alice", &[]);
    let app = app_client(&server, "app", &[]);
    let feed = add_client(
        &server,
        "orders-service",
        &["--grant", "client_credentials", "--scope", "revocations"],
    );
    // A backup while the server runs (`tessera store backup`, SQLite's online
    // backup), while the log is empty.
    let backup = tempfile::tempdir().unwrap();
    let copy = backup.path().join("tessera.sqlite3");
    let backed_up = server.cli(
        &["store", "backup", "--to", copy.to_str().unwrap(), "--json"],
        "",
    );
    assert!(
        backed_up.status.success(),
        "{}",
        String::from_utf8_lossy(&backed_up.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&backed_up.stdout).unwrap();
    assert!(summary["bytes"].as_u64().unwrap() > 0);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the backup is private");
    }
    // Never over an existing file.
    let again = server.cli(&["store", "backup", "--to", copy.to_str().unwrap()], "");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));

    let verifier = RemoteVerifier::builder(&proxy.base)
        .audience("orders")
        .client(ClientCredentials::new(feed.id, feed.secret.unwrap()))
        .build()
        .await
        .unwrap();
    let mut revoked = Vec::new();
    for _ in 0..5 {
        let grant = password_token(&server, &app, "alice", "orders:read").await;
        let token = grant["access_token"].as_str().unwrap().to_owned();
        revoke(&server, &app, &token).await;
        revoked.push(token);
    }
    within_15s("the verifier follows the log", async || {
        verifier.revocation_position() == 5
    })
    .await;

    // The backup is restored: the log is back at 0, below the verifier's position.
    assert!(server.terminate().success());
    for file in files_under(server.data_dir()) {
        std::fs::remove_file(file).unwrap();
    }
    copy_tree(backup.path(), server.data_dir());
    server.kill_and_restart();
    proxy.point_at(&server);
    let grant = password_token(&server, &app, "alice", "orders:read").await;
    let after_restore = grant["access_token"].as_str().unwrap().to_owned();
    revoke(&server, &app, &after_restore).await;
    let grant = password_token(&server, &app, "alice", "orders:read").await;
    let good = grant["access_token"].as_str().unwrap().to_owned();

    // Under a sequence the verifier had passed, the new revocation still arrives.
    within_15s(
        "the revocation made after the restore is refused",
        async || {
            matches!(
                verifier.verify(&after_restore).await,
                Err(tessera_verify::VerifyError::Revoked(_))
            )
        },
    )
    .await;
    assert!(verifier.revocation_position() < 5);
    within_15s("the feed is fresh again", async || {
        verifier.verify(&good).await.is_ok()
    })
    .await;
    // What it knew revoked stays refused, though the restored log lost it.
    for token in &revoked {
        assert_eq!(
            verifier.verify(token).await.unwrap_err(),
            tessera_verify::VerifyError::Revoked(tessera_verify::RevokedBy::Token)
        );
    }
}

#[tokio::test]
async fn a_verifier_refuses_metadata_for_another_issuer_and_setups_that_cannot_work() {
    use tessera_verify::SetupError;
    let server = TestServer::start().await;
    // Fetched for one issuer, the metadata names another: refuse, or whoever serves
    // the document chooses our keys.
    let aliased = server.base.replace("127.0.0.1", "localhost");
    let error = RemoteVerifier::builder(&aliased)
        .audience("orders")
        .follow_revocations(false)
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SetupError::IssuerMismatch { found, .. } if *found == server.base),
        "{error}"
    );
    let error = RemoteVerifier::builder(&server.base)
        .follow_revocations(false)
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(error, SetupError::Config(_)),
        "no audience: {error}"
    );
    let error = RemoteVerifier::builder(&server.base)
        .audience("orders")
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(error, SetupError::Config(_)),
        "following revocations without a client: {error}"
    );
    let error = RemoteVerifier::builder(&server.base)
        .audience("orders")
        .follow_revocations(false)
        .cookie_only()
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(error, SetupError::Config(_)),
        "cookie_only without a cookie: {error}"
    );
    // Without the feed, a verifier still works locally.
    RemoteVerifier::builder(&server.base)
        .audience("orders")
        .follow_revocations(false)
        .build()
        .await
        .unwrap();
}

async fn activity_sightings(server: &TestServer) -> u64 {
    server
        .metrics()
        .await
        .lines()
        .find(|l| l.starts_with(r#"tessera_activity_sightings_total{outcome="counted"}"#))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_verifier_reports_the_sessions_it_saw_once_a_minute_each() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let app = app_client(&server, "app", &[]);
    let resource =
        Resource::start(&server, |b| b.report_activity(Duration::from_millis(200))).await;
    let silent = Resource::start(&server, |b| b).await;
    let grant = password_token(&server, &app, "alice", "orders:read").await;
    let token = grant["access_token"].as_str().unwrap().to_owned();
    assert!(claims_of(&token)["sid"].is_string());

    for _ in 0..20 {
        assert_eq!(silent.status("/orders", &token).await, 200);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        activity_sightings(&server).await,
        0,
        "reporting is off by default"
    );

    for _ in 0..20 {
        assert_eq!(resource.status("/orders", &token).await, 200);
    }
    eventually("the session is reported", || async {
        activity_sightings(&server).await == 1
    })
    .await;
    // Twenty uses, one sighting: a session is reported at most once a minute.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(activity_sightings(&server).await, 1);
}

#[tokio::test]
async fn a_verifier_follows_the_feed_across_its_tokens_and_applies_client_cut_offs() {
    let server = TestServer::start_with(FAST_FEED).await;
    server.add_user("alice", &[]);
    // The feed client's tokens live 10 s: the stream ends with each one, and the
    // verifier must reconnect with a fresh token from where it was.
    let short = add_client(
        &server,
        "short-lived-feed",
        &[
            "--grant",
            "client_credentials",
            "--scope",
            "revocations",
            "--access-ttl",
            "10s",
        ],
    );
    let resource = Resource::start(&server, |b| {
        b.client(ClientCredentials::new(
            short.id.clone(),
            short.secret.clone().expect("a confidential client"),
        ))
    })
    .await;
    let app = app_client(&server, "app", &[]);
    let doomed = app_client(&server, "doomed", &[]);
    let scope = "orders:read";
    let kept = password_token(&server, &app, "alice", scope).await;
    let kept = kept["access_token"].as_str().unwrap().to_owned();
    let of_doomed = password_token(&server, &doomed, "alice", scope).await;
    let of_doomed = of_doomed["access_token"].as_str().unwrap().to_owned();
    assert_eq!(resource.status("/orders", &of_doomed).await, 200);

    // Past the feed token's lifetime (and its stream's), revocations still arrive.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let out = server.cli(&["client", "remove", "doomed"], "");
    assert!(out.status.success());
    eventually("a removed client's tokens are refused", || async {
        resource.status("/orders", &of_doomed).await == 401
    })
    .await;
    assert_eq!(resource.status("/orders", &kept).await, 200);
    let response = resource.get("/orders", Some(&of_doomed)).await;
    assert!(
        challenge(&response).contains("revoked"),
        "{}",
        challenge(&response)
    );
}

/// The access token `POST /v1/session/token` puts in the token cookie.
async fn session_token(server: &TestServer, browser: &Browser) -> String {
    let response = server
        .unsafe_as(reqwest::Method::POST, "/v1/session/token", browser)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned()
}

#[tokio::test]
async fn a_route_that_needs_two_factors_asks_a_password_token_to_step_up() {
    let server =
        TestServer::start_with(&[("TESSERA_TOKENS__SESSION_TOKEN_AUDIENCE", "orders")]).await;
    server.add_user("alice", &[]);
    let resource = Resource::start(&server, |b| b).await;
    let browser = server.login("alice").await;

    // RFC 9470: 401, the error, and the acr to come back with
    let one_factor = session_token(&server, &browser).await;
    let refused = resource.get("/payouts", Some(&one_factor)).await;
    assert_eq!(refused.status(), 401);
    let asked = challenge(&refused);
    assert!(
        asked.contains("error=\"insufficient_user_authentication\"")
            && asked.contains("acr_values=\"2\""),
        "{asked}"
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_user_authentication");
    // the rest of the service takes the token as before
    assert_eq!(resource.status("/me", &one_factor).await, 200);

    // signed in again with the authenticator app, the token says two factors
    let (key, _, _) = crate::second_factor::enrol_with(&server, &browser).await;
    let pending = crate::second_factor::first_step(&server, "alice").await;
    let signed_in =
        crate::second_factor::second_step(&server, &pending, &crate::second_factor::code(&key, 1))
            .await;
    let two_factors = browser_from(signed_in).await;
    let token = session_token(&server, &two_factors).await;
    let paid = resource.get("/payouts", Some(&token)).await;
    assert_eq!(paid.status(), 200);
    let body: Value = paid.json().await.unwrap();
    assert_eq!(body["acr"], "2");
    assert_eq!(body["amr"], serde_json::json!(["pwd", "otp", "mfa"]));

    // introspection tells the same
    let rs = add_client(
        &server,
        "introspector",
        &["--grant", "client_credentials", "--scope", "introspect"],
    );
    let described: Value = server
        .client
        .post(server.url("/oauth2/introspect"))
        .basic_auth(&rs.id, rs.secret.as_deref())
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(described["acr"], "2", "{described}");
    assert_eq!(described["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
}
