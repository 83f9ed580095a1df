//! The behaviour every backend must show, as one suite each backend's tests call
//! with a fresh, empty store: `conformance::run(&store).await`.
//!
//! It panics on the first deviation, like an assertion in a test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tessera_core::{CsrfToken, Role, Roles, SessionSecret, Timestamp, UserId, Username};

use crate::{
    AccountStore, CreateSessionError, CreateUserError, EndReason, NewSession, NewUser,
    RevocationLog, SessionStore,
};

pub async fn run<S>(store: &S)
where
    S: AccountStore + SessionStore + RevocationLog,
{
    accounts(store).await;
    sessions(store).await;
    ending_sessions_is_logged(store).await;
    expiry(store).await;
}

fn name(s: &str) -> Username {
    Username::parse(s).unwrap()
}

async fn add_user<S: AccountStore>(store: &S, username: &str) -> crate::User {
    store
        .create_user(NewUser {
            id: UserId::generate(),
            username: name(username),
            password_hash: format!("$argon2id$fake${username}"),
            roles: Roles::default(),
            created_at: Timestamp::now(),
        })
        .await
        .unwrap()
}

fn new_session(user: UserId, now: Timestamp) -> (SessionSecret, NewSession) {
    let secret = SessionSecret::generate();
    let session = NewSession {
        id: secret.session_id(),
        secret_hash: secret.hash(),
        user_id: user,
        csrf_token: CsrfToken::generate(),
        created_at: now,
        expires_at: now.saturating_add(Duration::from_secs(3600)),
        client_address: Some("127.0.0.1".into()),
        user_agent: Some("conformance".into()),
    };
    (secret, session)
}

async fn accounts<S: AccountStore>(store: &S) {
    let alice = store
        .create_user(NewUser {
            id: UserId::generate(),
            username: name("alice"),
            password_hash: "$argon2id$v=19$first".into(),
            roles: Roles::new(vec![Role::Admin]),
            created_at: Timestamp::now(),
        })
        .await
        .unwrap();
    assert!(alice.roles.contains(Role::Admin));
    assert!(!alice.disabled);

    let duplicate = store
        .create_user(NewUser {
            id: UserId::generate(),
            username: name("ALICE"),
            password_hash: "x".into(),
            roles: Roles::default(),
            created_at: Timestamp::now(),
        })
        .await;
    assert!(matches!(duplicate, Err(CreateUserError::UsernameTaken)));

    let creds = store
        .user_credentials(&name("alice"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(creds.user, alice);
    assert_eq!(creds.password_hash, "$argon2id$v=19$first");
    assert!(
        store
            .user_credentials(&name("nobody"))
            .await
            .unwrap()
            .is_none()
    );

    // a stale "previous" hash must not overwrite a newer one
    store
        .replace_password_hash(alice.id, "stale", "$argon2id$v=19$lost")
        .await
        .unwrap();
    store
        .replace_password_hash(alice.id, "$argon2id$v=19$first", "$argon2id$v=19$second")
        .await
        .unwrap();
    let creds = store
        .user_credentials(&name("alice"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(creds.password_hash, "$argon2id$v=19$second");

    add_user(store, "bob").await;
    let users = store.list_users().await.unwrap();
    let names: Vec<_> = users.iter().map(|u| u.username.as_str()).collect();
    assert!(names.contains(&"alice") && names.contains(&"bob"));

    let disabled = store.disable_user(&name("bob")).await.unwrap().unwrap();
    assert!(disabled.disabled);
    assert!(store.disable_user(&name("nobody")).await.unwrap().is_none());
}

async fn sessions<S: AccountStore + SessionStore>(store: &S) {
    let carol = add_user(store, "carol").await;
    let now = Timestamp::now();
    let (secret, session) = new_session(carol.id, now);
    store.create_session(session).await.unwrap();

    let found = store.session(&secret.session_id()).await.unwrap().unwrap();
    assert!(found.secret_hash.matches(&secret.hash()));
    assert_eq!(found.user, carol);
    assert_eq!(found.last_seen_at, now);
    assert_eq!(found.client_address.as_deref(), Some("127.0.0.1"));

    let later = now.saturating_add(Duration::from_secs(90));
    store
        .touch_sessions(&[(secret.session_id(), later)])
        .await
        .unwrap();
    let found = store.session(&secret.session_id()).await.unwrap().unwrap();
    assert_eq!(found.last_seen_at, later);

    let (_, second) = new_session(carol.id, now);
    store.create_session(second).await.unwrap();
    assert_eq!(store.sessions_of_user(carol.id).await.unwrap().len(), 2);

    // a disabled user gets no new session, however the race with login falls
    let dave = add_user(store, "dave").await;
    store.disable_user(&name("dave")).await.unwrap();
    let (_, refused) = new_session(dave.id, now);
    assert!(matches!(
        store.create_session(refused).await,
        Err(CreateSessionError::UserDisabled)
    ));
}

async fn ending_sessions_is_logged<S: AccountStore + SessionStore + RevocationLog>(store: &S) {
    let erin = add_user(store, "erin").await;
    let frank = add_user(store, "frank").await;
    let now = Timestamp::now();
    let start = store.latest_revocation().await.unwrap();

    let (a, session_a) = new_session(erin.id, now);
    let (b, session_b) = new_session(erin.id, now);
    let (c, session_c) = new_session(erin.id, now);
    let (f, session_f) = new_session(frank.id, now);
    for s in [session_a, session_b, session_c, session_f] {
        store.create_session(s).await.unwrap();
    }

    // another user's session cannot be ended by id
    assert!(
        !store
            .end_session(erin.id, &f.session_id(), EndReason::Deleted, now)
            .await
            .unwrap()
    );
    assert!(
        store
            .end_session(erin.id, &a.session_id(), EndReason::Logout, now)
            .await
            .unwrap()
    );
    assert!(store.session(&a.session_id()).await.unwrap().is_none());
    assert!(
        !store
            .end_session(erin.id, &a.session_id(), EndReason::Logout, now)
            .await
            .unwrap()
    );

    let ended = store
        .end_sessions_of_user(erin.id, Some(&c.session_id()), EndReason::Deleted, now)
        .await
        .unwrap();
    assert_eq!(ended, vec![b.session_id()]);
    assert!(store.session(&c.session_id()).await.unwrap().is_some());
    assert!(store.session(&f.session_id()).await.unwrap().is_some());

    let log = store.revocations_after(start, 100).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].session, a.session_id());
    assert_eq!(log[0].reason, EndReason::Logout);
    assert_eq!(log[1].session, b.session_id());
    assert!(log[0].sequence > start && log[1].sequence > log[0].sequence);
    assert_eq!(store.latest_revocation().await.unwrap(), log[1].sequence);
    assert_eq!(
        store.revocations_after(log[0].sequence, 100).await.unwrap(),
        vec![log[1].clone()]
    );
    assert_eq!(store.revocations_after(start, 1).await.unwrap().len(), 1);
}

async fn expiry<S: AccountStore + SessionStore>(store: &S) {
    let grace = add_user(store, "grace").await;
    let now = Timestamp::now();
    let (fresh, fresh_session) = new_session(grace.id, now);
    let (idle, mut idle_session) = new_session(grace.id, now);
    idle_session.created_at = now.saturating_sub(Duration::from_secs(7200));
    let (old, mut old_session) = new_session(grace.id, now);
    old_session.expires_at = now.saturating_sub(Duration::from_secs(1));
    for s in [fresh_session, idle_session, old_session] {
        store.create_session(s).await.unwrap();
    }
    let idle_cutoff = now.saturating_sub(Duration::from_secs(3600));
    let before = store.count_live_sessions(now, idle_cutoff).await.unwrap();
    let purged = store.purge_expired(now, idle_cutoff).await.unwrap();
    assert!(purged >= 2, "purged {purged}");
    assert!(store.session(&idle.session_id()).await.unwrap().is_none());
    assert!(store.session(&old.session_id()).await.unwrap().is_none());
    assert!(store.session(&fresh.session_id()).await.unwrap().is_some());
    assert_eq!(
        store.count_live_sessions(now, idle_cutoff).await.unwrap(),
        before
    );
}
