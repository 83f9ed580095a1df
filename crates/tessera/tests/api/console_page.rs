//! `/admin`, the console, end to end through the real binary: as an administrator
//! would use it (forms, redirects) and as an attacker would try it (no admin role,
//! no CSRF token, another site's origin).

use reqwest::header;
use serde_json::Value;

use crate::harness::{Browser, TestServer, error_of};

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
    // The hour's peak of users online, kept as the dashboard read it.
    assert!(
        html.contains(
            "The most users online at once in each of the last 24 hours (UTC): at most 2."
        ),
        "{html}"
    );
    assert!(!html.contains("<script"));
    assert!(html.len() < 50_000, "{} bytes", html.len());

    // Kick alice from her page: her session fails at once, the event names root.
    let alice_id = server.user_id("alice");
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
    // Who did it, by name; and filtered by time (UTC, as the form's inputs send it).
    assert!(page.contains("<td>root</td>"), "{page}");
    let (_, page) = get_page(
        &server,
        "/admin/events?kind=key.retired&since=2000-01-01T00%3A00&until=2999-01-01T00%3A00",
        &root,
    )
    .await;
    assert!(page.contains(&retired_kid), "{page}");
    let (_, page) = get_page(&server, "/admin/events?until=2000-01-01T00%3A00", &root).await;
    assert!(page.contains("No events."), "{page}");
    let (status, page) = get_page(&server, "/admin/events?since=yesterday", &root).await;
    assert_eq!(status, 400, "{page}");
    let log = server.cli(&["events", "--json", "--kind", "user.kicked"], "");
    let event: Value = serde_json::from_slice(&log.stdout).unwrap();
    assert_eq!(event["actor"]["id"], server.user_id("root"));
    assert_eq!(event["address"], "127.0.0.1");
}

#[tokio::test]
async fn the_console_is_for_administrators_and_its_forms_for_its_own_pages() {
    let server = TestServer::start().await;
    server.add_user("root", &["admin"]);
    server.add_user("alice", &[]);
    let alice = server.login("alice").await;
    let root = server.login("root").await;
    let root_id = server.user_id("root");

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

/// The value of the readonly input `id` on a page that shows a secret once.
fn shown(page: &str, id: &str) -> String {
    let at = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {page}"));
    let rest = &page[at..];
    let value = &rest[rest.find("value=\"").unwrap() + 7..];
    value[..value.find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn an_admin_adds_a_client_gives_it_a_new_secret_and_removes_it() {
    use crate::tokens::{Registered, client_credentials};

    let server = TestServer::start().await;
    server.add_user("root", &["admin"]);
    let root = server.login("root").await;
    let (status, html) = get_page(&server, "/admin/clients", &root).await;
    assert_eq!(status, 200);
    assert!(html.contains("Add a client") && html.contains("No client yet."));

    // Refused by the API's own parser: the code flow needs a redirect URI. The
    // form comes back with what was typed.
    let response = post_form(
        &server,
        "/admin/clients",
        &root,
        &[("name", "shop"), ("grant_authorization_code", "on")],
    )
    .await;
    assert_eq!(response.status(), 400);
    let html = response.text().await.unwrap();
    assert!(html.contains("at least one redirect URI"), "{html}");
    assert!(html.contains(r#"value="shop""#), "{html}");

    // From another site: refused, nothing added.
    let response = server
        .client
        .post(server.url("/admin/clients"))
        .header(header::COOKIE, &root.cookie)
        .header(header::ORIGIN, "https://evil.example")
        .form(&[
            ("csrf_token", root.csrf.as_str()),
            ("name", "evil"),
            ("grant_client_credentials", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    let response = post_form(
        &server,
        "/admin/clients",
        &root,
        &[
            ("name", "reports"),
            ("grant_client_credentials", "on"),
            ("scope", "reports.read"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    let html = response.text().await.unwrap();
    let first = Registered {
        id: html
            .split("id=\"client-id\">")
            .nth(1)
            .and_then(|r| r.split('<').next())
            .unwrap()
            .to_owned(),
        secret: Some(shown(&html, "client-secret")),
    };
    assert!(first.secret.as_deref().unwrap().starts_with("tcs_"));
    assert_eq!(client_credentials(&server, &first, &[]).await.status(), 200);
    let (_, html) = get_page(&server, "/admin/clients", &root).await;
    assert!(html.contains("reports") && !html.contains("evil"), "{html}");
    assert!(
        !html.contains(">DPoP<"),
        "reports chose nothing of DPoP: {html}"
    );

    // Ticking "DPoP required": the client gets no token without a proof.
    let response = post_form(
        &server,
        "/admin/clients",
        &root,
        &[
            ("name", "bound"),
            ("grant_client_credentials", "on"),
            ("dpop_bound_access_tokens", "on"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    let bound = Registered {
        id: html
            .split("id=\"client-id\">")
            .nth(1)
            .and_then(|r| r.split('<').next())
            .unwrap()
            .to_owned(),
        secret: Some(shown(&html, "client-secret")),
    };
    assert_eq!(
        error_of(client_credentials(&server, &bound, &[]).await).await,
        (400, "invalid_dpop_proof".to_owned())
    );
    let (_, html) = get_page(&server, "/admin/clients", &root).await;
    assert!(html.contains(">DPoP<"), "the list says so: {html}");
    assert!(
        !html.contains(first.secret.as_deref().unwrap()),
        "the list shows no secret"
    );

    // A new secret: the old one stops working at once.
    let response = post_form(
        &server,
        &format!("/admin/clients/{}/secret", first.id),
        &root,
        &[],
    )
    .await;
    assert_eq!(response.status(), 200);
    let second = Registered {
        id: first.id.clone(),
        secret: Some(shown(&response.text().await.unwrap(), "client-secret")),
    };
    assert_ne!(second.secret, first.secret);
    assert_eq!(client_credentials(&server, &first, &[]).await.status(), 401);
    assert_eq!(
        client_credentials(&server, &second, &[]).await.status(),
        200
    );

    // The CLI and the API rotate the same way; a public client has no secret.
    let out = server.cli(&["client", "rotate-secret", "reports", "--json"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotated: Value = serde_json::from_slice(&out.stdout).unwrap();
    let third = Registered {
        id: first.id.clone(),
        secret: rotated["client_secret"].as_str().map(str::to_owned),
    };
    assert_eq!(
        client_credentials(&server, &second, &[]).await.status(),
        401
    );
    assert_eq!(client_credentials(&server, &third, &[]).await.status(), 200);
    let spa = crate::tokens::add_client(
        &server,
        "spa",
        &[
            "--public",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            "https://spa.example/cb",
        ],
    );
    let response = post_form(
        &server,
        &format!("/admin/clients/{}/secret", spa.id),
        &root,
        &[],
    )
    .await;
    assert_eq!(response.status(), 409);

    // Removed: every token it had is refused, and it is gone from the list.
    let response = post_form(
        &server,
        &format!("/admin/clients/{}/remove", first.id),
        &root,
        &[],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/admin/clients?notice=client-removed");
    assert_eq!(client_credentials(&server, &third, &[]).await.status(), 401);
    let (_, html) = get_page(&server, "/admin/clients?notice=client-removed", &root).await;
    assert!(!html.contains("reports"), "{html}");
    assert!(html.contains("The client is removed"), "{html}");

    let out = server.cli(&["events", "--json", "--kind", "client.secret_rotated"], "");
    let log = String::from_utf8_lossy(&out.stdout);
    assert_eq!(log.matches("client.secret_rotated").count(), 2, "{log}");
}
