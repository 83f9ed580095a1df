//! A real browser signs in: Debian's headless Chromium, driven by playwright-core
//! (`tests/browser/sign_in.mjs`), on the real tessera and a real `tessera gateway`.
//! curl-style tests cannot see what only browsers do (the `Origin` they send, the
//! CSP they enforce on redirects); these do. Screenshots of each step land in
//! `target/browser-artifacts/`. `scripts/test` installs what they need; a missing
//! piece fails the test with how to install it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Html;
use reqwest::header;
use serde_json::{Value, json};
use tessera_verify::RemoteVerifier;

use crate::gateway::{GatewayProcess, closed_port};
use crate::harness::*;
use crate::tokens::add_client;

const BROWSER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");
const CHROMIUM: &str = "/usr/bin/chromium";

/// `target/browser-artifacts`, beside the test binary's own target dir (so it
/// follows `CARGO_TARGET_DIR`).
fn artifacts() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/api-<hash>
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("browser-artifacts")
}

/// Fails, saying how to install it, when a piece the browser tests need is missing.
fn require_browser_tools() {
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is missing: apt-get install nodejs npm (Node.js 20 or newer), or run scripts/test"
    );
    assert!(
        Path::new(BROWSER_DIR)
            .join("node_modules/playwright-core")
            .is_dir(),
        "playwright-core is not installed: run scripts/test, or npm ci --prefix {BROWSER_DIR}"
    );
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: apt-get install chromium (Debian's package; \
         playwright's own browser download is not used), or run scripts/test"
    );
}

/// Runs one scenario of `sign_in.mjs` and returns what the browser saw.
async fn browse(scenario: &str, tessera: &str, start: Option<&str>, password: &str) -> Value {
    browse_with(scenario, tessera, start, password, true).await
}

/// [`browse`], with JavaScript on or off.
async fn browse_with(
    scenario: &str,
    tessera: &str,
    start: Option<&str>,
    password: &str,
    javascript: bool,
) -> Value {
    let config = json!({
        "chromium": CHROMIUM,
        "tessera": tessera,
        "start": start,
        "username": "alice",
        "password": password,
        "artifacts": artifacts(),
        "javascript": javascript,
    });
    run_scenario(scenario, config).await
}

/// Runs `scenario` with `config` (see `sign_in.mjs`).
async fn run_scenario(scenario: &str, config: Value) -> Value {
    require_browser_tools();
    let script = format!("{BROWSER_DIR}/sign_in.mjs");
    let args = [script, scenario.to_owned(), config.to_string()];
    // The servers under test are other processes or other tasks: blocking a thread
    // on the browser holds none of them up.
    let out: Output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args(&args)
            .current_dir(BROWSER_DIR)
            .stdin(Stdio::null())
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser's {scenario} scenario failed ({}): {stderr}\nscreenshots: {}",
        out.status,
        artifacts().display()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
}

async fn server_with(env: &[(&str, &str)]) -> TestServer {
    let server = TestServer::start_with(env).await;
    server.add_user("alice", &[]);
    server
}

#[tokio::test]
async fn a_browser_signs_in_on_the_login_page() {
    let server = server_with(&[]).await;
    let seen = browse("direct", &server.base, None, PASSWORD).await;
    let post = &seen["chain"][0];
    assert_eq!(post["method"], "POST");
    assert_eq!(post["origin"], server.base.as_str(), "{seen}");
    assert_eq!(post["status"], 303);
    assert_eq!(seen["url"], server.url("/login"));
    assert_eq!(seen["heading"], "Signed in");
    assert!(
        seen["body"]
            .as_str()
            .unwrap()
            .contains("signed in as alice"),
        "{seen}"
    );
    assert_eq!(seen["session"]["status"], 200, "{seen}");
    assert_eq!(seen["session"]["username"], "alice");
    assert_eq!(seen["consoleErrors"], json!([]));
    assert_eq!(
        seen["buttonColor"], "rgb(37, 99, 235)",
        "the stylesheet applies"
    );
}

/// What the upstream behind the gateway saw: the bearer tokens it was sent.
#[derive(Clone, Default)]
struct Upstream {
    tokens: Arc<Mutex<Vec<String>>>,
}

/// A page, as an application behind the gateway would serve it.
async fn orders_page(State(upstream): State<Upstream>, headers: HeaderMap) -> Html<&'static str> {
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        upstream.tokens.lock().unwrap().push(token.to_owned());
    }
    Html(
        "<!doctype html><html lang=en><title>Orders</title>\
         <body style='font-family:sans-serif;margin:3rem'><h1>Your orders</h1>\
         <p>The orders service answered this page.</p></body></html>",
    )
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

#[tokio::test]
async fn a_browser_sent_to_sign_in_by_the_gateway_comes_back_to_its_page() {
    // tessera must know the gateway's origin (return_to_origins) before the gateway
    // exists: the gateway gets a port picked now.
    let gateway_port = closed_port();
    let gateway_origin = format!("http://127.0.0.1:{gateway_port}");
    let server = server_with(&[(
        "TESSERA_RETURN_TO_ORIGINS",
        &format!(r#"["{gateway_origin}"]"#),
    )])
    .await;
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
        ],
    );
    let upstream = Upstream::default();
    let upstream_base = serve(
        Router::new()
            .fallback(orders_page)
            .with_state(upstream.clone()),
    )
    .await;
    let issuer = &server.base;
    let config = format!(
        r#"
listen = "127.0.0.1:{gateway_port}"
management_listen = "127.0.0.1:0"
tessera_url = "{issuer}"
client_id = "{id}"
login_url = "{issuer}/login"

[[route]]
prefix = "/app/"
upstream = "{upstream_base}"
audience = "orders"
scopes = ["orders:read"]
auth = "session"
"#,
        id = client.id,
    );
    let gateway = GatewayProcess::start(&config, client.secret.as_deref().unwrap(), &[]);
    assert_eq!(gateway.base, gateway_origin);
    let start = format!("{gateway_origin}/app/orders?page=2");

    let seen = browse("gateway", &server.base, Some(&start), PASSWORD).await;
    assert!(
        seen["login"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/login?return_to=", server.base)),
        "{seen}"
    );
    let post = &seen["chain"][0];
    assert_eq!(post["method"], "POST");
    assert_eq!(post["origin"], server.base.as_str(), "{seen}");
    assert_eq!(post["status"], 303);
    assert_eq!(seen["chain"][1]["url"], start.as_str());
    assert_eq!(seen["chain"][1]["status"], 200);
    assert_eq!(seen["end"], start.as_str());
    assert_eq!(seen["heading"], "Your orders");
    assert_eq!(
        seen["consoleErrors"],
        json!([]),
        "CSP let the redirect through"
    );
    assert_eq!(seen["session"]["username"], "alice");

    // The upstream got a token for alice, for its audience; never the session.
    let tokens = upstream.tokens.lock().unwrap().clone();
    assert_eq!(tokens.len(), 1, "one page load, one token: {tokens:?}");
    let verifier = RemoteVerifier::builder(&server.base)
        .audience("orders")
        .follow_revocations(false)
        .build()
        .await
        .unwrap();
    let claims = verifier.verify(&tokens[0]).await.unwrap();
    let alice = server.login("alice").await;
    assert_eq!(claims.sub, alice.login["user"]["id"].as_str().unwrap());
    assert_eq!(claims.scope.as_deref(), Some("orders:read"));
}

#[tokio::test]
async fn a_browser_with_the_wrong_password_sees_the_form_again() {
    let server = server_with(&[]).await;
    let seen = browse("wrong_password", &server.base, None, PASSWORD).await;
    assert_eq!(seen["chain"][0]["status"], 401);
    assert_eq!(seen["error"], "Invalid username or password.");
    assert_eq!(
        seen["cspViolations"],
        json!([]),
        "the page's CSP allows its style"
    );
    assert_eq!(seen["keptUsername"], "alice");
    assert_eq!(seen["session"]["status"], 401);
}

/// The page another site serves: a form that signs the visitor in to tessera as
/// someone else (a login CSRF), if tessera let it.
async fn foreign_site(tessera: &str) -> String {
    let page = format!(
        "<!doctype html><html lang=en><title>Another site</title>\
         <body style='font-family:sans-serif;margin:3rem'><h1>Another site</h1>\
         <form method=post action='{tessera}/login'>\
         <input type=hidden name=username value=alice>\
         <input type=hidden name=password value='{PASSWORD}'>\
         <button type=submit>Win a prize</button></form></body></html>"
    );
    serve(Router::new().fallback(move || {
        let page = page.clone();
        async move { Html(page) }
    }))
    .await
}

#[tokio::test]
async fn a_form_another_origin_posts_gets_the_refusal_page_and_no_session() {
    let server = server_with(&[]).await;
    let foreign = foreign_site(&server.base).await;
    let seen = browse("foreign", &server.base, Some(&foreign), PASSWORD).await;
    for (what, origin) in [("foreign", foreign.as_str()), ("opaque", "null")] {
        let refused = &seen[what];
        assert_eq!(refused["chain"][0]["origin"], origin, "{seen}");
        assert_eq!(refused["chain"][0]["status"], 403);
        assert!(
            refused["error"]
                .as_str()
                .unwrap()
                .contains("sent from another site"),
            "{seen}"
        );
    }
    assert_eq!(seen["foreign"]["session"]["status"], 401);
    assert_eq!(seen["cspViolations"], json!([]));
    assert_eq!(seen["session"]["status"], 401);
}

/// `examples/oidc-app`, running as a process for one test.
struct ExampleApp {
    child: std::process::Child,
    base: String,
}

impl ExampleApp {
    async fn start(issuer: &str, id: &str, secret: &str, port: u16) -> Self {
        let app = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/oidc-app/app.py"
        );
        let mut child = Command::new("python3")
            .arg(app)
            .arg(port.to_string())
            .env("TESSERA_ISSUER", issuer)
            .env("CLIENT_ID", id)
            .env("CLIENT_SECRET", secret)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 is missing: apt-get install python3, or run scripts/test");
        let stdout = child.stdout.take().unwrap();
        let mut first = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut first).unwrap();
        assert!(
            first.contains("example app on"),
            "the example app did not start (Authlib missing? run scripts/test): {first:?}"
        );
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn backchannel_logouts(&self) -> Vec<Value> {
        let events: Value = reqwest::get(format!("{}/events", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        events["backchannel_logouts"].as_array().unwrap().clone()
    }
}

impl Drop for ExampleApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_person_signs_in_to_an_app_with_tessera_and_out_of_every_app() {
    let server = server_with(&[]).await;
    let out = server.cli(&["user", "set", "alice", "--name", "Alice Liddell"], "");
    assert!(out.status.success());
    let port = closed_port();
    let app_base = format!("http://127.0.0.1:{port}");
    let client = add_client(
        &server,
        "Example app",
        &[
            "--grant",
            "authorization_code,refresh_token",
            "--redirect-uri",
            &format!("{app_base}/callback"),
            "--post-logout-redirect-uri",
            &format!("{app_base}/signed-out"),
            "--backchannel-logout-uri",
            &format!("{app_base}/backchannel"),
            "--scope",
            "openid profile email",
        ],
    );
    let app = ExampleApp::start(
        &server.base,
        &client.id,
        client.secret.as_deref().unwrap(),
        port,
    )
    .await;
    let start = format!("{}/", app.base);

    // With JavaScript off: tessera's pages need none.
    let seen = browse_with("oidc_app", &server.base, Some(&start), PASSWORD, false).await;
    assert_eq!(seen["consentHeading"], "Allow Example app?", "{seen}");
    assert_eq!(
        seen["scopes"],
        json!([
            "Know who you are on this server",
            "See your name and username",
            "See your email address"
        ])
    );
    assert_eq!(seen["home"], start.as_str(), "{seen}");
    assert_eq!(seen["greeting"], "Hello, Alice Liddell");
    assert_eq!(seen["tesseraSession"]["status"], 200);
    assert_eq!(
        seen["consoleErrors"],
        json!([]),
        "CSP let every redirect through"
    );
    // Signed out everywhere: back on the app, and tessera's session is gone.
    assert_eq!(seen["end"], format!("{}/signed-out", app.base).as_str());
    assert_eq!(seen["session"]["status"], 401);
    let chain = seen["signOutChain"].as_array().unwrap();
    assert!(
        chain.iter().any(|step| step["url"]
            .as_str()
            .unwrap()
            .starts_with(&server.url("/oauth2/logout"))),
        "{chain:?}"
    );
    // And the app heard of it on its back channel, as every app that got tokens
    // from that session would.
    let mut logouts = Vec::new();
    for _ in 0..50 {
        logouts = app.backchannel_logouts().await;
        if !logouts.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(logouts.len(), 1, "{logouts:?}");
    assert!(logouts[0]["sid"].is_string());
}

/// The account page in a real browser: sign in, see this device and a phone, sign
/// the phone out and watch its cookie fail; axe-core finds nothing serious; the
/// page fits a phone's screen. Screenshots: `account-*.png`.
#[tokio::test]
async fn a_person_signs_their_phone_out_from_the_account_page() {
    let server = server_with(&[]).await;
    let phone_agent = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) \
         AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
    let response = server
        .client
        .post(server.url("/v1/login"))
        .header(header::USER_AGENT, phone_agent)
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let phone = browser_from(response).await;
    let seen = run_scenario(
        "account",
        json!({
            "chromium": CHROMIUM,
            "tessera": server.base,
            "username": "alice",
            "password": PASSWORD,
            "artifacts": artifacts(),
            "other": "Safari on iPhone",
        }),
    )
    .await;
    let before = seen["before"].as_array().unwrap();
    assert_eq!(before.len(), 2, "{seen}");
    assert!(
        before
            .iter()
            .any(|s| s.as_str().unwrap().contains("Safari on iPhone")),
        "{seen}"
    );
    assert_eq!(seen["current"], "this device");
    assert_eq!(seen["signOutChain"][0]["status"], 303, "{seen}");
    assert_eq!(seen["notice"], "That session is signed out.");
    assert_eq!(seen["after"].as_array().unwrap().len(), 1, "{seen}");
    assert_eq!(server.session_status(&phone).await, 401, "the phone is out");
    assert_eq!(seen["session"]["status"], 200, "this browser stays in");
    assert_eq!(seen["axe"], json!([]), "accessibility: {seen}");
    assert!(
        seen["overflow"].as_i64().unwrap() <= 0,
        "wider than a phone: {seen}"
    );
    assert_eq!(seen["consoleErrors"], json!([]), "{seen}");
}

/// The console in a real browser: an admin sees two people online, kicks one and
/// the count drops, issues them a reset link (which they use), rotates a key,
/// registers an app, and reads the events these left; axe-core finds nothing
/// serious; the dashboard fits a phone. Screenshots: `console-*.png`.
#[tokio::test]
async fn an_admin_kicks_a_user_and_rotates_a_key_in_the_console() {
    let server = TestServer::start().await;
    server.add_user("root", &["admin"]);
    server.add_user("alice", &[]);
    let alice = server.login("alice").await;
    let seen = run_scenario(
        "console",
        json!({
            "chromium": CHROMIUM,
            "tessera": server.base,
            "username": "root",
            "password": PASSWORD,
            "artifacts": artifacts(),
            "other": "alice",
        }),
    )
    .await;
    assert_eq!(seen["before"], 2, "{seen}");
    assert_eq!(
        seen["after"], 1,
        "the kicked user is no longer online: {seen}"
    );
    assert_eq!(server.session_status(&alice).await, 401, "alice is out");
    assert_eq!(seen["kickChain"][0]["status"], 303, "{seen}");
    assert_eq!(
        seen["keysAfter"].as_u64().unwrap(),
        seen["keysBefore"].as_u64().unwrap() + 1,
        "{seen}"
    );
    let kinds: Vec<&str> = seen["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(
        kinds.starts_with(&[
            "client.added",
            "key.rotated",
            "reset_link.used",
            "reset_link.issued",
            "user.kicked"
        ]),
        "{kinds:?}"
    );
    assert!(
        seen["resetLink"]
            .as_str()
            .unwrap()
            .contains("/reset?token=tpr_"),
        "{seen}"
    );
    assert_eq!(seen["resetChain"][0]["status"], 200, "{seen}");
    assert_eq!(seen["resetDone"], "Password changed", "{seen}");
    assert_eq!(
        server
            .try_login("alice", "a brand new passphrase")
            .await
            .status(),
        200
    );
    assert_eq!(seen["addChain"][0]["status"], 200, "{seen}");
    assert!(
        seen["clientSecret"].as_str().unwrap().starts_with("tcs_"),
        "{seen}"
    );
    assert_eq!(seen["clients"], 1, "{seen}");
    assert_eq!(seen["axe"], json!([]), "accessibility: {seen}");
    assert!(
        seen["overflow"].as_i64().unwrap() <= 0,
        "wider than a phone: {seen}"
    );
    assert_eq!(seen["consoleErrors"], json!([]), "{seen}");
}

#[tokio::test]
async fn a_browser_sets_up_an_authenticator_app_and_signs_in_with_it() {
    let server = server_with(&[]).await;
    let seen = browse("two_step", &server.base, None, PASSWORD).await;
    let link = seen["link"].as_str().unwrap();
    assert!(
        link.starts_with("otpauth://totp/") && link.contains("issuer="),
        "{seen}"
    );
    assert_eq!(
        seen["key"], seen["shownKey"],
        "the QR code and the text agree"
    );
    assert_eq!(seen["heading"], "Your recovery codes");
    let codes = seen["recoveryCodes"].as_array().unwrap();
    assert_eq!(codes.len(), 10, "{seen}");
    let status = seen["status"].as_str().unwrap();
    assert!(
        status.contains("asks for a code from your authenticator app"),
        "{seen}"
    );
    let first = &seen["firstStepChain"];
    assert_eq!(first[0]["status"], 303, "{seen}");
    assert!(
        seen["secondStepUrl"]
            .as_str()
            .unwrap()
            .starts_with(&server.url("/login/second-factor?return_to=")),
        "{seen}"
    );
    assert_eq!(seen["wrongStatus"], 401);
    assert!(
        seen["wrongError"].as_str().unwrap().contains("not right"),
        "{seen}"
    );
    assert_eq!(seen["url"], server.url("/account"), "{seen}");
    assert_eq!(seen["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(seen["axe"], json!([]), "{seen}");
    // The wrong code's page comes with a 401, which Chromium logs; nothing else.
    for error in seen["consoleErrors"].as_array().unwrap() {
        assert!(error.as_str().unwrap().contains("401"), "{seen}");
    }
    assert_eq!(seen["cspViolations"], json!([]), "{seen}");
}

#[tokio::test]
async fn a_browser_adds_a_passkey_and_signs_in_with_it_alone_and_as_a_second_step() {
    let server = TestServer::start_on_localhost(&[]).await;
    server.add_user("alice", &[]);
    // The browser is at the public URL: WebAuthn takes no IP address.
    let tessera = server.base.replace("127.0.0.1", "localhost");
    let seen = browse("passkeys", &tessera, None, PASSWORD).await;
    assert_eq!(
        seen["added"], "The passkey is added: use it the next time you sign in.",
        "{seen}"
    );
    assert_eq!(seen["listed"], json!(["This laptop"]), "{seen}");
    assert_eq!(
        seen["resident"],
        json!([true]),
        "a discoverable credential, so no username is needed: {seen}"
    );
    assert_eq!(
        seen["autocomplete"], "username webauthn",
        "conditional UI: {seen}"
    );
    assert_eq!(seen["signedIn"], "Signed in", "{seen}");
    assert_eq!(seen["aloneAmr"], json!(["hwk", "mfa"]), "{seen}");
    assert!(
        seen["secondStepUrl"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{tessera}/login/second-factor")),
        "{seen}"
    );
    assert_eq!(
        seen["codeFormShown"], 0,
        "no code to type for passkeys alone: {seen}"
    );
    assert_eq!(seen["twoStepsAmr"], json!(["pwd", "hwk", "mfa"]), "{seen}");
    assert!(
        seen["lastUsed"]
            .as_str()
            .unwrap()
            .contains("last used just now"),
        "{seen}"
    );
    assert_eq!(seen["removed"], "The passkey is removed.", "{seen}");
    assert_eq!(seen["remaining"], 0, "{seen}");
    assert_eq!(seen["axe"], json!([]), "accessibility: {seen}");
    assert_eq!(seen["cspViolations"], json!([]), "{seen}");
    assert_eq!(seen["consoleErrors"], json!([]), "{seen}");
}
