//! Redis restarting and going away: what the append-only file keeps, calls that fail
//! quickly instead of hanging, and the same store working again afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_core::{
    AccessTokenSecret, ClientId, CsrfToken, Roles, Scopes, SessionSecret, Timestamp, UserId,
    Username,
};
use tessera_store::{
    AccountStore, CreateSessionError, Health, NewSession, NewUser, OpaqueToken, OpaqueTokenStore,
    PresenceStore, RateLimitStore, Seen, SessionStore, StoreError, User,
};
use tessera_store_postgres::PostgresStore;
use tessera_store_redis::{COMMAND_TIMEOUT, RedisStore};
use tessera_testkit::{Postgres, Redis};

async fn add_user(accounts: &dyn AccountStore, name: &str) -> User {
    accounts
        .create_user(NewUser {
            id: UserId::generate(),
            username: Username::parse(name).unwrap(),
            password_hash: format!("$argon2id$fake${name}"),
            roles: Roles::default(),
            created_at: Timestamp::now(),
        })
        .await
        .unwrap()
}

fn new_session(user: UserId) -> NewSession {
    let secret = SessionSecret::generate();
    let now = Timestamp::now();
    NewSession {
        id: secret.session_id(),
        secret_hash: secret.hash(),
        user_id: user,
        csrf_token: CsrfToken::generate(),
        created_at: now,
        expires_at: now.saturating_add(Duration::from_secs(3600)),
        client_address: Some("192.0.2.7".into()),
        user_agent: None,
        methods: tessera_core::AuthMethods::password(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_append_only_file_sessions_survive_a_restart() {
    let pg = Postgres::start();
    let mut redis = Redis::start_with(true);
    let postgres = Arc::new(PostgresStore::open(&pg.url()).await.unwrap());
    let store = RedisStore::open(&redis.url(), postgres.clone(), postgres.clone())
        .await
        .unwrap();
    let user = add_user(&*postgres, "kept").await;
    let session = new_session(user.id);
    let id = session.id;
    store.create_session(session).await.unwrap();
    let later = Timestamp::now().saturating_add(Duration::from_secs(30));
    store.touch_sessions(&[(id, later)]).await.unwrap();
    let before = store.session(&id).await.unwrap().unwrap();
    let secret = AccessTokenSecret::generate();
    let token = OpaqueToken {
        hash: secret.hash(),
        jti: "kept".into(),
        client_id: ClientId::generate(),
        subject: user.id.to_string(),
        user: Some(user.id),
        scopes: Scopes::parse("read").unwrap(),
        audience: None,
        session: Some(id),
        roles: Roles::default(),
        methods: None,
        dpop_jkt: None,
        issued_at: Timestamp::now(),
        expires_at: Timestamp::now().saturating_add(Duration::from_secs(600)),
    };
    store.store_opaque_token(token.clone()).await.unwrap();
    store
        .record_presence(&[Seen {
            sid: id,
            user: user.id,
            at: later,
        }])
        .await
        .unwrap();
    let minute = Duration::from_secs(60);
    assert_eq!(store.attempt("restart", minute, 1).await.unwrap(), None);

    redis.restart();

    // The first call after the restart already works: the dead connection is
    // replaced and the call retried.
    let after = store.session(&id).await.unwrap().unwrap();
    assert_eq!(after.secret_hash, before.secret_hash);
    assert_eq!(after.csrf_token, before.csrf_token);
    assert_eq!(after.last_seen_at, later);
    assert_eq!(after.expires_at, before.expires_at);
    assert_eq!(after.client_address, before.client_address);
    assert_eq!(after.user, user);
    assert_eq!(store.sessions_of_user(user.id).await.unwrap().len(), 1);
    assert_eq!(
        store.opaque_token(&secret.hash()).await.unwrap(),
        Some(token)
    );
    assert_eq!(store.online_since(later).await.unwrap().sessions, 1);
    assert!(
        store.attempt("restart", minute, 1).await.unwrap().is_some(),
        "the rate limit's count survived too"
    );
    postgres.close().await;
}

/// Every call fails, as a `StoreError`, within `COMMAND_TIMEOUT` and a margin.
async fn fails_quickly<T: std::fmt::Debug>(
    what: &str,
    call: impl Future<Output = Result<T, StoreError>>,
) {
    let started = Instant::now();
    let answer = tokio::time::timeout(COMMAND_TIMEOUT * 3, call)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"));
    let took = started.elapsed();
    let error = answer.expect_err(what);
    assert!(
        error.is_unavailable() && error.to_string().contains("Redis at redis://127.0.0.1:"),
        "{what}: {error}"
    );
    assert!(
        took <= COMMAND_TIMEOUT + Duration::from_secs(1),
        "{what} took {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_fail_quickly_while_redis_is_gone_and_work_again_after() {
    let pg = Postgres::start();
    let mut redis = Redis::start();
    let postgres = Arc::new(PostgresStore::open(&pg.url()).await.unwrap());
    let store = RedisStore::open(&redis.url(), postgres.clone(), postgres.clone())
        .await
        .unwrap();
    let user = add_user(&*postgres, "patient").await;
    let session = new_session(user.id);
    let id = session.id;
    store.create_session(session).await.unwrap();

    redis.kill();
    for round in 0..2 {
        fails_quickly(&format!("ping {round}"), store.ping()).await;
        fails_quickly(&format!("session {round}"), store.session(&id)).await;
        fails_quickly(
            &format!("touch {round}"),
            store.touch_sessions(&[(id, Timestamp::now())]),
        )
        .await;
        fails_quickly(&format!("create {round}"), async {
            store
                .create_session(new_session(user.id))
                .await
                .map_err(|e| match e {
                    CreateSessionError::Store(e) => e,
                    e => StoreError::Other(e.to_string()),
                })
        })
        .await;
        fails_quickly(
            &format!("attempt {round}"),
            store.attempt("gone", Duration::from_secs(1), 5),
        )
        .await;
        fails_quickly(
            &format!("online {round}"),
            store.online_since(Timestamp::now()),
        )
        .await;
    }

    // Back (empty: no persistence here), and the same store works again at once.
    redis.restart();
    store.ping().await.unwrap();
    assert!(store.session(&id).await.unwrap().is_none());
    let session = new_session(user.id);
    let id = session.id;
    store.create_session(session).await.unwrap();
    assert!(store.session(&id).await.unwrap().is_some());
    postgres.close().await;
}
