//! The token endpoint, the JWKS and metadata, clients and keys from the CLI.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use reqwest::{RequestBuilder, Response, header};
use serde_json::Value;

use crate::harness::*;

pub(crate) struct Registered {
    pub id: String,
    pub secret: Option<String>,
}

pub(crate) fn add_client(server: &TestServer, name: &str, extra: &[&str]) -> Registered {
    let mut args = vec!["client", "add", name, "--json"];
    args.extend_from_slice(extra);
    let out = server.cli(&args, "");
    assert!(
        out.status.success(),
        "client add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added: Value = serde_json::from_slice(&out.stdout).unwrap();
    Registered {
        id: added["client_id"].as_str().unwrap().to_owned(),
        secret: added["client_secret"].as_str().map(str::to_owned),
    }
}

pub(crate) fn token_request(server: &TestServer) -> RequestBuilder {
    server.client.post(server.url("/oauth2/token"))
}

pub(crate) async fn client_credentials(
    server: &TestServer,
    client: &Registered,
    extra: &[(&str, &str)],
) -> Response {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    token_request(server)
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn jwks(server: &TestServer) -> JwkSet {
    server
        .client
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Verifies an access token as a resource service would: key from the JWKS by
/// `kid`, algorithm fixed in advance, issuer and audience checked.
async fn verify(server: &TestServer, token: &str, alg: &str, audience: &str) -> Value {
    verify_typed(server, token, "at+jwt", alg, audience).await
}

/// Verifies a JWT of this issuer as its receiver would: the `typ` it must have, the
/// key from the JWKS by `kid`, the algorithm fixed in advance, issuer and audience.
pub(crate) async fn verify_typed(
    server: &TestServer,
    token: &str,
    typ: &str,
    alg: &str,
    audience: &str,
) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some(typ));
    let set = jwks(server).await;
    let kid = header.kid.expect("a kid");
    let jwk = set
        .find(&kid)
        .unwrap_or_else(|| panic!("kid {kid} is not in the JWKS"));
    let algorithm: jsonwebtoken::Algorithm = alg.parse().unwrap();
    let mut validation = Validation::new(algorithm);
    validation.set_issuer(&[server.base.as_str()]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap()
        .claims
}

pub(crate) async fn access_token(response: Response) -> (Value, String) {
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    let token = body["access_token"].as_str().unwrap().to_owned();
    (body, token)
}

#[tokio::test]
async fn client_credentials_tokens_of_each_algorithm_verify_through_the_jwks() {
    let server = TestServer::start().await;
    for alg in ["EdDSA", "ES256", "RS256"] {
        let client = add_client(
            &server,
            &format!("svc-{alg}"),
            &[
                "--grant",
                "client_credentials",
                "--scope",
                "read write",
                "--audience",
                "orders",
                "--alg",
                alg,
                "--access-ttl",
                "2m",
            ],
        );
        let (body, token) =
            access_token(client_credentials(&server, &client, &[("scope", "read")]).await).await;
        assert_eq!(body["expires_in"], 120);
        assert_eq!(body["scope"], "read");
        let claims = verify(&server, &token, alg, "orders").await;
        assert_eq!(claims["sub"], client.id.as_str());
        assert_eq!(claims["client_id"], client.id.as_str());
        assert_eq!(claims["scope"], "read");
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            120
        );
        assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 22));
        assert!(claims.get("sid").is_none() && claims.get("roles").is_none());
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(format!("{:?}", header.alg), alg);
    }
    // With no scope asked for, the client's whole set is granted.
    let client = add_client(
        &server,
        "all",
        &[
            "--grant",
            "client_credentials",
            "--scope",
            "a b",
            "--audience",
            "x",
        ],
    );
    let (body, _) = access_token(client_credentials(&server, &client, &[]).await).await;
    assert_eq!(body["scope"], "a b");
}

#[tokio::test]
async fn the_password_grant_issues_a_token_for_the_user() {
    let server = TestServer::start().await;
    server.add_user("alice", &["admin"]);
    let app = add_client(
        &server,
        "app",
        &["--grant", "password", "--public", "--audience", "api"],
    );
    let grant = |username: &str, password: &str| {
        token_request(&server)
            .form(&[
                ("grant_type", "password"),
                ("client_id", app.id.as_str()),
                ("username", username),
                ("password", password),
            ])
            .send()
    };
    let (_, token) = access_token(grant("Alice", PASSWORD).await.unwrap()).await;
    let claims = verify(&server, &token, "EdDSA", "api").await;
    let users = server.cli(&["user", "list", "--json"], "");
    let users: Value = serde_json::from_slice(&users.stdout).unwrap();
    assert_eq!(claims["sub"], users["users"][0]["user"]["id"]);
    assert_eq!(claims["client_id"], app.id.as_str());
    assert_eq!(claims["roles"], serde_json::json!(["admin"]));

    for (user, password) in [("alice", "wrong password!"), ("nobody", PASSWORD)] {
        let response = grant(user, password).await.unwrap();
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(error_of(response).await, (400, "invalid_grant".into()));
    }
    server.cli(&["user", "disable", "alice"], "");
    assert_eq!(
        error_of(grant("alice", PASSWORD).await.unwrap()).await,
        (400, "invalid_grant".into())
    );
    let missing = token_request(&server)
        .form(&[
            ("grant_type", "password"),
            ("client_id", app.id.as_str()),
            ("username", "alice"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(missing).await, (400, "invalid_request".into()));
}

#[tokio::test]
async fn client_authentication_is_refused_with_401_and_a_challenge() {
    let server = TestServer::start().await;
    let svc = add_client(&server, "svc", &["--grant", "client_credentials"]);
    let public = add_client(&server, "pub", &["--grant", "password", "--public"]);
    let secret = svc.secret.clone().unwrap();

    // client_secret_post works as well as Basic.
    let post = token_request(&server)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &svc.id),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap();
    access_token(post).await;

    let wrong = Registered {
        id: svc.id.clone(),
        secret: Some(format!("{}x", &secret[..secret.len() - 1])),
    };
    let unknown = Registered {
        id: "01900000-0000-7000-8000-000000000000".into(),
        secret: Some(secret.clone()),
    };
    let garbage = Registered {
        id: "not an id".into(),
        secret: Some("x".into()),
    };
    let no_secret = Registered {
        id: svc.id.clone(),
        secret: None,
    };
    let public_with_secret = Registered {
        id: public.id.clone(),
        secret: Some(secret.clone()),
    };
    for client in [&wrong, &unknown, &garbage, &no_secret, &public_with_secret] {
        let response = client_credentials(&server, client, &[]).await;
        assert!(
            response.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        assert_eq!(
            error_of(response).await,
            (401, "invalid_client".into()),
            "{}",
            client.id
        );
    }
    let anonymous = token_request(&server)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(anonymous).await, (401, "invalid_client".into()));
    let bad_header = token_request(&server)
        .header(header::AUTHORIZATION, "Basic !!!")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(bad_header).await, (401, "invalid_client".into()));
    let both = token_request(&server)
        .basic_auth(&svc.id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(both).await, (400, "invalid_request".into()));

    // A removed client is refused at once.
    let out = server.cli(&["client", "remove", "svc"], "");
    assert!(out.status.success());
    assert_eq!(
        error_of(client_credentials(&server, &svc, &[]).await).await,
        (401, "invalid_client".into())
    );
}

#[tokio::test]
async fn grant_requests_outside_what_the_client_may_do_get_rfc_6749_errors() {
    let server = TestServer::start().await;
    let svc = add_client(
        &server,
        "svc",
        &[
            "--grant",
            "client_credentials",
            "--scope",
            "read",
            "--audience",
            "orders",
        ],
    );
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("grant_type", "implicit")], "unsupported_grant_type"),
        (
            vec![
                ("grant_type", "password"),
                ("username", "a"),
                ("password", "b"),
            ],
            "unauthorized_client",
        ),
        (
            vec![("grant_type", "client_credentials"), ("scope", "write")],
            "invalid_scope",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("scope", "bad\"scope"),
            ],
            "invalid_scope",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("audience", "billing"),
            ],
            "invalid_target",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("resource", "billing"),
            ],
            "invalid_target",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("audience", "orders"),
                ("resource", "orders"),
            ],
            "invalid_request",
        ),
        (vec![("scope", "read")], "invalid_request"),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
            "invalid_request",
        ),
    ];
    for (form, expected) in cases {
        let response = token_request(&server)
            .basic_auth(&svc.id, svc.secret.as_deref())
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(
            error_of(response).await,
            (400, expected.to_owned()),
            "{form:?}"
        );
    }
    let json = token_request(&server)
        .basic_auth(&svc.id, svc.secret.as_deref())
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(json).await, (400, "invalid_request".into()));
    // The audience the client is registered for is granted when asked by name.
    let (_, token) =
        access_token(client_credentials(&server, &svc, &[("resource", "orders")]).await).await;
    verify(&server, &token, "EdDSA", "orders").await;
}

#[tokio::test]
async fn jwks_and_metadata_are_public_and_cacheable() {
    let server = TestServer::start().await;
    let response = server
        .client
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers[header::CACHE_CONTROL], "public, max-age=300");
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let etag = headers[header::ETAG].to_str().unwrap().to_owned();
    let set: Value = response.json().await.unwrap();
    let keys = set["keys"].as_array().unwrap();
    // Keys made in the same millisecond are ordered by kid: compare as a set.
    let mut algs: Vec<_> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    algs.sort_unstable();
    assert_eq!(algs, ["ES256", "EdDSA", "RS256"]);
    for key in keys {
        assert_eq!(key["use"], "sig");
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(
                key.get(private).is_none(),
                "private member {private} published"
            );
        }
    }
    let again = server
        .client
        .get(server.url("/.well-known/jwks.json"))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    let metadata: Value = server
        .client
        .get(server.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], server.base.as_str());
    assert_eq!(metadata["token_endpoint"], server.url("/oauth2/token"));
    assert_eq!(metadata["jwks_uri"], server.url("/.well-known/jwks.json"));
}

#[tokio::test]
async fn keys_rotated_and_retired_by_the_cli_take_effect_in_the_running_server() {
    let server = TestServer::start().await;
    let svc = add_client(&server, "svc", &["--grant", "client_credentials"]);
    let kid_of = |token: &str| jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let (_, first) = access_token(client_credentials(&server, &svc, &[]).await).await;
    let old = kid_of(&first);

    // A scheduled rotation publishes the new key but keeps signing with the old.
    let out = server.cli(&["keys", "rotate", "--json"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let next: Value = serde_json::from_slice(&out.stdout).unwrap();
    let next = next["kid"].as_str().unwrap().to_owned();
    eventually("the next key is published", || async {
        jwks(&server).await.find(&next).is_some()
    })
    .await;
    let (_, token) = access_token(client_credentials(&server, &svc, &[]).await).await;
    assert_eq!(kid_of(&token), old);

    // rotate --now signs with the new key at once; the old one stays published.
    let out = server.cli(&["keys", "rotate", "--now", "--json"], "");
    let now: Value = serde_json::from_slice(&out.stdout).unwrap();
    let now = now["kid"].as_str().unwrap().to_owned();
    eventually("the new key signs", || async {
        let (_, token) = access_token(client_credentials(&server, &svc, &[]).await).await;
        kid_of(&token) == now
    })
    .await;
    assert!(
        jwks(&server).await.find(&old).is_some(),
        "the old key's tokens still verify"
    );
    verify(&server, &first, "EdDSA", server.base.as_str()).await;

    let listed = server.cli(&["keys", "list", "--json"], "");
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let state_of = |kid: &str| {
        listed["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(state_of(&now), "signing");
    assert_eq!(state_of(&old), "published");

    // Retiring withdraws the key from the JWKS.
    let out = server.cli(&["keys", "retire", &old], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("the retired key leaves the JWKS", || async {
        jwks(&server).await.find(&old).is_none()
    })
    .await;
    let again = server.cli(&["keys", "retire", &old], "");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already retired"));
}

#[tokio::test]
async fn hs256_tokens_use_the_configured_secret_and_are_never_published() {
    let secret = "a shared secret that is long enough, really";
    let server = TestServer::start_with(&[("TESSERA_TOKENS__HS256_SECRET", secret)]).await;
    let svc = add_client(
        &server,
        "svc",
        &[
            "--grant",
            "client_credentials",
            "--alg",
            "HS256",
            "--audience",
            "one",
        ],
    );
    let (_, token) = access_token(client_credentials(&server, &svc, &[]).await).await;
    let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&["one"]);
    validation.set_issuer(&[server.base.as_str()]);
    let claims = jsonwebtoken::decode::<Value>(
        &token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["client_id"], svc.id.as_str());
    let set = jwks(&server).await;
    assert!(set.keys.iter().all(|k| !matches!(
        k.algorithm,
        jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)
    )));
}

#[tokio::test]
async fn client_add_refuses_what_cannot_work() {
    let server = TestServer::start().await;
    for (args, message) in [
        (
            vec!["--grant", "client_credentials", "--public"],
            "public client",
        ),
        (
            vec!["--grant", "client_credentials", "--alg", "HS256"],
            "HS256 needs a shared secret",
        ),
        (
            vec!["--grant", "magic"],
            "[possible values: authorization_code, refresh_token, client_credentials",
        ),
        (
            vec!["--grant", "password", "--access-ttl", "2s"],
            "between 10s and 24h",
        ),
        (vec!["--grant", "password", "--scope", "a\"b"], "scope"),
    ] {
        let mut full = vec!["client", "add", "bad"];
        full.extend(args.iter());
        let out = server.cli(&full, "");
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    add_client(&server, "dup", &["--grant", "password", "--public"]);
    let out = server.cli(
        &["client", "add", "dup", "--grant", "password", "--public"],
        "",
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists"));
    let listed = server.cli(&["client", "list", "--json"], "");
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["clients"].as_array().unwrap().len(), 1);
    assert_eq!(listed["clients"][0]["public"], true);
    assert!(listed["clients"][0].get("client_secret").is_none());
}

#[tokio::test]
async fn a_master_key_seals_the_private_keys_and_is_required_to_open_them() {
    let master = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let server = TestServer::start_with(&[("TESSERA_MASTER_KEY", master)]).await;
    let svc = add_client(&server, "svc", &["--grant", "client_credentials"]);
    let (_, token) = access_token(client_credentials(&server, &svc, &[]).await).await;
    verify(&server, &token, "EdDSA", server.base.as_str()).await;

    let without = cli_in(server.data_dir(), &[], &["keys", "list"], "");
    assert!(!without.status.success());
    assert!(String::from_utf8_lossy(&without.stderr).contains("TESSERA_MASTER_KEY"));
    let wrong_key = [("TESSERA_MASTER_KEY".to_owned(), "ab".repeat(32))];
    let wrong = cli_in(server.data_dir(), &wrong_key, &["keys", "list"], "");
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("another one"));
    let malformed = [("TESSERA_MASTER_KEY".to_owned(), "short".to_owned())];
    let out = cli_in(server.data_dir(), &malformed, &["keys", "list"], "");
    assert!(String::from_utf8_lossy(&out.stderr).contains("32 random bytes"));
}

pub(crate) async fn password_grant(server: &TestServer, client: &Registered, user: &str) -> Value {
    password_grant_with(server, client, user, &[]).await
}

pub(crate) async fn password_grant_with(
    server: &TestServer,
    client: &Registered,
    user: &str,
    extra: &[(&str, &str)],
) -> Value {
    let mut form = vec![
        ("grant_type", "password"),
        ("client_id", client.id.as_str()),
        ("username", user),
        ("password", PASSWORD),
    ];
    form.extend_from_slice(extra);
    let response = token_request(server).form(&form).send().await.unwrap();
    access_token(response).await.0
}

/// A refresh by `client`: with its secret (HTTP Basic) if it has one, else its id.
pub(crate) async fn refresh(
    server: &TestServer,
    client: &Registered,
    token: &str,
    extra: &[(&str, &str)],
) -> Response {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    form.extend_from_slice(extra);
    let request = match &client.secret {
        Some(secret) => token_request(server).basic_auth(&client.id, Some(secret)),
        None => {
            form.push(("client_id", client.id.as_str()));
            token_request(server)
        }
    };
    request.form(&form).send().await.unwrap()
}

pub(crate) fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_its_family() {
    let server = TestServer::start_with(&[("TESSERA_TOKENS__REFRESH_REUSE_GRACE", "0s")]).await;
    server.add_user("alice", &[]);
    let app = add_client(
        &server,
        "app",
        &[
            "--grant",
            "password,refresh_token",
            "--public",
            "--scope",
            "read write",
        ],
    );
    let first = password_grant(&server, &app, "alice").await;
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();
    assert!(r1.starts_with("trt_"));
    let sid = claims_of(first["access_token"].as_str().unwrap())["sid"].clone();
    assert!(sid.as_str().is_some_and(|s| s.len() == 22));

    let (second, token) =
        access_token(refresh(&server, &app, &r1, &[("scope", "read")]).await).await;
    assert_eq!(second["scope"], "read");
    let claims = verify(&server, &token, "EdDSA", server.base.as_str()).await;
    assert_eq!(claims["sid"], sid, "the family keeps its sid");
    let r2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2);
    // A refresh may narrow the scope of the grant, never widen it.
    assert_eq!(
        error_of(refresh(&server, &app, &r2, &[("scope", "admin")]).await).await,
        (400, "invalid_scope".into())
    );
    let (third, _) = access_token(refresh(&server, &app, &r2, &[]).await).await;
    assert_eq!(third["scope"], "read write");
    let r3 = third["refresh_token"].as_str().unwrap().to_owned();

    // r1 again: reuse. The family is revoked, so the live r3 dies with it.
    reuse_ends_the_family(&server, &app, &r1, &r3).await;
    for garbage in [
        "",
        "trt_short",
        "tss_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let response = refresh(&server, &app, garbage, &[]).await;
        assert_eq!(response.status(), 400, "{garbage:?}");
    }
}

#[tokio::test]
async fn a_refresh_token_from_before_they_led_with_their_time_still_rotates_and_is_caught_reused() {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    use sqlx::Connection;
    // A family an older release wrote: its token wholly random, kept under its
    // plain SHA-256. This release's lookups (ordered hash first) must still find
    // it, rotate it once, and take its second use for theft.
    let server = TestServer::start_with(&[("TESSERA_TOKENS__REFRESH_REUSE_GRACE", "0s")]).await;
    server.add_user("alice", &[]);
    let app = add_client(
        &server,
        "app",
        &["--grant", "password,refresh_token", "--public"],
    );
    let issued = password_grant(&server, &app, "alice").await;
    let sid = claims_of(issued["access_token"].as_str().unwrap())["sid"].clone();
    let bytes = *b"a refresh token of a release ago";
    let old = format!(
        "trt_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let path = server.data_dir().join("tessera.sqlite3");
    let mut db = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let moved = sqlx::query("UPDATE refresh_families SET current_hash = ?")
        .bind(Sha256::digest(bytes).to_vec())
        .execute(&mut db)
        .await
        .unwrap();
    assert_eq!(moved.rows_affected(), 1);
    db.close().await.unwrap();

    let (renewed, token) = access_token(refresh(&server, &app, &old, &[]).await).await;
    assert_eq!(claims_of(&token)["sid"], sid, "the same family");
    let next = renewed["refresh_token"].as_str().unwrap().to_owned();
    // The old token again: reuse, which ends the family and its new token.
    reuse_ends_the_family(&server, &app, &old, &next).await;
}

/// `spent` presented again is refused as reuse (the first on this server), and
/// its family's `live` token is refused with it.
async fn reuse_ends_the_family(server: &TestServer, app: &Registered, spent: &str, live: &str) {
    for token in [spent, live] {
        assert_eq!(
            error_of(refresh(server, app, token, &[]).await).await,
            (400, "invalid_grant".into())
        );
    }
    assert!(
        server
            .metrics()
            .await
            .contains("tessera_refresh_reuse_total 1")
    );
}

#[tokio::test]
async fn two_concurrent_refreshes_of_one_token_have_exactly_one_winner() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let app = add_client(
        &server,
        "app",
        &["--grant", "password,refresh_token", "--public"],
    );
    for _ in 0..5 {
        let grant = password_grant(&server, &app, "alice").await;
        let token = grant["refresh_token"].as_str().unwrap();
        let (a, b) = tokio::join!(
            refresh(&server, &app, token, &[]),
            refresh(&server, &app, token, &[])
        );
        let (a, b) = (a.status().as_u16(), b.status().as_u16());
        let (winner, loser) = match (a, b) {
            (200, 400) | (400, 200) => (200, 400),
            other => panic!("expected one 200 and one 400, got {other:?}"),
        };
        assert_eq!((winner, loser), (200, 400));
    }
    // The winner's token lives on: the race was within the grace period.
    let grant = password_grant(&server, &app, "alice").await;
    let token = grant["refresh_token"].as_str().unwrap();
    let (a, b) = tokio::join!(
        refresh(&server, &app, token, &[]),
        refresh(&server, &app, token, &[])
    );
    let won = if a.status() == 200 { a } else { b };
    let next: Value = won.json().await.unwrap();
    access_token(refresh(&server, &app, next["refresh_token"].as_str().unwrap(), &[]).await).await;
}

#[tokio::test]
async fn refresh_tokens_belong_to_their_client_user_and_lifetime() {
    let server = TestServer::start_with(&[("TESSERA_TOKENS__REFRESH_LIFETIME", "2s")]).await;
    server.add_user("alice", &[]);
    server.add_user("bob", &[]);
    let app = add_client(
        &server,
        "app",
        &["--grant", "password,refresh_token", "--public"],
    );
    let other = add_client(
        &server,
        "other",
        &["--grant", "password,refresh_token", "--public"],
    );
    let without = add_client(&server, "norefresh", &["--grant", "password", "--public"]);
    assert!(
        password_grant(&server, &without, "alice")
            .await
            .get("refresh_token")
            .is_none()
    );

    // Another client presenting it is refused, and since the token leaked, its
    // family ends (RFC 9700 §4.14.2): the rightful client cannot use it either.
    let leaked = password_grant(&server, &app, "alice").await;
    let token = leaked["refresh_token"].as_str().unwrap();
    assert_eq!(
        error_of(refresh(&server, &other, token, &[]).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(
        error_of(refresh(&server, &app, token, &[]).await).await,
        (400, "invalid_grant".into())
    );
    let alice = password_grant(&server, &app, "alice").await;
    let token = alice["refresh_token"].as_str().unwrap();
    let (renewed, _) = access_token(refresh(&server, &app, token, &[]).await).await;

    // Disabling the user ends their families.
    let bob = password_grant(&server, &app, "bob").await;
    let out = server.cli(&["user", "disable", "bob", "--json"], "");
    let disabled: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(disabled["revoked_refresh_tokens"], 1);
    assert_eq!(
        error_of(refresh(&server, &app, bob["refresh_token"].as_str().unwrap(), &[]).await).await,
        (400, "invalid_grant".into())
    );

    // The family's absolute lifetime ends it however often it is used.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        error_of(
            refresh(
                &server,
                &app,
                renewed["refresh_token"].as_str().unwrap(),
                &[]
            )
            .await
        )
        .await,
        (400, "invalid_grant".into())
    );
}

pub(crate) async fn introspect(server: &TestServer, by: &Registered, token: &str) -> Value {
    let response = token_request_to(server, "/oauth2/introspect")
        .basic_auth(&by.id, by.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    response.json().await.unwrap()
}

pub(crate) fn token_request_to(server: &TestServer, path: &str) -> RequestBuilder {
    server.client.post(server.url(path))
}

pub(crate) async fn revoke(server: &TestServer, by: &Registered, token: &str) {
    let mut request = token_request_to(server, "/oauth2/revoke");
    request = match &by.secret {
        Some(secret) => request
            .basic_auth(&by.id, Some(secret))
            .form(&[("token", token)]),
        None => request.form(&[("token", token), ("client_id", by.id.as_str())]),
    };
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

#[tokio::test]
async fn introspection_describes_live_tokens_and_nothing_else() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let svc = add_client(
        &server,
        "svc",
        &[
            "--grant",
            "client_credentials",
            "--scope",
            "read",
            "--audience",
            "orders",
        ],
    );
    let rs = add_client(
        &server,
        "resource-server",
        &["--grant", "client_credentials", "--scope", "introspect"],
    );
    let app = add_client(
        &server,
        "app",
        &["--grant", "password,refresh_token", "--public"],
    );
    let (_, token) = access_token(client_credentials(&server, &svc, &[]).await).await;

    let live = introspect(&server, &rs, &token).await;
    assert_eq!(live["active"], true);
    assert_eq!(live["client_id"], svc.id.as_str());
    assert_eq!(live["aud"], "orders");
    assert_eq!(live["scope"], "read");
    assert_eq!(live["token_type"], "Bearer");
    assert!(live["exp"].as_i64().is_some() && live["jti"].as_str().is_some());

    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    for dead in [
        forged.as_str(),
        "garbage",
        "tat_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "trt_nope",
    ] {
        assert_eq!(
            introspect(&server, &rs, dead).await,
            serde_json::json!({"active": false}),
            "{dead}"
        );
    }
    // Refresh tokens are described to their own client only; public clients may not
    // introspect at all.
    let grant = password_grant(&server, &app, "alice").await;
    let refresh_token = grant["refresh_token"].as_str().unwrap();
    assert_eq!(
        introspect(&server, &rs, refresh_token).await["active"],
        false
    );
    let public = token_request_to(&server, "/oauth2/introspect")
        .form(&[("token", token.as_str()), ("client_id", app.id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(public).await, (403, "unauthorized_client".into()));
    let anonymous = token_request_to(&server, "/oauth2/introspect")
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(anonymous).await, (401, "invalid_client".into()));
    let missing = token_request_to(&server, "/oauth2/introspect")
        .basic_auth(&rs.id, rs.secret.as_deref())
        .form(&[("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(missing).await, (400, "invalid_request".into()));
}

#[tokio::test]
async fn revoked_tokens_become_inactive_everywhere_they_are_checked() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    server.add_user("bob", &[]);
    let svc = add_client(&server, "svc", &["--grant", "client_credentials"]);
    let rs = add_client(
        &server,
        "resource-server",
        &["--grant", "client_credentials", "--scope", "introspect"],
    );
    let app = add_client(
        &server,
        "app",
        &["--grant", "password,refresh_token", "--public"],
    );

    // A JWT, by jti: only its own client can revoke it.
    let (_, token) = access_token(client_credentials(&server, &svc, &[]).await).await;
    let refused = token_request_to(&server, "/oauth2/revoke")
        .basic_auth(&rs.id, rs.secret.as_deref())
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(refused).await, (400, "unauthorized_client".into()));
    assert_eq!(
        introspect(&server, &rs, &token).await["active"],
        true,
        "another client cannot revoke it"
    );
    revoke(&server, &svc, &token).await;
    eventually("the revoked JWT is inactive", || async {
        introspect(&server, &rs, &token).await["active"] == false
    })
    .await;
    // Revoking garbage is not an error (RFC 7009 §2.2).
    revoke(&server, &svc, "garbage").await;

    // A refresh token: its family ends, with every access token carrying its sid.
    let grant = password_grant(&server, &app, "alice").await;
    let access = grant["access_token"].as_str().unwrap().to_owned();
    assert_eq!(introspect(&server, &rs, &access).await["active"], true);
    revoke(&server, &app, grant["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        error_of(refresh(&server, &app, grant["refresh_token"].as_str().unwrap(), &[]).await).await,
        (400, "invalid_grant".into())
    );
    eventually("tokens of the revoked family are inactive", || async {
        introspect(&server, &rs, &access).await["active"] == false
    })
    .await;

    // Disabling a user does the same for their families.
    let bob = password_grant(&server, &app, "bob").await;
    let bob_access = bob["access_token"].as_str().unwrap().to_owned();
    server.cli(&["user", "disable", "bob"], "");
    eventually("a disabled user's tokens are inactive", || async {
        introspect(&server, &rs, &bob_access).await["active"] == false
    })
    .await;

    // Retiring a key makes what it signed inactive.
    let (_, signed) = access_token(client_credentials(&server, &svc, &[]).await).await;
    let kid = jsonwebtoken::decode_header(&signed).unwrap().kid.unwrap();
    let out = server.cli(&["keys", "retire", &kid], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("tokens of a retired key are inactive", || async {
        introspect(&server, &rs, &signed).await["active"] == false
    })
    .await;
    let (_, fresh) = access_token(client_credentials(&server, &svc, &[]).await).await;
    assert_ne!(
        jsonwebtoken::decode_header(&fresh).unwrap().kid.unwrap(),
        kid
    );
    assert_eq!(introspect(&server, &rs, &fresh).await["active"], true);
}

const SESSION_TYPE: &str = "urn:tessera:params:oauth:token-type:session";

pub(crate) async fn exchange(
    server: &TestServer,
    gateway: &Registered,
    subject: &str,
    extra: &[(&str, &str)],
) -> Response {
    let mut form = vec![
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("subject_token", subject),
        ("subject_token_type", SESSION_TYPE),
    ];
    form.extend_from_slice(extra);
    token_request(server)
        .basic_auth(&gateway.id, gateway.secret.as_deref())
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn token_exchange_turns_a_live_session_into_a_token_for_an_audience() {
    let server = TestServer::start().await;
    server.add_user("alice", &["admin"]);
    let gateway = add_client(
        &server,
        "gateway",
        &[
            "--grant",
            "token_exchange",
            "--audience",
            "orders",
            "--audience",
            "billing",
            "--scope",
            "read",
            "--access-ttl",
            "60s",
        ],
    );
    let rs = add_client(
        &server,
        "rs",
        &["--grant", "client_credentials", "--scope", "introspect"],
    );
    let browser = server.login("alice").await;
    let secret = browser.cookie.split_once('=').unwrap().1.to_owned();

    let response = exchange(&server, &gateway, &secret, &[("audience", "billing")]).await;
    let (body, token) = access_token(response).await;
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(body["expires_in"], 60);
    assert!(body.get("refresh_token").is_none());
    let claims = verify(&server, &token, "EdDSA", "billing").await;
    assert_eq!(claims["sid"], browser.session_id.as_str());
    assert_eq!(claims["sub"], browser.login["user"]["id"]);
    assert_eq!(claims["roles"], serde_json::json!(["admin"]));
    assert_eq!(claims["client_id"], gateway.id.as_str());

    for (extra, expected) in [
        (vec![("audience", "payroll")], "invalid_target"),
        (
            vec![(
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            )],
            "invalid_request",
        ),
    ] {
        assert_eq!(
            error_of(exchange(&server, &gateway, &secret, &extra).await).await,
            (400, expected.to_owned())
        );
    }
    let wrong_type = token_request(&server)
        .basic_auth(&gateway.id, gateway.secret.as_deref())
        .form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", secret.as_str()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(wrong_type).await, (400, "invalid_request".into()));
    assert_eq!(
        error_of(exchange(&server, &gateway, "tss_nope", &[]).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(
        error_of(exchange(&server, &rs, &secret, &[]).await).await,
        (400, "unauthorized_client".into())
    );

    // Logging out ends the session: no more exchanges, and its tokens are revoked.
    let logout = server
        .unsafe_as(reqwest::Method::POST, "/v1/logout", &browser)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    assert_eq!(
        error_of(exchange(&server, &gateway, &secret, &[]).await).await,
        (400, "invalid_grant".into())
    );
    eventually("the exchanged token is inactive after logout", || async {
        introspect(&server, &rs, &token).await["active"] == false
    })
    .await;
}

#[tokio::test]
async fn opaque_tokens_are_checked_by_introspection_and_revocable() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let svc = add_client(
        &server,
        "svc",
        &[
            "--grant",
            "client_credentials",
            "--token-format",
            "opaque",
            "--scope",
            "read",
            "--audience",
            "orders",
        ],
    );
    let app = add_client(
        &server,
        "app",
        &[
            "--grant",
            "password,refresh_token",
            "--public",
            "--token-format",
            "opaque",
        ],
    );
    let rs = add_client(
        &server,
        "rs",
        &["--grant", "client_credentials", "--scope", "introspect"],
    );

    let (_, token) = access_token(client_credentials(&server, &svc, &[]).await).await;
    assert!(token.starts_with("tat_") && token.len() == 47, "{token}");
    let live = introspect(&server, &rs, &token).await;
    assert_eq!(live["active"], true);
    assert_eq!(live["client_id"], svc.id.as_str());
    assert_eq!(live["sub"], svc.id.as_str());
    assert_eq!(live["aud"], "orders");
    assert_eq!(live["scope"], "read");
    let refused = token_request_to(&server, "/oauth2/revoke")
        .basic_auth(&rs.id, rs.secret.as_deref())
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(refused).await, (400, "unauthorized_client".into()));
    assert_eq!(
        introspect(&server, &rs, &token).await["active"],
        true,
        "only its client may revoke it"
    );
    revoke(&server, &svc, &token).await;
    assert_eq!(introspect(&server, &rs, &token).await["active"], false);

    // A user's opaque token dies with its refresh family.
    let grant = password_grant(&server, &app, "alice").await;
    let access = grant["access_token"].as_str().unwrap().to_owned();
    assert!(access.starts_with("tat_"));
    let described = introspect(&server, &rs, &access).await;
    assert_eq!(described["active"], true);
    assert!(described["sid"].as_str().is_some());
    revoke(&server, &app, grant["refresh_token"].as_str().unwrap()).await;
    eventually(
        "an opaque token of a revoked family is inactive",
        || async { introspect(&server, &rs, &access).await["active"] == false },
    )
    .await;
}

#[tokio::test]
async fn the_token_endpoint_answers_browsers_only_from_configured_origins() {
    let server =
        TestServer::start_with(&[("TESSERA_TOKENS__CORS_ORIGINS", r#"["https://app.example"]"#)])
            .await;
    let preflight = |origin: &'static str| {
        server
            .client
            .request(reqwest::Method::OPTIONS, server.url("/oauth2/token"))
            .header(header::ORIGIN, origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let allowed = preflight("https://app.example").await.unwrap();
    assert_eq!(
        allowed.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example"
    );
    assert!(
        allowed
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
            .is_none()
    );
    let foreign = preflight("https://evil.example").await.unwrap();
    assert!(
        foreign
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );

    let svc = add_client(&server, "spa-backend", &["--grant", "client_credentials"]);
    let response = token_request(&server)
        .header(header::ORIGIN, "https://app.example")
        .basic_auth(&svc.id, svc.secret.as_deref())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example"
    );
    access_token(response).await;
    // Without configuration no origin is allowed.
    let closed = TestServer::start().await;
    let refused = closed
        .client
        .request(reqwest::Method::OPTIONS, closed.url("/oauth2/token"))
        .header(header::ORIGIN, "https://app.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        refused
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
}
