//! The admin API, kick and online counts, end to end through the real binary.

use reqwest::{Method, header};
use serde_json::Value;

use crate::harness::{TestServer, error_of, eventually};
use crate::tokens::{
    Registered, access_token, add_client, client_credentials, introspect, password_grant,
    password_grant_with, refresh,
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

pub(crate) async fn admin_token(server: &TestServer) -> String {
    let ops = add_client(
        server,
        "ops",
        &["--grant", "client_credentials", "--scope", "admin"],
    );
    access_token(client_credentials(server, &ops, &[("scope", "admin")]).await)
        .await
        .1
}

#[tokio::test]
async fn only_administrators_reach_the_admin_api() {
    let server = TestServer::start().await;
    server.add_user("root", &["admin"]);
    server.add_user("bob", &[]);
    let path = "/admin/v1/users";

    let anonymous = server.client.get(server.url(path)).send().await.unwrap();
    assert_eq!(error_of(anonymous).await, (401, "unauthenticated".into()));
    let bob = server.login("bob").await;
    assert_eq!(
        error_of(server.get_as(path, &bob).await).await,
        (403, "forbidden".into())
    );
    let root = server.login("root").await;
    assert_eq!(server.get_as(path, &root).await.status(), 200);

    // unsafe methods from a session need the CSRF token, like every cookie request
    let bob_id = server.user_id("bob");
    let kick = format!("/admin/v1/users/{bob_id}/kick");
    let no_csrf = server
        .client
        .post(server.url(&kick))
        .header(header::COOKIE, &root.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(no_csrf).await.0, 403);

    // tokens: the admin scope is needed, and a user's token needs the admin role too
    let svc = add_client(&server, "svc", &["--grant", "client_credentials"]);
    let plain = access_token(client_credentials(&server, &svc, &[]).await)
        .await
        .1;
    assert_eq!(
        error_of(get_with_token(&server, path, &plain).await).await,
        (403, "insufficient_scope".into())
    );
    let app = add_client(
        &server,
        "app",
        &["--grant", "password", "--public", "--scope", "admin"],
    );
    let bobs = password_grant_with(&server, &app, "bob", &[("scope", "admin")]).await;
    let bobs = bobs["access_token"].as_str().unwrap();
    assert_eq!(
        error_of(get_with_token(&server, path, bobs).await).await,
        (403, "forbidden".into())
    );
    let roots = password_grant_with(&server, &app, "root", &[("scope", "admin")]).await;
    let roots = roots["access_token"].as_str().unwrap();
    assert_eq!(get_with_token(&server, path, roots).await.status(), 200);
    let ops = admin_token(&server).await;
    assert_eq!(get_with_token(&server, path, &ops).await.status(), 200);
    let forged = format!("{ops}x");
    assert_eq!(
        error_of(get_with_token(&server, path, &forged).await).await,
        (401, "invalid_token".into())
    );
}

#[tokio::test]
async fn admins_find_users_and_see_and_end_their_sessions() {
    let server = TestServer::start().await;
    for name in ["alice", "alicia", "bob"] {
        server.add_user(name, &[]);
    }
    let ops = admin_token(&server).await;
    let page: Value = get_with_token(&server, "/admin/v1/users?q=ALI&limit=1", &ops)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["users"][0]["username"], "alice");
    assert_eq!(page["users"][0]["disabled"], false);
    assert_eq!(page["next"], "alice");
    let rest: Value = get_with_token(&server, "/admin/v1/users?q=ali&after=alice", &ops)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["users"].as_array().unwrap().len(), 1);
    assert_eq!(rest["users"][0]["username"], "alicia");
    assert_eq!(rest["next"], Value::Null);
    for bad in ["?limit=0", "?limit=501", "?limit=x", "?after=%20"] {
        let response = get_with_token(&server, &format!("/admin/v1/users{bad}"), &ops).await;
        assert_eq!(error_of(response).await.0, 400, "{bad}");
    }

    let alice_id = server.user_id("alice");
    let one: Value = get_with_token(&server, &format!("/admin/v1/users/{alice_id}"), &ops)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["user"]["username"], "alice");
    for missing in ["not-an-id", "01900000-0000-7000-8000-000000000000"] {
        let response = get_with_token(&server, &format!("/admin/v1/users/{missing}"), &ops).await;
        assert_eq!(error_of(response).await, (404, "not_found".into()));
    }

    let first = server.login("alice").await;
    let second = server.login("alice").await;
    let sessions_path = format!("/admin/v1/users/{alice_id}/sessions");
    let listed: Value = get_with_token(&server, &sessions_path, &ops)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 2);
    let end = server
        .client
        .delete(server.url(&format!("{sessions_path}/{}", first.session_id)))
        .bearer_auth(&ops)
        .send()
        .await
        .unwrap();
    assert_eq!(end.status(), 204);
    assert_eq!(server.session_status(&first).await, 401);
    assert_eq!(server.session_status(&second).await, 200);
    let again = server
        .client
        .delete(server.url(&format!("{sessions_path}/{}", first.session_id)))
        .bearer_auth(&ops)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(again).await.0, 404);

    let keys: Value = get_with_token(&server, "/admin/v1/keys", &ops)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(keys["keys"][0]["state"], "signing");
    assert!(keys["keys"][0].get("d").is_none());
}

async fn kicked_everywhere(
    server: &TestServer,
    rs: &Registered,
    token: &str,
    app: &Registered,
    refresh_token: &str,
) {
    eventually("the kicked user's access token is refused", || async {
        introspect(server, rs, token).await["active"] == false
    })
    .await;
    let response = refresh(server, app, refresh_token, &[]).await;
    assert_eq!(error_of(response).await, (400, "invalid_grant".into()));
}

#[tokio::test]
async fn a_kick_ends_everything_the_user_holds_and_nothing_of_anyone_else() {
    let server = TestServer::start().await;
    server.add_user("root", &["admin"]);
    server.add_user("alice", &[]);
    server.add_user("bob", &[]);
    let app = add_client(
        &server,
        "app",
        &["--grant", "password,refresh_token", "--public"],
    );
    let rs = add_client(
        &server,
        "rs",
        &["--grant", "client_credentials", "--scope", "introspect"],
    );
    let alice_browser = server.login("alice").await;
    let bob_browser = server.login("bob").await;
    let alice = password_grant(&server, &app, "alice").await;
    let bob = password_grant(&server, &app, "bob").await;
    let alice_token = alice["access_token"].as_str().unwrap();
    let bob_token = bob["access_token"].as_str().unwrap();

    let root = server.login("root").await;
    let alice_id = server.user_id("alice");
    let kicked = server
        .unsafe_as(
            Method::POST,
            &format!("/admin/v1/users/{alice_id}/kick"),
            &root,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(kicked.status(), 200);
    let kicked: Value = kicked.json().await.unwrap();
    assert_eq!(kicked["ended_sessions"], 1);
    assert_eq!(kicked["revoked_refresh_tokens"], 1);

    assert_eq!(server.session_status(&alice_browser).await, 401);
    kicked_everywhere(
        &server,
        &rs,
        alice_token,
        &app,
        alice["refresh_token"].as_str().unwrap(),
    )
    .await;
    // Bob keeps everything.
    assert_eq!(server.session_status(&bob_browser).await, 200);
    assert_eq!(introspect(&server, &rs, bob_token).await["active"], true);
    assert_eq!(
        refresh(&server, &app, bob["refresh_token"].as_str().unwrap(), &[])
            .await
            .status(),
        200
    );
    // A kick is not a ban: Alice may log in again.
    let back = server.login("alice").await;
    assert_eq!(server.session_status(&back).await, 200);

    // The same from the command line, for Bob this time.
    let out = server.cli(&["sessions", "kick", "bob", "--json"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(done["ended_sessions"], 1);
    eventually("the CLI's kick reaches the server", || async {
        server.session_status(&bob_browser).await == 401
    })
    .await;
    eventually("Bob's token is refused", || async {
        introspect(&server, &rs, bob_token).await["active"] == false
    })
    .await;
    let out = server.cli(&["sessions", "kick", "nobody"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user"));
}

async fn online(server: &TestServer, token: &str, query: &str) -> Value {
    let response = get_with_token(server, &format!("/admin/v1/online{query}"), token).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn online_counts_users_and_sessions_from_logins_and_refreshes() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    server.add_user("bob", &[]);
    let ops = admin_token(&server).await;
    assert_eq!(
        online(&server, &ops, "").await,
        serde_json::json!({"users": 0, "sessions": 0, "window_seconds": 300})
    );
    let app = add_client(
        &server,
        "app",
        &["--grant", "password,refresh_token", "--public"],
    );
    server.login("alice").await;
    server.login("alice").await;
    password_grant(&server, &app, "bob").await;
    eventually("three sessions of two users are online", || async {
        online(&server, &ops, "?window=60").await
            == serde_json::json!({"users": 2, "sessions": 3, "window_seconds": 60})
    })
    .await;
    for bad in ["?window=0", "?window=86401", "?window=soon"] {
        let response = get_with_token(&server, &format!("/admin/v1/online{bad}"), &ops).await;
        assert_eq!(error_of(response).await.0, 400, "{bad}");
    }
    let out = server.cli(&["online", "--json", "--window", "60"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["users"], 2);
    assert_eq!(printed["sessions"], 3);
}

#[tokio::test]
async fn resource_services_report_the_sessions_they_saw_and_they_count_online() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    server.add_user("root-less", &[]);
    let alice = server.user_id("alice");
    let ops = admin_token(&server).await;
    let feed = crate::feed::feed_token(&server, "revocations").await;
    let report = |token: &str, body: Value| {
        server
            .client
            .post(server.url("/v1/activity"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let sid = || {
        tessera_core::SessionSecret::generate()
            .session_id()
            .as_str()
            .to_owned()
    };
    let (first, second) = (sid(), sid());

    // Refused, and nothing recorded: no token, a token without the scope, bad input.
    let anonymous = server
        .client
        .post(server.url("/v1/activity"))
        .json(&serde_json::json!({"seen": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let unscoped = report(
        &ops,
        serde_json::json!({"seen": [{"sid": first, "sub": alice}]}),
    )
    .await
    .unwrap();
    assert_eq!(error_of(unscoped).await, (403, "insufficient_scope".into()));
    let half_bad = serde_json::json!({"seen": [
        {"sid": first, "sub": alice},
        {"sid": "not-a-session", "sub": alice},
    ]});
    let (status, _) = error_of(report(&feed, half_bad).await.unwrap()).await;
    assert_eq!(status, 400);
    let too_many: Vec<Value> = (0..501)
        .map(|_| serde_json::json!({"sid": sid(), "sub": alice}))
        .collect();
    let response = report(&feed, serde_json::json!({ "seen": too_many }))
        .await
        .unwrap();
    assert_eq!(error_of(response).await.0, 400);
    assert_eq!(online(&server, &ops, "").await["sessions"], 0);

    // Only live sessions of the reported user count: alice's browser session and
    // refresh family do; the invented ones, and hers reported as someone else's,
    // are dropped.
    let browser = server.login("alice").await;
    let app = add_client(
        &server,
        "app",
        &["--grant", "password,refresh_token", "--public"],
    );
    let granted = password_grant(&server, &app, "alice").await;
    let family = crate::tokens::claims_of(granted["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let good = serde_json::json!({"seen": [
        {"sid": first, "sub": alice},
        {"sid": second, "sub": alice},
        {"sid": browser.session_id, "sub": alice},
        {"sid": family, "sub": alice},
        {"sid": family, "sub": server.user_id("root-less")},
    ]});
    assert_eq!(report(&feed, good).await.unwrap().status(), 204);
    eventually("reported sessions count online", || async {
        online(&server, &ops, "").await
            == serde_json::json!({"users": 1, "sessions": 2, "window_seconds": 300})
    })
    .await;
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(r#"tessera_activity_sightings_total{outcome="counted"} 2"#)
            && metrics.contains(r#"tessera_activity_sightings_total{outcome="dropped"} 3"#),
        "{metrics}"
    );
}
