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
        let html = server
            .client
            .get(server.url("/login"))
            .query(&[("return_to", refused)])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!html.contains("return_to"), "{refused}: {html}");
    }
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
    assert!(html.contains("invalid username or password"));
    assert!(html.contains(r#"value="http://127.0.0.1:7481/orders""#));
    // A form posted from another site is refused like any cross-origin login.
    let forged = server
        .client
        .post(server.url("/login"))
        .header(header::ORIGIN, "https://evil.example")
        .form(&[("username", "alice"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
}
