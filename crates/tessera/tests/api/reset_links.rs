//! Password-reset links and roles, end to end through the real binary: issued by
//! the CLI, the admin API and the console, used in `/reset` as a person would, and
//! refused the ways an attacker would try them (a replay, a superseded link, a
//! made-up or foreign secret, another site's form, a disabled account).

use reqwest::header;
use serde_json::{Value, json};

use crate::admin::admin_token;
use crate::harness::{Browser, PASSWORD, TestServer, error_of};

const NEW_PASSWORD: &str = "a brand new passphrase";

fn issue_with_cli(server: &TestServer, name: &str) -> String {
    let out = server.cli(&["user", "reset-link", name, "--json"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let issued: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(issued["user"]["username"], name);
    assert!(issued["expires_at"].is_string() || issued["expires_at"].is_number());
    issued["url"].as_str().unwrap().to_owned()
}

/// The link's secret, as the page's query carries it.
fn token_of(url: &str) -> String {
    let (_, token) = url.split_once("?token=").expect("a token in the link");
    token.to_owned()
}

async fn open(server: &TestServer, token: &str) -> (u16, String) {
    let response = server
        .client
        .get(server.url("/reset"))
        .query(&[("token", token)])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn submit(
    server: &TestServer,
    origin: &str,
    token: &str,
    password: &str,
    confirm: &str,
) -> (u16, String) {
    let response = server
        .client
        .post(server.url("/reset"))
        .header(header::ORIGIN, origin)
        .form(&[
            ("token", token),
            ("password", password),
            ("confirm", confirm),
        ])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn a_reset_link_sets_a_new_password_once_and_signs_the_account_out_everywhere() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let laptop: Browser = server.login("alice").await;

    let url = issue_with_cli(&server, "alice");
    // On the configured public URL (the CLI does not know the test's port).
    assert!(url.contains("/reset?token=tpr_"), "{url}");
    let token = token_of(&url);

    let response = server
        .client
        .get(server.url("/reset"))
        .query(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    let page = response.text().await.unwrap();
    assert!(page.contains("<strong>alice</strong>"), "{page}");
    assert!(!page.contains("<script"));

    let (status, page) = submit(&server, &server.base, &token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Password changed"), "{page}");
    assert!(page.contains("/login?login_hint=alice"), "{page}");

    // Whoever knew the old password is out, and it no longer works.
    assert_eq!(server.session_status(&laptop).await, 401);
    assert_eq!(server.try_login("alice", PASSWORD).await.status(), 401);
    assert_eq!(server.try_login("alice", NEW_PASSWORD).await.status(), 200);

    // Once only.
    let (status, page) = submit(
        &server,
        &server.base,
        &token,
        "yet another one!",
        "yet another one!",
    )
    .await;
    assert_eq!(status, 404, "{page}");
    assert!(page.contains("This link does not work"), "{page}");
    assert_eq!(open(&server, &token).await.0, 404);
    assert_eq!(server.try_login("alice", NEW_PASSWORD).await.status(), 200);

    // The audit log says who issued it and that it was used, and holds no secret.
    let out = server.cli(&["events", "--json", "--user", "alice"], "");
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("reset_link.issued"), "{log}");
    assert!(log.contains("reset_link.used"), "{log}");
    assert!(!log.contains(&token[4..]), "the secret is in the audit log");
}

#[tokio::test]
async fn reset_links_are_refused_the_way_an_attacker_would_try_them() {
    let server = TestServer::start().await;
    server.add_user("bob", &[]);

    // Made up, of another kind, mangled, missing: one answer, no form.
    let made_up = format!("tpr_{}", "A".repeat(43));
    let session_secret = format!("tss_{}", "A".repeat(43));
    for token in [
        made_up.as_str(),
        &session_secret,
        "tpr_",
        "tpr_%00",
        "",
        "../admin",
    ] {
        let (status, page) = open(&server, token).await;
        assert_eq!(status, 404, "{token:?}: {page}");
        assert!(!page.contains("name=\"password\""), "{token:?}");
        let (status, _) = submit(&server, &server.base, token, NEW_PASSWORD, NEW_PASSWORD).await;
        assert_eq!(status, 404, "{token:?}");
    }
    let response = server
        .client
        .get(server.url("/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    // A newer link replaces the older one.
    let first = token_of(&issue_with_cli(&server, "bob"));
    let second = token_of(&issue_with_cli(&server, "bob"));
    assert_eq!(open(&server, &first).await.0, 404);
    assert_eq!(open(&server, &second).await.0, 200);

    // Another site's form, two passwords that differ, a short one: refused, and the
    // link still works afterwards.
    let (status, page) = submit(
        &server,
        "https://evil.example",
        &second,
        NEW_PASSWORD,
        NEW_PASSWORD,
    )
    .await;
    assert_eq!(status, 403, "{page}");
    let (status, page) = submit(
        &server,
        &server.base,
        &second,
        NEW_PASSWORD,
        "something else!",
    )
    .await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("not the same"), "{page}");
    let (status, page) = submit(&server, &server.base, &second, "short", "short").await;
    assert_eq!(status, 400, "{page}");
    assert_eq!(server.try_login("bob", PASSWORD).await.status(), 200);
    assert_eq!(open(&server, &second).await.0, 200);

    // A disabled account gets no link.
    assert!(server.cli(&["user", "disable", "bob"], "").status.success());
    let out = server.cli(&["user", "reset-link", "bob"], "");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("disabled"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = server.cli(&["user", "reset-link", "nobody"], "");
    assert!(!out.status.success());
}

#[tokio::test]
async fn admins_issue_links_and_set_roles_over_the_api_and_in_the_console() {
    let server = TestServer::start().await;
    server.add_user("root", &["admin"]);
    server.add_user("carol", &[]);
    let carol = server.user_id("carol");
    let ops = admin_token(&server).await;

    // The API: a link, shown once; nobody else may ask for one.
    let response = server
        .client
        .post(server.url(&format!("/admin/v1/users/{carol}/reset-link")))
        .bearer_auth(&ops)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let issued: Value = response.json().await.unwrap();
    assert!(
        issued["url"]
            .as_str()
            .unwrap()
            .contains("/reset?token=tpr_")
    );
    let carol_session = server.login("carol").await;
    let response = server
        .client
        .post(server.url(&format!("/admin/v1/users/{carol}/reset-link")))
        .header(header::COOKIE, &carol_session.cookie)
        .header("x-csrf-token", &carol_session.csrf)
        .send()
        .await
        .unwrap();
    assert!(matches!(response.status().as_u16(), 401 | 403));

    // Roles: given, then taken away, which ends what carol holds.
    let put_roles = |roles: Value| {
        server
            .client
            .put(server.url(&format!("/admin/v1/users/{carol}/roles")))
            .bearer_auth(&ops)
            .json(&json!({ "roles": roles }))
            .send()
    };
    let response = put_roles(json!(["admin"])).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["roles"], json!(["admin"]));
    assert_eq!(body["ended_sessions"], 0);
    assert_eq!(server.session_status(&carol_session).await, 200);
    let (status, error) = error_of(put_roles(json!(["root"])).await.unwrap()).await;
    assert_eq!((status, error.as_str()), (400, "invalid_request"));
    let body: Value = put_roles(json!([])).await.unwrap().json().await.unwrap();
    assert_eq!(body["user"]["roles"], json!([]));
    assert_eq!(body["ended_sessions"], 1);
    assert_eq!(server.session_status(&carol_session).await, 401);

    // The console: the same two things, as forms.
    let root = server.login("root").await;
    let post = |path: String, fields: Vec<(&'static str, String)>, origin: String| {
        let mut form = fields;
        form.push(("csrf_token", root.csrf.clone()));
        server
            .client
            .post(server.url(&path))
            .header(header::COOKIE, &root.cookie)
            .header(header::ORIGIN, origin)
            .form(&form)
            .send()
    };
    let response = post(
        format!("/admin/users/{carol}/reset-link"),
        vec![],
        server.base.clone(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains("/reset?token=tpr_"), "{page}");
    let token = page
        .split("/reset?token=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    assert_eq!(open(&server, &token).await.0, 200);
    let response = post(
        format!("/admin/users/{carol}/reset-link"),
        vec![],
        "https://evil.example".into(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        open(&server, &token).await.0,
        200,
        "a refused form issued no link"
    );

    let response = post(
        format!("/admin/users/{carol}/roles"),
        vec![("role_admin", "on".into())],
        server.base.clone(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 303);
    let out = server.cli(&["user", "list", "--json"], "");
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let roles = listed["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"]["username"] == "carol")
        .map(|u| u["user"]["roles"].clone())
        .unwrap();
    assert_eq!(roles, json!(["admin"]));

    // And the CLI.
    let out = server.cli(&["user", "roles", "carol", "--json"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["user"]["roles"], json!([]));
    let out = server.cli(&["events", "--json", "--kind", "user.roles_changed"], "");
    let log = String::from_utf8_lossy(&out.stdout);
    assert_eq!(log.matches("user.roles_changed").count(), 4, "{log}");
}

/// What a signed-in user without the admin role would try: make herself an
/// admin, or get a reset link for the admin's account (a takeover), or a new
/// secret for someone's client; over the API with her own valid CSRF token, and
/// through the console's forms with her own valid form. All refused, nothing
/// changed, nothing issued.
#[tokio::test]
async fn a_user_cannot_promote_herself_or_take_over_another_account() {
    let server = TestServer::start().await;
    server.add_user("root", &["admin"]);
    server.add_user("mallory", &[]);
    let (root_id, mallory_id) = (server.user_id("root"), server.user_id("mallory"));
    let service = crate::tokens::add_client(&server, "service", &["--grant", "client_credentials"]);
    let mallory = server.login("mallory").await;

    let roles = server
        .unsafe_as(
            reqwest::Method::PUT,
            &format!("/admin/v1/users/{mallory_id}/roles"),
            &mallory,
        )
        .json(&json!({ "roles": ["admin"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(roles).await, (403, "forbidden".into()));
    for path in [
        format!("/admin/v1/users/{root_id}/reset-link"),
        format!("/admin/v1/clients/{}/secret", service.id),
    ] {
        let refused = server
            .unsafe_as(reqwest::Method::POST, &path, &mallory)
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(refused).await, (403, "forbidden".into()), "{path}");
    }

    let form = |path: String, fields: Vec<(&'static str, &'static str)>| {
        let mut form = fields;
        form.push(("csrf_token", mallory.csrf.as_str()));
        server
            .client
            .post(server.url(&path))
            .header(header::COOKIE, &mallory.cookie)
            .header(header::ORIGIN, &server.base)
            .form(&form)
            .send()
    };
    for (path, fields) in [
        (
            format!("/admin/users/{mallory_id}/roles"),
            vec![("role_admin", "on")],
        ),
        (format!("/admin/users/{root_id}/reset-link"), vec![]),
        (format!("/admin/clients/{}/secret", service.id), vec![]),
        (
            "/admin/clients".to_owned(),
            vec![("name", "mine"), ("grant_client_credentials", "on")],
        ),
    ] {
        let response = form(path.clone(), fields).await.unwrap();
        assert_eq!(response.status(), 403, "{path}");
        let page = response.text().await.unwrap();
        assert!(
            !page.contains("tpr_") && !page.contains("tcs_"),
            "{path}: {page}"
        );
    }

    // Nothing changed: mallory has no role, root no link, the service its secret.
    let out = server.cli(&["user", "list", "--json"], "");
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mallory_roles = listed["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"]["username"] == "mallory")
        .map(|u| u["user"]["roles"].clone())
        .unwrap();
    assert_eq!(mallory_roles, json!([]));
    assert_eq!(
        crate::tokens::client_credentials(&server, &service, &[])
            .await
            .status(),
        200
    );
    let out = server.cli(&["events", "--json"], "");
    let log = String::from_utf8_lossy(&out.stdout);
    for kind in [
        "reset_link.issued",
        "user.roles_changed",
        "client.secret_rotated",
    ] {
        assert!(!log.contains(kind), "{kind}: {log}");
    }
    assert_eq!(
        log.matches("client.added").count(),
        1,
        "only the operator's: {log}"
    );
}
