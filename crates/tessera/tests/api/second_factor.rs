//! Two-step sign-in through the real binary: an authenticator app set up from
//! `/account` (its key read off the page, its codes made by PyOTP, an
//! implementation not ours), then every way a sign-in between its factors may be
//! pushed: the code replayed, skewed, guessed, the half-signed-in cookie used as a
//! session, the pending sign-in replayed after it finished, the password grant
//! used to go around the second step.

use std::process::Command;

use base64::Engine;
use reqwest::{Response, StatusCode, header};
use serde_json::{Value, json};

use crate::harness::*;
use crate::tokens::{add_client, token_request};

/// The code PyOTP computes for `key` at `steps` 30-second steps from now.
pub(crate) fn code(key: &str, steps: i64) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import pyotp, sys, time; \
             print(pyotp.TOTP(sys.argv[1]).at(time.time() + 30 * int(sys.argv[2])))",
            key,
            &steps.to_string(),
        ])
        .output()
        .expect("python3 (the tests need it: apt-get install python3)");
    assert!(
        out.status.success(),
        "PyOTP is missing ({}): pip install pyotp, or run scripts/test, which installs it",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn post_form(
    server: &TestServer,
    path: &str,
    cookie: &str,
    fields: &[(&str, &str)],
) -> Response {
    server
        .client
        .post(server.url(path))
        .header(header::COOKIE, cookie)
        .header(header::ORIGIN, &server.base)
        .form(fields)
        .send()
        .await
        .unwrap()
}

/// Between the markers, in `html`.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("{start} in {html}"))
        + start.len();
    let to = html[from..].find(end).unwrap() + from;
    &html[from..to]
}

/// Sets up an authenticator app for `browser`'s account from the account page:
/// the key, and the recovery codes the confirmation showed.
async fn enrol(server: &TestServer, browser: &Browser) -> (String, Vec<String>) {
    let (key, codes, _) = enrol_with(server, browser).await;
    (key, codes)
}

/// [`enrol`], and the code that confirmed it.
///
/// Codes are chosen so that a 30-second step ending between making a code and
/// the server reading it changes no answer: a code meant to be refused is three
/// or more steps away, one meant to pass is the next step's.
pub(crate) async fn enrol_with(
    server: &TestServer,
    browser: &Browser,
) -> (String, Vec<String>, String) {
    let begun = post_form(
        server,
        "/account/totp/begin",
        &browser.cookie,
        &[("csrf_token", &browser.csrf)],
    )
    .await;
    assert_eq!(begun.status(), StatusCode::SEE_OTHER);
    let page = server
        .get_as("/account", browser)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("<svg role=\"img\""), "a QR code on {page}");
    let key: String = between(&page, "id=\"totp-secret\">", "<")
        .split_whitespace()
        .collect();
    assert_eq!(key.len(), 32, "{key}");

    // a code of another time is refused, and the app is not on
    let wrong = post_form(
        server,
        "/account/totp/confirm",
        &browser.cookie,
        &[("csrf_token", &browser.csrf), ("code", &code(&key, 4))],
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert!(wrong.text().await.unwrap().contains("not the current one"));

    let confirming = code(&key, 0);
    let confirmed = post_form(
        server,
        "/account/totp/confirm",
        &browser.cookie,
        &[("csrf_token", &browser.csrf), ("code", &confirming)],
    )
    .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let page = confirmed.text().await.unwrap();
    let codes: Vec<String> = between(&page, "<ol class=\"codes\">", "</ol>")
        .split("<code>")
        .skip(1)
        .map(|c| c.split('<').next().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "{page}");
    (key, codes, confirming)
}

/// The `Set-Cookie` that sets the sign-in cookie between the factors.
pub(crate) fn pending_set_cookie(response: &Response) -> String {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-tessera-sign-in="))
        .expect("the sign-in cookie")
        .to_owned()
}

/// The sign-in cookie a response sets, as a `Cookie` header sends it back.
pub(crate) fn pending_cookie(response: &Response) -> String {
    pending_set_cookie(response)
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The first step: a right password; the `tessera-sign-in` cookie it sets.
pub(crate) async fn first_step(server: &TestServer, name: &str) -> String {
    let response = server.try_login(name, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        session_set_cookie(&response).is_none(),
        "no session before the second factor"
    );
    let set_cookie = pending_set_cookie(&response);
    let attributes = set_cookie.to_ascii_lowercase();
    for expected in [
        "httponly",
        "secure",
        "samesite=strict",
        "path=/",
        "max-age=300",
    ] {
        assert!(attributes.contains(expected), "{expected} in {set_cookie}");
    }
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "second_factor_required");
    assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
    set_cookie.split(';').next().unwrap().to_owned()
}

pub(crate) async fn second_step(server: &TestServer, pending: &str, code: &str) -> Response {
    server
        .client
        .post(server.url("/v1/login/second-factor"))
        .header(header::COOKIE, pending)
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap()
}

fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn an_authenticator_app_makes_sign_in_ask_for_its_code() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let browser = server.login("alice").await;
    assert_eq!(browser.login["session"]["amr"], json!(["pwd"]));
    assert_eq!(browser.login["session"]["acr"], "1");
    let (key, recovery, confirming) = enrol_with(&server, &browser).await;

    let pending = first_step(&server, "alice").await;
    // between the factors the cookie opens nothing, however it is presented
    let secret = pending.split_once('=').unwrap().1;
    for cookie in [pending.clone(), format!("__Host-tessera-session={secret}")] {
        let as_session = Browser {
            cookie,
            ..browser.clone()
        };
        assert_eq!(server.session_status(&as_session).await, 401);
        let account = server.get_as("/account", &as_session).await;
        assert_eq!(account.status(), StatusCode::SEE_OTHER);
    }
    // the code the confirmation used is spent; three steps ahead is too far
    for refused in [confirming, code(&key, 3), "12345".into()] {
        let response = second_step(&server, &pending, &refused).await;
        let expected = if refused.len() == 6 { 401 } else { 400 };
        assert_eq!(response.status(), expected, "{refused}");
    }
    let signed_in = second_step(&server, &pending, &code(&key, 1)).await;
    assert_eq!(signed_in.status(), StatusCode::OK);
    let cleared = signed_in
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.starts_with("__Host-tessera-sign-in=;") && v.contains("Max-Age=0"));
    assert!(cleared, "the sign-in cookie is cleared");
    let session = browser_from(signed_in).await;
    assert_eq!(
        session.login["session"]["amr"],
        json!(["pwd", "otp", "mfa"])
    );
    assert_eq!(session.login["session"]["acr"], "2");
    assert_eq!(server.session_status(&session).await, 200);

    // tokens from the session say how it began
    let token = server
        .unsafe_as(reqwest::Method::POST, "/v1/session/token", &session)
        .send()
        .await
        .unwrap();
    let token = token.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let claims = claims_of(&token);
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["acr"], "2");

    // the finished sign-in cannot be finished again
    let again = second_step(&server, &pending, &code(&key, -1)).await;
    assert_eq!(error_of(again).await, (401, "sign_in_expired".into()));

    // a recovery code stands in for the app, once, typed as a person would
    let pending = first_step(&server, "alice").await;
    let typed = recovery[3].to_uppercase().replace('-', " ");
    let response = second_step(&server, &pending, &typed).await;
    assert_eq!(response.status(), StatusCode::OK);
    let pending = first_step(&server, "alice").await;
    let reused = second_step(&server, &pending, &recovery[3]).await;
    assert_eq!(error_of(reused).await, (401, "invalid_code".into()));
    assert_eq!(
        second_step(&server, &pending, &recovery[4]).await.status(),
        StatusCode::OK
    );

    // the password grant cannot ask for the code, so it refuses the account
    let app = add_client(&server, "app", &["--grant", "password", "--public"]);
    let grant = token_request(&server)
        .form(&[
            ("grant_type", "password"),
            ("client_id", app.id.as_str()),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(grant).await, (400, "invalid_grant".into()));
}

#[tokio::test]
async fn a_sign_in_allows_five_wrong_codes_then_must_start_again() {
    let server = TestServer::start().await;
    server.add_user("bob", &[]);
    let browser = server.login("bob").await;
    let (key, _) = enrol(&server, &browser).await;
    let pending = first_step(&server, "bob").await;
    for left in (1..=4).rev() {
        let response = second_step(&server, &pending, &code(&key, 5)).await;
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_code");
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.contains(&format!("{left} attempt")),
            "{description}"
        );
    }
    let fifth = second_step(&server, &pending, &code(&key, 5)).await;
    assert_eq!(error_of(fifth).await, (401, "sign_in_expired".into()));
    // the right code no longer helps this sign-in
    let late = second_step(&server, &pending, &code(&key, 1)).await;
    assert_eq!(error_of(late).await, (401, "sign_in_expired".into()));
    // a forged sign-in cookie is no sign-in
    let forged = second_step(
        &server,
        "__Host-tessera-sign-in=tce_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        &code(&key, 1),
    )
    .await;
    assert_eq!(error_of(forged).await, (401, "sign_in_expired".into()));
}

#[tokio::test]
async fn the_login_page_leads_through_the_second_step_and_back() {
    let server = TestServer::start().await;
    server.add_user("carol", &[]);
    let browser = server.login("carol").await;
    let (key, _) = enrol(&server, &browser).await;
    let return_to = format!("{}/account", server.base);
    let response = post_form(
        &server,
        "/login",
        "",
        &[
            ("username", "carol"),
            ("password", PASSWORD),
            ("return_to", &return_to),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[header::LOCATION].to_str().unwrap();
    assert!(
        location.starts_with("/login/second-factor?return_to="),
        "{location}"
    );
    let pending = pending_cookie(&response);
    let form = server
        .client
        .get(server.url(location))
        .header(header::COOKIE, &pending)
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let form = form.text().await.unwrap();
    assert!(form.contains("autocomplete=\"one-time-code\""), "{form}");
    // without the cookie there is nothing to continue: back to sign in
    let lost = server
        .client
        .get(server.url(location))
        .send()
        .await
        .unwrap();
    assert_eq!(lost.status(), StatusCode::SEE_OTHER);

    let wrong = post_form(
        &server,
        "/login/second-factor",
        &pending,
        &[("code", &code(&key, 5)), ("return_to", &return_to)],
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.text().await.unwrap().contains("4 attempts left"));
    let done = post_form(
        &server,
        "/login/second-factor",
        &pending,
        &[("code", &code(&key, 1)), ("return_to", &return_to)],
    )
    .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(done.headers()[header::LOCATION], return_to.as_str());
    assert!(session_set_cookie(&done).is_some());

    // another site's form cannot finish a sign-in
    let pending = first_step(&server, "carol").await;
    let foreign = server
        .client
        .post(server.url("/login/second-factor"))
        .header(header::COOKIE, &pending)
        .header(header::ORIGIN, "https://evil.example")
        .form(&[("code", code(&key, -1))])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert!(session_set_cookie(&foreign).is_none());
}

#[tokio::test]
async fn turning_two_step_sign_in_off_needs_the_password() {
    let server = TestServer::start().await;
    server.add_user("dave", &[]);
    let browser = server.login("dave").await;
    enrol(&server, &browser).await;
    let page = server
        .get_as("/account", &browser)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("10 unused recovery codes left"), "{page}");
    let wrong = post_form(
        &server,
        "/account/totp/remove",
        &browser.cookie,
        &[
            ("csrf_token", &browser.csrf),
            ("current_password", "not the password"),
        ],
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    first_step(&server, "dave").await;
    let off = post_form(
        &server,
        "/account/totp/remove",
        &browser.cookie,
        &[
            ("csrf_token", &browser.csrf),
            ("current_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(off.status(), StatusCode::SEE_OTHER);
    assert_eq!(server.try_login("dave", PASSWORD).await.status(), 200);
    let page = server
        .get_as("/account", &browser)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Set up an authenticator app"), "{page}");
}

#[tokio::test]
async fn an_admin_resets_a_lost_second_factor_and_the_audit_log_says_so() {
    let server = TestServer::start().await;
    server.add_user("root", &["admin"]);
    server.add_user("erin", &[]);
    let erin = server.login("erin").await;
    let (key, _) = enrol(&server, &erin).await;
    let root = server.login("root").await;
    let erin_id = server.user_id("erin");

    // not for anyone but an admin, nor without the CSRF token
    let path = format!("/admin/v1/users/{erin_id}/reset-factors");
    let by_erin = server
        .unsafe_as(reqwest::Method::POST, &path, &erin)
        .send()
        .await
        .unwrap();
    assert_eq!(by_erin.status(), 403);
    let no_csrf = server
        .client
        .post(server.url(&path))
        .header(header::COOKIE, &root.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), 403);
    first_step(&server, "erin").await;
    let console = server
        .get_as(&format!("/admin/users/{erin_id}"), &root)
        .await
        .text()
        .await
        .unwrap();
    assert!(console.contains("id=\"two-step\">on"), "{console}");

    let reset = server
        .unsafe_as(reqwest::Method::POST, &path, &root)
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);
    let body: Value = reset.json().await.unwrap();
    assert_eq!(body["second_factor_removed"], true);
    assert_eq!(server.try_login("erin", PASSWORD).await.status(), 200);
    // the old app's codes are worth nothing now
    let pending_less = second_step(
        &server,
        "__Host-tessera-sign-in=tce_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        &code(&key, 1),
    )
    .await;
    assert_eq!(pending_less.status(), 401);

    // the CLI does the same, and says when there was nothing to take
    let out = server.cli(&["user", "reset-factors", "erin", "--json"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["second_factor_removed"], false);

    let events: Value = server
        .get_as(
            &format!("/admin/v1/events?kind=second_factor.removed&user={erin_id}"),
            &root,
        )
        .await
        .json()
        .await
        .unwrap();
    let details: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(details.len(), 2, "{events}");
    assert!(
        details
            .iter()
            .all(|d| d.starts_with("reset by an administrator"))
    );
    let added: Value = server
        .get_as(
            &format!("/admin/v1/events?kind=second_factor.added&user={erin_id}"),
            &root,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(added["events"].as_array().unwrap().len(), 1, "{added}");

    // the console's button does the same, with the page's CSRF token
    let erin = server.login("erin").await;
    enrol(&server, &erin).await;
    let button = server
        .client
        .post(server.url(&format!("/admin/users/{erin_id}/reset-factors")))
        .header(header::COOKIE, &root.cookie)
        .header(header::ORIGIN, &server.base)
        .form(&[("csrf_token", root.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(button.status(), StatusCode::SEE_OTHER);
    assert_eq!(server.try_login("erin", PASSWORD).await.status(), 200);
    let console = server
        .get_as(&format!("/admin/users/{erin_id}"), &root)
        .await
        .text()
        .await
        .unwrap();
    assert!(console.contains("id=\"two-step\">off"), "{console}");
}

#[tokio::test]
async fn the_mfa_policy_has_admins_set_up_an_app_as_they_sign_in() {
    let mut server = TestServer::start().await;
    server.add_user("root", &["admin"]);
    server.add_user("bob", &[]);
    let before = server.login("root").await;
    server.restart_with(&[("TESSERA_MFA", "required_for_admins")]);

    // a session from before the policy, with the password alone, reaches neither
    // the admin API nor the console; the account page it does
    let api = server.get_as("/admin/v1/users", &before).await;
    assert_eq!(
        error_of(api).await,
        (403, "insufficient_user_authentication".into())
    );
    let console = server.get_as("/admin", &before).await;
    assert_eq!(console.status(), StatusCode::FORBIDDEN);
    assert!(
        console
            .text()
            .await
            .unwrap()
            .contains("Two-step sign-in needed")
    );
    assert_eq!(server.get_as("/account", &before).await.status(), 200);
    // the policy is for admins
    assert_eq!(server.try_login("bob", PASSWORD).await.status(), 200);

    // an admin with no app sets one up between the password and the session
    let response = server.try_login("root", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(session_set_cookie(&response).is_none());
    let pending = pending_cookie(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "second_factor_required");
    assert_eq!(body["methods"], json!(["totp"]));
    let key = body["enrolment"]["secret"].as_str().unwrap().to_owned();
    let uri = body["enrolment"]["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/") && uri.contains(&key),
        "{uri}"
    );
    // nothing stands in for the app not set up yet
    let stand_in = second_step(&server, &pending, "k3f9-q2xm-7hpa-c4dz").await;
    assert_eq!(error_of(stand_in).await, (401, "invalid_code".into()));
    let done = second_step(&server, &pending, &code(&key, 0)).await;
    assert_eq!(done.status(), StatusCode::OK);
    let root = browser_from(done).await;
    assert_eq!(root.login["recovery_codes"].as_array().unwrap().len(), 10);
    assert_eq!(root.login["session"]["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(server.get_as("/admin/v1/users", &root).await.status(), 200);
    assert_eq!(server.get_as("/admin", &root).await.status(), 200);
    // from now on the app is asked for; it cannot be turned off while the
    // policy covers the account (the page offers no button; a post is refused)
    first_step(&server, "root").await;
    let page = server.get_as("/account", &root).await.text().await.unwrap();
    assert!(!page.contains("Turn off two-step sign-in"), "{page}");
    assert!(
        page.contains("asks your account to sign in with two steps"),
        "{page}"
    );
    let off = server
        .unsafe_as(reqwest::Method::POST, "/account/totp/remove", &root)
        .header(header::ORIGIN, &server.base)
        .form(&[
            ("csrf_token", root.csrf.as_str()),
            ("current_password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), StatusCode::CONFLICT);
}
