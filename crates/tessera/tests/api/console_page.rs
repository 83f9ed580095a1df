//! `/admin`, the console, end to end through the real binary: as an administrator
//! would use it (forms, redirects) and as an attacker would try it (no admin role,
//! no CSRF token, another site's origin).

use reqwest::header;
use serde_json::Value;

use crate::harness::{Browser, TestServer};

async fn get_page(server: &TestServer, path: &str, browser: &Browser) -> (u16, String) {
    let response = server.get_as(path, browser).await;
    (response.status().as_u16(), response.text().await.unwrap())
}

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

fn location(response: &reqwest::Response) -> String {
    response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned()
}

fn user_id(server: &TestServer, name: &str) -> String {
    let out = server.cli(&["user", "list", "--json"], "");
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    listed["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"]["username"] == name)
        .map(|u| u["user"]["id"].as_str().unwrap().to_owned())
        .unwrap()
}

#[tokio::test]
async fn an_admin_sees_who_is_online_kicks_a_user_and_rotates_a_key() {
    let server = TestServer::start().await;
    server.add_user("root", &["admin"]);
    server.add_user("alice", &[]);
    let alice = server.login("alice").await;
    assert_eq!(
        server.try_login("alice", "wrong password!").await.status(),
        401
    );
    let root = server.login("root").await;

    // Sightings reach the store a moment after the sign-ins.
    crate::harness::eventually("both users count as online", || async {
        get_page(&server, "/admin", &root)
            .await
            .1
            .contains(r#"<p class="figure" id="online-users">2</p>"#)
    })
    .await;
    let (status, html) = get_page(&server, "/admin", &root).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("<svg class=\"chart\""),
        "the chart is drawn here"
    );
    assert!(html.contains("2 succeeded and 1 failed"), "{html}");
    assert!(!html.contains("<script"));
    assert!(html.len() < 50_000, "{} bytes", html.len());

    // Kick alice from her page: her session fails at once, the event names root.
    let alice_id = user_id(&server, "alice");
    let (_, page) = get_page(&server, &format!("/admin/users/{alice_id}"), &root).await;
    assert!(page.contains("Sessions (1)"), "{page}");
    let kicked = post_form(
        &server,
        &format!("/admin/users/{alice_id}/kick"),
        &root,
        &[],
    )
    .await;
    assert_eq!(kicked.status(), 303);
    assert_eq!(
        location(&kicked),
        format!("/admin/users/{alice_id}?notice=kicked")
    );
    assert_eq!(server.session_status(&alice).await, 401);
    let (_, page) = get_page(&server, &location(&kicked), &root).await;
    assert!(
        page.contains("Kicked:") && page.contains("Sessions (0)"),
        "{page}"
    );
    let disabled = post_form(
        &server,
        &format!("/admin/users/{alice_id}/disable"),
        &root,
        &[],
    )
    .await;
    assert_eq!(disabled.status(), 303);
    assert_eq!(
        server
            .try_login("alice", crate::harness::PASSWORD)
            .await
            .status(),
        403
    );
    let enabled = post_form(
        &server,
        &format!("/admin/users/{alice_id}/enable"),
        &root,
        &[],
    )
    .await;
    assert_eq!(enabled.status(), 303);
    assert_eq!(
        server
            .try_login("alice", crate::harness::PASSWORD)
            .await
            .status(),
        200
    );

    // Users: search.
    let (_, page) = get_page(&server, "/admin/users?q=ALI", &root).await;
    assert!(
        page.contains("<strong>alice</strong>") && !page.contains("<strong>root</strong>"),
        "{page}"
    );

    // Keys: rotate one in, retire one out.
    let before: Value = server
        .client
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rotated = post_form(
        &server,
        "/admin/keys/rotate",
        &root,
        &[("alg", "ES256"), ("now", "yes")],
    )
    .await;
    assert_eq!(location(&rotated), "/admin/keys?notice=rotated");
    let after: Value = server
        .client
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        after["keys"].as_array().unwrap().len(),
        before["keys"].as_array().unwrap().len() + 1
    );
    let retired_kid = before["keys"][0]["kid"].as_str().unwrap().to_owned();
    let retired = post_form(
        &server,
        "/admin/keys/retire",
        &root,
        &[("kid", &retired_kid)],
    )
    .await;
    assert_eq!(location(&retired), "/admin/keys?notice=retired");
    let (_, page) = get_page(&server, "/admin/keys", &root).await;
    assert!(page.contains("retired"), "{page}");
    let bad = post_form(&server, "/admin/keys/rotate", &root, &[("alg", "HS256")]).await;
    assert_eq!(bad.status(), 400);
    let gone = post_form(
        &server,
        "/admin/keys/retire",
        &root,
        &[("kid", "no-such-key")],
    )
    .await;
    assert_eq!(gone.status(), 404);

    // Events: each action is there, by root, from the console.
    let (_, page) = get_page(&server, "/admin/events?user=alice", &root).await;
    for kind in ["user.kicked", "user.disabled", "user.enabled", "login"] {
        assert!(page.contains(&format!("<td>{kind}")), "{kind}: {page}");
    }
    let (_, page) = get_page(&server, "/admin/events?kind=key.retired", &root).await;
    assert!(
        page.contains(&retired_kid) && !page.contains("<td>user.kicked"),
        "{page}"
    );
    let log = server.cli(&["events", "--json", "--kind", "user.kicked"], "");
    let event: Value = serde_json::from_slice(&log.stdout).unwrap();
    assert_eq!(event["actor"]["id"], user_id(&server, "root"));
    assert_eq!(event["address"], "127.0.0.1");
}

#[tokio::test]
async fn the_console_is_for_administrators_and_its_forms_for_its_own_pages() {
    let server = TestServer::start().await;
    server.add_user("root", &["admin"]);
    server.add_user("alice", &[]);
    let alice = server.login("alice").await;
    let root = server.login("root").await;
    let root_id = user_id(&server, "root");

    let anonymous = server
        .client
        .get(server.url("/admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 303);
    assert_eq!(location(&anonymous), "/login?return_to=%2Fadmin");
    for path in ["/admin", "/admin/users", "/admin/keys", "/admin/events"] {
        let (status, page) = get_page(&server, path, &alice).await;
        assert_eq!(status, 403, "{path}");
        assert!(page.contains("is not one"), "{page}");
    }
    // alice, with her own valid form, tries to kick root: refused, root stays.
    let attempt = post_form(
        &server,
        &format!("/admin/users/{root_id}/kick"),
        &alice,
        &[],
    )
    .await;
    assert_eq!(attempt.status(), 403);
    assert_eq!(server.session_status(&root).await, 200);
    // root's cookie without the CSRF token, or with alice's; from another site.
    let wrong = Browser {
        csrf: alice.csrf.clone(),
        ..root.clone()
    };
    let refused = post_form(
        &server,
        &format!("/admin/users/{root_id}/kick"),
        &wrong,
        &[],
    )
    .await;
    assert_eq!(refused.status(), 403);
    let foreign = server
        .client
        .post(server.url(&format!("/admin/users/{root_id}/kick")))
        .header(header::COOKIE, &root.cookie)
        .header(header::ORIGIN, "https://evil.example")
        .form(&[("csrf_token", root.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    let missing = server
        .client
        .post(server.url(&format!("/admin/users/{root_id}/kick")))
        .header(header::COOKIE, &root.cookie)
        .send()
        .await
        .unwrap();
    assert!(missing.status().is_client_error());
    assert_eq!(server.session_status(&root).await, 200, "nothing was done");
    // Junk in the path: a page with the reason.
    let junk = post_form(&server, "/admin/users/not-an-id/kick", &root, &[]).await;
    assert_eq!(junk.status(), 404);
    let junk = post_form(
        &server,
        &format!("/admin/users/{root_id}/explode"),
        &root,
        &[],
    )
    .await;
    assert_eq!(junk.status(), 404);
    let (status, _) = get_page(&server, "/admin/users/not-an-id", &root).await;
    assert_eq!(status, 404);
    let (status, _) = get_page(&server, "/admin/events?kind=nope&before=x", &root).await;
    assert_eq!(status, 200, "a filter that is not one filters nothing out");
}
