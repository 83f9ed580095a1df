//! Back-channel logout through the real binary: a session that ends, however it
//! ends, reaches every app that got tokens from it, durably.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use serde_json::Value;

use crate::code_flow::{REDIRECT, Request, code_for, tokens};
use crate::harness::*;
use crate::tokens::{Registered, add_client};

/// An app's back-channel endpoint: what was posted to it, in order.
#[derive(Clone, Default)]
pub(crate) struct Receiver {
    tokens: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    /// Listens on `address` (a port chosen before, maybe refused meanwhile).
    pub(crate) async fn listen(&self, address: SocketAddr) -> tokio::task::JoinHandle<()> {
        let listener = tokio::net::TcpListener::bind(address).await.unwrap();
        let app =
            axum::Router::new()
                .route(
                    "/backchannel",
                    post(
                        |State(tokens): State<Arc<Mutex<Vec<String>>>>,
                         axum::Form(form): axum::Form<
                            std::collections::HashMap<String, String>,
                        >| async move {
                            if let Some(token) = form.get("logout_token") {
                                tokens.lock().unwrap().push(token.clone());
                            }
                            axum::http::StatusCode::OK
                        },
                    ),
                )
                .with_state(self.tokens.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        })
    }

    pub(crate) fn received(&self) -> Vec<String> {
        self.tokens.lock().unwrap().clone()
    }

    /// Waits up to `seconds` for `count` tokens.
    pub(crate) async fn wait_for(&self, count: usize, seconds: u64) -> Vec<String> {
        for _ in 0..seconds * 10 {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{count} logout token(s) expected, got {:?}",
            self.received()
        );
    }
}

/// A loopback address nothing listens on (yet).
pub(crate) fn free_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn app_with_backchannel(server: &TestServer, name: &str, address: SocketAddr) -> Registered {
    let uri = format!("http://{address}/backchannel");
    add_client(
        server,
        name,
        &[
            "--grant",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--backchannel-logout-uri",
            &uri,
            "--first-party",
            "--id-token-alg",
            "ES256",
        ],
    )
}

/// Checks a logout token as an app must (Back-Channel Logout 1.0 §2.6): signature
/// by a published key, `typ`, issuer, audience, `events`, `sid`, no `nonce`.
async fn verify_logout_token(server: &TestServer, token: &str, client: &str) -> Value {
    let claims = crate::tokens::verify_typed(server, token, "logout+jwt", "ES256", client).await;
    assert!(
        claims["events"]
            .get("http://schemas.openid.net/event/backchannel-logout")
            .is_some(),
        "{claims}"
    );
    assert!(claims.get("nonce").is_none());
    assert!(claims["jti"].is_string() && claims["iat"].is_number());
    claims
}

#[tokio::test]
async fn logging_out_and_kicking_reach_every_app_that_got_tokens() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let (first, second) = (Receiver::default(), Receiver::default());
    let (first_address, second_address) = (free_address(), free_address());
    let _first = first.listen(first_address).await;
    let _second = second.listen(second_address).await;
    let portal = app_with_backchannel(&server, "portal", first_address);
    let shop = app_with_backchannel(&server, "shop", second_address);
    let browser = server.login("alice").await;
    for app in [&portal, &shop] {
        let request = Request::new(app);
        let code = code_for(&server, &browser, &request).await;
        tokens(&server, app, &code, &request.verifier).await;
    }

    let logout = server
        .unsafe_as(reqwest::Method::POST, "/v1/logout", &browser)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    let user = browser.login["user"]["id"].as_str().unwrap();
    for (receiver, app) in [(&first, &portal), (&second, &shop)] {
        let received = receiver.wait_for(1, 10).await;
        let claims = verify_logout_token(&server, &received[0], &app.id).await;
        assert_eq!(claims["sid"], browser.session_id.as_str());
        assert_eq!(claims["sub"], user);
    }

    // A kick ends every session of the user: each app hears of the one it knew.
    let again = server.login("alice").await;
    let request = Request::new(&portal);
    let code = code_for(&server, &again, &request).await;
    tokens(&server, &portal, &code, &request.verifier).await;
    let out = server.cli(&["sessions", "kick", "alice"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let received = first.wait_for(2, 10).await;
    let claims = verify_logout_token(&server, &received[1], &portal.id).await;
    assert_eq!(claims["sid"], again.session_id.as_str());
    // Once each: nothing more arrives.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(first.received().len(), 2);
    assert_eq!(second.received().len(), 1);
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("tessera_backchannel_logouts_total{outcome=\"delivered\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_logout_waits_for_an_app_that_is_down_across_a_restart() {
    let mut server = TestServer::start().await;
    server.add_user("alice", &[]);
    let receiver = Receiver::default();
    let address = free_address();
    let portal = app_with_backchannel(&server, "portal", address);
    let browser = server.login("alice").await;
    let request = Request::new(&portal);
    let code = code_for(&server, &browser, &request).await;
    tokens(&server, &portal, &code, &request.verifier).await;

    // The app is down: the logout is queued and retried.
    server
        .unsafe_as(reqwest::Method::POST, "/v1/logout", &browser)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("tessera_backchannel_logouts_total{outcome=\"failed\"}"),
        "{metrics}"
    );
    // tessera dies meanwhile; the queue is in the store.
    server.kill_and_restart();
    let _up = receiver.listen(address).await;
    let received = receiver.wait_for(1, 30).await;
    let claims = verify_logout_token(&server, &received[0], &portal.id).await;
    assert_eq!(claims["sid"], browser.session_id.as_str());
}

#[tokio::test]
async fn a_reused_refresh_token_ends_the_sign_in_and_reaches_the_app() {
    let server = TestServer::start_with(&[("TESSERA_TOKENS__REFRESH_REUSE_GRACE", "0s")]).await;
    server.add_user("alice", &[]);
    let receiver = Receiver::default();
    let address = free_address();
    let _up = receiver.listen(address).await;
    let uri = format!("http://{address}/backchannel");
    let portal = add_client(
        &server,
        "portal",
        &[
            "--grant",
            "authorization_code,refresh_token",
            "--redirect-uri",
            REDIRECT,
            "--backchannel-logout-uri",
            &uri,
            "--first-party",
            "--id-token-alg",
            "ES256",
        ],
    );
    let browser = server.login("alice").await;
    let request = Request::new(&portal);
    let code = code_for(&server, &browser, &request).await;
    let body = tokens(&server, &portal, &code, &request.verifier).await;
    let first = body["refresh_token"].as_str().unwrap();
    let refresh = || crate::tokens::refresh(&server, &portal, first, &[]);
    assert_eq!(refresh().await.status(), 200);
    // The spent token again: a thief has it. The family ends, with the sign-in.
    let reused = refresh().await;
    assert_eq!(error_of(reused).await, (400, "invalid_grant".into()));
    eventually("the sign-in ends with the stolen family", || async {
        server.session_status(&browser).await == 401
    })
    .await;
    let received = receiver.wait_for(1, 10).await;
    let claims = verify_logout_token(&server, &received[0], &portal.id).await;
    assert_eq!(claims["sid"], browser.session_id.as_str());
}

/// Three instances on one PostgreSQL and Redis: signed in on one, the code minted on
/// another and exchanged on the third; signed out on the first. Every instance
/// follows the log and could deliver, yet the app hears of it once.
#[tokio::test]
async fn across_instances_a_code_works_anywhere_and_a_logout_arrives_once() {
    let cluster = crate::cluster::Cluster::start(3).await;
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    a.add_user("alice", &[]);
    let receiver = Receiver::default();
    let address = free_address();
    let _up = receiver.listen(address).await;
    let portal = app_with_backchannel(a, "portal", address);
    let browser = a.login("alice").await;
    let request = Request::new(&portal);
    let code = code_for(b, &browser, &request).await;
    tokens(c, &portal, &code, &request.verifier).await;

    let logout = a
        .unsafe_as(reqwest::Method::POST, "/v1/logout", &browser)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    let received = receiver.wait_for(1, 10).await;
    let header = jsonwebtoken::decode_header(&received[0]).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let claims = crate::tokens::claims_of(&received[0]);
    assert_eq!(claims["sid"], browser.session_id.as_str());
    assert_eq!(claims["aud"], portal.id.as_str());
    // Three followers, one delivery.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received().len(), 1, "{:?}", receiver.received());
}
