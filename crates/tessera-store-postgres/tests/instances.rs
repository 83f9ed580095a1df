//! Two stores on one database, as two server instances (two pools, two listeners):
//! what one does, the other sees, and races between them come out as on one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tessera_core::{
    Algorithm, Audience, ClientId, ClientName, GrantType, RefreshTokenSecret, Roles, Scopes,
    SessionSecret, Timestamp, TokenFormat, UserId, Username,
};
use tessera_store::{
    AccountStore, Client, ClientStore, EndReason, KeyStore, NewRefreshFamily, NewUser,
    RefreshOutcome, RefreshStore, RevocationLog, Revoked, StoredKey,
};
use tessera_store_postgres::PostgresStore;
use tessera_testkit::Postgres;

async fn two_instances(pg: &Postgres) -> (PostgresStore, PostgresStore) {
    (
        PostgresStore::open(&pg.url()).await.unwrap(),
        PostgresStore::open(&pg.url()).await.unwrap(),
    )
}

/// Polls `condition` every 10 ms for up to 5 s.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within 5 s: {what}");
}

fn client(name: &str) -> Client {
    Client {
        id: ClientId::generate(),
        name: ClientName::parse(name).unwrap(),
        secret_hash: None,
        grants: vec![GrantType::RefreshToken],
        scopes: Scopes::parse("read").unwrap(),
        audiences: vec![Audience::parse("orders").unwrap()],
        token_format: TokenFormat::Jwt,
        algorithm: Algorithm::EdDSA,
        access_ttl: Duration::from_secs(300),
        created_at: Timestamp::now(),
        dpop_bound_access_tokens: false,
        code_flow: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_change_in_one_instance_changes_the_others_generation() {
    let pg = Postgres::start();
    let (a, b) = two_instances(&pg).await;

    let before = b.cache_generation().unwrap();
    let web = client("web");
    a.create_client(web.clone()).await.unwrap();
    eventually("b sees the client added through a", || {
        b.cache_generation().is_some_and(|g| g != before)
    })
    .await;

    let before = b.cache_generation().unwrap();
    assert!(a.remove_client(&web.id).await.unwrap());
    eventually("b sees the client removed through a", || {
        b.cache_generation().is_some_and(|g| g != before)
    })
    .await;

    // Reading changes nothing, here or there. First let every notification land:
    // an instance also hears its own changes' notifications (one more bump, which
    // only costs a cache refill), and on a busy machine that may take a while.
    let mut settled = (a.cache_generation(), b.cache_generation());
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = (a.cache_generation(), b.cache_generation());
        if now == settled {
            break;
        }
        settled = now;
    }
    a.list_clients().await.unwrap();
    b.client(&web.id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!((a.cache_generation(), b.cache_generation()), settled);
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_in_one_instance_wakes_the_others_follower() {
    let pg = Postgres::start();
    let (a, b) = two_instances(&pg).await;
    let woken = b.revocations_appended();
    // Take any permit stored so far, so that only the append below can wake it.
    let _ = tokio::time::timeout(Duration::from_millis(100), woken.notified()).await;

    let waiting = tokio::spawn({
        let woken = Arc::clone(&woken);
        async move { tokio::time::timeout(Duration::from_secs(5), woken.notified()).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let now = Timestamp::now();
    let sequence = a
        .append_revocation(
            Revoked::Token("jti-far".into()),
            None,
            EndReason::Revoked,
            now,
            now.saturating_add(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    assert!(
        waiting.await.unwrap().is_ok(),
        "b's follower is woken by a's append"
    );
    let seen = b.revocations_after(sequence - 1, 10).await.unwrap();
    assert_eq!(seen[0].revoked, Revoked::Token("jti-far".into()));
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rotations_of_one_refresh_token_rotate_once() {
    let pg = Postgres::start();
    let (a, b) = two_instances(&pg).await;
    let user = a
        .create_user(NewUser {
            id: UserId::generate(),
            username: Username::parse("racer").unwrap(),
            password_hash: "$argon2id$x".into(),
            roles: Roles::default(),
            created_at: Timestamp::now(),
        })
        .await
        .unwrap();
    for _ in 0..20 {
        let now = Timestamp::now();
        let token = RefreshTokenSecret::generate();
        a.create_family(NewRefreshFamily {
            id: SessionSecret::generate().session_id(),
            client_id: ClientId::generate(),
            user_id: user.id,
            scopes: Scopes::parse("read").unwrap(),
            audience: None,
            session: None,
            token_hash: token.hash(),
            created_at: now,
            expires_at: now.saturating_add(Duration::from_secs(3600)),
            dpop_jkt: None,
        })
        .await
        .unwrap();
        let grace_from = now.saturating_sub(Duration::from_secs(30));
        let (next_a, next_b) = (
            RefreshTokenSecret::generate(),
            RefreshTokenSecret::generate(),
        );
        let (presented, to_a, to_b) = (token.hash(), next_a.hash(), next_b.hash());
        let (from_a, from_b) = tokio::join!(
            a.rotate_refresh_token(&presented, &to_a, now, grace_from),
            b.rotate_refresh_token(&presented, &to_b, now, grace_from),
        );
        let outcomes = [from_a.unwrap(), from_b.unwrap()];
        let rotated = outcomes
            .iter()
            .filter(|o| matches!(o, RefreshOutcome::Rotated(_)))
            .count();
        let lost = outcomes
            .iter()
            .filter(|o| matches!(o, RefreshOutcome::RaceLost))
            .count();
        assert_eq!((rotated, lost), (1, 1), "{outcomes:?}");
        let live_a = a.family_by_token(&next_a.hash()).await.unwrap().is_some();
        let live_b = a.family_by_token(&next_b.hash()).await.unwrap().is_some();
        assert!(live_a != live_b, "exactly the winner's token is live");
    }
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_add_one_first_key() {
    let pg = Postgres::start();
    let (a, b) = two_instances(&pg).await;
    let key = |kid: String, algorithm: &str| {
        let at = Timestamp::now();
        StoredKey {
            kid,
            algorithm: algorithm.into(),
            private_key: vec![1, 2, 3],
            sealed: false,
            created_at: at,
            signs_from: at,
            published_until: None,
            retired_at: None,
        }
    };
    for round in 0..20 {
        let algorithm = format!("alg-{round}");
        let (from_a, from_b) = tokio::join!(
            a.add_first_key(key(format!("a-{round}"), &algorithm)),
            b.add_first_key(key(format!("b-{round}"), &algorithm)),
        );
        let added = [from_a.unwrap(), from_b.unwrap()];
        assert_eq!(added.iter().filter(|a| **a).count(), 1, "{added:?}");
    }
    let keys = a.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 20);
    let algorithms: BTreeSet<_> = keys.iter().map(|k| k.algorithm.clone()).collect();
    assert_eq!(algorithms.len(), 20, "one key per algorithm");
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_sees_every_entry_appended_concurrently_by_both_instances() {
    let pg = Postgres::start();
    let (a, b) = two_instances(&pg).await;
    let (a, b) = (Arc::new(a), Arc::new(b));
    const WRITERS_EACH: usize = 4;
    const APPENDS_EACH: usize = 40;
    let total = 2 * WRITERS_EACH * APPENDS_EACH;

    // A follower as the server's: position = the last sequence it has seen. It polls
    // while the writers run, then drains once they are done: an entry committed
    // under a sequence below its position by then would be missed for good.
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let start = b.latest_revocation().await.unwrap();
    let follower = tokio::spawn({
        let b = Arc::clone(&b);
        let writing = Arc::clone(&writing);
        async move {
            let mut position = start;
            let mut seen = Vec::new();
            loop {
                let done = !writing.load(std::sync::atomic::Ordering::SeqCst);
                let entries = b.revocations_after(position, 1000).await.unwrap();
                if done && entries.is_empty() {
                    return seen;
                }
                for entry in entries {
                    assert!(entry.sequence > position);
                    position = entry.sequence;
                    seen.push(entry.revoked);
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });
    let mut writers = Vec::new();
    for (instance, store) in [("a", &a), ("b", &b)] {
        for writer in 0..WRITERS_EACH {
            let store = Arc::clone(store);
            writers.push(tokio::spawn(async move {
                for n in 0..APPENDS_EACH {
                    let now = Timestamp::now();
                    store
                        .append_revocation(
                            Revoked::Token(format!("{instance}-{writer}-{n}")),
                            None,
                            EndReason::Revoked,
                            now,
                            now.saturating_add(Duration::from_secs(60)),
                        )
                        .await
                        .unwrap();
                }
            }));
        }
    }
    for writer in writers {
        writer.await.unwrap();
    }
    writing.store(false, std::sync::atomic::Ordering::SeqCst);
    let seen = follower.await.unwrap();
    assert_eq!(seen.len(), total, "the follower skipped no entry");
    let distinct: BTreeSet<_> = seen.iter().map(|r| r.target().to_owned()).collect();
    assert_eq!(distinct.len(), total);
    assert_eq!(
        a.latest_revocation().await.unwrap(),
        u64::try_from(total).unwrap(),
        "no gaps"
    );
}
