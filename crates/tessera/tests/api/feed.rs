//! The revocation feed: Server-Sent Events for verifiers holding the `revocations` scope.

use std::time::Duration;

use reqwest::{Response, header};
use serde_json::Value;

use crate::harness::*;

pub(crate) struct Event {
    pub id: Option<String>,
    pub kind: String,
    pub data: Value,
}

/// Reads SSE events from a streaming response.
pub(crate) struct EventReader {
    response: Response,
    buffer: String,
}

impl EventReader {
    pub(crate) fn new(response: Response) -> Self {
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    pub(crate) async fn next(&mut self) -> Event {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = Event {
                    id: None,
                    kind: "message".into(),
                    data: Value::Null,
                };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        event.id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event.kind = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        event.data = serde_json::from_str(v.trim()).unwrap();
                    }
                }
                if event.data.is_null() {
                    continue; // a comment or keep-alive
                }
                return event;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("an event within 10 s")
                .unwrap()
                .expect("the stream stays open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next `revocation` event, skipping heartbeats.
    pub(crate) async fn next_revocation(&mut self) -> Event {
        loop {
            let event = self.next().await;
            if event.kind == "revocation" {
                return event;
            }
        }
    }
}

fn feed_client(server: &TestServer, scope: &str) -> (String, String) {
    let out = server.cli(
        &[
            "client",
            "add",
            &format!("verifier-{scope}"),
            "--grant",
            "client_credentials",
            "--scope",
            scope,
            "--json",
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        added["client_id"].as_str().unwrap().to_owned(),
        added["client_secret"].as_str().unwrap().to_owned(),
    )
}

pub(crate) async fn feed_token(server: &TestServer, scope: &str) -> String {
    let (id, secret) = feed_client(server, scope);
    let body: Value = server
        .client
        .post(server.url("/oauth2/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

pub(crate) async fn open_feed(
    server: &TestServer,
    token: &str,
    last_event_id: Option<&str>,
) -> Response {
    let mut request = server
        .client
        .get(server.url("/v1/revocations"))
        .bearer_auth(token);
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn the_feed_needs_a_token_with_the_revocations_scope() {
    let server = TestServer::start().await;
    let anonymous = server
        .client
        .get(server.url("/v1/revocations"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(
        anonymous.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let garbage = open_feed(&server, "not-a-token", None).await;
    assert!(
        garbage.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    assert_eq!(error_of(garbage).await, (401, "invalid_token".into()));
    let unscoped = feed_token(&server, "read").await;
    let refused = open_feed(&server, &unscoped, None).await;
    assert!(
        refused.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    assert_eq!(error_of(refused).await, (403, "insufficient_scope".into()));
    let token = feed_token(&server, "revocations").await;
    let bad_resume = open_feed(&server, &token, Some("yesterday")).await;
    assert_eq!(error_of(bad_resume).await, (400, "invalid_request".into()));
}

#[tokio::test]
async fn revocations_stream_live_and_resume_from_last_event_id_with_nothing_missed() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let token = feed_token(&server, "revocations").await;
    let mut feed = EventReader::new(open_feed(&server, &token, None).await);

    // A logout reaches the feed as the session's id.
    let browser = server.login("alice").await;
    let logout = server
        .unsafe_as(reqwest::Method::POST, "/v1/logout", &browser)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    let first = feed.next_revocation().await;
    assert_eq!(first.data["kind"], "session");
    assert_eq!(first.data["id"], browser.session_id.as_str());
    assert_eq!(first.data["reason"], "logout");
    assert_eq!(
        first.id.as_deref(),
        Some(first.data["sequence"].to_string().as_str())
    );

    // A JWT revoked by jti.
    let (id, secret) = feed_client(&server, "other");
    let issued: Value = server
        .client
        .post(server.url("/oauth2/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwt = issued["access_token"].as_str().unwrap();
    let revoked = server
        .client
        .post(server.url("/oauth2/revoke"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", jwt)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let second = feed.next_revocation().await;
    assert_eq!(second.data["kind"], "token");
    assert!(second.data["sequence"].as_u64() > first.data["sequence"].as_u64());
    drop(feed);

    // While no one listens, a third revocation; resuming after the second gets it,
    // and only it.
    let other = server.login("alice").await;
    server
        .unsafe_as(reqwest::Method::POST, "/v1/logout", &other)
        .send()
        .await
        .unwrap();
    let mut resumed = EventReader::new(open_feed(&server, &token, second.id.as_deref()).await);
    let third = resumed.next_revocation().await;
    assert_eq!(third.data["id"], other.session_id.as_str());
    // A heartbeat carries the current sequence.
    loop {
        let event = resumed.next().await;
        if event.kind == "heartbeat" {
            assert_eq!(event.data["sequence"], third.data["sequence"]);
            assert!(event.id.is_none(), "heartbeats do not move Last-Event-ID");
            break;
        }
        assert_ne!(
            event.kind, "revocation",
            "nothing but the third after resuming"
        );
    }

    // A fresh subscriber gets everything still in force, in order.
    let mut fresh = EventReader::new(open_feed(&server, &token, None).await);
    let mut sequences = Vec::new();
    for _ in 0..3 {
        sequences.push(
            fresh.next_revocation().await.data["sequence"]
                .as_u64()
                .unwrap(),
        );
    }
    assert!(sequences.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(sequences.last(), third.data["sequence"].as_u64().as_ref());
}

#[tokio::test]
async fn a_heartbeat_carries_the_logs_own_sequence_even_to_a_client_resuming_beyond_it() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let token = feed_token(&server, "revocations").await;
    let browser = server.login("alice").await;
    let logout = server
        .unsafe_as(reqwest::Method::POST, "/v1/logout", &browser)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    // A client that followed another log (a backup restored since) resumes from a
    // number this log never reached: the heartbeat tells it so.
    for resume_from in ["1000", "1"] {
        let mut feed = EventReader::new(open_feed(&server, &token, Some(resume_from)).await);
        let event = feed.next().await;
        assert_eq!(event.kind, "heartbeat", "resuming from {resume_from}");
        assert_eq!(event.data["sequence"], 1, "resuming from {resume_from}");
    }
}

/// SIGTERM ends every feed stream at once with a `reconnect` event (and `retry:
/// 0`), so a server with verifiers connected stops in well under 2 s instead of
/// waiting out its grace period, and each verifier knows to go elsewhere now.
#[tokio::test]
async fn sigterm_ends_feed_streams_at_once_with_a_reconnect_event() {
    let mut server = TestServer::start().await;
    let token = feed_token(&server, "revocations").await;
    let streams = [
        open_feed(&server, &token, None).await,
        open_feed(&server, &token, None).await,
    ];
    for stream in &streams {
        assert_eq!(stream.status(), 200);
    }
    let started = std::time::Instant::now();
    let stopped = tokio::task::spawn_blocking(move || server.terminate());
    for stream in streams {
        let rest = tokio::time::timeout(Duration::from_secs(5), stream.text())
            .await
            .expect("the stream ends")
            .expect("the stream ends cleanly");
        assert!(
            rest.contains("event: reconnect\n") && rest.contains("retry: 0\n"),
            "{rest:?}"
        );
    }
    let status = stopped.await.unwrap();
    let took = started.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(2), "stopping took {took:?}");
}
