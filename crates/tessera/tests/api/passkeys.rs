//! Passkeys through the real binary, driven by a software authenticator that is
//! not ours (Kanidm's `SoftPasskey`): registered from the JSON API, used to sign
//! in with no username and as the second step after a password, removed; then
//! every way an attacker would push the ceremony: no user verification, another
//! origin, another relying party, a challenge answered twice, a cloned
//! authenticator (its counter going backwards), another account's passkey
//! claimed for this one, a stolen session planting a passkey without the
//! password.

use reqwest::{Method, Response, StatusCode, header};
use serde_json::{Value, json};
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs_proto::{
    AllowCredentials, CreationChallengeResponse, PublicKeyCredential, RequestChallengeResponse,
    UserVerificationPolicy,
};

use crate::harness::*;
use crate::second_factor::pending_cookie;
use crate::tokens::{add_client, token_request};

/// An authenticator that verifies its user (a PIN or a fingerprint).
pub(crate) fn authenticator() -> SoftPasskey {
    SoftPasskey::new(true)
}

/// The public URL's origin, which the browser is at (the server listens on
/// 127.0.0.1 under the name `localhost`).
pub(crate) fn origin(server: &TestServer) -> Url {
    Url::parse(&server.base.replace("127.0.0.1", "localhost")).unwrap()
}

/// The `{"ceremony", "options"}` of a challenge.
pub(crate) async fn challenge<T: serde::de::DeserializeOwned>(response: Response) -> (String, T) {
    assert_eq!(response.status(), StatusCode::OK, "a challenge");
    assert_eq!(
        response.headers()[header::CACHE_CONTROL],
        "no-store",
        "challenges are not cached"
    );
    let body: Value = response.json().await.unwrap();
    (
        body["ceremony"].as_str().unwrap().to_owned(),
        serde_json::from_value(body["options"].clone()).unwrap(),
    )
}

pub(crate) async fn registration_options(
    server: &TestServer,
    browser: &Browser,
    name: &str,
) -> (String, CreationChallengeResponse) {
    challenge(
        server
            .unsafe_as(Method::POST, "/v1/account/passkeys/options", browser)
            .json(&json!({ "name": name, "current_password": PASSWORD }))
            .send()
            .await
            .unwrap(),
    )
    .await
}

pub(crate) async fn finish_registration(
    server: &TestServer,
    browser: &Browser,
    ceremony: &str,
    credential: &impl serde::Serialize,
) -> Response {
    server
        .unsafe_as(Method::POST, "/v1/account/passkeys", browser)
        .json(&json!({ "ceremony": ceremony, "credential": credential }))
        .send()
        .await
        .unwrap()
}

/// Registers a passkey named `name` on `key` for the browser's account: its id.
async fn register(
    server: &TestServer,
    browser: &Browser,
    key: &mut SoftPasskey,
    name: &str,
) -> String {
    let (ceremony, options) = registration_options(server, browser, name).await;
    assert_eq!(
        options.public_key.rp.id, "localhost",
        "the RP id is the public URL's host"
    );
    assert!(
        matches!(
            options.public_key.attestation,
            Some(webauthn_rs_proto::AttestationConveyancePreference::None)
        ),
        "no attestation asked: nothing about the device is collected"
    );
    let credential = key.do_registration(origin(server), options).unwrap();
    let added = finish_registration(server, browser, &ceremony, &credential).await;
    assert_eq!(added.status(), StatusCode::CREATED);
    let added: Value = added.json().await.unwrap();
    assert_eq!(added["name"], name);
    assert!(added["last_used_at"].is_null());
    added["id"].as_str().unwrap().to_owned()
}

/// The answer of `key` to a discoverable challenge, as a browser gives it: the
/// authenticator picks its credential for the RP and names its account. (The
/// soft authenticator keeps no resident keys, so the test tells it which
/// credential, and adds the user handle a resident key carries.)
pub(crate) fn discoverable_answer(
    origin: &Url,
    key: &mut SoftPasskey,
    mut options: RequestChallengeResponse,
    credential_id: &str,
    user_id: &str,
) -> PublicKeyCredential {
    assert!(
        options.public_key.allow_credentials.is_empty(),
        "a discoverable challenge names no credential: nobody's account is disclosed"
    );
    options.public_key.allow_credentials = vec![AllowCredentials {
        type_: "public-key".to_owned(),
        id: base64url(credential_id),
        transports: None,
    }];
    let mut answer = key.do_authentication(origin.clone(), options).unwrap();
    answer.response.user_handle = Some(uuid_bytes(user_id));
    answer
}

fn base64url(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}

fn uuid_bytes(id: &str) -> Vec<u8> {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    (0..16)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

pub(crate) async fn sign_in_with(
    server: &TestServer,
    ceremony: &str,
    answer: &PublicKeyCredential,
) -> Response {
    server
        .post_json(
            "/v1/login/passkey",
            json!({ "ceremony": ceremony, "credential": answer }),
        )
        .await
}

pub(crate) async fn discoverable_challenge(
    server: &TestServer,
) -> (String, RequestChallengeResponse) {
    challenge(
        server
            .post_json("/v1/login/passkey/options", json!({}))
            .await,
    )
    .await
}

#[tokio::test]
async fn a_passkey_registers_signs_in_alone_and_as_a_second_step_and_is_removed() {
    let server = TestServer::start_on_localhost(&[]).await;
    server.add_user("alice", &[]);
    let alice_id = server.user_id("alice");
    let browser = server.login("alice").await;
    let mut key = authenticator();
    let id = register(&server, &browser, &mut key, "Laptop").await;

    let listed: Value = server
        .get_as("/v1/account/passkeys", &browser)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["passkeys"].as_array().unwrap().len(), 1);
    assert_eq!(listed["passkeys"][0]["id"], id.as_str());
    assert_eq!(listed["passkeys"][0]["synced"], false);
    assert!(
        listed["passkeys"][0].get("passkey").is_none() && listed.to_string().len() < 400,
        "no key material in the listing: {listed}"
    );

    // No username typed: the authenticator says whose passkey it is.
    let (ceremony, options) = discoverable_challenge(&server).await;
    let answer = discoverable_answer(&origin(&server), &mut key, options, &id, &alice_id);
    let signed_in = sign_in_with(&server, &ceremony, &answer).await;
    assert_eq!(signed_in.status(), StatusCode::OK);
    assert!(session_set_cookie(&signed_in).is_some());
    let body: Value = signed_in.json().await.unwrap();
    assert_eq!(body["user"]["username"], "alice");
    assert_eq!(body["session"]["amr"], json!(["hwk", "mfa"]));
    assert_eq!(body["session"]["acr"], "2");

    // The passkey is now a second factor the password alone does not pass.
    let first = server.try_login("alice", PASSWORD).await;
    assert_eq!(first.status(), StatusCode::UNAUTHORIZED);
    let pending = pending_cookie(&first);
    let asked: Value = first.json().await.unwrap();
    assert_eq!(asked["error"], "second_factor_required");
    assert_eq!(asked["methods"], json!(["passkey"]));
    let (ceremony, options): (String, RequestChallengeResponse) = challenge(
        server
            .client
            .post(server.url("/v1/login/second-factor/passkey-options"))
            .header(header::COOKIE, &pending)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        options.public_key.user_verification,
        UserVerificationPolicy::Required
    );
    let answer = key.do_authentication(origin(&server), options).unwrap();
    let second = server
        .client
        .post(server.url("/v1/login/second-factor"))
        .header(header::COOKIE, &pending)
        .json(&json!({ "ceremony": ceremony, "credential": answer }))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), StatusCode::OK);
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["session"]["amr"], json!(["pwd", "hwk", "mfa"]));

    let listed: Value = server
        .get_as("/v1/account/passkeys", &browser)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        !listed["passkeys"][0]["last_used_at"].is_null(),
        "last use shown"
    );

    // The password grant cannot ask for the passkey, so it refuses the account.
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

    // Removed: the password alone signs in again, and the passkey no more.
    let removed = server
        .unsafe_as(
            Method::DELETE,
            &format!("/v1/account/passkeys/{id}"),
            &browser,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let again = server
        .unsafe_as(
            Method::DELETE,
            &format!("/v1/account/passkeys/{id}"),
            &browser,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(again).await, (404, "not_found".to_owned()));
    assert_eq!(server.try_login("alice", PASSWORD).await.status(), 200);
    let (ceremony, options) = discoverable_challenge(&server).await;
    let answer = discoverable_answer(&origin(&server), &mut key, options, &id, &alice_id);
    let (status, error) = error_of(sign_in_with(&server, &ceremony, &answer).await).await;
    assert_eq!((status, error.as_str()), (401, "passkey_refused"));

    let log = server.cli(&["events", "--json", "--user", "alice"], "");
    let log = String::from_utf8(log.stdout).unwrap();
    for expected in [
        "passkey \u{201c}Laptop\u{201d}",
        "with the passkey \u{201c}Laptop\u{201d}",
        "with a passkey",
    ] {
        assert!(log.contains(expected), "{expected} in the audit log: {log}");
    }
}

#[tokio::test]
async fn a_passkey_ceremony_refuses_what_an_attacker_would_try() {
    let server = TestServer::start_on_localhost(&[]).await;
    server.add_user("alice", &[]);
    server.add_user("mallory", &[]);
    let alice_id = server.user_id("alice");
    let alice = server.login("alice").await;
    let mallory = server.login("mallory").await;

    // A stolen session cannot plant a passkey: the password is asked again.
    let planted = server
        .unsafe_as(Method::POST, "/v1/account/passkeys/options", &alice)
        .json(&json!({ "name": "Mine now", "current_password": "not-alices-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(planted).await,
        (403, "invalid_credentials".to_owned())
    );
    // Nor from another site, nor without the CSRF token.
    let foreign = server
        .unsafe_as(Method::POST, "/v1/account/passkeys/options", &alice)
        .header(header::ORIGIN, "https://evil.example")
        .json(&json!({ "name": "Laptop", "current_password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let no_csrf = server
        .client
        .post(server.url("/v1/account/passkeys/options"))
        .header(header::COOKIE, &alice.cookie)
        .json(&json!({ "name": "Laptop", "current_password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(no_csrf).await,
        (403, "csrf_token_missing".to_owned())
    );
    let (_, unnamed) = error_of(
        server
            .unsafe_as(Method::POST, "/v1/account/passkeys/options", &alice)
            .json(&json!({ "name": "  ", "current_password": PASSWORD }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(unnamed, "invalid_request");

    // An authenticator that did not verify its user: refused.
    let (ceremony, mut options) = registration_options(&server, &alice, "No PIN").await;
    options.public_key.authenticator_selection =
        options.public_key.authenticator_selection.map(|mut s| {
            s.user_verification = UserVerificationPolicy::Discouraged_DO_NOT_USE;
            s
        });
    let unverified = SoftPasskey::new(false)
        .do_registration(origin(&server), options)
        .unwrap();
    let (status, error) =
        error_of(finish_registration(&server, &alice, &ceremony, &unverified).await).await;
    assert_eq!((status, error.as_str()), (401, "passkey_refused"));

    // Signed for another origin (another port of the same host): refused.
    let (ceremony, options) = registration_options(&server, &alice, "Elsewhere").await;
    let elsewhere = authenticator()
        .do_registration(Url::parse("http://localhost:1").unwrap(), options)
        .unwrap();
    let (status, _) =
        error_of(finish_registration(&server, &alice, &ceremony, &elsewhere).await).await;
    assert_eq!(status, 401, "another origin");

    // For another relying party (a phishing site relaying the challenge): refused.
    let (ceremony, mut options) = registration_options(&server, &alice, "Phished").await;
    options.public_key.rp.id = "evil.example".to_owned();
    let phished = authenticator()
        .do_registration(Url::parse("https://evil.example").unwrap(), options)
        .unwrap();
    let (status, _) =
        error_of(finish_registration(&server, &alice, &ceremony, &phished).await).await;
    assert_eq!(status, 401, "another RP id");

    // A ceremony is for the account that began it.
    let (ceremony, options) = registration_options(&server, &alice, "Laptop").await;
    let mut key = authenticator();
    let credential = key.do_registration(origin(&server), options).unwrap();
    let (status, error) =
        error_of(finish_registration(&server, &mallory, &ceremony, &credential).await).await;
    assert_eq!((status, error.as_str()), (400, "ceremony_expired"));

    // A registration answered twice: the second is refused.
    let (ceremony, options) = registration_options(&server, &alice, "Laptop").await;
    let credential = key.do_registration(origin(&server), options).unwrap();
    let added = finish_registration(&server, &alice, &ceremony, &credential).await;
    assert_eq!(added.status(), StatusCode::CREATED);
    let id = added.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, error) =
        error_of(finish_registration(&server, &alice, &ceremony, &credential).await).await;
    assert_eq!((status, error.as_str()), (400, "ceremony_expired"));

    // A sign-in answered twice (a replayed assertion): the second is refused.
    let (ceremony, options) = discoverable_challenge(&server).await;
    let answer = discoverable_answer(&origin(&server), &mut key, options, &id, &alice_id);
    assert_eq!(
        sign_in_with(&server, &ceremony, &answer).await.status(),
        200
    );
    let (status, error) = error_of(sign_in_with(&server, &ceremony, &answer).await).await;
    assert_eq!((status, error.as_str()), (400, "ceremony_expired"));
    // An answer to one challenge sent with another: refused.
    let (other, _) = discoverable_challenge(&server).await;
    let (status, _) = error_of(sign_in_with(&server, &other, &answer).await).await;
    assert_eq!(status, 401, "the signature is over another challenge");
    // A made-up ceremony.
    let (status, _) = error_of(sign_in_with(&server, "tce_forged", &answer).await).await;
    assert_eq!(status, 400);

    // Mallory's own passkey answering Alice's second step (after Alice's
    // password): the challenge allows Alice's passkeys only.
    let mut mallorys = authenticator();
    register(&server, &mallory, &mut mallorys, "Mallory's").await;
    let mallorys_id = server
        .get_as("/v1/account/passkeys", &mallory)
        .await
        .json::<Value>()
        .await
        .unwrap()["passkeys"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = server.try_login("alice", PASSWORD).await;
    let pending = pending_cookie(&first);
    let (ceremony, mut options): (String, RequestChallengeResponse) = challenge(
        server
            .client
            .post(server.url("/v1/login/second-factor/passkey-options"))
            .header(header::COOKIE, &pending)
            .send()
            .await
            .unwrap(),
    )
    .await;
    options.public_key.allow_credentials = vec![AllowCredentials {
        type_: "public-key".to_owned(),
        id: base64url(&mallorys_id),
        transports: None,
    }];
    let answer = mallorys
        .do_authentication(origin(&server), options)
        .unwrap();
    let second = server
        .client
        .post(server.url("/v1/login/second-factor"))
        .header(header::COOKIE, &pending)
        .json(&json!({ "ceremony": ceremony, "credential": answer }))
        .send()
        .await
        .unwrap();
    assert!(session_set_cookie(&second).is_none(), "no session");
    assert_eq!(error_of(second).await, (401, "invalid_code".to_owned()));

    // Alice's passkey claimed for Mallory's account: the store must agree with
    // the authenticator about whose it is.
    let mallory_id = server.user_id("mallory");
    let (ceremony, options) = discoverable_challenge(&server).await;
    let claimed = discoverable_answer(&origin(&server), &mut key, options, &id, &mallory_id);
    let (status, _) = error_of(sign_in_with(&server, &ceremony, &claimed).await).await;
    assert_eq!(status, 401, "not Mallory's passkey");

    // A cloned authenticator: two challenges, signed in order (counters n and
    // n + 1), answered out of order. The older counter is refused, and recorded.
    let (first_ceremony, first_options) = discoverable_challenge(&server).await;
    let (second_ceremony, second_options) = discoverable_challenge(&server).await;
    let first = discoverable_answer(&origin(&server), &mut key, first_options, &id, &alice_id);
    let second = discoverable_answer(&origin(&server), &mut key, second_options, &id, &alice_id);
    assert_eq!(
        sign_in_with(&server, &second_ceremony, &second)
            .await
            .status(),
        200
    );
    let refused = sign_in_with(&server, &first_ceremony, &first).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "passkey_refused");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("counter went backwards"),
        "{body}"
    );
    let log = server.cli(&["events", "--json", "--user", "alice"], "");
    let log = String::from_utf8(log.stdout).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("counter went backwards") && l.contains("failure")),
        "the clone is recorded: {log}"
    );
}

#[tokio::test]
async fn the_last_second_factor_of_an_account_the_policy_covers_stays() {
    let mut server = TestServer::start_on_localhost(&[]).await;
    server.add_user("alice", &[]);
    let alice_id = server.user_id("alice");
    let browser = server.login("alice").await;
    let mut key = authenticator();
    let id = register(&server, &browser, &mut key, "Laptop").await;

    server.restart_with(&[("TESSERA_MFA", "required")]);
    let (ceremony, options) = discoverable_challenge(&server).await;
    let answer = discoverable_answer(&origin(&server), &mut key, options, &id, &alice_id);
    let alice = browser_from(sign_in_with(&server, &ceremony, &answer).await).await;
    let removed = server
        .unsafe_as(
            Method::DELETE,
            &format!("/v1/account/passkeys/{id}"),
            &alice,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(removed).await, (409, "conflict".to_owned()));
    let listed: Value = server
        .get_as("/v1/account/passkeys", &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["passkeys"].as_array().unwrap().len(), 1, "it stays");
}

#[tokio::test]
async fn passkeys_say_why_they_are_off_when_the_public_url_is_an_address() {
    let server = TestServer::start().await;
    let (status, error) = error_of(
        server
            .post_json("/v1/login/passkey/options", json!({}))
            .await,
    )
    .await;
    assert_eq!((status, error.as_str()), (403, "passkeys_unavailable"));
}
