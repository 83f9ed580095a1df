use reqwest::Method;
use serde_json::Value;

use crate::harness::*;

#[tokio::test]
async fn logout_ends_the_session_and_clears_the_cookie() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let browser = server.login("alice").await;
    let other = server.login("alice").await;
    let response = server
        .unsafe_as(Method::POST, "/v1/logout", &browser)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let cleared = session_set_cookie(&response).unwrap().to_ascii_lowercase();
    assert!(cleared.starts_with("__host-tessera-session=;"), "{cleared}");
    assert!(cleared.contains("max-age=0"), "{cleared}");
    assert_eq!(server.session_status(&browser).await, 401);
    // logging out again: there is no session any more
    let again = server
        .unsafe_as(Method::POST, "/v1/logout", &browser)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401);
    // the user's other session lives on
    assert_eq!(server.session_status(&other).await, 200);
}

#[tokio::test]
async fn listing_marks_the_current_session() {
    let server = TestServer::start().await;
    server.add_user("bob", &[]);
    let laptop = server.login("bob").await;
    let phone = server.login("bob").await;
    let listed: Value = server
        .get_as("/v1/sessions", &phone)
        .await
        .json()
        .await
        .unwrap();
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    for session in sessions {
        let is_phone = session["id"] == phone.session_id.as_str();
        assert_eq!(session["current"], is_phone);
        assert_eq!(session["client_address"], "127.0.0.1");
        assert!(session["user_agent"].is_string() || session["user_agent"].is_null());
        assert!(session["last_seen_at"].is_string());
        assert!(session.get("secret_hash").is_none() && session.get("csrf_token").is_none());
    }
    assert!(
        sessions
            .iter()
            .any(|s| s["id"] == laptop.session_id.as_str())
    );
    let unauthenticated = server
        .client
        .get(server.url("/v1/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
}

#[tokio::test]
async fn deleting_one_session_by_id() {
    let server = TestServer::start().await;
    server.add_user("carol", &[]);
    server.add_user("mallory", &[]);
    let laptop = server.login("carol").await;
    let phone = server.login("carol").await;
    let mallory = server.login("mallory").await;

    let path = format!("/v1/sessions/{}", laptop.session_id);
    let response = server
        .unsafe_as(Method::DELETE, &path, &phone)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(server.session_status(&laptop).await, 401);
    assert_eq!(server.session_status(&phone).await, 200);

    // gone already, malformed, or someone else's: all the same 404
    let someone_elses = format!("/v1/sessions/{}", phone.session_id);
    for path in [
        path.as_str(),
        "/v1/sessions/not-an-id",
        someone_elses.as_str(),
    ] {
        let who = if path == someone_elses {
            &mallory
        } else {
            &phone
        };
        let response = server
            .unsafe_as(Method::DELETE, path, who)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(response).await,
            (404, "not_found".into()),
            "{path}"
        );
    }
    assert_eq!(server.session_status(&phone).await, 200);

    // deleting the current session by id logs out and clears the cookie
    let own = format!("/v1/sessions/{}", phone.session_id);
    let response = server
        .unsafe_as(Method::DELETE, &own, &phone)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(session_set_cookie(&response).unwrap().contains("Max-Age=0"));
    assert_eq!(server.session_status(&phone).await, 401);
}

#[tokio::test]
async fn deleting_all_other_sessions() {
    let server = TestServer::start().await;
    server.add_user("dave", &[]);
    server.add_user("erin", &[]);
    let keep = server.login("dave").await;
    let others = [server.login("dave").await, server.login("dave").await];
    let bystander = server.login("erin").await;
    let response = server
        .unsafe_as(Method::DELETE, "/v1/sessions", &keep)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["ended"], 2);
    for other in &others {
        assert_eq!(server.session_status(other).await, 401);
    }
    assert_eq!(server.session_status(&keep).await, 200);
    assert_eq!(server.session_status(&bystander).await, 200);
}

#[tokio::test]
async fn idle_sessions_expire_and_activity_keeps_them() {
    let server = TestServer::start_with(&[("TESSERA_SESSION__IDLE_TIMEOUT", "3s")]).await;
    server.add_user("frank", &[]);
    let idle = server.login("frank").await;
    let busy = server.login("frank").await;
    for _ in 0..5 {
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        assert_eq!(server.session_status(&busy).await, 200);
    }
    assert_eq!(server.session_status(&idle).await, 401);
}

#[tokio::test]
async fn sessions_end_at_their_absolute_lifetime_however_active() {
    let server = TestServer::start_with(&[("TESSERA_SESSION__ABSOLUTE_LIFETIME", "2s")]).await;
    server.add_user("grace", &[]);
    let browser = server.login("grace").await;
    assert_eq!(server.session_status(&browser).await, 200);
    eventually("the session ends at its absolute lifetime", || async {
        server.session_status(&browser).await == 401
    })
    .await;
}
