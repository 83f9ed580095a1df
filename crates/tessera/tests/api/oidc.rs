//! Sign in with tessera (OpenID Connect): clients for apps, registered from the CLI
//! and the admin API, end to end through the real binary.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestServer, error_of};
use crate::tokens::{access_token, add_client, client_credentials, introspect};

/// Runs the CLI, which must succeed, and reads its JSON answer.
fn cli_json(server: &TestServer, args: &[&str], stdin: &str) -> Value {
    let out = server.cli(args, stdin);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn client_add_json(server: &TestServer, args: &[&str]) -> Value {
    let mut full = vec!["client", "add", "--json"];
    full.extend_from_slice(args);
    cli_json(server, &full, "")
}

#[tokio::test]
async fn an_app_is_registered_from_the_cli_with_its_code_flow() {
    let server = TestServer::start().await;
    let added = client_add_json(
        &server,
        &[
            "web",
            "--grant",
            "authorization_code,refresh_token",
            "--public",
            "--redirect-uri",
            "https://app.example/cb",
            "--redirect-uri",
            "http://127.0.0.1/cb",
            "--redirect-uri",
            "https://app.example/cb",
            "--post-logout-redirect-uri",
            "https://app.example/bye",
            "--backchannel-logout-uri",
            "http://app.internal:8080/backchannel",
            "--first-party",
            "--id-token-alg",
            "ES256",
            "--scope",
            "openid profile",
        ],
    );
    assert_eq!(added["public"], true);
    assert!(added.get("client_secret").is_none());
    assert_eq!(
        added["grants"],
        json!(["authorization_code", "refresh_token"])
    );
    // In order, once each, exactly as written.
    assert_eq!(
        added["redirect_uris"],
        json!(["http://127.0.0.1/cb", "https://app.example/cb"])
    );
    assert_eq!(
        added["post_logout_redirect_uris"],
        json!(["https://app.example/bye"])
    );
    assert_eq!(
        added["backchannel_logout_uri"],
        "http://app.internal:8080/backchannel"
    );
    assert_eq!(added["first_party"], true);
    assert_eq!(added["require_par"], false);
    assert_eq!(added["id_token_alg"], "ES256");

    let listed = server.cli(&["client", "list", "--json"], "");
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["clients"], json!([added]));

    // A confidential app, with the defaults: RS256 ID tokens, consent asked.
    let confidential = client_add_json(
        &server,
        &[
            "portal",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            "https://portal.example/cb",
            "--require-par",
        ],
    );
    assert!(confidential["client_secret"].as_str().is_some());
    assert_eq!(confidential["id_token_alg"], "RS256");
    assert_eq!(confidential["first_party"], false);
    assert_eq!(confidential["require_par"], true);

    // The token endpoint redeems codes for it, and the metadata offers the grant.
    let registered = crate::tokens::Registered {
        id: confidential["client_id"].as_str().unwrap().to_owned(),
        secret: confidential["client_secret"].as_str().map(str::to_owned),
    };
    let attempt = crate::tokens::token_request(&server)
        .basic_auth(&registered.id, registered.secret.as_deref())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "tac_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            ("redirect_uri", "https://portal.example/cb"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(attempt).await, (400, "invalid_grant".into()));
    let metadata: Value = server
        .client
        .get(server.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        metadata["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("authorization_code"))
    );
}

#[tokio::test]
async fn client_add_refuses_a_code_flow_that_cannot_work() {
    let server = TestServer::start().await;
    for (args, message) in [
        (
            vec!["--grant", "authorization_code"],
            "needs at least one redirect URI",
        ),
        (
            vec![
                "--grant",
                "password",
                "--redirect-uri",
                "https://a.example/cb",
            ],
            "authorization_code grant",
        ),
        (
            vec!["--grant", "client_credentials", "--first-party"],
            "authorization_code grant",
        ),
        (
            vec![
                "--grant",
                "authorization_code",
                "--redirect-uri",
                "http://a.example/cb",
            ],
            "http is allowed only on loopback",
        ),
        (
            vec![
                "--grant",
                "authorization_code",
                "--redirect-uri",
                "https://a.example/cb#x",
            ],
            "fragment",
        ),
        (
            vec![
                "--grant",
                "authorization_code",
                "--redirect-uri",
                "javascript:alert(1)",
            ],
            "unsupported scheme",
        ),
        (
            vec!["--grant", "authorization_code", "--redirect-uri", "/cb"],
            "not an absolute URI",
        ),
        (
            vec![
                "--grant",
                "authorization_code",
                "--redirect-uri",
                "https://a.example/cb",
                "--id-token-alg",
                "HS256",
            ],
            "[possible values: EdDSA, ES256, RS256]",
        ),
        (
            vec![
                "--grant",
                "authorization_code",
                "--redirect-uri",
                "https://a.example/cb",
                "--backchannel-logout-uri",
                "com.example.app:/logout",
            ],
            "unsupported scheme",
        ),
    ] {
        let mut full = vec!["client", "add", "bad"];
        full.extend(args.iter());
        let out = server.cli(&full, "");
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let listed = server.cli(&["client", "list", "--json"], "");
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["clients"], json!([]));
}

#[tokio::test]
async fn admins_register_see_and_remove_clients_over_http() {
    let server = TestServer::start().await;
    server.add_user("root", &["admin"]);
    server.add_user("bob", &[]);
    let root = server.login("root").await;
    let bob = server.login("bob").await;
    let app = json!({
        "name": "shop",
        "grants": ["authorization_code", "refresh_token", "client_credentials"],
        "scope": "openid profile orders:read",
        "audiences": ["orders"],
        "redirect_uris": ["https://shop.example/cb"],
        "post_logout_redirect_uris": ["https://shop.example/"],
        "backchannel_logout_uri": "https://shop.example/backchannel",
        "id_token_alg": "EdDSA",
    });

    // Not an admin, or an admin's session without its CSRF token: refused, and
    // nothing registered.
    let as_bob = server
        .unsafe_as(Method::POST, "/admin/v1/clients", &bob)
        .json(&app)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(as_bob).await, (403, "forbidden".into()));
    let forged = server
        .client
        .post(server.url("/admin/v1/clients"))
        .header(reqwest::header::COOKIE, &root.cookie)
        .json(&app)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(forged).await, (403, "csrf_token_missing".into()));

    let created = server
        .unsafe_as(Method::POST, "/admin/v1/clients", &root)
        .json(&app)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let client = &created["client"];
    let id = client["client_id"].as_str().unwrap().to_owned();
    let secret = client["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(client["redirect_uris"], json!(["https://shop.example/cb"]));
    assert_eq!(client["id_token_alg"], "EdDSA");
    assert_eq!(client["audiences"], json!(["orders"]));
    assert_eq!(client["alg"], "EdDSA");
    assert_eq!(client["access_ttl_seconds"], 300);

    // What the API registered, the CLI lists, and the API shows, never the secret.
    let listed = server.cli(&["client", "list", "--json"], "");
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["clients"][0]["client_id"], id.as_str());
    let all: Value = server
        .get_as("/admin/v1/clients", &root)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["clients"], listed["clients"]);
    let one: Value = server
        .get_as(&format!("/admin/v1/clients/{id}"), &root)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["client"], listed["clients"][0]);
    assert!(one["client"].get("client_secret").is_none());

    // The secret works; removing the client cuts off what it holds.
    let registered = crate::tokens::Registered {
        id: id.clone(),
        secret: Some(secret),
    };
    let (_, token) =
        access_token(client_credentials(&server, &registered, &[("scope", "orders:read")]).await)
            .await;
    let removed = server
        .unsafe_as(Method::DELETE, &format!("/admin/v1/clients/{id}"), &root)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    let gone = server
        .get_as(&format!("/admin/v1/clients/{id}"), &root)
        .await;
    assert_eq!(error_of(gone).await, (404, "not_found".into()));
    let again = server
        .unsafe_as(Method::DELETE, &format!("/admin/v1/clients/{id}"), &root)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(again).await, (404, "not_found".into()));
    let ops = add_client(
        &server,
        "introspector",
        &["--grant", "client_credentials", "--scope", "introspect"],
    );
    let answer = introspect(&server, &ops, &token).await;
    assert_eq!(answer["active"], false, "{answer}");
}

#[tokio::test]
async fn the_admin_api_refuses_a_client_that_cannot_work_and_says_why() {
    let server = TestServer::start().await;
    server.add_user("root", &["admin"]);
    let root = server.login("root").await;
    let post = |body: Value| {
        server
            .unsafe_as(Method::POST, "/admin/v1/clients", &root)
            .json(&body)
            .send()
    };
    for (body, status, message) in [
        (
            json!({"name": "a", "grants": ["authorization_code"]}),
            400,
            "needs at least one redirect URI",
        ),
        (
            json!({"name": "a", "grants": ["authorization_code"],
                   "redirect_uris": ["http://evil.example/cb"]}),
            400,
            "redirect_uris: http is allowed only on loopback",
        ),
        (
            json!({"name": "a", "grants": ["authorization_code"],
                   "redirect_uris": ["https://a.example/cb"], "id_token_alg": "HS256"}),
            400,
            "ID tokens are signed with RS256, ES256 or EdDSA",
        ),
        (
            json!({"name": "a", "grants": ["magic"]}),
            400,
            "grants: unknown grant",
        ),
        (
            json!({"name": "a", "grants": ["password"], "redirect_uri": "https://a.example/cb"}),
            400,
            "unknown field `redirect_uri`",
        ),
        (json!({"grants": ["password"]}), 400, "missing field `name`"),
    ] {
        let response = post(body.clone()).await.unwrap();
        assert_eq!(response.status(), status, "{body}");
        let error: Value = response.json().await.unwrap();
        let description = error["error_description"].as_str().unwrap();
        assert!(description.contains(message), "{body}: {description}");
    }
    let first = post(json!({"name": "dup", "grants": ["password"], "public": true}))
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    let second = post(json!({"name": "dup", "grants": ["password"], "public": true}))
        .await
        .unwrap();
    assert_eq!(error_of(second).await, (409, "name_taken".into()));
    let unknown = server.get_as("/admin/v1/clients/not-a-client", &root).await;
    assert_eq!(error_of(unknown).await, (404, "not_found".into()));
}

#[tokio::test]
async fn an_accounts_profile_is_set_from_the_cli_and_the_admin_api() {
    let server = TestServer::start().await;
    let password = format!("{}\n", crate::harness::PASSWORD);
    let added = cli_json(
        &server,
        &[
            "user",
            "add",
            "ada",
            "--password-stdin",
            "--name",
            "Ada Lovelace",
            "--email",
            "Ada@Example.ORG",
            "--json",
        ],
        &password,
    );
    let id = added["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(added["profile"]["name"], "Ada Lovelace");
    assert_eq!(added["profile"]["email"], "Ada@example.org");
    assert_eq!(added["profile"]["email_verified"], false);
    assert!(added["profile"]["updated_at"].is_string());

    let verified = cli_json(
        &server,
        &["user", "set", "ada", "--email-verified", "--json"],
        "",
    );
    assert_eq!(verified["profile"]["email_verified"], true);
    assert_eq!(verified["profile"]["name"], "Ada Lovelace");
    // A new address is not verified, whatever the old one was.
    let moved = cli_json(
        &server,
        &["user", "set", "ada", "--email", "ada@new.example", "--json"],
        "",
    );
    assert_eq!(moved["profile"]["email"], "ada@new.example");
    assert_eq!(moved["profile"]["email_verified"], false);
    // "" clears a member; the others stay.
    let unnamed = cli_json(&server, &["user", "set", "ada", "--name", "", "--json"], "");
    assert_eq!(unnamed["profile"]["name"], Value::Null);
    assert_eq!(unnamed["profile"]["email"], "ada@new.example");
    let moved = cli_json(
        &server,
        &["user", "set", "ada", "--name", "Ada Lovelace", "--json"],
        "",
    );
    for (args, message) in [
        (vec!["user", "set", "ada"], "nothing to change"),
        (
            vec!["user", "set", "ada", "--email", "ada@"],
            "invalid --email",
        ),
        (
            vec!["user", "set", "ada", "--name", " Ada"],
            "invalid --name",
        ),
        (
            vec!["user", "set", "nobody", "--name", "X"],
            "no user named",
        ),
    ] {
        let out = server.cli(&args, "");
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }

    server.add_user("root", &["admin"]);
    server.add_user("bob", &[]);
    let root = server.login("root").await;
    let bob = server.login("bob").await;
    let path = format!("/admin/v1/users/{id}");
    let shown: Value = server.get_as(&path, &root).await.json().await.unwrap();
    assert_eq!(shown["profile"], moved["profile"]);

    let patch = |browser: &crate::harness::Browser, body: Value| {
        server
            .unsafe_as(Method::PATCH, &path, browser)
            .json(&body)
            .send()
    };
    let changed = patch(&root, json!({"name": null, "email_verified": true}))
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["profile"]["name"], Value::Null);
    assert_eq!(changed["profile"]["email"], "ada@new.example");
    assert_eq!(changed["profile"]["email_verified"], true);
    assert_eq!(changed["user"]["username"], "ada");

    // Refusals change nothing.
    let as_bob = patch(&bob, json!({"name": "Mallory"})).await.unwrap();
    assert_eq!(error_of(as_bob).await, (403, "forbidden".into()));
    let forged = server
        .client
        .patch(server.url(&path))
        .header(reqwest::header::COOKIE, &root.cookie)
        .json(&json!({"name": "Mallory"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(forged).await, (403, "csrf_token_missing".into()));
    for (body, message) in [
        (json!({"email": "not an address"}), "email: "),
        (json!({"name": ""}), "name: "),
        (json!({"nickname": "A"}), "unknown field `nickname`"),
        (json!({"email_verified": "yes"}), "invalid type"),
    ] {
        let response = patch(&root, body.clone()).await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.unwrap();
        let description = error["error_description"].as_str().unwrap();
        assert!(description.contains(message), "{body}: {description}");
    }
    let nobody = server
        .unsafe_as(
            Method::PATCH,
            "/admin/v1/users/0190a0a0-0000-7000-8000-000000000000",
            &root,
        )
        .json(&json!({"name": "X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(nobody).await, (404, "not_found".into()));
    let after: Value = server.get_as(&path, &root).await.json().await.unwrap();
    assert_eq!(after["profile"], changed["profile"]);
}

#[tokio::test]
async fn the_fully_specified_ed25519_name_is_taken_for_eddsa() {
    let server = TestServer::start().await;
    let added = client_add_json(
        &server,
        &[
            "modern",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            "https://app.example/cb",
            "--id-token-alg",
            "Ed25519",
            "--alg",
            "Ed25519",
        ],
    );
    assert_eq!(added["id_token_alg"], "EdDSA");
    assert_eq!(added["alg"], "EdDSA");
}
