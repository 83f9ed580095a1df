//! The audit log, end to end through the real binary: what it records of sign-ins,
//! logouts, admin and operator actions and of the sessions tessera ends itself;
//! who may read it; the filters and pages of `GET /admin/v1/events`; `tessera
//! events`; and that no secret ever lands in it.

use reqwest::Method;
use serde_json::Value;

use crate::harness::{PASSWORD, TestServer, error_of};
use crate::tokens::{add_client, password_grant, refresh};

async fn events(server: &TestServer, root: &crate::harness::Browser, query: &str) -> Value {
    let response = server
        .get_as(&format!("/admin/v1/events{query}"), root)
        .await;
    assert_eq!(response.status(), 200, "GET /admin/v1/events{query}");
    response.json().await.unwrap()
}

fn kinds(page: &Value) -> Vec<String> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["kind"].as_str().unwrap(),
                e["outcome"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn sign_ins_logouts_and_admin_actions_are_recorded_with_who_and_where() {
    let server = TestServer::start().await;
    server.add_user("root", &["admin"]);
    server.add_user("alice", &[]);
    let (root_id, alice_id) = (server.user_id("root"), server.user_id("alice"));

    // A wrong password, sent with a forged X-Forwarded-For (no proxy is trusted):
    // the address recorded is the connection's.
    let wrong = "not alice's password at all";
    let failed = server
        .client
        .post(server.url("/v1/login"))
        .header("x-forwarded-for", "203.0.113.9")
        .json(&serde_json::json!({"username": "alice", "password": wrong}))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 401);
    let alice = server.login("alice").await;
    let logout = server
        .unsafe_as(Method::POST, "/v1/logout", &alice)
        .send()
        .await
        .unwrap();
    assert!(logout.status().is_success(), "{}", logout.status());
    server.login("alice").await;
    let root = server.login("root").await;
    let kicked = server
        .unsafe_as(
            Method::POST,
            &format!("/admin/v1/users/{alice_id}/kick"),
            &root,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(kicked.status(), 200);

    let page = events(&server, &root, "?user=alice").await;
    assert_eq!(
        kinds(&page),
        [
            "user.kicked success",
            "login success",
            "logout success",
            "login success",
            "login failure",
            "user.registered success",
        ]
    );
    let list = page["events"].as_array().unwrap();
    let (kick, failure, registered) = (&list[0], &list[4], &list[5]);
    assert_eq!(
        kick["actor"],
        serde_json::json!({"type": "user", "id": root_id})
    );
    assert_eq!(kick["user"], alice_id.as_str());
    assert_eq!(kick["username"], "alice");
    assert_eq!(kick["address"], "127.0.0.1");
    assert_eq!(kick["detail"], "1 session(s) and 0 refresh token(s) ended");
    assert_eq!(failure["actor"], serde_json::json!({"type": "anonymous"}));
    assert_eq!(failure["username"], "alice");
    assert_eq!(failure["address"], "127.0.0.1");
    assert_eq!(failure["detail"], "invalid username or password");
    assert_eq!(registered["actor"], serde_json::json!({"type": "operator"}));
    let logged_out = &list[2];
    assert_eq!(
        logged_out["target"],
        format!("session:{}", alice.session_id)
    );
    assert_eq!(logged_out["address"], "127.0.0.1");
    // Ids ascend as recorded; times are RFC 3339.
    let ids: Vec<i64> = list.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    assert!(kick["at"].as_str().unwrap().ends_with('Z'));

    // The same by id, and what root did (as actor) under root.
    assert_eq!(
        kinds(&events(&server, &root, &format!("?user={alice_id}")).await),
        kinds(&page)
    );
    assert_eq!(
        kinds(&events(&server, &root, "?user=root").await),
        [
            "user.kicked success",
            "login success",
            "user.registered success"
        ]
    );
    assert_eq!(
        kinds(&events(&server, &root, "?kind=login&user=alice").await),
        ["login success", "login success", "login failure"]
    );
    assert_eq!(
        events(&server, &root, "?user=nobody").await["events"],
        serde_json::json!([])
    );
    let future = events(&server, &root, "?since=2999-01-01T00:00:00Z").await;
    assert_eq!(future["events"], serde_json::json!([]));
    let past = events(&server, &root, "?until=2000-01-01T00:00:00%2B01:00").await;
    assert_eq!(past["events"], serde_json::json!([]));

    // Pages: `next` continues where a page ends, to the last event.
    let first = events(&server, &root, "?user=alice&limit=4").await;
    assert_eq!(kinds(&first), kinds(&page)[..4]);
    let next = first["next"].as_i64().unwrap();
    let second = events(
        &server,
        &root,
        &format!("?user=alice&limit=4&before={next}"),
    )
    .await;
    assert_eq!(kinds(&second), kinds(&page)[4..]);
    assert_eq!(second["next"], Value::Null);

    // Nothing secret: no password (right or wrong), cookie or CSRF token.
    let everything = events(&server, &root, "?limit=500").await.to_string();
    for secret in [PASSWORD, wrong, &alice.cookie, &alice.csrf, &root.cookie] {
        let secret = secret.split('=').next_back().unwrap();
        assert!(!everything.contains(secret), "{secret} is in the audit log");
    }
}

#[tokio::test]
async fn only_administrators_read_the_audit_log_and_bad_filters_are_refused() {
    let server = TestServer::start().await;
    server.add_user("root", &["admin"]);
    server.add_user("alice", &[]);
    let anonymous = server
        .client
        .get(server.url("/admin/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(anonymous).await, (401, "unauthenticated".into()));
    let alice = server.login("alice").await;
    assert_eq!(
        error_of(server.get_as("/admin/v1/events", &alice).await).await,
        (403, "forbidden".into())
    );
    // A session cookie forged from alice's by appending to it.
    let forged = crate::harness::Browser {
        cookie: format!("{}x", alice.cookie),
        ..alice.clone()
    };
    assert_eq!(
        server.get_as("/admin/v1/events", &forged).await.status(),
        401
    );
    let root = server.login("root").await;
    for (query, reason) in [
        ("?kind=login.nope", "is not a kind of event"),
        ("?since=yesterday", "since must be an RFC 3339 time"),
        ("?until=1764842400", "until must be an RFC 3339 time"),
        ("?before=abc", "before must be the `next` of a page"),
        ("?limit=0", "limit must be a number from 1 to 500"),
        ("?limit=501", "limit must be a number from 1 to 500"),
    ] {
        let response = server
            .get_as(&format!("/admin/v1/events{query}"), &root)
            .await;
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error_description"].as_str().unwrap().contains(reason),
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn the_sessions_tessera_ends_itself_and_operator_actions_are_recorded() {
    let server = TestServer::start_with(&[("TESSERA_TOKENS__REFRESH_REUSE_GRACE", "0s")]).await;
    server.add_user("root", &["admin"]);
    server.add_user("alice", &[]);
    let app = add_client(
        &server,
        "app",
        &["--grant", "password,refresh_token", "--public"],
    );
    let first = password_grant(&server, &app, "alice").await;
    let token = first["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&server, &app, token, &[]).await.status(), 200);
    // The spent token again: someone else has it.
    assert_eq!(refresh(&server, &app, token, &[]).await.status(), 400);
    let out = server.cli(&["user", "disable", "alice"], "");
    assert!(out.status.success());

    let out = server.cli(&["events", "--json", "--user", "alice"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<(&str, &str)> = lines
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["actor"]["type"].as_str().unwrap(),
            )
        })
        .collect();
    // Oldest first, as a log reads.
    assert_eq!(
        seen,
        [
            ("user.registered", "operator"),
            ("login", "user"),
            ("session.ended", "system"),
            ("user.disabled", "operator"),
        ]
    );
    assert_eq!(lines[1]["target"], format!("client:{}", app.id));
    assert_eq!(lines[1]["detail"], "password grant");
    assert!(
        lines[2]["detail"]
            .as_str()
            .unwrap()
            .contains("presented again after its rotation"),
        "{}",
        lines[2]
    );
    // No refresh token, spent or not, in the log.
    let root = server.login("root").await;
    let everything = events(&server, &root, "?limit=500").await.to_string();
    assert!(!everything.contains(token));

    // The table, filtered by kind; an unknown kind is refused with the reason.
    let out = server.cli(&["events", "--kind", "user.disabled"], "");
    let table = String::from_utf8(out.stdout).unwrap();
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(table.contains("user.disabled") && table.contains("operator"));
    let out = server.cli(&["events", "--kind", "nope"], "");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a kind of event"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `tessera events --follow` prints what any process records after it started, and
/// only what its filter asks for.
#[tokio::test]
async fn following_the_log_prints_new_events_as_they_are_recorded() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let mut follower = Command::new(crate::harness::binary())
        .args([
            "events",
            "--follow",
            "--json",
            "--kind",
            "login",
            "--data-dir",
        ])
        .arg(server.data_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (lines, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    // Let it read the log's end first, then act: a kick (not asked for) and a login.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert!(
        server
            .cli(&["sessions", "kick", "alice"], "")
            .status
            .success()
    );
    server.login("alice").await;
    let line = seen
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the login is followed");
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (event["kind"].as_str(), event["username"].as_str()),
        (Some("login"), Some("alice"))
    );
    assert!(
        seen.recv_timeout(std::time::Duration::from_millis(1200))
            .is_err(),
        "the kick was filtered out"
    );
    follower.kill().unwrap();
    let _ = follower.wait();
}

/// `audit.stored = false`: events are log lines only; the store keeps none.
#[tokio::test]
async fn with_storing_off_events_are_log_lines_only() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server = TestServer::start_logging_to(
        &[
            ("TESSERA_AUDIT__STORED", "false"),
            ("TESSERA_LOG", "info"),
            ("TESSERA_LOG_FORMAT", "json"),
        ],
        Some(log.clone()),
    )
    .await;
    server.add_user("root", &["admin"]);
    let root = server.login("root").await;
    assert_eq!(
        server.try_login("root", "a wrong password").await.status(),
        401
    );
    assert_eq!(
        events(&server, &root, "").await["events"],
        serde_json::json!([])
    );
    drop(server);
    let written = std::fs::read_to_string(&log).unwrap();
    let logins: Vec<Value> = written
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["target"] == "tessera::audit" && l["fields"]["kind"] == "login")
        .collect();
    assert_eq!(logins.len(), 2, "{written}");
}
