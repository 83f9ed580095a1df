use std::collections::HashSet;

use serde_json::{Value, json};

use crate::harness::*;

#[tokio::test]
async fn login_answers_user_session_and_csrf_token() {
    let server = TestServer::start().await;
    server.add_user("alice", &["admin"]);
    let response = server.try_login("Alice", PASSWORD).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let set_cookie = session_set_cookie(&response).unwrap();
    let browser = browser_from(response).await;
    let body = &browser.login;
    assert_eq!(body["user"]["username"], "alice");
    assert_eq!(body["user"]["roles"], json!(["admin"]));
    assert!(body["user"]["id"].is_string());
    for key in [
        "id",
        "created_at",
        "last_seen_at",
        "idle_expires_at",
        "expires_at",
    ] {
        assert!(body["session"][key].is_string(), "session.{key} in {body}");
    }
    assert_eq!(browser.csrf.len(), 43);

    // the cookie: __Host- prefix, secret with its scanner prefix, and every attribute
    let value = browser
        .cookie
        .strip_prefix("__Host-tessera-session=")
        .unwrap();
    assert!(value.starts_with("tss_") && value.len() == 47, "{value}");
    let attributes: HashSet<String> = set_cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    for expected in [
        "httponly",
        "secure",
        "samesite=lax",
        "path=/",
        "max-age=604800",
    ] {
        assert!(
            attributes.contains(expected),
            "{expected} missing in {set_cookie}"
        );
    }
    assert!(
        !set_cookie.to_ascii_lowercase().contains("domain"),
        "{set_cookie}"
    );
    // the session id shown is not the secret
    assert!(!value.contains(&browser.session_id));

    let current: Value = server
        .get_as("/v1/session", &browser)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(current["user"], body["user"]);
    assert_eq!(current["session"]["id"], body["session"]["id"]);
    assert_eq!(current["csrf_token"], body["csrf_token"]);
}

#[tokio::test]
async fn form_login_works_like_json() {
    let server = TestServer::start().await;
    server.add_user("bob", &[]);
    let response = server
        .client
        .post(server.url("/v1/login"))
        .form(&[("username", "bob"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let browser = browser_from(response).await;
    assert_eq!(server.session_status(&browser).await, 200);
}

#[tokio::test]
async fn unknown_user_and_wrong_password_answer_alike() {
    let server = TestServer::start().await;
    server.add_user("carol", &[]);
    let hashes_before = hash_count(&server).await;
    let wrong = server.try_login("carol", "not the password").await;
    let wrong_headers = wrong.headers().clone();
    let wrong = (wrong.status(), wrong.text().await.unwrap());
    let unknown = server.try_login("nobody", "not the password").await;
    let unknown = (unknown.status(), unknown.text().await.unwrap());
    assert_eq!(wrong, unknown);
    assert_eq!(wrong.0, 401);
    assert!(wrong.1.contains("invalid_credentials"));
    assert!(wrong_headers.get("set-cookie").is_none());
    // the unknown user was checked against a dummy hash, costing the same work
    assert_eq!(hash_count(&server).await, hashes_before + 2);
}

async fn hash_count(server: &TestServer) -> u64 {
    server
        .metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix("tessera_password_hash_seconds_count "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test]
async fn a_presented_cookie_is_never_adopted() {
    let server = TestServer::start().await;
    server.add_user("dave", &[]);
    // an attacker-chosen, well-formed secret
    let planted = "__Host-tessera-session=tss_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let response = server
        .client
        .post(server.url("/v1/login"))
        .header("cookie", planted)
        .json(&json!({"username": "dave", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let browser = browser_from(response).await;
    assert_ne!(browser.cookie, planted);

    // a live session presented at login is replaced, not kept: the old secret dies
    let again = server
        .client
        .post(server.url("/v1/login"))
        .header("cookie", &browser.cookie)
        .json(&json!({"username": "dave", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let renewed = browser_from(again).await;
    assert_ne!(renewed.cookie, browser.cookie);
    assert_ne!(renewed.session_id, browser.session_id);
    assert_eq!(server.session_status(&browser).await, 401);
    assert_eq!(server.session_status(&renewed).await, 200);
}

#[tokio::test]
async fn logins_are_throttled_per_account() {
    let server = TestServer::start_with(&[
        ("TESSERA_THROTTLE__ACCOUNT_BURST", "3"),
        ("TESSERA_THROTTLE__ACCOUNT_PER_MINUTE", "1"),
    ])
    .await;
    server.add_user("erin", &[]);
    server.add_user("frank", &[]);
    for _ in 0..3 {
        assert_eq!(
            server.try_login("erin", "wrong password").await.status(),
            401
        );
    }
    let throttled = server.try_login("erin", PASSWORD).await;
    assert_eq!(throttled.status(), 429);
    let retry: u64 = throttled.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(error_of(throttled).await.1, "too_many_requests");
    // the account's name in any case form is the same account
    assert_eq!(server.try_login("ERIN", PASSWORD).await.status(), 429);
    // another account is not affected
    assert_eq!(server.try_login("frank", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn logins_are_throttled_per_address() {
    let server = TestServer::start_with(&[
        ("TESSERA_THROTTLE__ADDRESS_BURST", "4"),
        ("TESSERA_THROTTLE__ADDRESS_PER_MINUTE", "1"),
    ])
    .await;
    for name in ["u1", "u2", "u3", "u4"] {
        assert_eq!(server.try_login(name, "wrong password").await.status(), 401);
    }
    let throttled = server.try_login("u5", "wrong password").await;
    assert_eq!(throttled.status(), 429);
    assert!(throttled.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn concurrent_logins_of_one_user_each_get_a_session() {
    let server = TestServer::start().await;
    server.add_user("grace", &[]);
    let logins = (0..8).map(|_| server.login("grace"));
    let browsers = futures::future::join_all(logins).await;
    let ids: HashSet<_> = browsers.iter().map(|b| b.session_id.clone()).collect();
    assert_eq!(ids.len(), 8);
    for browser in &browsers {
        assert_eq!(server.session_status(browser).await, 200);
    }
    let listed: Value = server
        .get_as("/v1/sessions", &browsers[0])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 8);
}

#[tokio::test]
async fn disabled_accounts_cannot_log_in() {
    let server = TestServer::start().await;
    server.add_user("heidi", &[]);
    let out = server.cli(&["user", "disable", "heidi"], "");
    assert!(out.status.success());
    let response = server.try_login("heidi", PASSWORD).await;
    assert_eq!(error_of(response).await, (403, "account_disabled".into()));
    // a wrong password for a disabled account still says only "invalid credentials"
    let response = server.try_login("heidi", "wrong password").await;
    assert_eq!(
        error_of(response).await,
        (401, "invalid_credentials".into())
    );
}
