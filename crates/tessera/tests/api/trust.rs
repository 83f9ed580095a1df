//! The trust boundary, tried from the attacker's side: every token, endpoint and
//! client grants exactly what it names (issue 11). Each test fails on a server that
//! implies a scope, accepts a token meant for someone else, or lets a revocation
//! wait.

use reqwest::{Method, header};
use serde_json::{Value, json};

use crate::harness::*;
use crate::tokens::{
    Registered, access_token, add_client, claims_of, client_credentials, introspect,
    password_grant, refresh, token_request_to,
};

async fn get_with_token(server: &TestServer, path: &str, token: &str) -> reqwest::Response {
    server
        .client
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// A confidential client that may introspect any client's tokens.
fn introspector(server: &TestServer) -> Registered {
    add_client(
        server,
        "introspector",
        &["--grant", "client_credentials", "--scope", "introspect"],
    )
}

async fn revoke_as(server: &TestServer, by: &Registered, token: &str) -> reqwest::Response {
    token_request_to(server, "/oauth2/revoke")
        .basic_auth(&by.id, by.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

async fn introspect_as(server: &TestServer, by: &Registered, token: &str) -> reqwest::Response {
    token_request_to(server, "/oauth2/introspect")
        .basic_auth(&by.id, by.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn scopes_are_never_implied_and_tessera_scopes_are_only_for_tessera() {
    let server = TestServer::start().await;
    let svc = add_client(
        &server,
        "svc",
        &[
            "--grant",
            "client_credentials",
            "--scope",
            "read admin revocations introspect",
            "--audience",
            "orders",
        ],
    );
    // No scope named: the client's ordinary scopes, for its own audience.
    let (body, token) = access_token(client_credentials(&server, &svc, &[]).await).await;
    assert_eq!(body["scope"], "read");
    assert_eq!(claims_of(&token)["aud"], "orders");
    // An empty scope asks for nothing, and gets nothing.
    let (body, token) =
        access_token(client_credentials(&server, &svc, &[("scope", "")]).await).await;
    assert!(body.get("scope").is_none(), "{body}");
    assert!(claims_of(&token).get("scope").is_none());
    // tessera's scopes by name: granted, in a token for tessera itself.
    let (body, token) =
        access_token(client_credentials(&server, &svc, &[("scope", "revocations")]).await).await;
    assert_eq!(body["scope"], "revocations");
    assert_eq!(claims_of(&token)["aud"], server.base.as_str());
    // ... and never in a token for a resource service.
    for target in [("audience", "orders"), ("resource", "orders")] {
        assert_eq!(
            error_of(client_credentials(&server, &svc, &[("scope", "read admin"), target]).await)
                .await,
            (400, "invalid_target".into())
        );
    }
}

#[tokio::test]
async fn tessera_endpoints_refuse_tokens_meant_for_others_hs256_and_removed_clients() {
    let secret = "a shared secret of at least thirty-two bytes!";
    let server = TestServer::start_with(&[("TESSERA_TOKENS__HS256_SECRET", secret)]).await;
    server.add_user("root", &["admin"]);
    // A token for a resource service carries no tessera scope, and is refused as
    // not tessera's before any scope is looked at.
    let svc = add_client(
        &server,
        "svc",
        &["--grant", "client_credentials", "--audience", "orders"],
    );
    let (_, for_orders) = access_token(client_credentials(&server, &svc, &[]).await).await;
    for path in ["/v1/revocations", "/admin/v1/users"] {
        let refused = get_with_token(&server, path, &for_orders).await;
        assert!(
            refused.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );
        assert_eq!(error_of(refused).await, (401, "invalid_token".into()));
    }
    let activity = server
        .client
        .post(server.url("/v1/activity"))
        .bearer_auth(&for_orders)
        .json(&json!({"seen": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(activity).await, (401, "invalid_token".into()));

    // Whoever holds the HS256 secret can mint anything: an admin token for a
    // client that does not exist, or one issued by tessera to an HS256 client.
    // Neither authenticates tessera's own endpoints.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ghost = "0b5a4e5c-1c9d-4a43-9a8e-3f1f2f8d5c11";
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            typ: Some("at+jwt".into()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &json!({
            "iss": server.base, "aud": server.base, "sub": ghost, "client_id": ghost,
            "scope": "admin revocations", "iat": now, "exp": now + 300, "jti": "forged",
        }),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    for path in ["/admin/v1/users", "/v1/revocations"] {
        assert_eq!(
            error_of(get_with_token(&server, path, &forged).await).await,
            (401, "invalid_token".into()),
            "{path}"
        );
    }
    let hs = add_client(
        &server,
        "hs",
        &[
            "--grant",
            "client_credentials",
            "--scope",
            "admin",
            "--alg",
            "HS256",
        ],
    );
    let (_, hs_token) =
        access_token(client_credentials(&server, &hs, &[("scope", "admin")]).await).await;
    assert_eq!(
        error_of(get_with_token(&server, "/admin/v1/users", &hs_token).await).await,
        (401, "invalid_token".into())
    );

    // A client's own token dies with the client.
    let ops = add_client(
        &server,
        "ops",
        &["--grant", "client_credentials", "--scope", "admin"],
    );
    let (_, admin) =
        access_token(client_credentials(&server, &ops, &[("scope", "admin")]).await).await;
    assert_eq!(
        get_with_token(&server, "/admin/v1/users", &admin)
            .await
            .status(),
        200
    );
    let out = server.cli(&["client", "remove", "ops"], "");
    assert!(out.status.success());
    assert_eq!(
        error_of(get_with_token(&server, "/admin/v1/users", &admin).await).await,
        (401, "invalid_token".into())
    );
}

#[tokio::test]
async fn disable_cuts_off_every_token_of_the_user_and_enable_lets_only_new_ones_in() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    server.add_user("root", &["admin"]);
    let watcher = introspector(&server);
    // A JWT without sid (no refresh), and an opaque token.
    let jwt_app = add_client(&server, "jwt-app", &["--grant", "password", "--public"]);
    let opaque_app = add_client(
        &server,
        "opaque-app",
        &[
            "--grant",
            "password",
            "--public",
            "--token-format",
            "opaque",
        ],
    );
    let jwt = password_grant(&server, &jwt_app, "alice").await;
    let jwt = jwt["access_token"].as_str().unwrap().to_owned();
    assert!(claims_of(&jwt).get("sid").is_none());
    let opaque = password_grant(&server, &opaque_app, "alice").await;
    let opaque = opaque["access_token"].as_str().unwrap().to_owned();
    for token in [&jwt, &opaque] {
        assert_eq!(introspect(&server, &watcher, token).await["active"], true);
    }

    // Through the CLI (another process): refused within the feed's latency.
    let out = server.cli(&["user", "disable", "alice", "--json"], "");
    assert!(out.status.success());
    for token in [&jwt, &opaque] {
        eventually("the disabled user's token is refused", || async {
            introspect(&server, &watcher, token).await["active"] == false
        })
        .await;
    }
    let refused = token_request_to(&server, "/oauth2/token")
        .form(&[
            ("grant_type", "password"),
            ("client_id", jwt_app.id.as_str()),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(refused).await, (400, "invalid_grant".into()));

    // Enabled again: new sign-ins work, what was held before stays dead. (A token
    // from the very second of the cut-off counts as before it.)
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let out = server.cli(&["user", "enable", "alice"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh = password_grant(&server, &jwt_app, "alice").await;
    let fresh = fresh["access_token"].as_str().unwrap().to_owned();
    assert_eq!(introspect(&server, &watcher, &fresh).await["active"], true);
    for token in [&jwt, &opaque] {
        assert_eq!(introspect(&server, &watcher, token).await["active"], false);
    }

    // Through the admin API, on the instance that answers: refused at once.
    let root = server.login("root").await;
    let alice = server.user_id("alice");
    let disabled = server
        .unsafe_as(
            Method::POST,
            &format!("/admin/v1/users/{alice}/disable"),
            &root,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), 200);
    let disabled: Value = disabled.json().await.unwrap();
    assert_eq!(disabled["user"]["disabled"], true);
    assert_eq!(introspect(&server, &watcher, &fresh).await["active"], false);
    let enabled = server
        .unsafe_as(
            Method::POST,
            &format!("/admin/v1/users/{alice}/enable"),
            &root,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(enabled.status(), 200);
    let enabled: Value = enabled.json().await.unwrap();
    assert_eq!(enabled["user"]["disabled"], false);
    assert_eq!(server.try_login("alice", PASSWORD).await.status(), 200);
    assert_eq!(introspect(&server, &watcher, &fresh).await["active"], false);
}

#[tokio::test]
async fn the_instance_that_answers_a_revocation_already_refuses_what_it_revoked() {
    let server = TestServer::start().await;
    server.add_user("bob", &["admin"]);
    let svc = add_client(
        &server,
        "svc",
        &[
            "--grant",
            "client_credentials",
            "--scope",
            "read introspect",
        ],
    );
    // 200 revoke → introspect pairs, each introspection sent the moment the
    // revocation answered: not one may still say active.
    let mut active = 0;
    for _ in 0..200 {
        let (_, token) = access_token(client_credentials(&server, &svc, &[]).await).await;
        assert_eq!(revoke_as(&server, &svc, &token).await.status(), 200);
        if introspect(&server, &svc, &token).await["active"] == true {
            active += 1;
        }
    }
    assert_eq!(
        active, 0,
        "introspection said active right after a revocation"
    );

    // A kick through the admin API: the user's token is refused in the next answer.
    let app = add_client(&server, "app", &["--grant", "password", "--public"]);
    let root = server.login("bob").await;
    let bob = server.user_id("bob");
    let token = password_grant(&server, &app, "bob").await;
    let token = token["access_token"].as_str().unwrap().to_owned();
    let kicked = server
        .unsafe_as(Method::POST, &format!("/admin/v1/users/{bob}/kick"), &root)
        .send()
        .await
        .unwrap();
    assert_eq!(kicked.status(), 200);
    assert_eq!(introspect(&server, &svc, &token).await["active"], false);
}

/// A spent refresh token presented again ends its family, and the instance that
/// said so refuses the family's access tokens in its very next answer (the SQLite
/// store once signalled the log's growth on a plain rotation instead of on reuse).
#[tokio::test]
async fn a_reused_refresh_token_is_refused_at_once_where_it_was_reused() {
    let server = TestServer::start_with(&[("TESSERA_TOKENS__REFRESH_REUSE_GRACE", "0s")]).await;
    server.add_user("alice", &[]);
    let app = add_client(
        &server,
        "app",
        &["--grant", "password,refresh_token", "--public"],
    );
    let watcher = introspector(&server);
    let mut active = 0;
    for _ in 0..50 {
        let first = password_grant(&server, &app, "alice").await;
        let spent = first["refresh_token"].as_str().unwrap();
        let (_, token) = access_token(refresh(&server, &app, spent, &[]).await).await;
        let reused = refresh(&server, &app, spent, &[]).await;
        assert_eq!(reused.status(), 400);
        if introspect(&server, &watcher, &token).await["active"] == true {
            active += 1;
        }
    }
    assert_eq!(
        active, 0,
        "introspection said active right after the refresh token's reuse ended its family"
    );
}

#[tokio::test]
async fn clients_stay_in_their_lane() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let a = add_client(
        &server,
        "a",
        &[
            "--grant",
            "client_credentials,password,refresh_token",
            "--scope",
            "read",
        ],
    );
    let b = add_client(
        &server,
        "b",
        &[
            "--grant",
            "client_credentials,refresh_token",
            "--scope",
            "read",
        ],
    );
    let watcher = introspector(&server);
    let opaque_a = add_client(
        &server,
        "opaque-a",
        &["--grant", "client_credentials", "--token-format", "opaque"],
    );
    let (_, jwt) = access_token(client_credentials(&server, &a, &[]).await).await;
    let (_, opaque) = access_token(client_credentials(&server, &opaque_a, &[]).await).await;

    // B may not revoke A's tokens (RFC 7009 §2.1), and trying changes nothing.
    for token in [&jwt, &opaque] {
        assert_eq!(
            error_of(revoke_as(&server, &b, token).await).await,
            (400, "unauthorized_client".into())
        );
        assert_eq!(introspect(&server, &watcher, token).await["active"], true);
    }
    // B may not introspect A's tokens without the introspect scope; its own, yes.
    for token in [&jwt, &opaque, &"garbage".to_owned()] {
        assert_eq!(
            error_of(introspect_as(&server, &b, token).await).await,
            (403, "insufficient_scope".into())
        );
    }
    let (_, own) = access_token(client_credentials(&server, &b, &[]).await).await;
    assert_eq!(introspect(&server, &b, &own).await["active"], true);

    // A's refresh token in B's hands is evidence that it leaked: refused, and
    // its family and session end, for A too.
    let token_as = |client: &Registered, form: &[(&str, &str)]| {
        token_request_to(&server, "/oauth2/token")
            .basic_auth(&client.id, client.secret.as_deref())
            .form(form)
            .send()
    };
    let grant = token_as(
        &a,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ],
    )
    .await
    .unwrap();
    let (grant, access) = access_token(grant).await;
    let refresh_token = grant["refresh_token"].as_str().unwrap();
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    let stolen = token_as(&b, &refresh).await.unwrap();
    assert_eq!(error_of(stolen).await, (400, "invalid_grant".into()));
    let rightful = token_as(&a, &refresh).await.unwrap();
    assert_eq!(error_of(rightful).await, (400, "invalid_grant".into()));
    assert_eq!(
        introspect(&server, &watcher, &access).await["active"],
        false
    );

    // Removing a client revokes every token it holds.
    let (_, before_removal) = access_token(client_credentials(&server, &a, &[]).await).await;
    assert_eq!(
        introspect(&server, &watcher, &before_removal).await["active"],
        true
    );
    let out = server.cli(&["client", "remove", "a"], "");
    assert!(out.status.success());
    eventually("the removed client's token is refused", || async {
        introspect(&server, &watcher, &before_removal).await["active"] == false
    })
    .await;
}

#[tokio::test]
async fn ambiguous_credentials_are_refused_not_resolved_by_order() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    server.add_user("bob", &[]);
    let alice = server.login("alice").await;
    let bob = server.login("bob").await;
    let svc = add_client(
        &server,
        "svc",
        &["--grant", "client_credentials", "--scope", "revocations"],
    );
    let (_, token) =
        access_token(client_credentials(&server, &svc, &[("scope", "revocations")]).await).await;
    let two_headers = server
        .client
        .get(server.url("/v1/revocations"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::AUTHORIZATION, "Bearer someone-elses")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(two_headers).await, (400, "invalid_request".into()));
    let two_basic = token_request_to(&server, "/oauth2/token")
        .basic_auth(&svc.id, svc.secret.as_deref())
        .header(header::AUTHORIZATION, "Basic b3RoZXI6c2VjcmV0")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(two_basic).await, (400, "invalid_request".into()));

    // Each Cookie header's value, as a browser (or a planted cookie) sends them.
    let session_with = |cookies: &[&str]| {
        let mut request = server.client.get(server.url("/v1/session"));
        for cookie in cookies {
            request = request.header(header::COOKIE, *cookie);
        }
        request.send()
    };
    let both = format!("{}; {}", alice.cookie, bob.cookie);
    for cookies in [vec![both.as_str()], vec![&alice.cookie, &bob.cookie]] {
        assert_eq!(
            error_of(session_with(&cookies).await.unwrap()).await,
            (401, "ambiguous_session".into())
        );
    }
    // The same cookie twice is not ambiguous.
    let twice = format!("{}; {}", alice.cookie, alice.cookie);
    assert_eq!(session_with(&[&twice]).await.unwrap().status(), 200);
}

#[tokio::test]
async fn activity_reports_count_only_live_sessions_of_the_reported_user() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    server.add_user("bob", &[]);
    let reporter = add_client(
        &server,
        "reporter",
        &["--grant", "client_credentials", "--scope", "revocations"],
    );
    let ops = add_client(
        &server,
        "ops",
        &["--grant", "client_credentials", "--scope", "admin"],
    );
    let (_, report_token) =
        access_token(client_credentials(&server, &reporter, &[("scope", "revocations")]).await)
            .await;
    let (_, admin) =
        access_token(client_credentials(&server, &ops, &[("scope", "admin")]).await).await;
    let online = || async {
        get_with_token(&server, "/admin/v1/online", &admin)
            .await
            .json::<Value>()
            .await
            .unwrap()
    };
    let bob = server.login("bob").await;
    eventually("bob's login counts", || async {
        online().await["users"] == 1
    })
    .await;
    let bob_id = server.user_id("bob");
    let alice_id = server.user_id("alice");
    // Invented sessions, and bob's session reported as alice's.
    let mut seen: Vec<Value> = (0..100u8)
        .map(|i| json!({"sid": unknown_session(i), "sub": alice_id}))
        .collect();
    seen.push(json!({"sid": bob.session_id, "sub": alice_id}));
    seen.push(json!({"sid": bob.session_id, "sub": bob_id}));
    let reported = server
        .client
        .post(server.url("/v1/activity"))
        .bearer_auth(&report_token)
        .json(&json!({ "seen": seen }))
        .send()
        .await
        .unwrap();
    assert_eq!(reported.status(), 204);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let now = online().await;
    assert_eq!(
        (now["users"].clone(), now["sessions"].clone()),
        (json!(1), json!(1))
    );
    assert!(
        server
            .metrics()
            .await
            .contains(r#"tessera_activity_sightings_total{outcome="dropped"} 101"#)
    );

    // Reports are rate-limited per client.
    let mut limited = false;
    for _ in 0..40 {
        let response = server
            .client
            .post(server.url("/v1/activity"))
            .bearer_auth(&report_token)
            .json(&json!({ "seen": [] }))
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            assert!(response.headers().contains_key(header::RETRY_AFTER));
            limited = true;
            break;
        }
        assert_eq!(response.status(), 204);
    }
    assert!(limited, "40 reports in a row were all accepted");
}

/// A well-formed session id that names no session.
fn unknown_session(i: u8) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, [i; 16])
}

#[tokio::test]
async fn a_feed_stream_ends_with_its_credential() {
    let server = TestServer::start_with(&[("TESSERA_TOKENS__FEED_HEARTBEAT", "100ms")]).await;
    let short = add_client(
        &server,
        "short",
        &[
            "--grant",
            "client_credentials",
            "--scope",
            "revocations",
            "--access-ttl",
            "10s",
        ],
    );
    let started = std::time::Instant::now();
    let (_, token) =
        access_token(client_credentials(&server, &short, &[("scope", "revocations")]).await).await;
    let stream = crate::feed::open_feed(&server, &token, None).await;
    assert_eq!(stream.status(), 200);
    let ended = tokio::time::timeout(std::time::Duration::from_secs(20), async move {
        let mut body = stream;
        while let Ok(Some(_)) = body.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its token by 10 s");
    let lived = started.elapsed();
    assert!(
        lived >= std::time::Duration::from_secs(9),
        "ended after {lived:?}, before its token expired"
    );

    // The client removed: the stream ends at its next heartbeat.
    let doomed = add_client(
        &server,
        "doomed",
        &["--grant", "client_credentials", "--scope", "revocations"],
    );
    let (_, token) =
        access_token(client_credentials(&server, &doomed, &[("scope", "revocations")]).await).await;
    let mut stream = crate::feed::open_feed(&server, &token, None).await;
    assert_eq!(stream.status(), 200);
    assert!(stream.chunk().await.unwrap().is_some());
    let out = server.cli(&["client", "remove", "doomed"], "");
    assert!(out.status.success());
    let ended = tokio::time::timeout(std::time::Duration::from_secs(5), async move {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its removed client");
}
