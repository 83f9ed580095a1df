use std::io::Read;

use base64::Engine;

use crate::harness::*;

#[tokio::test]
async fn accounts_and_sessions_survive_kill_9() {
    let mut server = TestServer::start_with(REGISTRATION_OPEN).await;
    server.add_user("alice", &[]);
    let registered = server
        .post_json(
            "/v1/users",
            serde_json::json!({"username": "bob", "password": PASSWORD}),
        )
        .await;
    assert_eq!(registered.status(), 201);
    let alice = server.login("alice").await;
    let bob = server.login("bob").await;
    let ended = server.login("bob").await;
    let logout = server
        .unsafe_as(reqwest::Method::POST, "/v1/logout", &ended)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);

    server.kill_and_restart();

    assert_eq!(server.session_status(&alice).await, 200);
    assert_eq!(server.session_status(&bob).await, 200);
    assert_eq!(
        server.session_status(&ended).await,
        401,
        "a logout is durable too"
    );
    server.login("bob").await;
}

#[tokio::test]
async fn the_raw_session_secret_is_nowhere_in_the_data_dir() {
    let mut server = TestServer::start_with(REGISTRATION_OPEN).await;
    server.add_user("carol", &[]);
    let browser = server.login("carol").await;
    let secret = browser.cookie.split_once('=').unwrap().1.to_owned();
    let encoded = secret.strip_prefix("tss_").unwrap().to_owned();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&encoded)
        .unwrap();
    // stop the server so every page is on disk, WAL included
    server.kill_and_restart();
    let files = files_under(server.data_dir());
    assert!(!files.is_empty());
    for file in files {
        let mut bytes = Vec::new();
        std::fs::File::open(&file)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        for needle in [secret.as_bytes(), encoded.as_bytes(), &raw[..]] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "the session secret is stored in {}",
                file.display()
            );
        }
    }
    assert_eq!(server.session_status(&browser).await, 200);
}
