//! RP-initiated logout (`/oauth2/logout`) through the real binary: an app signs its
//! user out of tessera with proof of the session, or after the user confirms, and
//! the browser goes back only to a URI the app registered.

use reqwest::{Response, header};
use serde_json::Value;

use crate::code_flow::{REDIRECT, Request, code_for, tokens};
use crate::harness::*;
use crate::tokens::{Registered, add_client, introspect};

const AFTER: &str = "https://app.example/signed-out";

fn app(server: &TestServer, name: &str) -> Registered {
    add_client(
        server,
        name,
        &[
            "--grant",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--post-logout-redirect-uri",
            AFTER,
            "--first-party",
        ],
    )
}

/// Signs in through the code flow: the ID token and the access token.
async fn signed_in(
    server: &TestServer,
    client: &Registered,
    browser: &Browser,
) -> (String, String) {
    let request = Request::new(client);
    let code = code_for(server, browser, &request).await;
    let body = tokens(server, client, &code, &request.verifier).await;
    (
        body["id_token"].as_str().unwrap().to_owned(),
        body["access_token"].as_str().unwrap().to_owned(),
    )
}

async fn logout(server: &TestServer, query: &[(&str, &str)], cookie: Option<&str>) -> Response {
    let mut request = server.client.get(server.url("/oauth2/logout")).query(query);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.send().await.unwrap()
}

fn cleared(response: &Response) -> bool {
    session_set_cookie(response).is_some_and(|c| c.contains("Max-Age=0"))
}

fn is_page(response: &Response, status: u16) -> bool {
    response.status() == status
        && response.headers().get(header::LOCATION).is_none()
        && response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
}

#[tokio::test]
async fn a_hint_of_this_session_signs_out_at_once_and_goes_back() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let client = app(&server, "portal");
    let browser = server.login("alice").await;
    let (id_token, access) = signed_in(&server, &client, &browser).await;

    let response = logout(
        &server,
        &[
            ("id_token_hint", id_token.as_str()),
            ("post_logout_redirect_uri", AFTER),
            ("state", "bye-1"),
        ],
        Some(&browser.cookie),
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()[header::LOCATION],
        format!("{AFTER}?state=bye-1").as_str()
    );
    assert!(cleared(&response));
    assert_eq!(server.session_status(&browser).await, 401);
    assert_eq!(introspect(&server, &client, &access).await["active"], false);

    // Signed out already: back at once, nothing to clear.
    let again = logout(
        &server,
        &[
            ("id_token_hint", id_token.as_str()),
            ("post_logout_redirect_uri", AFTER),
        ],
        Some(&browser.cookie),
    )
    .await;
    assert_eq!(again.headers()[header::LOCATION], AFTER);
    // With nowhere to go back to: a page that says so.
    let page = logout(&server, &[], None).await;
    assert!(is_page(&page, 200));
    let metadata: Value = server
        .client
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata["end_session_endpoint"],
        server.url("/oauth2/logout")
    );
}

#[tokio::test]
async fn without_proof_of_the_session_the_user_is_asked_first() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let client = app(&server, "portal");
    let old = server.login("alice").await;
    let (old_hint, _) = signed_in(&server, &client, &old).await;
    let browser = server.login("alice").await;

    // No hint, or the hint of another session: a confirmation page.
    for query in [
        vec![
            ("client_id", client.id.as_str()),
            ("post_logout_redirect_uri", AFTER),
        ],
        vec![
            ("id_token_hint", old_hint.as_str()),
            ("post_logout_redirect_uri", AFTER),
        ],
    ] {
        let response = logout(&server, &query, Some(&browser.cookie)).await;
        assert!(is_page(&response, 200));
        let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("https://app.example"), "{csp}");
        let page = response.text().await.unwrap();
        assert!(page.contains(r#"name="decision" value="logout""#), "{page}");
        assert_eq!(
            server.session_status(&browser).await,
            200,
            "not signed out yet"
        );
    }

    let csrf = browser.csrf.as_str();
    let answer = |origin: &str, decision: &str| {
        server
            .client
            .post(server.url("/oauth2/logout"))
            .header(header::COOKIE, &browser.cookie)
            .header(header::ORIGIN, origin)
            .form(&[
                ("client_id", client.id.as_str()),
                ("post_logout_redirect_uri", AFTER),
                ("state", "s"),
                ("csrf", csrf),
                ("decision", decision),
            ])
            .send()
    };
    // From another site, or "stay": still signed in.
    assert_eq!(
        answer("https://evil.example", "logout")
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(answer(&server.base, "stay").await.unwrap().status(), 200);
    assert_eq!(server.session_status(&browser).await, 200);
    // A wrong CSRF token asks again.
    let forged = server
        .client
        .post(server.url("/oauth2/logout"))
        .header(header::COOKIE, &browser.cookie)
        .header(header::ORIGIN, &server.base)
        .form(&[
            ("client_id", client.id.as_str()),
            ("csrf", "nope"),
            ("decision", "logout"),
        ])
        .send()
        .await
        .unwrap();
    assert!(is_page(&forged, 200));
    assert_eq!(server.session_status(&browser).await, 200);

    let confirmed = answer(&server.base, "logout").await.unwrap();
    assert_eq!(
        confirmed.headers()[header::LOCATION],
        format!("{AFTER}?state=s").as_str()
    );
    assert!(cleared(&confirmed));
    assert_eq!(server.session_status(&browser).await, 401);
}

#[tokio::test]
async fn bad_hints_and_unregistered_uris_get_a_page_and_no_redirect() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let client = app(&server, "portal");
    let other = app(&server, "other");
    let browser = server.login("alice").await;
    let (id_token, access) = signed_in(&server, &client, &browser).await;
    let mut tampered = id_token.clone();
    tampered.pop();
    tampered.push(if id_token.ends_with('A') { 'B' } else { 'A' });
    let cases: Vec<Vec<(&str, &str)>> = vec![
        // Not registered, or nobody to ask.
        vec![
            ("client_id", client.id.as_str()),
            ("post_logout_redirect_uri", "https://evil.example/"),
        ],
        vec![
            ("client_id", client.id.as_str()),
            (
                "post_logout_redirect_uri",
                "https://app.example/signed-out/",
            ),
        ],
        vec![("post_logout_redirect_uri", AFTER)],
        vec![
            ("client_id", "00000000-0000-4000-8000-000000000000"),
            ("post_logout_redirect_uri", AFTER),
        ],
        // Hints that are not ID tokens issued here, or disagree with client_id.
        vec![
            ("id_token_hint", tampered.as_str()),
            ("post_logout_redirect_uri", AFTER),
        ],
        vec![
            ("id_token_hint", access.as_str()),
            ("post_logout_redirect_uri", AFTER),
        ],
        vec![("id_token_hint", "a.b.c")],
        vec![
            ("id_token_hint", id_token.as_str()),
            ("client_id", other.id.as_str()),
        ],
    ];
    for query in &cases {
        let response = logout(&server, query, Some(&browser.cookie)).await;
        assert!(is_page(&response, 400), "{query:?}: {}", response.status());
        assert!(!cleared(&response));
    }
    assert_eq!(server.session_status(&browser).await, 200);
}
