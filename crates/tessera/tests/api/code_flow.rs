//! The OpenID Connect code flow through the real binary, as a browser and a relying
//! party drive it: `/oauth2/authorize`, `/login`, the consent page, the code
//! exchange, ID tokens, userinfo; and every refusal the way an attacker would try.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Response, header};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::harness::*;
use crate::tokens::{
    Registered, add_client, introspect, token_request, token_request_to, verify_typed,
};

pub(crate) const REDIRECT: &str = "https://app.example/cb";

/// A PKCE verifier and its S256 challenge.
fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand_bytes());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn rand_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let seed = Sha256::digest(format!("{nanos}-{:?}", std::thread::current().id()));
    bytes.copy_from_slice(&seed);
    bytes
}

/// An app registered for the code flow, confidential unless `extra` says `--public`.
pub(crate) fn app(server: &TestServer, name: &str, extra: &[&str]) -> Registered {
    let mut args = vec![
        "--grant",
        "authorization_code,refresh_token",
        "--redirect-uri",
        REDIRECT,
        "--scope",
        "read",
    ];
    args.extend_from_slice(extra);
    add_client(server, name, &args)
}

/// One authorization request: its parameters and the PKCE verifier behind them.
#[derive(Clone)]
pub(crate) struct Request {
    params: Vec<(String, String)>,
    pub verifier: String,
}

impl Request {
    pub(crate) fn new(client: &Registered) -> Self {
        let (verifier, challenge) = pkce();
        let params = [
            ("response_type", "code"),
            ("client_id", client.id.as_str()),
            ("redirect_uri", REDIRECT),
            ("scope", "openid profile email"),
            ("state", "s-123"),
            ("nonce", "n-456"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        Self { params, verifier }
    }

    pub(crate) fn set(mut self, name: &str, value: &str) -> Self {
        self.params.retain(|(k, _)| k != name);
        self.params.push((name.to_owned(), value.to_owned()));
        self
    }

    fn without(mut self, name: &str) -> Self {
        self.params.retain(|(k, _)| k != name);
        self
    }

    pub(crate) fn url(&self, server: &TestServer) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&self.params)
            .finish();
        server.url(&format!("/oauth2/authorize?{query}"))
    }
}

async fn get(server: &TestServer, url: &str, cookie: Option<&str>) -> Response {
    let mut request = server.client.get(url);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.send().await.unwrap()
}

fn location(response: &Response) -> url::Url {
    assert_eq!(response.status(), 303, "expected a redirect");
    let to = response.headers()[header::LOCATION].to_str().unwrap();
    url::Url::parse(to)
        .or_else(|_| url::Url::parse("http://tessera.invalid").unwrap().join(to))
        .unwrap()
}

fn param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The redirect back to the app, with `error` (and `state`, `iss`) checked.
fn refused_with(server: &TestServer, response: &Response, error: &str) {
    let to = location(response);
    assert!(to.as_str().starts_with(REDIRECT), "{to}");
    assert_eq!(param(&to, "error").as_deref(), Some(error), "{to}");
    assert!(param(&to, "error_description").is_some());
    assert_eq!(param(&to, "state").as_deref(), Some("s-123"));
    assert_eq!(param(&to, "iss").as_deref(), Some(server.base.as_str()));
}

/// The hidden fields of the consent form, as a browser would send them back.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let unescape = |v: &str| {
        v.replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    };
    let mut fields = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find("<input type=\"hidden\" name=\"") {
        rest = &rest[at + "<input type=\"hidden\" name=\"".len()..];
        let (name, after) = rest.split_once('"').unwrap();
        let after = after.strip_prefix(" value=\"").unwrap();
        let (value, after) = after.split_once('"').unwrap();
        fields.push((unescape(name), unescape(value)));
        rest = after;
    }
    fields
}

/// Posts the consent form of `page` with `decision`.
async fn decide(server: &TestServer, browser: &Browser, page: &str, decision: &str) -> Response {
    let mut form = hidden_fields(page);
    form.push(("decision".into(), decision.into()));
    server
        .client
        .post(server.url("/oauth2/consent"))
        .header(header::COOKIE, &browser.cookie)
        .header(header::ORIGIN, &server.base)
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// Authorizes `request` as `browser`, allowing on the consent page if it is shown;
/// the code from the redirect back.
pub(crate) async fn code_for(server: &TestServer, browser: &Browser, request: &Request) -> String {
    let mut response = get(server, &request.url(server), Some(&browser.cookie)).await;
    if response.status() == 200 {
        let page = response.text().await.unwrap();
        response = decide(server, browser, &page, "allow").await;
    }
    let to = location(&response);
    assert!(to.as_str().starts_with(REDIRECT), "{to}");
    assert_eq!(param(&to, "state").as_deref(), Some("s-123"));
    // The issuer: the server's URL unless configured otherwise.
    assert!(param(&to, "iss").is_some_and(|iss| iss.starts_with("http")));
    param(&to, "code").expect("a code")
}

async fn exchange(
    server: &TestServer,
    client: &Registered,
    code: &str,
    verifier: Option<&str>,
    redirect: &str,
) -> Response {
    exchange_request(server, client, code, verifier, redirect)
        .send()
        .await
        .unwrap()
}

/// The token request that exchanges `code` as `client` authenticates (a public
/// client by its id), for the caller to send (with headers of its own).
pub(crate) fn exchange_request(
    server: &TestServer,
    client: &Registered,
    code: &str,
    verifier: Option<&str>,
    redirect: &str,
) -> reqwest::RequestBuilder {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect),
    ];
    if let Some(verifier) = verifier {
        form.push(("code_verifier", verifier));
    }
    let mut request = token_request(server);
    request = match &client.secret {
        Some(secret) => request.basic_auth(&client.id, Some(secret)),
        None => {
            form.push(("client_id", client.id.as_str()));
            request
        }
    };
    request.form(&form)
}

pub(crate) async fn tokens(
    server: &TestServer,
    client: &Registered,
    code: &str,
    verifier: &str,
) -> Value {
    let response = exchange(server, client, code, Some(verifier), REDIRECT).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Verifies an ID token as a relying party does (audience: the client id).
async fn verify_id_token(server: &TestServer, token: &str, client: &str, alg: &str) -> Value {
    verify_typed(server, token, "JWT", alg, client).await
}

async fn userinfo(server: &TestServer, token: &str) -> Response {
    server
        .client
        .get(server.url("/oauth2/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Signs in through the `/login` form, as a browser that was sent there.
async fn sign_in_form(server: &TestServer, return_to: &str) -> (Browser, Response) {
    let response = server
        .client
        .post(server.url("/login"))
        .header(header::ORIGIN, &server.base)
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("return_to", return_to),
        ])
        .send()
        .await
        .unwrap();
    let cookie = session_set_cookie(&response).expect("a session");
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let session: Value = get(server, &server.url("/v1/session"), Some(&cookie))
        .await
        .json()
        .await
        .unwrap();
    let browser = Browser {
        cookie,
        csrf: session["csrf_token"].as_str().unwrap().to_owned(),
        session_id: session["session"]["id"].as_str().unwrap().to_owned(),
        login: session,
    };
    (browser, response)
}

#[tokio::test]
async fn a_visitor_signs_in_consents_and_the_app_gets_verified_tokens() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let out = server.cli(
        &[
            "user",
            "set",
            "alice",
            "--name",
            "Alice Liddell",
            "--email",
            "alice@example.org",
            "--email-verified",
        ],
        "",
    );
    assert!(out.status.success());
    let client = app(&server, "portal", &[]);
    let request = Request::new(&client);

    // No session: to the sign-in page, which resumes the request afterwards.
    let to_login = get(&server, &request.url(&server), None).await;
    let login_url = location(&to_login);
    assert_eq!(login_url.path(), "/login");
    let resume = param(&login_url, "return_to").unwrap();
    assert!(resume.starts_with("/oauth2/authorize?"), "{resume}");
    let login_page = get(
        &server,
        login_url
            .as_str()
            .replace("http://tessera.invalid", &server.base)
            .as_str(),
        None,
    )
    .await;
    assert_eq!(login_page.status(), 200);
    let csp = login_page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    // The form's answer leads back here, then on to the app: both allowed.
    assert!(csp.contains("https://app.example"), "{csp}");
    assert!(csp.contains(&server.base), "{csp}");

    let (browser, signed_in) = sign_in_form(&server, &resume).await;
    let back = location(&signed_in);
    assert_eq!(back.path(), "/oauth2/authorize");

    // A third-party app: the consent page names it and each scope in words.
    let consent = get(&server, back.as_str(), Some(&browser.cookie)).await;
    assert_eq!(consent.status(), 200);
    let csp = consent.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("form-action 'self' https://app.example"),
        "{csp}"
    );
    let page = consent.text().await.unwrap();
    assert!(page.contains("portal"), "{page}");
    assert!(page.contains("See your email address"), "{page}");
    assert!(page.contains(r#"name="decision" value="allow""#));
    assert!(page.contains(r#"name="decision" value="deny""#));
    let allowed = decide(&server, &browser, &page, "allow").await;
    let to = location(&allowed);
    assert!(to.as_str().starts_with(REDIRECT));
    assert_eq!(param(&to, "state").as_deref(), Some("s-123"));
    assert_eq!(param(&to, "iss").as_deref(), Some(server.base.as_str()));
    let code = param(&to, "code").unwrap();
    assert!(code.starts_with("tac_"));

    let body = tokens(&server, &client, &code, &request.verifier).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "email openid profile");
    let access = body["access_token"].as_str().unwrap();
    let refresh = body["refresh_token"].as_str().unwrap();
    assert!(refresh.starts_with("trt_"));
    let id = verify_id_token(
        &server,
        body["id_token"].as_str().unwrap(),
        &client.id,
        "RS256",
    )
    .await;
    let user_id = browser.login["user"]["id"].as_str().unwrap();
    assert_eq!(id["sub"], user_id);
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["azp"], client.id.as_str());
    assert_eq!(id["sid"], browser.session_id.as_str());
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    assert!(id["acr"].is_string());
    assert!(id["auth_time"].as_i64().unwrap() <= id["iat"].as_i64().unwrap());
    assert_eq!(id["name"], "Alice Liddell");
    assert_eq!(id["preferred_username"], "alice");
    assert_eq!(id["email"], "alice@example.org");
    assert_eq!(id["email_verified"], true);
    let half = &Sha256::digest(access.as_bytes())[..16];
    assert_eq!(id["at_hash"], URL_SAFE_NO_PAD.encode(half));
    // The access token's sid is the browser session: logging out revokes it.
    assert_eq!(
        crate::tokens::claims_of(access)["sid"],
        browser.session_id.as_str()
    );

    let info = userinfo(&server, access).await;
    assert_eq!(info.status(), 200);
    let info: Value = info.json().await.unwrap();
    assert_eq!(info["sub"], user_id);
    assert_eq!(info["name"], "Alice Liddell");
    assert_eq!(info["email"], "alice@example.org");

    // Signed in and consented: the next request goes straight back with a code.
    let again = Request::new(&client);
    let straight = get(&server, &again.url(&server), Some(&browser.cookie)).await;
    let code = param(&location(&straight), "code").expect("no consent page the second time");
    tokens(&server, &client, &code, &again.verifier).await;

    // The refresh token rotates like any other.
    let refreshed = crate::tokens::refresh(&server, &client, refresh, &[]).await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    let via_refresh = refreshed["access_token"].as_str().unwrap().to_owned();

    // Logging out ends the session, its tokens and the family tied to it.
    let logout = server
        .unsafe_as(reqwest::Method::POST, "/v1/logout", &browser)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    let info = userinfo(&server, access).await;
    assert_eq!(info.status(), 401);
    assert!(
        info.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    assert_eq!(introspect(&server, &client, access).await["active"], false);
    let newest = refreshed["refresh_token"].as_str().unwrap();
    let after = crate::tokens::refresh(&server, &client, newest, &[]).await;
    assert_eq!(error_of(after).await, (400, "invalid_grant".into()));
    // Tokens issued through the family (their sid is the family's) end with it.
    eventually("the family's access token is revoked", || async {
        introspect(&server, &client, &via_refresh).await["active"] == false
    })
    .await;
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_gave() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let client = app(&server, "portal", &["--first-party"]);
    let browser = server.login("alice").await;
    let request = Request::new(&client);
    let code = code_for(&server, &browser, &request).await;
    let body = tokens(&server, &client, &code, &request.verifier).await;
    let access = body["access_token"].as_str().unwrap();
    let refresh = body["refresh_token"].as_str().unwrap();
    assert_eq!(introspect(&server, &client, access).await["active"], true);

    let replay = exchange(&server, &client, &code, Some(&request.verifier), REDIRECT).await;
    assert_eq!(error_of(replay).await, (400, "invalid_grant".into()));
    assert_eq!(introspect(&server, &client, access).await["active"], false);
    let refreshed = crate::tokens::refresh(&server, &client, refresh, &[]).await;
    assert_eq!(error_of(refreshed).await, (400, "invalid_grant".into()));
    // The browser session itself is not the thief's: it stays.
    assert_eq!(server.session_status(&browser).await, 200);
}

#[tokio::test]
async fn unknown_clients_and_redirect_uris_get_a_page_and_are_never_redirected() {
    let server = TestServer::start().await;
    let client = app(&server, "portal", &[]);
    let other = app(&server, "other", &[]);
    let cases = [
        Request::new(&client).without("client_id"),
        Request::new(&client).set("client_id", "00000000-0000-4000-8000-000000000000"),
        Request::new(&client).set("client_id", "not-a-uuid"),
        Request::new(&client).without("redirect_uri"),
        Request::new(&client).set("redirect_uri", "https://evil.example/cb"),
        Request::new(&client).set("redirect_uri", "https://app.example/cb/"),
        Request::new(&client).set("redirect_uri", "https://app.example/cb?x=1"),
        Request::new(&client).set("redirect_uri", "https://APP.example/cb"),
        Request::new(&client).set("redirect_uri", "https://app.example/%63b"),
        // Another client's own redirect URI is still not this client's.
        Request::new(&other).set("redirect_uri", "https://other.example/cb"),
    ];
    for request in &cases {
        for cookie in [None, Some("__Host-tessera-session=x")] {
            let response = get(&server, &request.url(&server), cookie).await;
            assert_eq!(response.status(), 400, "{:?}", request.params);
            assert!(response.headers().get(header::LOCATION).is_none());
            assert!(
                response.headers()[header::CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html")
            );
        }
    }
    // A parameter given twice: a page too.
    let twice = format!(
        "{}&client_id={}",
        Request::new(&client).url(&server),
        client.id
    );
    assert_eq!(get(&server, &twice, None).await.status(), 400);
}

#[tokio::test]
async fn bad_requests_go_back_to_the_app_with_an_error() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let client = app(&server, "portal", &[]);
    let browser = server.login("alice").await;
    let cases = [
        (
            Request::new(&client).without("code_challenge"),
            "invalid_request",
        ),
        (
            Request::new(&client).set("code_challenge_method", "plain"),
            "invalid_request",
        ),
        (
            Request::new(&client).without("code_challenge_method"),
            "invalid_request",
        ),
        (
            Request::new(&client).set("code_challenge", "short"),
            "invalid_request",
        ),
        (
            Request::new(&client).set("response_type", "token"),
            "unsupported_response_type",
        ),
        (
            Request::new(&client).set("response_type", "code id_token"),
            "unsupported_response_type",
        ),
        (
            Request::new(&client).without("response_type"),
            "invalid_request",
        ),
        (
            Request::new(&client).set("scope", "openid admin"),
            "invalid_scope",
        ),
        (
            Request::new(&client).set("scope", "openid write"),
            "invalid_scope",
        ),
        (
            Request::new(&client).set("prompt", "none login"),
            "invalid_request",
        ),
        (
            Request::new(&client).set("prompt", "sometimes"),
            "invalid_request",
        ),
        (
            Request::new(&client).set("max_age", "-1"),
            "invalid_request",
        ),
        (
            Request::new(&client).set("response_mode", "fragment"),
            "invalid_request",
        ),
        (
            Request::new(&client).set("request", "eyJ.x.y"),
            "request_not_supported",
        ),
    ];
    for (request, error) in &cases {
        let response = get(&server, &request.url(&server), Some(&browser.cookie)).await;
        refused_with(&server, &response, error);
    }

    // prompt=none: nothing may be shown, so what would be is an error.
    let response = get(
        &server,
        &Request::new(&client).set("prompt", "none").url(&server),
        None,
    )
    .await;
    refused_with(&server, &response, "login_required");
    let response = get(
        &server,
        &Request::new(&client).set("prompt", "none").url(&server),
        Some(&browser.cookie),
    )
    .await;
    refused_with(&server, &response, "consent_required");

    // Denied on the consent page.
    let page = get(
        &server,
        &Request::new(&client).url(&server),
        Some(&browser.cookie),
    )
    .await
    .text()
    .await
    .unwrap();
    let denied = decide(&server, &browser, &page, "deny").await;
    refused_with(&server, &denied, "access_denied");

    // A consent answer from another site, or without the session's CSRF token.
    let mut forged = hidden_fields(&page);
    forged.push(("decision".into(), "allow".into()));
    let foreign = server
        .client
        .post(server.url("/oauth2/consent"))
        .header(header::COOKIE, &browser.cookie)
        .header(header::ORIGIN, "https://evil.example")
        .form(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    forged.retain(|(k, _)| k != "csrf");
    let no_csrf = server
        .client
        .post(server.url("/oauth2/consent"))
        .header(header::COOKIE, &browser.cookie)
        .header(header::ORIGIN, &server.base)
        .form(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&no_csrf).path(),
        "/login",
        "no code without the CSRF token"
    );
    // Nothing was remembered by either: the page shows again.
    let again = get(
        &server,
        &Request::new(&client).url(&server),
        Some(&browser.cookie),
    )
    .await;
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn the_token_endpoint_binds_a_code_to_its_client_redirect_and_verifier() {
    let server = TestServer::start_with(&[("TESSERA_TOKENS__CODE_LIFETIME", "1s")]).await;
    server.add_user("alice", &[]);
    let client = app(&server, "portal", &["--first-party"]);
    let other = app(&server, "other", &["--first-party"]);
    let browser = server.login("alice").await;

    // What each attempt changes of the right request.
    enum Wrong {
        Verifier,
        NoVerifier,
        MalformedVerifier,
        Redirect,
        NoRedirect,
        Client,
    }
    let refusals = [
        ("wrong verifier", Wrong::Verifier),
        ("no verifier", Wrong::NoVerifier),
        ("malformed verifier", Wrong::MalformedVerifier),
        ("another redirect", Wrong::Redirect),
        ("no redirect", Wrong::NoRedirect),
        ("another client", Wrong::Client),
    ];
    let make = |wrong: &Wrong, request: &Request| -> (Option<String>, String, bool) {
        let right = Some(request.verifier.clone());
        match wrong {
            Wrong::Verifier => (Some(pkce().0), REDIRECT.to_owned(), false),
            Wrong::NoVerifier => (None, REDIRECT.to_owned(), false),
            Wrong::MalformedVerifier => (Some("x".into()), REDIRECT.to_owned(), false),
            Wrong::Redirect => (right, "https://app.example/other".into(), false),
            Wrong::NoRedirect => (right, String::new(), false),
            Wrong::Client => (right, REDIRECT.to_owned(), true),
        }
    };
    for (what, make_case) in &refusals {
        let request = Request::new(&client);
        let code = code_for(&server, &browser, &request).await;
        let (verifier, redirect, as_other) = make(make_case, &request);
        let by = if as_other { &other } else { &client };
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
        ];
        if !redirect.is_empty() {
            form.push(("redirect_uri", redirect.as_str()));
        }
        if let Some(v) = &verifier {
            form.push(("code_verifier", v.as_str()));
        }
        let response = token_request(&server)
            .basic_auth(&by.id, by.secret.as_deref())
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(response).await,
            (400, "invalid_grant".into()),
            "{what}"
        );
        // Spent by the failed attempt: the right request fails too now.
        let right = exchange(&server, &client, &code, Some(&request.verifier), REDIRECT).await;
        assert_eq!(
            error_of(right).await,
            (400, "invalid_grant".into()),
            "{what}, then right"
        );
    }

    // Made up, or a refresh token presented as a code.
    for code in [
        "tac_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "nonsense",
    ] {
        let response = exchange(&server, &client, code, Some(&pkce().0), REDIRECT).await;
        assert_eq!(
            error_of(response).await,
            (400, "invalid_grant".into()),
            "{code}"
        );
    }
    let missing = token_request(&server)
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("grant_type", "authorization_code")])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(missing).await, (400, "invalid_request".into()));

    // Expired: the lifetime is one second here.
    let request = Request::new(&client);
    let code = code_for(&server, &browser, &request).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let late = exchange(&server, &client, &code, Some(&request.verifier), REDIRECT).await;
    assert_eq!(error_of(late).await, (400, "invalid_grant".into()));

    // A code whose browser session ended meanwhile gives nothing.
    let request = Request::new(&client);
    let code = code_for(&server, &browser, &request).await;
    server
        .unsafe_as(reqwest::Method::POST, "/v1/logout", &browser)
        .send()
        .await
        .unwrap();
    let ended = exchange(&server, &client, &code, Some(&request.verifier), REDIRECT).await;
    assert_eq!(error_of(ended).await, (400, "invalid_grant".into()));
}

#[tokio::test]
async fn prompt_login_and_max_age_ask_for_a_fresh_sign_in_once() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let client = app(&server, "portal", &["--first-party"]);
    let browser = server.login("alice").await;

    for (name, value) in [("prompt", "login"), ("max_age", "0")] {
        let request = Request::new(&client)
            .set(name, value)
            .set("login_hint", "alice");
        let response = get(&server, &request.url(&server), Some(&browser.cookie)).await;
        let login = location(&response);
        assert_eq!(login.path(), "/login", "{name}");
        assert_eq!(param(&login, "reauthenticate").as_deref(), Some("true"));
        // The form is shown though the browser is signed in, the hint filled in.
        let page = get(
            &server,
            &server.url(&format!("/login?{}", login.query().unwrap())),
            Some(&browser.cookie),
        )
        .await;
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains(r#"value="alice""#));
        // Signed in again, the resumed request gives a code with the new auth_time.
        let resume = param(&login, "return_to").unwrap();
        assert!(
            !resume.contains("prompt=login") && !resume.contains("max_age"),
            "{resume}"
        );
        let (fresh, signed_in) = sign_in_form(&server, &resume).await;
        let back = location(&signed_in);
        let response = get(&server, back.as_str(), Some(&fresh.cookie)).await;
        let code = param(&location(&response), "code").expect("a code, not /login again");
        let body = tokens(&server, &client, &code, &request.verifier).await;
        let id = crate::tokens::claims_of(body["id_token"].as_str().unwrap());
        assert_eq!(id["sid"], fresh.session_id.as_str());
    }

    // A generous max_age is met by the current sign-in.
    let request = Request::new(&client).set("max_age", "3600");
    let response = get(&server, &request.url(&server), Some(&browser.cookie)).await;
    assert!(param(&location(&response), "code").is_some());
}

#[tokio::test]
async fn consent_is_remembered_per_scope_set_and_can_be_withdrawn() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let client = app(&server, "portal", &[]);
    let browser = server.login("alice").await;

    let narrow = Request::new(&client).set("scope", "openid");
    code_for(&server, &browser, &narrow).await;
    let straight = get(
        &server,
        &Request::new(&client).set("scope", "openid").url(&server),
        Some(&browser.cookie),
    )
    .await;
    assert_eq!(straight.status(), 303, "the same scopes: not asked again");
    // More than was allowed: asked again; and prompt=consent always asks.
    let wider = get(
        &server,
        &Request::new(&client).url(&server),
        Some(&browser.cookie),
    )
    .await;
    assert_eq!(wider.status(), 200);
    let forced = get(
        &server,
        &Request::new(&client)
            .set("scope", "openid")
            .set("prompt", "consent")
            .url(&server),
        Some(&browser.cookie),
    )
    .await;
    assert_eq!(forced.status(), 200);

    let listed: Value = server
        .get_as("/v1/grants", &browser)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["grants"][0]["client_id"], client.id.as_str());
    assert_eq!(listed["grants"][0]["client_name"], "portal");
    assert_eq!(listed["grants"][0]["scopes"], serde_json::json!(["openid"]));

    // Withdrawing needs the CSRF header, and is for the caller's own grants only.
    let path = format!("/v1/grants/{}", client.id);
    let no_csrf = server
        .client
        .delete(server.url(&path))
        .header(header::COOKIE, &browser.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), 403);
    let withdrawn = server
        .unsafe_as(reqwest::Method::DELETE, &path, &browser)
        .send()
        .await
        .unwrap();
    assert_eq!(withdrawn.status(), 204);
    let again = server
        .unsafe_as(reqwest::Method::DELETE, &path, &browser)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(again).await, (404, "not_found".into()));
    let asked = get(&server, &narrow.url(&server), Some(&browser.cookie)).await;
    assert_eq!(asked.status(), 200, "asked again after the withdrawal");
    // Nor does a silent request get a code on the strength of what was withdrawn
    // (the server keeps consents between requests: the withdrawal must reach them).
    let silent = get(
        &server,
        &narrow.clone().set("prompt", "none").url(&server),
        Some(&browser.cookie),
    )
    .await;
    assert_eq!(silent.status(), 303);
    assert_eq!(
        param(&location(&silent), "error").as_deref(),
        Some("consent_required")
    );
}

#[tokio::test]
async fn userinfo_takes_only_live_tokens_with_the_openid_scope() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let client = add_client(
        &server,
        "portal",
        &[
            "--grant",
            "authorization_code,password",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "read",
            "--first-party",
            "--public",
        ],
    );
    let browser = server.login("alice").await;

    let none = server
        .client
        .get(server.url("/oauth2/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    // Both schemes userinfo takes are offered, each in its own field.
    let offered: Vec<&str> = none
        .headers()
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        offered,
        [
            r#"Bearer realm="tessera""#,
            r#"DPoP algs="ES256 EdDSA RS256", realm="tessera""#
        ]
    );
    for token in [
        "nonsense",
        "a.b.c",
        "tat_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let response = userinfo(&server, token).await;
        assert_eq!(
            error_of(response).await,
            (401, "invalid_token".into()),
            "{token}"
        );
    }
    // A token without openid (the password grant gives the client's scopes).
    let password = crate::tokens::password_grant(&server, &client, "alice").await;
    let response = userinfo(&server, password["access_token"].as_str().unwrap()).await;
    assert_eq!(response.status(), 403);
    assert!(
        response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );

    // With only openid: sub alone.
    let request = Request::new(&client).set("scope", "openid");
    let code = code_for(&server, &browser, &request).await;
    let body = tokens(&server, &client, &code, &request.verifier).await;
    let info: Value = userinfo(&server, body["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info.as_object().unwrap().len(), 1, "{info}");
    // POST is answered the same.
    let posted = server
        .client
        .post(server.url("/oauth2/userinfo"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);

    // The server keeps profiles between requests; a change by another process (the
    // CLI) is in the next answer all the same.
    let request = Request::new(&client).set("scope", "openid profile");
    let code = code_for(&server, &browser, &request).await;
    let body = tokens(&server, &client, &code, &request.verifier).await;
    let token = body["access_token"].as_str().unwrap();
    let before: Value = userinfo(&server, token).await.json().await.unwrap();
    assert_eq!(before["preferred_username"], "alice");
    assert!(before.get("name").is_none(), "{before}");
    let out = server.cli(&["user", "set", "alice", "--name", "Alice Liddell"], "");
    assert!(out.status.success(), "{out:?}");
    let after: Value = userinfo(&server, token).await.json().await.unwrap();
    assert_eq!(after["name"], "Alice Liddell", "{after}");

    // The token was verified twice already (the server keeps what verified); once
    // its session ends, it is refused all the same, here and at introspection.
    let out = server
        .unsafe_as(reqwest::Method::POST, "/v1/logout", &browser)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert_eq!(
        error_of(userinfo(&server, token).await).await,
        (401, "invalid_token".into())
    );
}

async fn push(server: &TestServer, client: &Registered, request: &Request) -> Response {
    let mut form: Vec<(String, String)> = request.params.clone();
    form.retain(|(k, _)| k != "client_id");
    token_request_to(server, "/oauth2/par")
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn pushed_requests_are_used_by_reference_once() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let client = app(&server, "portal", &["--first-party", "--require-par"]);
    let other = app(&server, "other", &["--first-party"]);
    let request = Request::new(&client);

    // This client must push: a request in the URL goes back refused.
    let browser = server.login("alice").await;
    let direct = get(&server, &request.url(&server), Some(&browser.cookie)).await;
    refused_with(&server, &direct, "invalid_request");

    let pushed = push(&server, &client, &request).await;
    assert_eq!(pushed.status(), 201);
    assert_eq!(pushed.headers()[header::CACHE_CONTROL], "no-store");
    let pushed: Value = pushed.json().await.unwrap();
    let uri = pushed["request_uri"].as_str().unwrap().to_owned();
    assert!(
        uri.starts_with("urn:ietf:params:oauth:request_uri:"),
        "{uri}"
    );
    assert!(pushed["expires_in"].as_u64().unwrap() > 0);

    // By reference; anything else in the URL is not read (RFC 9126 §4). A
    // visitor without a session signs in first, and the reference survives that.
    let by_reference = server.url(&format!(
        "/oauth2/authorize?client_id={}&request_uri={}&state=forged&redirect_uri=https%3A%2F%2Fevil.example%2F",
        client.id,
        url::form_urlencoded::byte_serialize(uri.as_bytes()).collect::<String>()
    ));
    let to_login = location(&get(&server, &by_reference, None).await);
    assert_eq!(to_login.path(), "/login");
    let (signed_in, back) = sign_in_form(&server, &param(&to_login, "return_to").unwrap()).await;
    let response = get(&server, location(&back).as_str(), Some(&signed_in.cookie)).await;
    let to = location(&response);
    assert!(to.as_str().starts_with(REDIRECT), "{to}");
    assert_eq!(param(&to, "state").as_deref(), Some("s-123"));
    let code = param(&to, "code").unwrap();
    tokens(&server, &client, &code, &request.verifier).await;

    // Used: it gives one code.
    let again = get(&server, &by_reference, Some(&signed_in.cookie)).await;
    assert_eq!(again.status(), 400);
    assert!(again.headers().get(header::LOCATION).is_none());

    // Also when the same request_uri arrives many times at once (a double click,
    // a replay racing the browser): one code, and pages for the rest.
    let raced: Value = push(&server, &client, &Request::new(&client))
        .await
        .json()
        .await
        .unwrap();
    let raced = server.url(&format!(
        "/oauth2/authorize?client_id={}&request_uri={}",
        client.id,
        url::form_urlencoded::byte_serialize(raced["request_uri"].as_str().unwrap().as_bytes())
            .collect::<String>()
    ));
    let answers =
        futures::future::join_all((0..8).map(|_| get(&server, &raced, Some(&signed_in.cookie))))
            .await;
    let codes = answers.iter().filter(|a| a.status() == 303).count();
    assert_eq!(
        codes,
        1,
        "{:?}",
        answers.iter().map(Response::status).collect::<Vec<_>>()
    );
    assert!(
        answers
            .iter()
            .all(|a| a.status() == 303 || a.status() == 400)
    );

    // Another client cannot use a client's reference; made-up ones are unknown.
    let fresh: Value = push(&server, &client, &Request::new(&client))
        .await
        .json()
        .await
        .unwrap();
    let fresh_uri = fresh["request_uri"].as_str().unwrap();
    for (client_id, uri) in [
        (other.id.as_str(), fresh_uri),
        (
            client.id.as_str(),
            "urn:ietf:params:oauth:request_uri:nothing",
        ),
    ] {
        let url = server.url(&format!(
            "/oauth2/authorize?client_id={client_id}&request_uri={}",
            url::form_urlencoded::byte_serialize(uri.as_bytes()).collect::<String>()
        ));
        let response = get(&server, &url, Some(&browser.cookie)).await;
        assert_eq!(response.status(), 400, "{client_id} {uri}");
        assert!(response.headers().get(header::LOCATION).is_none());
    }

    // What the endpoint refuses, it says in JSON: nothing is redirected from here.
    for (request, error) in [
        (
            Request::new(&client).set("redirect_uri", "https://evil.example/"),
            "invalid_request",
        ),
        (
            Request::new(&client).without("code_challenge"),
            "invalid_request",
        ),
        (
            Request::new(&client).set("scope", "openid admin"),
            "invalid_scope",
        ),
        (
            Request::new(&client).set("request_uri", "urn:x"),
            "invalid_request",
        ),
    ] {
        let response = push(&server, &client, &request).await;
        assert_eq!(
            error_of(response).await,
            (400, error.into()),
            "{:?}",
            request.params
        );
    }
    let wrong_secret = Registered {
        id: client.id.clone(),
        secret: Some("nope".into()),
    };
    let response = push(&server, &wrong_secret, &Request::new(&client)).await;
    assert_eq!(error_of(response).await, (401, "invalid_client".into()));
}

/// A pushed request's demand for a fresh sign-in (`max_age=0`, `prompt=login`)
/// cannot be edited out of it, and no way around it is left: the consent form
/// posted straight to `/oauth2/consent` with the session's CSRF token (as someone
/// holding a stale session would) signs in again rather than giving a code, and an
/// `auth_after` from before the push, added to the URL, does not stand for the
/// fresh sign-in. Once signed in again, the resumed request goes on.
#[tokio::test]
async fn a_pushed_requests_demand_for_a_fresh_sign_in_is_not_posted_or_edited_around() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    // A third-party app: its requests pass through the consent page.
    let client = app(&server, "portal", &["--require-par"]);
    let browser = server.login("alice").await;
    let hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3600;

    for (name, value) in [("max_age", "0"), ("prompt", "login")] {
        let request = Request::new(&client).set(name, value);
        let pushed: Value = push(&server, &client, &request).await.json().await.unwrap();
        let uri = pushed["request_uri"].as_str().unwrap();
        let encoded = url::form_urlencoded::byte_serialize(uri.as_bytes()).collect::<String>();

        let posted = server
            .client
            .post(server.url("/oauth2/consent"))
            .header(header::COOKIE, &browser.cookie)
            .header(header::ORIGIN, &server.base)
            .form(&[
                ("client_id", client.id.as_str()),
                ("request_uri", uri),
                ("csrf", browser.csrf.as_str()),
                ("decision", "allow"),
            ])
            .send()
            .await
            .unwrap();
        let to = location(&posted);
        assert_eq!(to.path(), "/login", "{name}: {to}");
        assert_eq!(param(&to, "reauthenticate").as_deref(), Some("true"));

        for auth_after in ["0".to_owned(), hour_ago.to_string()] {
            let url = server.url(&format!(
                "/oauth2/authorize?client_id={}&request_uri={encoded}&auth_after={auth_after}",
                client.id
            ));
            let to = location(&get(&server, &url, Some(&browser.cookie)).await);
            assert_eq!(to.path(), "/login", "{name}, auth_after={auth_after}: {to}");
        }

        let (fresh, signed_in) = sign_in_form(&server, &param(&to, "return_to").unwrap()).await;
        let mut response = get(&server, location(&signed_in).as_str(), Some(&fresh.cookie)).await;
        if response.status() == 200 {
            let page = response.text().await.unwrap();
            response = decide(&server, &fresh, &page, "allow").await;
        }
        let code = param(&location(&response), "code").expect("a code once signed in again");
        tokens(&server, &client, &code, &request.verifier).await;
    }
}

/// `id_token_hint` (OpenID Connect Core §3.1.2.1): an ID token the app got names
/// who must be signed in. Another person's browser is not answered for them:
/// `prompt=none` gets `login_required`, otherwise a fresh sign-in; a hint that is
/// not an ID token issued here to this app is refused, never ignored.
#[tokio::test]
async fn an_id_token_hint_names_who_must_be_signed_in() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    server.add_user("bob", &[]);
    let client = app(&server, "portal", &["--first-party"]);
    let other = app(&server, "other", &["--first-party"]);
    let (alice, bob) = (server.login("alice").await, server.login("bob").await);
    async fn tokens_of(server: &TestServer, client: &Registered, browser: &Browser) -> Value {
        let request = Request::new(client);
        let code = code_for(server, browser, &request).await;
        tokens(server, client, &code, &request.verifier).await
    }
    let hint = tokens_of(&server, &client, &alice).await["id_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Alice's own browser: a code, and no question.
    let request = Request::new(&client)
        .set("id_token_hint", &hint)
        .set("prompt", "none");
    let code = code_for(&server, &alice, &request).await;
    tokens(&server, &client, &code, &request.verifier).await;

    // Bob's browser with Alice's hint: not answered for her.
    let response = get(&server, &request.url(&server), Some(&bob.cookie)).await;
    refused_with(&server, &response, "login_required");
    let without_none = Request::new(&client).set("id_token_hint", &hint);
    let to = location(&get(&server, &without_none.url(&server), Some(&bob.cookie)).await);
    assert_eq!(to.path(), "/login", "{to}");
    assert_eq!(param(&to, "reauthenticate").as_deref(), Some("true"));

    // Not an ID token of this app's: refused, whoever is signed in.
    let access_token = tokens_of(&server, &client, &alice).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let others_hint = tokens_of(&server, &other, &alice).await["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut forged = hint.clone();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    for (bad, why) in [
        (others_hint.as_str(), "another app's"),
        (forged.as_str(), "a forged signature"),
        (access_token.as_str(), "an access token"),
        ("not-a-token", "garbage"),
    ] {
        let request = Request::new(&client).set("id_token_hint", bad);
        let response = get(&server, &request.url(&server), Some(&alice.cookie)).await;
        let to = location(&response);
        assert_eq!(
            param(&to, "error").as_deref(),
            Some("invalid_request"),
            "{why}"
        );
        refused_with(&server, &response, "invalid_request");
    }
}

#[tokio::test]
async fn offline_access_is_granted_only_to_an_app_registered_for_it_and_outlives_the_sign_in() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let offline = add_client(
        &server,
        "offline",
        &[
            "--grant",
            "authorization_code,refresh_token",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "read offline_access",
            "--first-party",
        ],
    );
    let online = app(&server, "online", &["--first-party"]);
    let browser = server.login("alice").await;
    let mut refresh_tokens = Vec::new();
    for (client, expected) in [
        (&offline, "email offline_access openid profile"),
        (&online, "email openid profile"),
    ] {
        let request = Request::new(client).set("scope", "openid profile email offline_access");
        let code = code_for(&server, &browser, &request).await;
        let body = tokens(&server, client, &code, &request.verifier).await;
        assert_eq!(
            body["scope"], expected,
            "offline_access asked, not always granted"
        );
        refresh_tokens.push(body["refresh_token"].as_str().unwrap().to_owned());
    }
    server
        .unsafe_as(reqwest::Method::POST, "/v1/logout", &browser)
        .send()
        .await
        .unwrap();
    let refresh = |client, token| crate::tokens::refresh(&server, client, token, &[]);
    // The offline grant outlives the sign-in; the other ends with it.
    assert_eq!(refresh(&offline, &refresh_tokens[0]).await.status(), 200);
    let ended = refresh(&online, &refresh_tokens[1]).await;
    assert_eq!(error_of(ended).await, (400, "invalid_grant".into()));
}

#[tokio::test]
async fn the_openid_configuration_and_the_oauth_metadata_are_one_document() {
    let server = TestServer::start().await;
    let read = |path: &'static str| async {
        server
            .client
            .get(server.url(path))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let oidc = read("/.well-known/openid-configuration").await;
    assert_eq!(oidc, read("/.well-known/oauth-authorization-server").await);
    assert_eq!(
        oidc["response_types_supported"],
        serde_json::json!(["code"])
    );
    assert_eq!(
        oidc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        oidc["subject_types_supported"],
        serde_json::json!(["public"])
    );
    assert_eq!(oidc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(oidc["backchannel_logout_supported"], true);
    for (member, path) in [
        ("authorization_endpoint", "/oauth2/authorize"),
        ("userinfo_endpoint", "/oauth2/userinfo"),
        ("end_session_endpoint", "/oauth2/logout"),
        ("pushed_authorization_request_endpoint", "/oauth2/par"),
    ] {
        assert_eq!(oidc[member], server.url(path), "{member}");
    }
    assert!(
        oidc["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("RS256"))
    );
}

/// Whoever verifies HS256 tokens holds the secret and could mint one for anyone:
/// userinfo takes none, even with `openid`, while the same grant signed with a
/// published key is answered.
#[tokio::test]
async fn userinfo_refuses_an_hs256_token() {
    let server = TestServer::start_with(&[(
        "TESSERA_TOKENS__HS256_SECRET",
        "a shared secret of at least thirty-two bytes",
    )])
    .await;
    server.add_user("alice", &[]);
    for (alg, status) in [("HS256", 401), ("EdDSA", 200)] {
        let client = add_client(
            &server,
            &format!("app-{alg}"),
            &[
                "--grant", "password", "--public", "--scope", "openid", "--alg", alg,
            ],
        );
        let granted = crate::tokens::password_grant(&server, &client, "alice").await;
        let response = userinfo(&server, granted["access_token"].as_str().unwrap()).await;
        assert_eq!(response.status(), status, "{alg}");
        if status == 401 {
            assert_eq!(error_of(response).await, (401, "invalid_token".into()));
        }
    }
}

/// The payload of a JWT, unverified (what it says is checked, not who signed it).
fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test]
async fn acr_values_2_has_a_one_factor_session_sign_in_again_with_an_app() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let portal = app(&server, "portal", &["--first-party"]);
    let browser = server.login("alice").await;

    // asked nothing of the kind, one factor is what the tokens say
    let plain = Request::new(&portal);
    let code = code_for(&server, &browser, &plain).await;
    let id = payload(
        tokens(&server, &portal, &code, &plain.verifier).await["id_token"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(
        (id["acr"].clone(), id["amr"].clone()),
        ("1".into(), serde_json::json!(["pwd"]))
    );

    // two factors asked for: never silently, and not with one
    let stepped = Request::new(&portal).set("acr_values", "2");
    let silent = stepped.clone().set("prompt", "none");
    let response = get(&server, &silent.url(&server), Some(&browser.cookie)).await;
    refused_with(&server, &response, "login_required");
    // "2 1": one factor is acceptable too, so the session serves as it is
    let either = Request::new(&portal).set("acr_values", "2 1");
    code_for(&server, &browser, &either).await;

    let to = location(&get(&server, &stepped.url(&server), Some(&browser.cookie)).await);
    assert_eq!(to.path(), "/login");
    assert_eq!(param(&to, "reauthenticate").as_deref(), Some("true"));
    assert_eq!(param(&to, "second_factor").as_deref(), Some("true"));
    let resume = param(&to, "return_to").unwrap();
    let form = get(
        &server,
        to.as_str()
            .replace("http://tessera.invalid", &server.base)
            .as_str(),
        Some(&browser.cookie),
    )
    .await;
    let form = form.text().await.unwrap();
    assert!(
        form.contains("name=\"second_factor\" value=\"true\""),
        "{form}"
    );

    // the password, then the app she sets up on the way (she had none)
    let first = server
        .client
        .post(server.url("/login"))
        .header(header::ORIGIN, &server.base)
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("second_factor", "true"),
            ("return_to", &server.url(&resume)),
        ])
        .send()
        .await
        .unwrap();
    let second_step = location(&first);
    assert_eq!(second_step.path(), "/login/second-factor");
    let pending = crate::second_factor::pending_cookie(&first);
    let page = get(
        &server,
        &server.url(&format!(
            "{}?{}",
            second_step.path(),
            second_step.query().unwrap()
        )),
        Some(&pending),
    )
    .await
    .text()
    .await
    .unwrap();
    let from = page.find("id=\"totp-secret\">").unwrap() + "id=\"totp-secret\">".len();
    let key: String = page[from..]
        .split('<')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let done = server
        .client
        .post(server.url("/login/second-factor"))
        .header(header::ORIGIN, &server.base)
        .header(header::COOKIE, &pending)
        .form(&[
            ("code", crate::second_factor::code(&key, 0).as_str()),
            ("return_to", &server.url(&resume)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200, "the recovery codes, then on");
    let cookie = session_set_cookie(&done).unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let codes = done.text().await.unwrap();
    assert!(codes.contains("Your recovery codes"), "{codes}");

    // the request again, with the new session: a code whose tokens say two factors
    let back = location(&get(&server, &server.url(&resume), Some(&cookie)).await);
    assert!(back.as_str().starts_with(REDIRECT), "{back}");
    let code = param(&back, "code").unwrap();
    let issued = tokens(&server, &portal, &code, &stepped.verifier).await;
    let id = payload(issued["id_token"].as_str().unwrap());
    assert_eq!(id["acr"], "2");
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    let access = payload(issued["access_token"].as_str().unwrap());
    assert_eq!(access["acr"], "2");

    // an app of opaque tokens: introspection says the same of them
    let opaque = app(
        &server,
        "opaque",
        &["--first-party", "--token-format", "opaque"],
    );
    let request = Request::new(&opaque);
    let back = location(&get(&server, &request.url(&server), Some(&cookie)).await);
    let code = param(&back, "code").unwrap();
    let issued = tokens(&server, &opaque, &code, &request.verifier).await;
    let introspector = add_client(
        &server,
        "introspector",
        &["--grant", "client_credentials", "--scope", "introspect"],
    );
    let described = crate::tokens::introspect(
        &server,
        &introspector,
        issued["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(described["active"], true, "{described}");
    assert_eq!(described["acr"], "2", "{described}");
    assert_eq!(described["amr"], serde_json::json!(["pwd", "otp", "mfa"]));

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
        metadata["acr_values_supported"],
        serde_json::json!(["1", "2"])
    );
}
