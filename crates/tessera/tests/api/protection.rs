use reqwest::Method;
use serde_json::json;

use crate::harness::*;

async fn logged_in() -> (TestServer, Browser) {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let browser = server.login("alice").await;
    (server, browser)
}

#[tokio::test]
async fn no_cookie_or_a_bad_one_is_401() {
    let (server, browser) = logged_in().await;
    let anonymous = server
        .client
        .get(server.url("/v1/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(anonymous).await, (401, "unauthenticated".into()));
    for cookie in [
        "__Host-tessera-session=garbage",
        "__Host-tessera-session=tss_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        // the right secret under another cookie name
        &browser
            .cookie
            .replace("__Host-tessera-session", "tessera-session"),
    ] {
        let response = server
            .client
            .get(server.url("/v1/session"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{cookie}");
    }
}

#[tokio::test]
async fn a_session_secret_outside_the_cookie_is_never_honoured() {
    let (server, browser) = logged_in().await;
    let secret = browser.cookie.split_once('=').unwrap().1;
    for url in [
        format!("/v1/session?session={secret}"),
        format!("/v1/session?__Host-tessera-session={secret}"),
        format!("/v1/session?tessera-session={secret}"),
    ] {
        let response = server.client.get(server.url(&url)).send().await.unwrap();
        assert_eq!(response.status(), 401, "{url}");
    }
    let bearer = server
        .client
        .get(server.url("/v1/session"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 401);
    // nor in a form field of an unsafe request
    let form = server
        .client
        .post(server.url("/v1/logout"))
        .form(&[("session", secret), ("csrf_token", browser.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 401);
    assert_eq!(server.session_status(&browser).await, 200);
}

#[tokio::test]
async fn unsafe_requests_without_the_csrf_token_are_refused() {
    let (server, browser) = logged_in().await;
    let cases: [(Method, &str); 3] = [
        (Method::POST, "/v1/logout"),
        (Method::DELETE, "/v1/sessions"),
        (
            Method::DELETE,
            &format!("/v1/sessions/{}", browser.session_id),
        ),
    ];
    for (method, path) in cases.iter() {
        let missing = server
            .client
            .request(method.clone(), server.url(path))
            .header("cookie", &browser.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(missing).await,
            (403, "csrf_token_missing".into()),
            "{path}"
        );
        let wrong = server
            .client
            .request(method.clone(), server.url(path))
            .header("cookie", &browser.cookie)
            .header("x-csrf-token", "A".repeat(43))
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(wrong).await,
            (403, "csrf_token_invalid".into()),
            "{path}"
        );
        let foreign = server
            .unsafe_as(method.clone(), path, &browser)
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(foreign).await,
            (403, "cross_origin_request".into()),
            "{path}"
        );
        let cross_site = server
            .unsafe_as(method.clone(), path, &browser)
            .header("sec-fetch-site", "cross-site")
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(cross_site).await,
            (403, "cross_origin_request".into()),
            "{path}"
        );
    }
    // none of those did anything
    assert_eq!(server.session_status(&browser).await, 200);
}

#[tokio::test]
async fn another_sessions_csrf_token_does_not_work() {
    let (server, browser) = logged_in().await;
    let other = server.login("alice").await;
    let response = server
        .client
        .post(server.url("/v1/logout"))
        .header("cookie", &browser.cookie)
        .header("x-csrf-token", &other.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await, (403, "csrf_token_invalid".into()));
}

#[tokio::test]
async fn same_origin_and_allow_listed_origins_pass() {
    let server =
        TestServer::start_with(&[("TESSERA_ALLOWED_ORIGINS", "[\"https://app.example\"]")]).await;
    server.add_user("alice", &[]);
    let own_origin = server.base.clone();
    for origin in [own_origin.as_str(), "https://app.example"] {
        let response = server
            .client
            .post(server.url("/v1/login"))
            .header("origin", origin)
            .header("sec-fetch-site", "cross-site")
            .json(&json!({"username": "alice", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{origin}");
        let browser = browser_from(response).await;
        let logout = server
            .unsafe_as(Method::POST, "/v1/logout", &browser)
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(logout.status(), 204, "{origin}");
    }
    let user_typed = server
        .client
        .post(server.url("/v1/login"))
        .header("sec-fetch-site", "none")
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(user_typed.status(), 200);
}

#[tokio::test]
async fn login_from_a_foreign_page_is_refused() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    for (header, value) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let response = server
            .client
            .post(server.url("/v1/login"))
            .header(header, value)
            .json(&json!({"username": "alice", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert!(session_set_cookie(&response).is_none());
        assert_eq!(
            error_of(response).await,
            (403, "cross_origin_request".into()),
            "{value}"
        );
    }
}

#[tokio::test]
async fn logout_with_the_token_in_a_form_field() {
    let (server, browser) = logged_in().await;
    let response = server
        .client
        .post(server.url("/v1/logout"))
        .header("cookie", &browser.cookie)
        .form(&[("csrf_token", browser.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(server.session_status(&browser).await, 401);
}
