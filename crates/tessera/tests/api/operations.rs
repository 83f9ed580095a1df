use serde_json::Value;

use crate::harness::*;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let server = TestServer::start().await;
    let health = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");
    let ready = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    server.add_user("alice", &[]);
    server.login("alice").await;
    let _ = server.try_login("alice", "wrong password!").await;
    let metrics = server.metrics().await;
    for expected in [
        r#"tessera_login_attempts_total{outcome="success"} 1"#,
        r#"tessera_login_attempts_total{outcome="invalid_credentials"} 1"#,
        r#"tessera_http_requests_total{route="/v1/login",method="POST",status="200"} 1"#,
        "tessera_password_hash_seconds_bucket",
        "tessera_http_request_duration_seconds_bucket",
        "tessera_active_sessions",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in\n{metrics}"
        );
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let server = TestServer::start().await;
    let (status, code) =
        error_of(server.client.get(server.url("/nope")).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    let (status, code) = error_of(
        server
            .client
            .put(server.url("/v1/login"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (405, "method_not_allowed"));
}

#[tokio::test]
async fn every_answer_carries_no_store_and_a_request_id() {
    let server = TestServer::start().await;
    let response = server
        .client
        .get(server.url("/v1/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert!(response.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let server = TestServer::start().await;
    let response = server
        .client
        .get(server.url("/healthz"))
        .header("x-filler", "a".repeat(20 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly() {
    let mut server = TestServer::start().await;
    assert_eq!(
        server
            .client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(server.terminate().success());
}
