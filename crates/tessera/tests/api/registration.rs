use serde_json::{Value, json};

use crate::harness::*;

#[tokio::test]
async fn register_then_log_in() {
    let server = TestServer::start_with(REGISTRATION_OPEN).await;
    let response = server
        .post_json(
            "/v1/users",
            json!({"username": "Zoë", "password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["username"], "zoë");
    assert_eq!(body["user"]["roles"], json!([]));
    assert!(body["user"].get("password_hash").is_none());
    let browser = server.login("ZOË").await;
    assert_eq!(browser.login["user"]["id"], body["user"]["id"]);
}

#[tokio::test]
async fn duplicates_conflict_after_folding() {
    let server = TestServer::start_with(REGISTRATION_OPEN).await;
    let first = server
        .post_json(
            "/v1/users",
            json!({"username": "bob", "password": PASSWORD}),
        )
        .await;
    assert_eq!(first.status(), 201);
    for name in ["bob", "BOB", "ｂｏｂ"] {
        let again = server
            .post_json("/v1/users", json!({"username": name, "password": PASSWORD}))
            .await;
        assert_eq!(
            error_of(again).await,
            (409, "username_taken".into()),
            "{name}"
        );
    }
}

#[tokio::test]
async fn invalid_input_is_refused_with_a_reason() {
    let server = TestServer::start_with(REGISTRATION_OPEN).await;
    let cases = [
        (
            json!({"username": "", "password": PASSWORD}),
            "invalid_username",
        ),
        (
            json!({"username": "a b", "password": PASSWORD}),
            "invalid_username",
        ),
        (
            json!({"username": "x".repeat(65), "password": PASSWORD}),
            "invalid_username",
        ),
        (
            json!({"username": "carol", "password": "short"}),
            "invalid_password",
        ),
        (
            json!({"username": "carol", "password": "p".repeat(1025)}),
            "invalid_password",
        ),
        (json!({"username": "carol"}), "invalid_request"),
        (
            json!({"username": 5, "password": PASSWORD}),
            "invalid_request",
        ),
        (json!(["not", "an", "object"]), "invalid_request"),
    ];
    for (body, code) in cases {
        let response = server.post_json("/v1/users", body.clone()).await;
        assert_eq!(error_of(response).await, (400, code.into()), "{body}");
    }
    let malformed = server
        .client
        .post(server.url("/v1/users"))
        .header("content-type", "application/json")
        .body("{\"username\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(malformed).await, (400, "invalid_request".into()));
    let wrong_type = server
        .client
        .post(server.url("/v1/users"))
        .header("content-type", "text/plain")
        .body("username=carol")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(wrong_type).await,
        (415, "unsupported_media_type".into())
    );
    // nothing was created along the way
    let listed = server.cli(&["user", "list", "--json"], "");
    let users: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(users["users"], json!([]));
}

#[tokio::test]
async fn bodies_over_64_kib_get_413() {
    let server = TestServer::start_with(REGISTRATION_OPEN).await;
    let padding = "p".repeat(70 * 1024);
    let response = server
        .post_json(
            "/v1/users",
            json!({"username": "dave", "password": padding}),
        )
        .await;
    assert_eq!(error_of(response).await, (413, "payload_too_large".into()));
    // chunked, without a Content-Length the limit layer could check up front
    let chunk = " ".repeat(40 * 1024);
    let request = format!(
        "POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {len:x}\r\n{chunk}\r\n{len:x}\r\n{chunk}\r\n0\r\n\r\n",
        len = chunk.len()
    );
    let answer = raw_request(&server.base, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
}

#[tokio::test]
async fn registration_is_closed_by_default() {
    let server = TestServer::start().await;
    let response = server
        .post_json(
            "/v1/users",
            json!({"username": "erin", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        error_of(response).await,
        (403, "registration_closed".into())
    );
}

#[tokio::test]
async fn registration_from_a_foreign_page_is_refused() {
    let server = TestServer::start_with(REGISTRATION_OPEN).await;
    let response = server
        .client
        .post(server.url("/v1/users"))
        .header("origin", "https://evil.example")
        .json(&json!({"username": "frank", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(response).await,
        (403, "cross_origin_request".into())
    );
}

#[tokio::test]
async fn look_alikes_and_mixed_scripts_are_refused_with_409_and_a_reason() {
    let server = TestServer::start_with(REGISTRATION_OPEN).await;
    for name in ["admin", "ace"] {
        let created = server
            .post_json("/v1/users", json!({"username": name, "password": PASSWORD}))
            .await;
        assert_eq!(created.status(), 201, "{name}");
    }
    let cases = [
        // Cyrillic а: mixed with Latin, and a look-alike of admin besides.
        ("\u{430}dmin", "username_mixed_scripts", "scripts"),
        // dotless ı: Latin throughout, but it looks like admin.
        ("adm\u{131}n", "username_look_alike", "looks the same"),
        ("ADRNIN", "username_look_alike", "looks the same"),
        // All Cyrillic: one script, but it looks like ace.
        (
            "\u{430}\u{441}\u{435}",
            "username_look_alike",
            "looks the same",
        ),
        // Latin with a Greek alpha, like nothing registered.
        ("mixed\u{3b1}", "username_mixed_scripts", "scripts"),
    ];
    for (name, code, reason) in cases {
        let response = server
            .post_json("/v1/users", json!({"username": name, "password": PASSWORD}))
            .await;
        assert_eq!(response.status(), 409, "{name}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], code, "{name}: {body}");
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| d.contains(reason)),
            "{name}: {body}"
        );
    }
    // The first still signs in, and nothing else was created.
    let browser = server.login("admin").await;
    assert_eq!(browser.login["user"]["username"], "admin");
    let listed = server.cli(&["user", "list", "--json"], "");
    let users: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let names: Vec<_> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"]["username"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["ace", "admin"]);
}
