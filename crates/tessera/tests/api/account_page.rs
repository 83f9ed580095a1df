//! `/account`, a person's own page, end to end through the real binary, spoken to as
//! a browser does (form posts, cookies, redirects) and as an attacker would (no
//! CSRF token, another site's origin, another person's session id).

use reqwest::{StatusCode, header};
use serde_json::Value;

use crate::harness::{Browser, PASSWORD, REGISTRATION_OPEN, TestServer, browser_from};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const SAFARI: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 \
     (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";

async fn login_with(server: &TestServer, name: &str, agent: &str) -> Browser {
    let response = server
        .client
        .post(server.url("/v1/login"))
        .header(header::USER_AGENT, agent)
        .json(&serde_json::json!({"username": name, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    browser_from(response).await
}

async fn page(server: &TestServer, browser: &Browser) -> (StatusCode, String) {
    let response = server.get_as("/account", browser).await;
    (response.status(), response.text().await.unwrap())
}

/// A form post the way the page sends it: our origin, the cookie, the CSRF field.
async fn post_form(
    server: &TestServer,
    path: &str,
    browser: &Browser,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![("csrf_token", browser.csrf.as_str())];
    form.extend_from_slice(fields);
    server
        .client
        .post(server.url(path))
        .header(header::COOKIE, &browser.cookie)
        .header(header::ORIGIN, &server.base)
        .form(&form)
        .send()
        .await
        .unwrap()
}

fn location(response: &reqwest::Response) -> &str {
    response.headers()[header::LOCATION].to_str().unwrap()
}

#[tokio::test]
async fn a_person_sees_their_sessions_in_words_and_signs_another_one_out() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);

    let anonymous = server
        .client
        .get(server.url("/account"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 303);
    assert_eq!(location(&anonymous), "/login?return_to=%2Faccount");

    let laptop = login_with(&server, "alice", FIREFOX).await;
    let phone = login_with(&server, "alice", SAFARI).await;
    let response = server.get_as("/account", &laptop).await;
    assert_eq!(response.status(), 200);
    let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"));
    let html = response.text().await.unwrap();
    assert!(html.contains("Firefox on Linux"), "{html}");
    assert!(html.contains("Safari on iPhone"), "{html}");
    assert!(html.contains("this device"));
    assert!(!html.contains("<script"), "no script on the page");
    assert!(html.len() < 50_000, "{} bytes", html.len());

    // Sign the phone out from the laptop: its cookie fails at once.
    let ended = post_form(
        &server,
        "/account/sessions/end",
        &laptop,
        &[("session", &phone.session_id)],
    )
    .await;
    assert_eq!(ended.status(), 303);
    assert_eq!(location(&ended), "/account?notice=session");
    assert_eq!(server.session_status(&phone).await, 401);
    assert_eq!(server.session_status(&laptop).await, 200);
    let shown = server.get_as(location(&ended), &laptop).await;
    let html = shown.text().await.unwrap();
    assert!(html.contains("That session is signed out."));
    assert!(!html.contains("Safari on iPhone"));

    // Every other session.
    let tablet = login_with(&server, "alice", SAFARI).await;
    let ended = post_form(&server, "/account/sessions/end-others", &laptop, &[]).await;
    assert_eq!(location(&ended), "/account?notice=others");
    assert_eq!(server.session_status(&tablet).await, 401);

    // Signing out here ends this session and sends the browser to /login.
    let out = post_form(&server, "/account/sign-out", &laptop, &[]).await;
    assert_eq!(location(&out), "/login");
    assert_eq!(server.session_status(&laptop).await, 401);
    let gone = server.get_as("/account", &laptop).await;
    assert_eq!(gone.status(), 303);
}

#[tokio::test]
async fn forged_account_forms_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    server.add_user("bob", &[]);
    let alice = server.login("alice").await;
    let alice_other = server.login("alice").await;
    let bob = server.login("bob").await;
    let target = [("session", alice_other.session_id.as_str())];

    // No CSRF token; another session's token; another site's origin.
    let no_csrf = server
        .client
        .post(server.url("/account/sessions/end"))
        .header(header::COOKIE, &alice.cookie)
        .form(&target)
        .send()
        .await
        .unwrap();
    assert!(no_csrf.status().is_client_error(), "{}", no_csrf.status());
    let wrong_csrf = Browser {
        csrf: bob.csrf.clone(),
        ..alice.clone()
    };
    let refused = post_form(&server, "/account/sessions/end", &wrong_csrf, &target).await;
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("out of date"));
    let foreign = server
        .client
        .post(server.url("/account/sessions/end"))
        .header(header::COOKIE, &alice.cookie)
        .header(header::ORIGIN, "https://evil.example")
        .form(&[("csrf_token", alice.csrf.as_str()), target[0]])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    assert!(foreign.text().await.unwrap().contains("another site"));
    // Bob, with his own valid form, names alice's session: not his, so nothing ends.
    let not_his = post_form(&server, "/account/sessions/end", &bob, &target).await;
    assert_eq!(not_his.status(), 404);
    assert!(not_his.text().await.unwrap().contains("already signed out"));
    // A cookie that is not a session: sent to sign in, nothing done.
    let forged = Browser {
        cookie: format!("{}x", alice.cookie),
        ..alice.clone()
    };
    let anonymous = post_form(&server, "/account/sessions/end-others", &forged, &[]).await;
    assert_eq!(anonymous.status(), 303);
    assert_eq!(
        server.session_status(&alice_other).await,
        200,
        "still signed in"
    );
    // Nonsense in the fields: a page with the reason, never a 500.
    let junk = post_form(
        &server,
        "/account/sessions/end",
        &alice,
        &[("session", "../../x")],
    )
    .await;
    assert_eq!(junk.status(), 404);
    let junk = post_form(
        &server,
        "/account/apps/remove",
        &alice,
        &[("client_id", "nope")],
    )
    .await;
    assert_eq!(junk.status(), 404);
    let missing = post_form(&server, "/account/password", &alice, &[]).await;
    assert_eq!(missing.status(), 400);
    assert_eq!(
        server.session_status(&alice_other).await,
        200,
        "still signed in"
    );
}

#[tokio::test]
async fn a_person_changes_their_profile_and_password_here() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let alice = server.login("alice").await;
    let elsewhere = server.login("alice").await;

    let saved = post_form(
        &server,
        "/account/profile",
        &alice,
        &[("name", "Alice Liddell"), ("email", "Alice@Example.ORG")],
    )
    .await;
    assert_eq!(location(&saved), "/account?notice=profile");
    let (_, html) = page(&server, &alice).await;
    assert!(html.contains("value=\"Alice Liddell\""), "{html}");
    assert!(html.contains("value=\"Alice@example.org\""), "{html}");
    assert!(html.contains("(not verified)"));
    let bad = post_form(
        &server,
        "/account/profile",
        &alice,
        &[("email", "not an address")],
    )
    .await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("Email:"));

    // The current password is required, and checked.
    let new_password = "a new and longer password";
    let wrong = post_form(
        &server,
        "/account/password",
        &alice,
        &[
            ("current_password", "not it at all"),
            ("new_password", new_password),
        ],
    )
    .await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong.text().await.unwrap().contains("not right"));
    let short = post_form(
        &server,
        "/account/password",
        &alice,
        &[("current_password", PASSWORD), ("new_password", "short")],
    )
    .await;
    assert_eq!(short.status(), 400);
    let changed = post_form(
        &server,
        "/account/password",
        &alice,
        &[
            ("current_password", PASSWORD),
            ("new_password", new_password),
            ("sign_out_others", "yes"),
        ],
    )
    .await;
    assert_eq!(location(&changed), "/account?notice=password-others");
    assert_eq!(server.session_status(&elsewhere).await, 401, "signed out");
    assert_eq!(server.session_status(&alice).await, 200, "this one stays");
    assert_eq!(server.try_login("alice", PASSWORD).await.status(), 401);
    assert_eq!(server.try_login("alice", new_password).await.status(), 200);

    // Each left its event; neither password is in the log.
    let log = server.cli(&["events", "--json", "--user", "alice"], "");
    let log = String::from_utf8(log.stdout).unwrap();
    let kinds: Vec<String> = log
        .lines()
        .map(|l| {
            let e: Value = serde_json::from_str(l).unwrap();
            format!(
                "{} {}",
                e["kind"].as_str().unwrap(),
                e["outcome"].as_str().unwrap()
            )
        })
        .collect();
    for expected in [
        "user.profile_changed success",
        "password.changed failure",
        "password.changed success",
        "logout success",
    ] {
        assert!(
            kinds.contains(&expected.to_owned()),
            "{expected}: {kinds:?}"
        );
    }
    assert!(!log.contains(PASSWORD) && !log.contains(new_password));
}

/// Removing an app: its consent goes, its refresh tokens for this person stop
/// working, and it gets a back-channel logout for the session it knew; another
/// person's use of the same app is untouched.
#[tokio::test]
async fn removing_an_app_cuts_it_off_and_tells_it() {
    use crate::backchannel::{Receiver, free_address};
    use crate::code_flow::{REDIRECT, Request, code_for, tokens};

    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    server.add_user("bob", &[]);
    let receiver = Receiver::default();
    let address = free_address();
    let _up = receiver.listen(address).await;
    let uri = format!("http://{address}/backchannel");
    let app = crate::tokens::add_client(
        &server,
        "Photo Album",
        &[
            "--grant",
            "authorization_code,refresh_token",
            "--redirect-uri",
            REDIRECT,
            "--backchannel-logout-uri",
            &uri,
            "--id-token-alg",
            "ES256",
        ],
    );
    let signed_in = |name: &'static str| {
        let (server, app) = (&server, &app);
        async move {
            let browser = server.login(name).await;
            let request = Request::new(app);
            let code = code_for(server, &browser, &request).await;
            let body = tokens(server, app, &code, &request.verifier).await;
            (browser, body["refresh_token"].as_str().unwrap().to_owned())
        }
    };
    let (alice, alices_token) = signed_in("alice").await;
    let (_bob, bobs_token) = signed_in("bob").await;

    let (_, html) = page(&server, &alice).await;
    assert!(html.contains("Photo Album"), "{html}");
    assert!(
        html.contains("See your email address"),
        "scopes in words: {html}"
    );
    // It got tokens for her just now (the code exchange).
    assert!(html.contains("Last used just now"), "{html}");
    let grants: serde_json::Value = server
        .get_as("/v1/grants", &alice)
        .await
        .json()
        .await
        .unwrap();
    assert!(grants["grants"][0]["last_used_at"].is_string(), "{grants}");
    let removed = post_form(
        &server,
        "/account/apps/remove",
        &alice,
        &[("client_id", app.id.as_str())],
    )
    .await;
    assert_eq!(location(&removed), "/account?notice=app");
    let refused = crate::tokens::refresh(&server, &app, &alices_token, &[]).await;
    assert_eq!(refused.status(), 400, "alice's refresh token is revoked");
    let bobs = crate::tokens::refresh(&server, &app, &bobs_token, &[]).await;
    assert_eq!(bobs.status(), 200, "bob's is not");
    let received = receiver.wait_for(1, 10).await;
    let claims =
        crate::tokens::verify_typed(&server, &received[0], "logout+jwt", "ES256", &app.id).await;
    assert_eq!(claims["sid"], alice.session_id.as_str());
    // Alice stays signed in to tessera; the app asks for her consent again.
    assert_eq!(server.session_status(&alice).await, 200);
    let (_, html) = page(&server, &alice).await;
    assert!(html.contains("You have not allowed any app"));
    // Removing it again: nothing to remove.
    let again = post_form(
        &server,
        "/account/apps/remove",
        &alice,
        &[("client_id", app.id.as_str())],
    )
    .await;
    assert_eq!(again.status(), 404);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "one logout, for alice's session"
    );
}

async fn register(
    server: &TestServer,
    origin: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    server
        .client
        .post(server.url("/register"))
        .header(header::ORIGIN, origin)
        .form(&[("username", username), ("password", password)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_person_opens_an_account_on_the_register_page_when_it_is_open() {
    let server = TestServer::start_with(REGISTRATION_OPEN).await;
    let shown = server
        .client
        .get(server.url("/register"))
        .send()
        .await
        .unwrap();
    assert_eq!(shown.status(), 200);
    assert!(shown.text().await.unwrap().contains("name=\"username\""));

    let made = register(&server, &server.base, "carol", "a long enough password").await;
    assert_eq!(made.status(), 303);
    assert_eq!(location(&made), "/account");
    let cookie = crate::harness::session_set_cookie(&made).expect("signed in at once");
    let account = server
        .client
        .get(server.url("/account"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(account.status(), 200);
    assert!(account.text().await.unwrap().contains("carol"));

    // Taken, look-alike, too short, from another site: the form again, with why.
    for (origin, name, password, status, why) in [
        (
            server.base.as_str(),
            "carol",
            "a long enough password",
            409,
            "already exists",
        ),
        (
            server.base.as_str(),
            "cаrol",
            "a long enough password",
            409,
            "different scripts",
        ),
        (server.base.as_str(), "dave", "short", 400, "password"),
        (
            "https://evil.example",
            "mallory",
            "a long enough password",
            403,
            "another site",
        ),
    ] {
        let refused = register(&server, origin, name, password).await;
        assert_eq!(refused.status(), status, "{name}");
        let page = refused.text().await.unwrap();
        assert!(page.contains(why), "{name}: {page}");
        assert!(
            !page.contains(password) || password == "short",
            "never echoes a password"
        );
    }
    assert_eq!(
        server
            .try_login("mallory", "a long enough password")
            .await
            .status(),
        401
    );
    let log = server.cli(&["events", "--json", "--kind", "user.registered"], "");
    let event: Value = serde_json::from_slice(&log.stdout).unwrap();
    assert_eq!(event["username"], "carol");
    assert_eq!(event["actor"]["type"], "user");
}

#[tokio::test]
async fn the_register_page_says_when_registration_is_closed_and_makes_nothing() {
    // Closed is the default.
    let server = TestServer::start().await;
    let shown = server
        .client
        .get(server.url("/register"))
        .send()
        .await
        .unwrap();
    assert_eq!(shown.status(), 403);
    assert!(
        shown
            .text()
            .await
            .unwrap()
            .contains("Registration is closed")
    );
    let refused = register(&server, &server.base, "carol", "a long enough password").await;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        server
            .try_login("carol", "a long enough password")
            .await
            .status(),
        401
    );
}
