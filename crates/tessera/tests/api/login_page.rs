//! `/login`: the HTML sign-in page a gateway sends browsers to, and its `return_to`.

use reqwest::header;

use crate::harness::{PASSWORD, TestServer};

const GATEWAY: &str = "http://127.0.0.1:7481";

async fn server() -> TestServer {
    let server =
        TestServer::start_with(&[("TESSERA_RETURN_TO_ORIGINS", r#"["http://127.0.0.1:7481"]"#)])
            .await;
    server.add_user("alice", &[]);
    server
}

async fn submit(server: &TestServer, password: &str, return_to: &str) -> reqwest::Response {
    server
        .client
        .post(server.url("/login"))
        .form(&[
            ("username", "alice"),
            ("password", password),
            ("return_to", return_to),
        ])
        .send()
        .await
        .unwrap()
}

fn location(response: &reqwest::Response) -> String {
    response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_page_is_a_scriptless_form_that_keeps_only_allowed_return_to() {
    let server = server().await;
    let allowed = format!("{GATEWAY}/orders?id=1");
    let page = server
        .client
        .get(server.url("/login"))
        .query(&[("return_to", allowed.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe-inline") && csp.contains("style-src 'sha256-"));
    // Browsers hold the redirect after the form post to form-action: the allowed
    // return_to's origin is listed, and only that one.
    assert!(
        csp.contains(&format!("form-action 'self' {GATEWAY};")),
        "{csp}"
    );
    // `no-referrer` would make browsers send `Origin: null`, which is refused.
    assert_eq!(page.headers()[header::REFERRER_POLICY], "same-origin");
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"<form method="post" action="/login">"#),
        "{html}"
    );
    assert!(html.contains(r#"name="return_to" value="http://127.0.0.1:7481/orders?id=1""#));

    for refused in [
        "https://evil.example/",
        "//evil.example/x",
        "javascript:alert(1)",
    ] {
        let page = server
            .client
            .get(server.url("/login"))
            .query(&[("return_to", refused)])
            .send()
            .await
            .unwrap();
        let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("form-action 'self';"), "{refused}: {csp}");
        let html = page.text().await.unwrap();
        assert!(!html.contains("return_to"), "{refused}: {html}");
    }
    // A mangled query is a bad link: the form all the same, without the return_to.
    let page = server
        .client
        .get(server.url(&format!(
            "/login?return_to={GATEWAY}/a&return_to={GATEWAY}/b"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"name="password""#) && !html.contains("return_to"));
    // What the page echoes is escaped, even from an allowed origin.
    let tricky = format!("{GATEWAY}/\"><script>alert(1)</script>");
    let html = server
        .client
        .get(server.url("/login"))
        .query(&[("return_to", tricky.as_str())])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("<script>"), "{html}");
}

#[tokio::test]
async fn signing_in_sends_the_browser_back_only_where_it_may_go() {
    let server = server().await;
    let back = submit(&server, PASSWORD, &format!("{GATEWAY}/orders")).await;
    assert_eq!(back.status(), 303);
    assert_eq!(location(&back), format!("{GATEWAY}/orders"));
    let cookie = back.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("__Host-tessera-session="));
    let cookie = cookie.split(';').next().unwrap().to_owned();

    for refused in [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
    ] {
        let stay = submit(&server, PASSWORD, refused).await;
        assert_eq!(stay.status(), 303);
        assert_eq!(location(&stay), "/login", "{refused}");
    }

    // Already signed in: straight on to an allowed return_to, else "signed in as".
    let again = server
        .client
        .get(server.url("/login"))
        .query(&[("return_to", format!("{GATEWAY}/x").as_str())])
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 303);
    assert_eq!(location(&again), format!("{GATEWAY}/x"));
    let who = server
        .client
        .get(server.url("/login"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(who.contains("signed in as <strong>alice</strong>"), "{who}");
}

#[tokio::test]
async fn a_failed_sign_in_shows_the_form_again_with_the_reason() {
    let server = server().await;
    let wrong = submit(&server, "not the password", &format!("{GATEWAY}/orders")).await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get(header::SET_COOKIE).is_none());
    assert!(
        wrong.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = wrong.text().await.unwrap();
    assert!(html.contains(">Invalid username or password.<"), "{html}");
    assert!(html.contains(r#"value="http://127.0.0.1:7481/orders""#));
    assert!(html.contains(r#"name="username" autocomplete="username" value="alice""#));
    assert!(!html.contains(PASSWORD));
}

#[tokio::test]
async fn a_form_posted_from_another_origin_gets_a_refusal_page_and_no_session() {
    let server = server().await;
    // Another site, and an opaque origin (a sandboxed frame, a data: URL).
    for origin in ["https://evil.example", "null"] {
        let forged = server
            .client
            .post(server.url("/login"))
            .header(header::ORIGIN, origin)
            .header(header::ACCEPT, "text/html")
            .form(&[
                ("username", "alice"),
                ("password", PASSWORD),
                ("return_to", &format!("{GATEWAY}/orders")),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 403, "{origin}");
        assert!(forged.headers().get(header::SET_COOKIE).is_none());
        assert!(
            forged.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let csp = forged.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("form-action 'self';"), "{csp}");
        let html = forged.text().await.unwrap();
        assert!(html.contains("sent from another site"), "{html}");
        assert!(html.contains(r#"<form method="post" action="/login">"#));
        assert!(
            !html.contains("return_to") && !html.contains("value=\"alice\""),
            "nothing the foreign page sent is kept: {html}"
        );
    }
    // The JSON API still refuses an opaque origin: only the page's own header changed.
    let api = server
        .client
        .post(server.url("/v1/login"))
        .header(header::ORIGIN, "null")
        .json(&serde_json::json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        crate::harness::error_of(api).await,
        (403, "cross_origin_request".into())
    );
}

#[tokio::test]
async fn a_form_the_server_cannot_read_is_a_page_too() {
    let server = server().await;
    let response = server
        .client
        .post(server.url("/login"))
        .header(header::CONTENT_TYPE, "text/plain")
        .body("username=alice")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"class="error""#) && html.contains(r#"name="password""#));
}
