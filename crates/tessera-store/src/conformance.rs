//! The behaviour every backend must show, as one suite each backend's tests call
//! with a fresh, empty store: `conformance::run(&store).await`.
//!
//! It panics on the first deviation, like an assertion in a test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tessera_core::{
    Algorithm, Audience, AuthMethod, AuthMethods, ClientId, ClientName, ClientSecret, CsrfToken,
    DisplayName, Email, GrantType, LogoutUri, RedirectUri, RefreshTokenSecret, Role, Roles, Scopes,
    SecretHash, SessionSecret, Timestamp, TokenFormat, UserId, Username,
};

use crate::{
    AccountStore, Actor, AuditStore, AuthorizationCode, AuthorizationCodeStore, BackchannelStore,
    Ceremony, CeremonyKind, CeremonyStore, Client, ClientStore, CodeExchangeStore, CodeFlow,
    CodeFollowUp, Consent, CreateClientError, CreateSessionError, CreateUserError, EndReason,
    Event, EventKind, EventQuery, KeyStore, NewEvent, NewRefreshFamily, NewSession, NewUser,
    Online, OnlinePeak, OpaqueToken, OpaqueTokenStore, Outcome, PasskeyCredential, PlanFollowUp,
    Profile, PushedRequest, Redemption, RefreshOutcome, RefreshStore, ResetLink, RevocationLog,
    Revoked, SessionClient, SessionStore, StoreError, StoredKey,
};

pub async fn run<S>(store: &S)
where
    S: AccountStore
        + SessionStore
        + RevocationLog
        + ClientStore
        + KeyStore
        + RefreshStore
        + OpaqueTokenStore
        + AuthorizationCodeStore
        + CodeExchangeStore
        + BackchannelStore
        + CeremonyStore
        + AuditStore,
{
    accounts(store).await;
    audit(store).await;
    profiles(store).await;
    consents(store).await;
    roles(store).await;
    reset_links(store).await;
    totp_credentials(store).await;
    recovery_codes(store).await;
    passkeys(store).await;
    cached_changes(store).await;
    look_alikes(store).await;
    sessions(store).await;
    ending_sessions_is_logged(store).await;
    expiry(store).await;
    clients(store).await;
    keys(store).await;
    refresh_families(store).await;
    last_use(store).await;
    families_of_a_session(store).await;
    opaque_tokens(store).await;
    authorization_codes(store).await;
    backchannel_logouts(store).await;
    code_exchanges(store).await;
    pushed_requests(store).await;
    ceremonies(store).await;
    imports(store).await;
    imported_revocations(store).await;
}

/// The audit log: events come back as recorded, newest first, filtered by the
/// account (as subject or actor), kind and time, a page at a time; followed oldest
/// first; purged by age.
async fn audit<S: AuditStore>(store: &S) {
    let now = Timestamp::now();
    let hour_ago = now.saturating_sub(Duration::from_secs(3600));
    let (alice, admin) = (UserId::generate(), UserId::generate());
    let client = ClientId::generate();
    let event = |at, kind, outcome, actor, user| NewEvent {
        at,
        kind,
        outcome,
        actor,
        user,
        username: None,
        target: None,
        address: None,
        detail: None,
    };
    let failed = NewEvent {
        username: Some("alice".into()),
        address: Some("2001:db8::7".parse().unwrap()),
        detail: Some("wrong password".into()),
        ..event(
            hour_ago,
            EventKind::Login,
            Outcome::Failure,
            Actor::Anonymous,
            Some(alice),
        )
    };
    let kicked = NewEvent {
        target: Some(format!("client:{client}")),
        ..event(
            now,
            EventKind::UserKicked,
            Outcome::Success,
            Actor::User(admin),
            Some(alice),
        )
    };
    let by_client = event(
        now,
        EventKind::KeyRotated,
        Outcome::Success,
        Actor::Client(client),
        None,
    );
    let by_operator = event(
        now,
        EventKind::UserEnabled,
        Outcome::Success,
        Actor::Operator,
        Some(admin),
    );
    let by_system = event(
        now,
        EventKind::SessionEnded,
        Outcome::Success,
        Actor::System,
        Some(alice),
    );
    store.record_events(&[]).await.unwrap();
    store
        .record_events(&[failed.clone(), kicked.clone(), by_client.clone()])
        .await
        .unwrap();
    store
        .record_events(&[by_operator.clone(), by_system.clone()])
        .await
        .unwrap();
    let all = |query: EventQuery| async move {
        store
            .events(&EventQuery {
                limit: 100,
                ..query
            })
            .await
            .unwrap()
            .into_iter()
            .map(|e: Event| e.event)
            .collect::<Vec<_>>()
    };
    // Newest first, each exactly as recorded.
    assert_eq!(
        all(EventQuery::default()).await,
        vec![
            by_system.clone(),
            by_operator.clone(),
            by_client.clone(),
            kicked.clone(),
            failed.clone()
        ]
    );
    // The account concerned, or the one who acted.
    assert_eq!(
        all(EventQuery {
            user: Some(admin),
            ..Default::default()
        })
        .await,
        vec![by_operator.clone(), kicked.clone()]
    );
    assert_eq!(
        all(EventQuery {
            kind: Some(EventKind::Login),
            ..Default::default()
        })
        .await,
        vec![failed.clone()]
    );
    assert_eq!(
        all(EventQuery {
            until: Some(now),
            ..Default::default()
        })
        .await,
        vec![failed.clone()]
    );
    assert_eq!(
        all(EventQuery {
            user: Some(alice),
            since: Some(now),
            ..Default::default()
        })
        .await,
        vec![by_system.clone(), kicked.clone()]
    );
    // Pages: ids ascend in recording order; `before` continues a page.
    let page = store
        .events(&EventQuery {
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 2);
    assert!(page[0].id > page[1].id);
    let rest = store
        .events(&EventQuery {
            limit: 100,
            before: Some(page[1].id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|e| e.event.clone()).collect::<Vec<_>>(),
        vec![by_client.clone(), kicked.clone(), failed.clone()]
    );
    // Following: oldest first after a position.
    let followed = store.events_after(rest[2].id, 2).await.unwrap();
    assert_eq!(
        followed.into_iter().map(|e| e.event).collect::<Vec<_>>(),
        vec![kicked.clone(), by_client.clone()]
    );
    assert!(store.events_after(page[0].id, 10).await.unwrap().is_empty());
    // Counted by the minute (the console's chart), by outcome, from a moment on.
    let minute = 60_000;
    let second_failure = NewEvent {
        at: hour_ago.saturating_add(Duration::from_millis(1)),
        ..failed.clone()
    };
    let success = NewEvent {
        outcome: Outcome::Success,
        ..failed.clone()
    };
    store
        .record_events(&[second_failure, success])
        .await
        .unwrap();
    let bucket = Timestamp::from_millis(hour_ago.as_millis() / minute * minute);
    let counted = store
        .count_events(EventKind::Login, hour_ago, minute)
        .await
        .unwrap();
    let expected = |count| crate::EventCount {
        bucket,
        outcome: Outcome::Failure,
        count,
    };
    let also_success = crate::EventCount {
        outcome: Outcome::Success,
        ..expected(1)
    };
    assert!(
        counted == vec![expected(2), also_success] || counted == vec![also_success, expected(2)],
        "{counted:?}"
    );
    assert!(
        store
            .count_events(EventKind::Login, now, minute)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .count_events(EventKind::Logout, hour_ago, minute)
            .await
            .unwrap()
            .is_empty()
    );
    // Online peaks: the most of every sample in the hour, users and sessions each.
    let hour =
        |h: i64| Timestamp::from_millis(1_600_000_000_000 / 3_600_000 * 3_600_000 + h * 3_600_000);
    let online = |users, sessions| Online { users, sessions };
    store
        .record_online_peak(hour(0), online(3, 5))
        .await
        .unwrap();
    store
        .record_online_peak(hour(0), online(4, 2))
        .await
        .unwrap();
    store
        .record_online_peak(hour(0), online(1, 1))
        .await
        .unwrap();
    store
        .record_online_peak(hour(2), online(7, 9))
        .await
        .unwrap();
    let peaks = store.online_peaks(hour(0)).await.unwrap();
    assert_eq!(
        peaks,
        vec![
            OnlinePeak {
                hour: hour(0),
                online: online(4, 5)
            },
            OnlinePeak {
                hour: hour(2),
                online: online(7, 9)
            },
        ]
    );
    assert_eq!(store.online_peaks(hour(1)).await.unwrap().len(), 1);
    // Purged by age, with the events.
    store.purge_events(hour(1)).await.unwrap();
    assert_eq!(store.online_peaks(hour(0)).await.unwrap().len(), 1);

    assert_eq!(store.purge_events(now).await.unwrap(), 3);
    assert_eq!(all(EventQuery::default()).await.len(), 4);
    assert_eq!(store.purge_events(now).await.unwrap(), 0);
}

/// What `tessera store migrate` relies on for the revocation log: entries imported
/// from another log come back exactly, under their own sequence numbers, and the
/// next append is numbered above the other log's high-water mark, so a verifier's
/// position carries over.
async fn imported_revocations<S: RevocationLog>(store: &S) {
    let before = store.latest_revocation().await.unwrap();
    let at = Timestamp::now();
    let until = at.saturating_add(Duration::from_secs(3600));
    let kicked = UserId::generate();
    let sid = SessionSecret::generate().session_id();
    let entry = |sequence: u64, revoked: Revoked, user, reason| crate::Revocation {
        sequence: before + sequence,
        revoked,
        user,
        reason,
        at,
        expires_at: until,
    };
    // Gaps, as purges leave them, and every kind.
    let entries = vec![
        entry(
            100,
            Revoked::Token("imported-jti".into()),
            None,
            EndReason::Revoked,
        ),
        entry(101, Revoked::User(kicked), Some(kicked), EndReason::Kicked),
        entry(105, Revoked::Session(sid), Some(kicked), EndReason::Kicked),
        entry(
            107,
            Revoked::Key("imported-kid".into()),
            None,
            EndReason::KeyRetired,
        ),
    ];
    // The other log numbered more than it still holds (its last entries purged).
    let latest = before + 150;
    store.import_revocations(&entries, latest).await.unwrap();
    assert_eq!(
        store.revocations_after(before, 100).await.unwrap(),
        entries,
        "sequence, kind, target, user, reason and times as given"
    );
    assert_eq!(
        store.revocations_after(before + 101, 100).await.unwrap(),
        entries[2..],
        "read by their own sequence numbers"
    );
    assert!(store.latest_revocation().await.unwrap() >= latest);
    let next = store
        .append_revocation(
            Revoked::Token("after-import".into()),
            None,
            EndReason::Revoked,
            at,
            until,
        )
        .await
        .unwrap();
    assert!(next > latest, "{next} must be above {latest}");
    assert_eq!(store.latest_revocation().await.unwrap(), next);

    // An entry at or below the log's position is refused, and nothing of the call
    // is imported.
    let late = vec![
        entry(
            next - before + 10,
            Revoked::Token("late-1".into()),
            None,
            EndReason::Revoked,
        ),
        entry(
            next - before,
            Revoked::Token("late-2".into()),
            None,
            EndReason::Revoked,
        ),
    ];
    assert!(store.import_revocations(&late, 0).await.is_err());
    let after = store.revocations_after(next - 1, 100).await.unwrap();
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0].revoked, Revoked::Token("after-import".into()));
    assert_eq!(store.latest_revocation().await.unwrap(), next);
    // A lower high-water mark never moves the counter back.
    store.import_revocations(&[], 1).await.unwrap();
    assert_eq!(store.latest_revocation().await.unwrap(), next);
    store.import_revocations(&[], next + 20).await.unwrap();
    assert!(
        store
            .append_revocation(
                Revoked::Token("after-raise".into()),
                None,
                EndReason::Revoked,
                at,
                until,
            )
            .await
            .unwrap()
            > next + 20
    );
}

/// What `tessera store migrate` relies on: users and keys read from one store and
/// imported into another come out exactly as they went in.
async fn imports<S: AccountStore + KeyStore>(store: &S) {
    let created_at = Timestamp::from_millis(1_600_000_000_123);
    let gone = crate::User {
        id: UserId::generate(),
        username: name("imported-gone"),
        roles: Roles::new(vec![Role::Admin]),
        disabled: true,
        created_at,
    };
    store
        .import_user(crate::UserCredentials {
            user: gone.clone(),
            password_hash: "$argon2id$v=19$imported".into(),
        })
        .await
        .unwrap();
    let read = store
        .user_credentials(&gone.username)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        read.user, gone,
        "id, roles, disabled flag and time as given"
    );
    assert_eq!(read.password_hash, "$argon2id$v=19$imported");
    assert_eq!(store.user(gone.id).await.unwrap(), Some(gone.clone()));
    let active = crate::User {
        id: UserId::generate(),
        username: name("imported-active"),
        roles: Roles::default(),
        disabled: false,
        created_at,
    };
    store
        .import_user(crate::UserCredentials {
            user: active.clone(),
            password_hash: "$argon2id$v=19$active".into(),
        })
        .await
        .unwrap();
    assert_eq!(store.user(active.id).await.unwrap(), Some(active.clone()));
    for taken in [
        crate::User {
            id: UserId::generate(),
            ..gone.clone()
        },
        crate::User {
            username: name("imported-other"),
            ..gone.clone()
        },
    ] {
        assert!(
            matches!(
                store
                    .import_user(crate::UserCredentials {
                        user: taken,
                        password_hash: "x".into(),
                    })
                    .await,
                Err(CreateUserError::UsernameTaken)
            ),
            "a username or id already present is refused"
        );
    }
    assert!(
        store
            .user_credentials(&name("imported-other"))
            .await
            .unwrap()
            .is_none()
    );

    // Keys: retired, expired and sealed ones alike, times and bytes as given, beside
    // unretired keys of the same algorithm, which are left alone.
    let before = store.signing_keys().await.unwrap();
    let t = |millis| Timestamp::from_millis(millis);
    let retired = StoredKey {
        kid: "imported-retired".into(),
        algorithm: "EdDSA".into(),
        private_key: vec![7; 48],
        sealed: true,
        created_at: t(1_000),
        signs_from: t(2_000),
        published_until: Some(t(3_000)),
        retired_at: Some(t(2_500)),
    };
    let signing = StoredKey {
        kid: "imported-signing".into(),
        algorithm: "EdDSA".into(),
        private_key: vec![0, 255, 1],
        sealed: false,
        created_at: t(5_000),
        signs_from: t(6_000),
        published_until: None,
        retired_at: None,
    };
    store.import_key(retired.clone()).await.unwrap();
    store.import_key(signing.clone()).await.unwrap();
    let after = store.signing_keys().await.unwrap();
    let find = |kid: &str| after.iter().find(|k| k.kid == kid).cloned();
    assert_eq!(find("imported-retired"), Some(retired.clone()));
    assert_eq!(find("imported-signing"), Some(signing));
    for key in &before {
        assert_eq!(
            find(&key.kid).as_ref(),
            Some(key),
            "other keys are untouched"
        );
    }
    assert_eq!(after.len(), before.len() + 2);
    let duplicate = StoredKey {
        private_key: vec![9],
        ..retired.clone()
    };
    assert!(
        store.import_key(duplicate).await.is_err(),
        "a kid is unique"
    );
    let again = store.signing_keys().await.unwrap();
    assert_eq!(
        again.iter().find(|k| k.kid == "imported-retired"),
        Some(&retired)
    );
}

/// The rate-limit suite, for backends that count attempts for every instance.
pub async fn rate_limits<S: crate::RateLimitStore>(store: &S) {
    let minute = Duration::from_secs(60);
    let key = format!("login:{}", UserId::generate());
    for _ in 0..3 {
        assert_eq!(store.attempt(&key, minute, 3).await.unwrap(), None);
    }
    let wait = store.attempt(&key, minute, 3).await.unwrap().unwrap();
    assert!(wait > Duration::ZERO && wait <= minute, "{wait:?}");
    // a refused attempt does not count: the wait does not grow
    let again = store.attempt(&key, minute, 3).await.unwrap().unwrap();
    assert!(again <= wait);
    // keys are independent
    let other = format!("login:{}", UserId::generate());
    assert_eq!(store.attempt(&other, minute, 3).await.unwrap(), None);
    // the budget refills at one attempt per interval
    let quick = format!("quick:{}", UserId::generate());
    let interval = Duration::from_millis(100);
    assert_eq!(store.attempt(&quick, interval, 1).await.unwrap(), None);
    assert!(store.attempt(&quick, interval, 1).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(store.attempt(&quick, interval, 1).await.unwrap(), None);
}

/// The presence suite, for backends that keep presence.
pub async fn presence<S: crate::PresenceStore>(store: &S) {
    use crate::{Online, Seen};
    let now = Timestamp::now();
    let minute_ago = now.saturating_sub(Duration::from_secs(60));
    let hour_ago = now.saturating_sub(Duration::from_secs(3600));
    let (alice, bob) = (UserId::generate(), UserId::generate());
    let (a1, a2, b1) = (
        SessionSecret::generate().session_id(),
        SessionSecret::generate().session_id(),
        SessionSecret::generate().session_id(),
    );
    assert_eq!(
        store.online_since(hour_ago).await.unwrap(),
        Online::default()
    );
    let seen = |sid, user, at| Seen { sid, user, at };
    let written = store
        .record_presence(&[
            seen(a1, alice, now),
            seen(a2, alice, hour_ago),
            seen(b1, bob, minute_ago),
        ])
        .await
        .unwrap();
    assert_eq!(written, 3);
    let since = now.saturating_sub(Duration::from_secs(300));
    assert_eq!(
        store.online_since(since).await.unwrap(),
        Online {
            users: 2,
            sessions: 2
        }
    );
    // An older sighting arriving late does not move a session back in time.
    let written = store
        .record_presence(&[seen(a1, alice, hour_ago), seen(a1, alice, hour_ago)])
        .await
        .unwrap();
    assert_eq!(written, 0);
    let now_only = store.online_since(now).await.unwrap();
    assert_eq!((now_only.users, now_only.sessions), (1, 1));
    assert_eq!(
        store.online_since(hour_ago).await.unwrap(),
        Online {
            users: 2,
            sessions: 3
        }
    );
    assert_eq!(store.record_presence(&[]).await.unwrap(), 0);
    // At most one write per session per minute, whoever sends the sightings.
    let soon = now.saturating_add(Duration::from_secs(30));
    let later = now.saturating_add(crate::PRESENCE_RESOLUTION);
    assert_eq!(
        store
            .record_presence(&[seen(a1, alice, soon)])
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .record_presence(&[seen(a1, alice, later)])
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.online_since(later).await.unwrap().sessions, 1);
    // An ended session is no longer online.
    store.forget_presence(&[b1]).await.unwrap();
    store.forget_presence(&[]).await.unwrap();
    assert_eq!(
        store.online_since(since).await.unwrap(),
        Online {
            users: 1,
            sessions: 1
        }
    );
    // A sighting queued before the end and written after it changes nothing.
    let late = store
        .record_presence(&[seen(b1, bob, later)])
        .await
        .unwrap();
    assert_eq!(late, 0);
    assert_eq!(store.online_since(since).await.unwrap().sessions, 1);
    // Ending a session never seen is fine too.
    let never = SessionSecret::generate().session_id();
    store.forget_presence(&[never, never]).await.unwrap();
    assert_eq!(store.online_since(since).await.unwrap().sessions, 1);
    // purged: a2 (an hour ago); b1 and the one never seen are recent tombstones.
    assert_eq!(store.purge_presence(minute_ago).await.unwrap(), 1);
    assert_eq!(
        store.online_since(hour_ago).await.unwrap(),
        Online {
            users: 1,
            sessions: 1
        }
    );
    // Thousands at once (a busy instance's few hundred milliseconds): more than
    // one statement carries on some backends, every one written.
    let crowd: Vec<Seen> = (0..1201)
        .map(|_| seen(SessionSecret::generate().session_id(), bob, later))
        .collect();
    assert_eq!(store.record_presence(&crowd).await.unwrap(), 1201);
    assert_eq!(
        store.online_since(later).await.unwrap(),
        Online {
            users: 2,
            sessions: 1202
        }
    );
}

async fn opaque_tokens<S: OpaqueTokenStore + SessionStore + RevocationLog>(store: &S) {
    let now = Timestamp::now();
    let secret = tessera_core::AccessTokenSecret::generate();
    let owner = ClientId::generate();
    let token = OpaqueToken {
        hash: secret.hash(),
        jti: "jti-opaque".into(),
        client_id: owner,
        subject: "someone".into(),
        user: Some(UserId::generate()),
        scopes: Scopes::parse("read").unwrap(),
        audience: Some(Audience::parse("orders").unwrap()),
        session: Some(SessionSecret::generate().session_id()),
        roles: Roles::new(vec![Role::Admin]),
        methods: Some(AuthMethods::password().with(AuthMethod::OneTimeCode)),
        dpop_jkt: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into()),
        issued_at: now,
        expires_at: now.saturating_add(Duration::from_secs(60)),
    };
    store.store_opaque_token(token.clone()).await.unwrap();
    assert_eq!(
        store.opaque_token(&secret.hash()).await.unwrap(),
        Some(token.clone())
    );
    // a client's own token has no sign-in behind it
    let own = tessera_core::AccessTokenSecret::generate();
    let client_token = OpaqueToken {
        hash: own.hash(),
        user: None,
        session: None,
        methods: None,
        dpop_jkt: None,
        ..token.clone()
    };
    store
        .store_opaque_token(client_token.clone())
        .await
        .unwrap();
    assert_eq!(
        store.opaque_token(&own.hash()).await.unwrap(),
        Some(client_token)
    );
    assert!(
        !store
            .revoke_opaque_token(&secret.hash(), &ClientId::generate(), now)
            .await
            .unwrap()
    );
    let before = store.latest_revocation().await.unwrap();
    assert!(
        store
            .revoke_opaque_token(&secret.hash(), &owner, now)
            .await
            .unwrap()
    );
    assert_eq!(store.opaque_token(&secret.hash()).await.unwrap(), None);
    let logged = store.revocations_after(before, 10).await.unwrap();
    assert_eq!(logged.len(), 1, "the revocation is logged for verifiers");
    assert_eq!(logged[0].revoked, Revoked::Token("jti-opaque".into()));
    assert_eq!(logged[0].user, token.user);
    assert_eq!(logged[0].expires_at, token.expires_at);

    // Expired ones are purged.
    let old = tessera_core::AccessTokenSecret::generate();
    let mut expired = token;
    expired.hash = old.hash();
    expired.expires_at = now.saturating_sub(Duration::from_secs(1));
    store.store_opaque_token(expired).await.unwrap();
    store
        .purge_expired(now, now.saturating_sub(Duration::from_secs(3600)))
        .await
        .unwrap();
    assert_eq!(store.opaque_token(&old.hash()).await.unwrap(), None);
}

fn family(user: UserId, token: &RefreshTokenSecret, now: Timestamp) -> NewRefreshFamily {
    NewRefreshFamily {
        id: SessionSecret::generate().session_id(),
        client_id: ClientId::generate(),
        user_id: user,
        scopes: Scopes::parse("read").unwrap(),
        audience: Some(Audience::parse("orders").unwrap()),
        session: None,
        token_hash: token.hash(),
        created_at: now,
        expires_at: now.saturating_add(Duration::from_secs(3600)),
        dpop_jkt: None,
    }
}

/// A client's last use is its latest family's creation or rotation.
async fn last_use<S: AccountStore + RefreshStore>(store: &S) {
    let user = add_user(store, "regular").await;
    let t0 = Timestamp::from_millis(1_800_000_000_000);
    let at = |s: u64| t0.saturating_add(Duration::from_secs(s));
    assert!(store.last_use_by_client(user.id).await.unwrap().is_empty());
    let (first, second) = (
        RefreshTokenSecret::generate(),
        RefreshTokenSecret::generate(),
    );
    let a = family(user.id, &first, at(0));
    let app = a.client_id;
    store.create_family(a).await.unwrap();
    let b = family(user.id, &second, at(1));
    let other = b.client_id;
    store.create_family(b).await.unwrap();
    let mut c = family(user.id, &RefreshTokenSecret::generate(), at(2));
    c.client_id = app;
    store.create_family(c).await.unwrap();
    let next = RefreshTokenSecret::generate();
    assert!(matches!(
        store
            .rotate_refresh_token(&first.hash(), &next.hash(), at(5), at(3))
            .await
            .unwrap(),
        RefreshOutcome::Rotated(_)
    ));
    let mut used = store.last_use_by_client(user.id).await.unwrap();
    used.sort_by_key(|(_, when)| *when);
    assert_eq!(used, vec![(other, at(1)), (app, at(5))]);
    let nobody = add_user(store, "idle").await;
    assert!(
        store
            .last_use_by_client(nobody.id)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn refresh_families<S: AccountStore + SessionStore + RevocationLog + RefreshStore>(
    store: &S,
) {
    let user = add_user(store, "refresher").await;
    let now = Timestamp::now();
    let t1 = RefreshTokenSecret::generate();
    let new = family(user.id, &t1, now);
    let id = new.id;
    store.create_family(new).await.unwrap();
    let found = store.family_by_token(&t1.hash()).await.unwrap().unwrap();
    assert_eq!((found.id, found.generation), (id, 0));
    assert_eq!(found.dpop_jkt, None);
    assert_eq!(found.user.id, user.id);
    assert_eq!(found.audience.unwrap().as_str(), "orders");
    assert_eq!(store.family(&id).await.unwrap().unwrap().user.id, user.id);

    // Rotation: the live token is exchanged once; a second exchange within the grace
    // period loses the race, after it is reuse and revokes the family.
    let t2 = RefreshTokenSecret::generate();
    let grace_from = now.saturating_sub(Duration::from_secs(2));
    match store
        .rotate_refresh_token(&t1.hash(), &t2.hash(), now, grace_from)
        .await
        .unwrap()
    {
        RefreshOutcome::Rotated(f) => assert_eq!((f.id, f.generation), (id, 1)),
        other => panic!("{other:?}"),
    }
    let t3 = RefreshTokenSecret::generate();
    assert!(matches!(
        store
            .rotate_refresh_token(&t1.hash(), &t3.hash(), now, grace_from)
            .await
            .unwrap(),
        RefreshOutcome::RaceLost
    ));
    assert!(
        store.family_by_token(&t2.hash()).await.unwrap().is_some(),
        "the race loser changes nothing"
    );
    let before = store.latest_revocation().await.unwrap();
    let later = now.saturating_add(Duration::from_secs(10));
    match store
        .rotate_refresh_token(
            &t1.hash(),
            &t3.hash(),
            later,
            later.saturating_sub(Duration::from_secs(2)),
        )
        .await
        .unwrap()
    {
        RefreshOutcome::Reused {
            family,
            user: owner,
        } => assert_eq!((family, owner), (id, user.id)),
        other => panic!("{other:?}"),
    }
    assert!(
        store.family_by_token(&t2.hash()).await.unwrap().is_none(),
        "reuse revokes the family"
    );
    assert!(store.family(&id).await.unwrap().is_none());
    let logged = store.revocations_after(before, 10).await.unwrap();
    assert_eq!(logged.len(), 1);
    assert_eq!(
        (logged[0].revoked.clone(), logged[0].reason),
        (Revoked::Session(id), EndReason::RefreshReuse)
    );
    assert!(matches!(
        store
            .rotate_refresh_token(&t2.hash(), &t3.hash(), later, later)
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    ));
    // With no grace (the cutoff is now), a token presented again in the very
    // millisecond it was rotated is reuse, not a lost race.
    let t4 = RefreshTokenSecret::generate();
    let no_grace = family(user.id, &t4, now);
    let no_grace_id = no_grace.id;
    store.create_family(no_grace).await.unwrap();
    let t5 = RefreshTokenSecret::generate();
    assert!(matches!(
        store
            .rotate_refresh_token(&t4.hash(), &t5.hash(), now, now)
            .await
            .unwrap(),
        RefreshOutcome::Rotated(_)
    ));
    match store
        .rotate_refresh_token(&t4.hash(), &RefreshTokenSecret::generate().hash(), now, now)
        .await
        .unwrap()
    {
        RefreshOutcome::Reused { family, .. } => assert_eq!(family, no_grace_id),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store
            .rotate_refresh_token(&RefreshTokenSecret::generate().hash(), &t3.hash(), now, now)
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    ));

    // Expired families do not rotate.
    let t4 = RefreshTokenSecret::generate();
    let mut short = family(user.id, &t4, now);
    short.expires_at = now.saturating_add(Duration::from_millis(1));
    store.create_family(short).await.unwrap();
    assert!(matches!(
        store
            .rotate_refresh_token(&t4.hash(), &t3.hash(), later, later)
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    ));

    // Revoking one, then all of a user's families; only their own are touched.
    let other = add_user(store, "other-refresher").await;
    let (a, b, c) = (
        RefreshTokenSecret::generate(),
        RefreshTokenSecret::generate(),
        RefreshTokenSecret::generate(),
    );
    let fa = family(user.id, &a, now);
    let fa_id = fa.id;
    store.create_family(fa).await.unwrap();
    store.create_family(family(user.id, &b, now)).await.unwrap();
    store
        .create_family(family(other.id, &c, now))
        .await
        .unwrap();
    assert!(
        !store
            .revoke_family(&fa_id, Some(other.id), EndReason::Revoked, now)
            .await
            .unwrap()
    );
    assert!(
        store
            .revoke_family(&fa_id, Some(user.id), EndReason::Revoked, now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_family(&fa_id, None, EndReason::Revoked, now)
            .await
            .unwrap()
    );
    // One app's families of the user (the person removed it): that app's only.
    let (d, e) = (
        RefreshTokenSecret::generate(),
        RefreshTokenSecret::generate(),
    );
    let fd = family(user.id, &d, now);
    let (fd_id, app) = (fd.id, fd.client_id);
    store.create_family(fd).await.unwrap();
    store
        .create_family(NewRefreshFamily {
            client_id: app,
            ..family(other.id, &e, now)
        })
        .await
        .unwrap();
    let removed = store
        .revoke_families_of_user(user.id, Some(app), EndReason::Revoked, now)
        .await
        .unwrap();
    assert_eq!(removed, vec![fd_id]);
    assert!(store.family_by_token(&d.hash()).await.unwrap().is_none());
    assert!(
        store.family_by_token(&e.hash()).await.unwrap().is_some(),
        "another person's"
    );
    assert!(
        store.family_by_token(&b.hash()).await.unwrap().is_some(),
        "another app's"
    );
    let ended = store
        .revoke_families_of_user(user.id, None, EndReason::UserDisabled, now)
        .await
        .unwrap();
    assert_eq!(ended.len(), 2, "the expired one and b");
    assert!(store.family_by_token(&b.hash()).await.unwrap().is_none());
    assert!(store.family_by_token(&c.hash()).await.unwrap().is_some());

    // No family for a disabled user.
    store
        .set_user_disabled(&other.username, true)
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_family(family(other.id, &RefreshTokenSecret::generate(), now))
            .await,
        Err(CreateSessionError::UserDisabled)
    ));

    // Families asked for at once (which a backend may write in one statement) each
    // get their own answer: the disabled user's refused, the others kept.
    let tokens: Vec<RefreshTokenSecret> = (0..6).map(|_| RefreshTokenSecret::generate()).collect();
    let owner = |i: usize| if i == 3 { other.id } else { user.id };
    let answers = futures_join_all(
        tokens
            .iter()
            .enumerate()
            .map(|(i, token)| store.create_family(family(owner(i), token, now))),
    )
    .await;
    for (i, (answer, token)) in answers.iter().zip(&tokens).enumerate() {
        let kept = store.family_by_token(&token.hash()).await.unwrap();
        if i == 3 {
            assert!(
                matches!(answer, Err(CreateSessionError::UserDisabled)),
                "{answer:?}"
            );
            assert!(kept.is_none());
        } else {
            assert!(answer.is_ok(), "{answer:?}");
            assert_eq!(kept.unwrap().user.id, user.id);
        }
    }
}

/// Runs every future at once on this task and gives their answers in order.
async fn futures_join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut pending: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut answers: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (future, answer) in pending.iter_mut().zip(answers.iter_mut()) {
            if answer.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(output) => *answer = Some(output),
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    answers.into_iter().flatten().collect()
}

fn client(name: &str, confidential: bool) -> Client {
    Client {
        id: ClientId::generate(),
        name: ClientName::parse(name).unwrap(),
        secret_hash: confidential.then(|| ClientSecret::generate().hash()),
        grants: vec![GrantType::RefreshToken, GrantType::ClientCredentials],
        scopes: Scopes::parse("read write").unwrap(),
        audiences: vec![
            Audience::parse("orders").unwrap(),
            Audience::parse("https://b.example").unwrap(),
        ],
        token_format: TokenFormat::Opaque,
        algorithm: Algorithm::ES256,
        access_ttl: Duration::from_secs(300),
        // Set on the public one, so that it is seen to round-trip.
        dpop_bound_access_tokens: !confidential,
        created_at: Timestamp::now(),
        // The public one signs users in through the browser, with every setting of
        // the code flow not at its default, so that each is seen to round-trip.
        code_flow: if confidential {
            CodeFlow::default()
        } else {
            CodeFlow {
                redirect_uris: vec![
                    RedirectUri::parse("com.example.app:/cb").unwrap(),
                    RedirectUri::parse("http://127.0.0.1/cb").unwrap(),
                ],
                post_logout_redirect_uris: vec![
                    RedirectUri::parse("https://app.example/bye?x=1").unwrap(),
                ],
                backchannel_logout_uri: Some(
                    LogoutUri::parse("http://app.internal:8080/logout").unwrap(),
                ),
                first_party: true,
                require_par: true,
                id_token_algorithm: Algorithm::EdDSA,
            }
        },
    }
}

async fn clients<S: ClientStore>(store: &S) {
    let web = client("web", true);
    let cli = client("cli", false);
    let before = store.cache_generation().unwrap();
    store.create_client(web.clone()).await.unwrap();
    let added = store.cache_generation().unwrap();
    assert_ne!(added, before, "adding a client changes the generation");
    store.create_client(cli.clone()).await.unwrap();
    let mut same_name = client("web", false);
    same_name.id = ClientId::generate();
    assert!(matches!(
        store.create_client(same_name).await,
        Err(CreateClientError::NameTaken)
    ));
    assert_eq!(store.client(&web.id).await.unwrap(), Some(web.clone()));
    assert_eq!(
        store.client(&cli.id).await.unwrap().unwrap().secret_hash,
        None
    );
    assert_eq!(
        store.client_by_name(&web.name).await.unwrap(),
        Some(web.clone())
    );
    assert_eq!(store.client(&ClientId::generate()).await.unwrap(), None);
    let listed = store.list_clients().await.unwrap();
    assert_eq!(listed.len(), 2);
    let listed_generation = store.cache_generation().unwrap();
    assert_eq!(
        store.cache_generation().unwrap(),
        listed_generation,
        "reading changes nothing"
    );
    assert!(store.remove_client(&web.id).await.unwrap());
    assert_ne!(
        store.cache_generation().unwrap(),
        listed_generation,
        "removing a client changes the generation"
    );
    assert!(!store.remove_client(&web.id).await.unwrap());
    assert_eq!(store.client(&web.id).await.unwrap(), None);
    assert!(
        !store
            .replace_client_secret(&web.id, &ClientSecret::generate().hash())
            .await
            .unwrap(),
        "a removed client has no secret to replace"
    );
    assert!(
        !store
            .replace_client_secret(&cli.id, &ClientSecret::generate().hash())
            .await
            .unwrap(),
        "a public client gets no secret"
    );
    assert_eq!(
        store.client(&cli.id).await.unwrap().unwrap().secret_hash,
        None
    );
    let api = client("api", true);
    store.create_client(api.clone()).await.unwrap();
    let before_rotation = store.cache_generation().unwrap();
    let new_secret = ClientSecret::generate().hash();
    assert!(
        store
            .replace_client_secret(&api.id, &new_secret)
            .await
            .unwrap()
    );
    assert_ne!(
        store.cache_generation().unwrap(),
        before_rotation,
        "a new secret changes the generation"
    );
    let rotated = store.client(&api.id).await.unwrap().unwrap();
    assert!(rotated.secret_hash.unwrap().matches(&new_secret));
    assert!(store.remove_client(&api.id).await.unwrap());
    assert!(store.remove_client(&cli.id).await.unwrap());
}

fn key(kid: &str, algorithm: &str, at: Timestamp) -> StoredKey {
    StoredKey {
        kid: kid.into(),
        algorithm: algorithm.into(),
        private_key: vec![1, 2, 3, 4],
        sealed: false,
        created_at: at,
        signs_from: at,
        published_until: None,
        retired_at: None,
    }
}

async fn keys<S: KeyStore + RevocationLog>(store: &S) {
    let t0 = Timestamp::from_millis(1_000_000);
    assert!(store.signing_keys().await.unwrap().is_empty());
    assert!(store.add_first_key(key("ed-1", "EdDSA", t0)).await.unwrap());
    assert!(
        !store.add_first_key(key("ed-2", "EdDSA", t0)).await.unwrap(),
        "one first key per algorithm"
    );
    assert!(store.add_first_key(key("es-1", "ES256", t0)).await.unwrap());

    let t1 = Timestamp::from_millis(2_000_000);
    let until = Timestamp::from_millis(3_000_000);
    store
        .add_rotated_key(key("ed-3", "EdDSA", t1), until)
        .await
        .unwrap();
    let all = store.signing_keys().await.unwrap();
    let find = |kid: &str| all.iter().find(|k| k.kid == kid).cloned().unwrap();
    assert_eq!(find("ed-1").published_until, Some(until));
    assert_eq!(find("ed-3").published_until, None);
    assert_eq!(
        find("es-1").published_until,
        None,
        "other algorithms are untouched"
    );
    assert_eq!(find("ed-3").private_key, vec![1, 2, 3, 4]);

    let before = store.latest_revocation().await.unwrap();
    assert!(
        store
            .retire_key("ed-1", t1, Some(key("ed-5", "EdDSA", t1)))
            .await
            .unwrap()
    );
    assert!(
        store
            .signing_keys()
            .await
            .unwrap()
            .iter()
            .any(|k| k.kid == "ed-5")
    );
    let logged = store.revocations_after(before, 10).await.unwrap();
    assert_eq!(logged.len(), 1);
    assert_eq!(
        (logged[0].revoked.clone(), logged[0].reason),
        (Revoked::Key("ed-1".into()), EndReason::KeyRetired)
    );
    assert!(
        !store
            .retire_key("ed-1", t1, Some(key("ed-6", "EdDSA", t1)))
            .await
            .unwrap()
    );
    assert!(!store.retire_key("nope", t1, None).await.unwrap());
    assert!(
        !store
            .signing_keys()
            .await
            .unwrap()
            .iter()
            .any(|k| k.kid == "ed-6"),
        "a refused retirement adds no replacement"
    );
    store
        .replace_private_key("es-1", vec![9, 9], true)
        .await
        .unwrap();
    let all = store.signing_keys().await.unwrap();
    let es = all.iter().find(|k| k.kid == "es-1").unwrap();
    assert_eq!((es.private_key.clone(), es.sealed), (vec![9, 9], true));
    assert_eq!(
        all.iter().find(|k| k.kid == "ed-1").unwrap().retired_at,
        Some(t1)
    );
    // With every EdDSA key but the rotated one retired, a first key is still refused.
    assert!(!store.add_first_key(key("ed-4", "EdDSA", t1)).await.unwrap());
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
        methods: AuthMethods::password(),
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
    assert!(
        !store
            .replace_password_hash(alice.id, "stale", "$argon2id$v=19$lost")
            .await
            .unwrap()
    );
    assert!(
        store
            .replace_password_hash(alice.id, "$argon2id$v=19$first", "$argon2id$v=19$second")
            .await
            .unwrap()
    );
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
    assert_eq!(store.user(alice.id).await.unwrap(), Some(alice.clone()));
    assert_eq!(store.user(UserId::generate()).await.unwrap(), None);
    add_user(store, "alicia").await;
    let found = store.search_users("ali", None, 10).await.unwrap();
    let names: Vec<_> = found.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["alice", "alicia"]);
    let page = store.search_users("ali", None, 1).await.unwrap();
    assert_eq!(page.len(), 1);
    let next = store
        .search_users("ali", Some(&page[0].username), 10)
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].username.as_str(), "alicia");
    // LIKE's wildcards are plain characters here
    assert!(store.search_users("%", None, 10).await.unwrap().is_empty());
    assert!(store.search_users("_", None, 10).await.unwrap().is_empty());
    assert_eq!(store.search_users("", None, 10).await.unwrap().len(), 3);

    let disabled = store
        .set_user_disabled(&name("bob"), true)
        .await
        .unwrap()
        .unwrap();
    assert!(disabled.disabled);
    assert!(store.user(disabled.id).await.unwrap().unwrap().disabled);
    let enabled = store
        .set_user_disabled(&name("bob"), false)
        .await
        .unwrap()
        .unwrap();
    assert!(!enabled.disabled);
    assert!(!store.user(enabled.id).await.unwrap().unwrap().disabled);
    assert!(
        store
            .set_user_disabled(&name("nobody"), true)
            .await
            .unwrap()
            .is_none()
    );
}

/// One account per confusable skeleton: a name that looks like a taken one is
/// refused as a look-alike (the same name stays "taken"), racing registrations
/// included; an import is never refused for it, since what it copies existed.
async fn look_alikes<S: AccountStore>(store: &S) {
    let admin = add_user(store, "admin").await;
    let attempt = |username: &str| NewUser {
        id: UserId::generate(),
        username: name(username),
        password_hash: "$argon2id$v=19$look-alike".into(),
        roles: Roles::default(),
        created_at: Timestamp::now(),
    };
    // Cyrillic а, dotless ı, "rn" for "m", and all of them at once.
    for look_alike in ["\u{430}dmin", "adm\u{131}n", "adrnin", "\u{430}drn\u{131}n"] {
        assert!(
            matches!(
                store.create_user(attempt(look_alike)).await,
                Err(CreateUserError::LookAlike)
            ),
            "{look_alike}"
        );
        assert!(
            store
                .user_credentials(&name(look_alike))
                .await
                .unwrap()
                .is_none(),
            "{look_alike} was not created"
        );
    }
    assert!(matches!(
        store.create_user(attempt("Admin")).await,
        Err(CreateUserError::UsernameTaken)
    ));
    // A different name that merely shares letters is fine, in any script.
    add_user(store, "admins").await;
    add_user(store, "\u{430}\u{441}\u{435}").await;
    assert!(matches!(
        store.create_user(attempt("ace")).await,
        Err(CreateUserError::LookAlike)
    ));
    let kept = store
        .user_credentials(&name("admin"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.user, admin, "the holder is untouched");

    // Of two look-alikes registered at the same moment, exactly one is created.
    let (first, second) = tokio::join!(
        store.create_user(attempt("mallory")),
        store.create_user(attempt("rnallory")),
    );
    let created = [&first, &second].iter().filter(|r| r.is_ok()).count();
    assert_eq!(created, 1, "{first:?} {second:?}");
    assert!(
        [first, second]
            .into_iter()
            .any(|r| matches!(r, Err(CreateUserError::LookAlike)))
    );

    // Imported: kept whole beside the account it looks like, which keeps its look.
    let imported = crate::User {
        id: UserId::generate(),
        username: name("adm\u{131}n"),
        roles: Roles::default(),
        disabled: false,
        created_at: Timestamp::from_millis(1_700_000_000_000),
    };
    store
        .import_user(crate::UserCredentials {
            user: imported.clone(),
            password_hash: "$argon2id$v=19$imported-look-alike".into(),
        })
        .await
        .unwrap();
    let read = store
        .user_credentials(&imported.username)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.user, imported);
    assert_eq!(read.password_hash, "$argon2id$v=19$imported-look-alike");
    assert!(matches!(
        store.create_user(attempt("\u{430}dmin")).await,
        Err(CreateUserError::LookAlike)
    ));
    let mut imported_again = imported.clone();
    imported_again.id = UserId::generate();
    assert!(matches!(
        store
            .import_user(crate::UserCredentials {
                user: imported_again,
                password_hash: "x".into(),
            })
            .await,
        Err(CreateUserError::UsernameTaken)
    ));
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
    assert_eq!(found.methods, AuthMethods::password());

    // how a session was authenticated comes back as it was
    let (two_factors, mut with_code) = new_session(carol.id, now);
    let methods = AuthMethods::password().with(AuthMethod::OneTimeCode);
    with_code.methods = methods;
    store.create_session(with_code).await.unwrap();
    let found = store
        .session(&two_factors.session_id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.methods, methods);
    store
        .end_session(carol.id, &two_factors.session_id(), EndReason::Logout, now)
        .await
        .unwrap();

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
    store.set_user_disabled(&name("dave"), true).await.unwrap();
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
    assert_eq!(log[0].revoked, Revoked::Session(a.session_id()));
    assert_eq!(log[0].reason, EndReason::Logout);
    assert_eq!(log[0].user, Some(erin.id));
    assert_eq!(log[1].revoked, Revoked::Session(b.session_id()));
    assert!(log[0].sequence > start && log[1].sequence > log[0].sequence);
    assert_eq!(store.latest_revocation().await.unwrap(), log[1].sequence);
    assert_eq!(
        store.revocations_after(log[0].sequence, 100).await.unwrap(),
        vec![log[1].clone()]
    );
    assert_eq!(store.revocations_after(start, 1).await.unwrap().len(), 1);

    // Entries of other kinds, appended on their own.
    let now = Timestamp::now();
    let later = now.saturating_add(Duration::from_secs(60));
    let token = store
        .append_revocation(
            Revoked::Token("jti-1".into()),
            Some(erin.id),
            EndReason::Revoked,
            now,
            later,
        )
        .await
        .unwrap();
    let key = store
        .append_revocation(
            Revoked::Key("kid-1".into()),
            None,
            EndReason::KeyRetired,
            now,
            later,
        )
        .await
        .unwrap();
    assert!(token > log[1].sequence && key == token + 1);
    let tail = store.revocations_after(log[1].sequence, 10).await.unwrap();
    assert_eq!(tail[0].revoked, Revoked::Token("jti-1".into()));
    assert_eq!(tail[1].revoked, Revoked::Key("kid-1".into()));
    assert_eq!(tail[1].user, None);
    assert_eq!(store.latest_revocation().await.unwrap(), key);

    // A kick: the cut-off is the entry's own time, kept to the millisecond.
    let cut_off = Timestamp::from_millis(now.as_millis() + 7);
    let kick = store
        .append_revocation(
            Revoked::User(erin.id),
            Some(erin.id),
            EndReason::Kicked,
            cut_off,
            later,
        )
        .await
        .unwrap();
    let entry = store.revocations_after(key, 10).await.unwrap();
    assert_eq!(entry.len(), 1);
    assert_eq!(entry[0].sequence, kick);
    assert_eq!(entry[0].revoked, Revoked::User(erin.id));
    assert_eq!(entry[0].reason, EndReason::Kicked);
    assert_eq!(entry[0].at, cut_off);

    // Every reason reads back as written: one the log cannot parse would stall
    // every reader of it.
    for &reason in EndReason::ALL {
        let written = store
            .append_revocation(Revoked::User(erin.id), Some(erin.id), reason, now, later)
            .await
            .unwrap();
        let read = store.revocations_after(written - 1, 1).await.unwrap();
        assert_eq!(read[0].reason, reason);
    }
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

/// Codes are spent once, by exactly one of any number of concurrent redemptions;
/// a spent code is still recognised (with what it was bound to) until `forget_at`.
async fn authorization_codes<S: AuthorizationCodeStore>(store: &S) {
    let now = Timestamp::now();
    let code = |secret: &RefreshTokenSecret, challenge: Option<&str>, nonce: Option<&str>| {
        AuthorizationCode {
            hash: secret.hash(),
            client_id: ClientId::generate(),
            user: UserId::generate(),
            session: SessionSecret::generate().session_id(),
            redirect_uri: "http://127.0.0.1:49152/cb?x=1".into(),
            scopes: Scopes::parse("openid profile").unwrap(),
            code_challenge: challenge.map(str::to_owned),
            nonce: nonce.map(str::to_owned),
            // Set with the nonce, so that it is seen to round-trip with it.
            dpop_jkt: nonce.map(|_| "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".to_owned()),
            auth_time: Timestamp::from_millis(now.as_millis() - 5_000),
            family: SessionSecret::generate().session_id(),
            jti: "code-jti".into(),
            issued_at: now,
            expires_at: now.saturating_add(Duration::from_secs(60)),
            forget_at: now.saturating_add(Duration::from_secs(600)),
        }
    };
    let secret = RefreshTokenSecret::generate();
    let full = code(
        &secret,
        Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
        Some("n-0S6_WzA2Mj"),
    );
    store.store_code(full.clone()).await.unwrap();
    assert!(matches!(
        store.store_code(full.clone()).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.redeem_code(&full.hash, now).await.unwrap(),
        Redemption::First(full.clone())
    );
    assert_eq!(
        store.redeem_code(&full.hash, now).await.unwrap(),
        Redemption::Again(full.clone())
    );
    let never = RefreshTokenSecret::generate().hash();
    assert_eq!(
        store.redeem_code(&never, now).await.unwrap(),
        Redemption::Unknown
    );

    // The optional parts absent come back absent.
    let bare = code(&RefreshTokenSecret::generate(), None, None);
    store.store_code(bare.clone()).await.unwrap();
    assert_eq!(
        store.redeem_code(&bare.hash, now).await.unwrap(),
        Redemption::First(bare)
    );

    // Racing redemptions: one wins, every other sees a replay.
    let raced = code(&RefreshTokenSecret::generate(), None, None);
    store.store_code(raced.clone()).await.unwrap();
    let redeem = || store.redeem_code(&raced.hash, now);
    let (a, b, c, d) = tokio::join!(redeem(), redeem(), redeem(), redeem());
    let answers = [a, b, c, d];
    let first = answers
        .iter()
        .filter(|a| matches!(a, Ok(Redemption::First(_))))
        .count();
    let again = answers
        .iter()
        .filter(|a| matches!(a, Ok(Redemption::Again(_))))
        .count();
    assert_eq!((first, again), (1, 3), "{answers:?}");

    // Many codes written and spent at once (which a backend may do in one
    // statement) each get their own answer: a hash given twice is taken once.
    let codes: Vec<AuthorizationCode> = (0..5)
        .map(|_| code(&RefreshTokenSecret::generate(), None, None))
        .collect();
    let mut writes: Vec<AuthorizationCode> = codes.clone();
    writes.push(codes[2].clone());
    let written = futures_join_all(writes.into_iter().map(|c| store.store_code(c))).await;
    assert!(written[..5].iter().all(Result::is_ok), "{written:?}");
    assert!(
        matches!(written[5], Err(StoreError::Conflict(_))),
        "{written:?}"
    );
    let unknown = RefreshTokenSecret::generate().hash();
    let presented = [
        codes[0].hash,
        full.hash,
        codes[1].hash,
        unknown,
        codes[0].hash,
        codes[4].hash,
    ];
    let answers = futures_join_all(presented.iter().map(|hash| store.redeem_code(hash, now))).await;
    let answers: Vec<Redemption> = answers.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        answers,
        [
            Redemption::First(codes[0].clone()),
            Redemption::Again(full.clone()),
            Redemption::First(codes[1].clone()),
            Redemption::Unknown,
            Redemption::Again(codes[0].clone()),
            Redemption::First(codes[4].clone()),
        ]
    );
}

/// An exchange spends its code and writes what the plan makes of it (the
/// session-client record, the refresh family) in the same call; a code spent
/// before, or never issued, writes nothing and is not shown to the plan; of racing
/// exchanges one starts the family; a disabled user's family is refused while the
/// code stays spent.
async fn code_exchanges<S>(store: &S)
where
    S: AccountStore + RefreshStore + AuthorizationCodeStore + BackchannelStore + CodeExchangeStore,
{
    let user = add_user(store, "exchanger").await;
    let now = Timestamp::now();
    let code_of = |user: UserId| AuthorizationCode {
        hash: tessera_core::AuthorizationCodeSecret::generate().hash(),
        client_id: ClientId::generate(),
        user,
        session: SessionSecret::generate().session_id(),
        redirect_uri: "https://rp.example/cb".into(),
        scopes: Scopes::parse("openid").unwrap(),
        code_challenge: None,
        nonce: None,
        dpop_jkt: None,
        auth_time: now,
        family: tessera_core::SessionId::time_ordered(),
        jti: "exchange-jti".into(),
        issued_at: now,
        expires_at: now.saturating_add(Duration::from_secs(60)),
        forget_at: now.saturating_add(Duration::from_secs(600)),
    };
    let plan = |token: &RefreshTokenSecret| -> PlanFollowUp {
        let token_hash = token.hash();
        Box::new(move |code: &AuthorizationCode| CodeFollowUp {
            session_client: Some(SessionClient {
                session: code.session,
                client_id: code.client_id,
                user: code.user,
                forget_at: code.forget_at,
            }),
            family: Some(NewRefreshFamily {
                id: code.family,
                client_id: code.client_id,
                user_id: code.user,
                scopes: code.scopes.clone(),
                audience: None,
                session: Some(code.session),
                token_hash,
                created_at: now,
                expires_at: now.saturating_add(Duration::from_secs(3600)),
                // Bound, so that the binding is seen to round-trip.
                dpop_jkt: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".to_owned()),
            }),
        })
    };

    let code = code_of(user.id);
    store.store_code(code.clone()).await.unwrap();
    let token = RefreshTokenSecret::generate();
    let exchanged = store
        .exchange_code(&code.hash, now, plan(&token))
        .await
        .unwrap();
    assert_eq!(exchanged.redemption, Redemption::First(code.clone()));
    assert!(matches!(exchanged.family, Some(Ok(()))), "{exchanged:?}");
    let family = store.family_by_token(&token.hash()).await.unwrap().unwrap();
    assert_eq!((family.id, family.user.id), (code.family, user.id));
    assert_eq!(
        family.dpop_jkt.as_deref(),
        Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")
    );
    // The record is there: the session's end queues a logout for the client.
    let at = Timestamp::from_millis(1_900_000_000_000);
    let base = store.logout_position().await.unwrap();
    assert_eq!(
        store
            .queue_logouts(&[code.session], &[], base + 1, at)
            .await
            .unwrap(),
        1
    );
    for delivery in store.claim_logouts(at, at, 10).await.unwrap() {
        assert_eq!(delivery.client_id, code.client_id);
        store.finish_logout(delivery.id).await.unwrap();
    }

    // Again: a replay, and nothing written.
    let again = RefreshTokenSecret::generate();
    let replayed = store
        .exchange_code(&code.hash, now, plan(&again))
        .await
        .unwrap();
    assert_eq!(replayed.redemption, Redemption::Again(code.clone()));
    assert!(replayed.family.is_none());
    assert!(
        store
            .family_by_token(&again.hash())
            .await
            .unwrap()
            .is_none()
    );
    let never = store
        .exchange_code(
            &tessera_core::AuthorizationCodeSecret::generate().hash(),
            now,
            Box::new(|_: &AuthorizationCode| panic!("the plan of a code never issued ran")),
        )
        .await
        .unwrap();
    assert_eq!(never.redemption, Redemption::Unknown);

    // Racing exchanges (a backend may take them in one batch): one starts a family.
    let raced = code_of(user.id);
    store.store_code(raced.clone()).await.unwrap();
    let tokens: Vec<RefreshTokenSecret> = (0..4).map(|_| RefreshTokenSecret::generate()).collect();
    let answers = futures_join_all(
        tokens
            .iter()
            .map(|token| store.exchange_code(&raced.hash, now, plan(token))),
    )
    .await;
    let started: Vec<_> = answers
        .iter()
        .map(|a| a.as_ref().unwrap())
        .filter(|a| matches!(a.redemption, Redemption::First(_)))
        .collect();
    assert_eq!(started.len(), 1, "{answers:?}");
    assert!(matches!(started[0].family, Some(Ok(()))));
    let mut families = 0;
    for token in &tokens {
        families += usize::from(
            store
                .family_by_token(&token.hash())
                .await
                .unwrap()
                .is_some(),
        );
    }
    assert_eq!(families, 1);

    // A disabled user: the code is spent, the family refused.
    let disabled = add_user(store, "exchanger-disabled").await;
    let code = code_of(disabled.id);
    store.store_code(code.clone()).await.unwrap();
    assert!(
        store
            .set_user_disabled(&disabled.username, true)
            .await
            .unwrap()
            .is_some()
    );
    let refused = RefreshTokenSecret::generate();
    let exchanged = store
        .exchange_code(&code.hash, now, plan(&refused))
        .await
        .unwrap();
    assert_eq!(exchanged.redemption, Redemption::First(code.clone()));
    assert!(
        matches!(
            exchanged.family,
            Some(Err(CreateSessionError::UserDisabled))
        ),
        "{exchanged:?}"
    );
    assert!(
        store
            .family_by_token(&refused.hash())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.redeem_code(&code.hash, now).await.unwrap(),
        Redemption::Again(code)
    );
}

/// A profile starts empty, is replaced whole, and is there only for a user that is.
async fn profiles<S: AccountStore>(store: &S) {
    let user = store
        .create_user(NewUser {
            id: UserId::generate(),
            username: name("profiled"),
            password_hash: "$argon2id$v=19$p".into(),
            roles: Roles::default(),
            created_at: Timestamp::now(),
        })
        .await
        .unwrap();
    assert_eq!(
        store.profile(user.id).await.unwrap(),
        Some(Profile::default())
    );
    let full = Profile {
        name: Some(DisplayName::parse("Ada Lovelace").unwrap()),
        email: Some(Email::parse("ada@example.org").unwrap()),
        email_verified: true,
        updated_at: Some(Timestamp::from_millis(1_700_000_000_123)),
    };
    assert!(store.set_profile(user.id, full.clone()).await.unwrap());
    assert_eq!(store.profile(user.id).await.unwrap(), Some(full));
    let cleared = Profile {
        updated_at: Some(Timestamp::from_millis(1_700_000_000_456)),
        ..Profile::default()
    };
    assert!(store.set_profile(user.id, cleared.clone()).await.unwrap());
    assert_eq!(store.profile(user.id).await.unwrap(), Some(cleared));
    // The account itself is untouched.
    assert_eq!(store.user(user.id).await.unwrap(), Some(user));
    let nobody = UserId::generate();
    assert_eq!(store.profile(nobody).await.unwrap(), None);
    assert!(!store.set_profile(nobody, Profile::default()).await.unwrap());
}

/// A consent is kept per user and client, replaced whole, listed oldest first, and
/// saved only for a user that is.
/// What the server caches beside clients (profiles, consents) moves the cache
/// generation when it changes, so that no process serves it stale.
async fn cached_changes<S: AccountStore + ClientStore>(store: &S) {
    let user = add_user(store, "cached").await;
    let app = ClientId::generate();
    let before = store.cache_generation().unwrap();
    assert!(
        store
            .set_profile(
                user.id,
                Profile {
                    name: Some(DisplayName::parse("Cached Person").unwrap()),
                    ..Profile::default()
                }
            )
            .await
            .unwrap()
    );
    let after_profile = store.cache_generation().unwrap();
    assert_ne!(after_profile, before, "a profile set");
    assert!(
        store
            .save_consent(Consent {
                user: user.id,
                client_id: app,
                scopes: Scopes::parse("openid").unwrap(),
                granted_at: Timestamp::now(),
            })
            .await
            .unwrap()
    );
    assert!(store.withdraw_consent(user.id, &app).await.unwrap());
    assert_ne!(
        store.cache_generation().unwrap(),
        after_profile,
        "a consent withdrawn"
    );
}

async fn consents<S: AccountStore>(store: &S) {
    let user = store
        .create_user(NewUser {
            id: UserId::generate(),
            username: name("consenting"),
            password_hash: "$argon2id$v=19$p".into(),
            roles: Roles::default(),
            created_at: Timestamp::now(),
        })
        .await
        .unwrap();
    let (app, other) = (ClientId::generate(), ClientId::generate());
    assert_eq!(store.consent(user.id, &app).await.unwrap(), None);
    assert!(store.consents(user.id).await.unwrap().is_empty());
    let first = Consent {
        user: user.id,
        client_id: app,
        scopes: Scopes::parse("openid profile").unwrap(),
        granted_at: Timestamp::from_millis(1_700_000_000_000),
    };
    assert!(store.save_consent(first.clone()).await.unwrap());
    assert_eq!(store.consent(user.id, &app).await.unwrap(), Some(first));
    let wider = Consent {
        scopes: Scopes::parse("openid profile email").unwrap(),
        granted_at: Timestamp::from_millis(1_700_000_000_500),
        ..first_of(user.id, app)
    };
    assert!(store.save_consent(wider.clone()).await.unwrap());
    assert_eq!(
        store.consent(user.id, &app).await.unwrap(),
        Some(wider.clone())
    );
    let later = Consent {
        granted_at: Timestamp::from_millis(1_700_000_001_000),
        ..first_of(user.id, other)
    };
    assert!(store.save_consent(later.clone()).await.unwrap());
    assert_eq!(store.consents(user.id).await.unwrap(), vec![wider, later]);
    assert_eq!(
        store.consent(user.id, &ClientId::generate()).await.unwrap(),
        None
    );

    assert!(store.withdraw_consent(user.id, &app).await.unwrap());
    assert!(!store.withdraw_consent(user.id, &app).await.unwrap());
    assert_eq!(store.consent(user.id, &app).await.unwrap(), None);
    assert_eq!(store.consents(user.id).await.unwrap().len(), 1);

    let nobody = UserId::generate();
    assert!(!store.save_consent(first_of(nobody, app)).await.unwrap());
    assert!(store.consents(nobody).await.unwrap().is_empty());
}

/// Roles are replaced as a whole; an unknown user is `None`.
async fn roles<S: AccountStore>(store: &S) {
    let user = add_user(store, "promoted").await;
    let admin = Roles::new(vec![Role::Admin]);
    let (before, changed) = store.set_roles(user.id, &admin).await.unwrap().unwrap();
    assert_eq!(before, Roles::default());
    assert_eq!((changed.id, &changed.roles), (user.id, &admin));
    assert_eq!(store.user(user.id).await.unwrap().unwrap().roles, admin);
    let (before, none) = store
        .set_roles(user.id, &Roles::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((before, none.roles), (admin.clone(), Roles::default()));
    assert_eq!(
        store.set_roles(UserId::generate(), &admin).await.unwrap(),
        None
    );
}

/// A TOTP credential: kept unconfirmed while enrolling, confirmed and spent only
/// for the secret a code was checked against, each step once.
async fn totp_credentials<S: AccountStore>(store: &S) {
    let user = add_user(store, "two-factor").await;
    let now = Timestamp::from_millis(1_800_000_000_000);
    assert_eq!(store.totp(user.id).await.unwrap(), None);
    let (first, second) = (vec![1; 36], vec![2; 36]);
    assert!(!store.use_totp_step(user.id, &first, 1).await.unwrap());
    assert!(!store.confirm_totp(user.id, &first, 1, now).await.unwrap());
    // No such user: nothing kept.
    assert!(
        !store
            .begin_totp(UserId::generate(), vec![1; 36], now)
            .await
            .unwrap()
    );

    // Enrolling: kept unconfirmed, and a second start replaces the first.
    assert!(store.begin_totp(user.id, first.clone(), now).await.unwrap());
    assert!(
        store
            .begin_totp(user.id, second.clone(), now)
            .await
            .unwrap()
    );
    let pending = store.totp(user.id).await.unwrap().unwrap();
    assert_eq!(pending.sealed_secret, second);
    assert_eq!((pending.confirmed_at, pending.last_step), (None, None));
    assert!(!format!("{pending:?}").contains("[2, 2"), "{pending:?}");
    // An unconfirmed credential accepts no code.
    assert!(!store.use_totp_step(user.id, &second, 100).await.unwrap());
    // A code checked against the secret replaced since confirms nothing.
    assert!(!store.confirm_totp(user.id, &first, 100, now).await.unwrap());

    // Confirmed with the step of the code that proved it, which is then used.
    assert!(
        store
            .confirm_totp(user.id, &second, 100, now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .confirm_totp(user.id, &second, 101, now)
            .await
            .unwrap()
    );
    let confirmed = store.totp(user.id).await.unwrap().unwrap();
    assert_eq!(
        (confirmed.confirmed_at, confirmed.last_step),
        (Some(now), Some(100))
    );
    assert!(!store.use_totp_step(user.id, &second, 100).await.unwrap());
    assert!(!store.use_totp_step(user.id, &second, 99).await.unwrap());
    // Nor is a step spent for another secret than the one stored.
    assert!(!store.use_totp_step(user.id, &first, 200).await.unwrap());
    // A confirmed credential is not replaced by starting over.
    assert!(!store.begin_totp(user.id, vec![3; 36], now).await.unwrap());

    // Of many uses of one step at once, exactly one gets it.
    let step = || store.use_totp_step(user.id, &second, 101);
    let uses = tokio::join!(step(), step(), step(), step(), step(), step());
    let uses = [uses.0, uses.1, uses.2, uses.3, uses.4, uses.5];
    assert_eq!(
        uses.iter().filter(|used| *used.as_ref().unwrap()).count(),
        1
    );
    assert_eq!(
        store.totp(user.id).await.unwrap().unwrap().last_step,
        Some(101)
    );

    // Removed: gone, and a new enrolment may start.
    assert!(store.remove_totp(user.id).await.unwrap());
    assert!(!store.remove_totp(user.id).await.unwrap());
    assert_eq!(store.totp(user.id).await.unwrap(), None);
    assert!(store.begin_totp(user.id, vec![4; 36], now).await.unwrap());
}

/// Recovery codes: each used once (of two uses at once, one), per account, and a
/// new set replaces the old whole.
async fn recovery_codes<S: AccountStore>(store: &S) {
    let user = add_user(store, "recovering").await;
    let now = Timestamp::from_millis(1_800_000_000_000);
    let hash = |h: u8| SecretHash::from_bytes([h; 32]);
    assert_eq!(store.unused_recovery_codes(user.id).await.unwrap().len(), 0);
    assert!(
        !store
            .use_recovery_code(user.id, &hash(1), now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .replace_recovery_codes(UserId::generate(), vec![hash(1)], now)
            .await
            .unwrap()
    );

    let first: Vec<SecretHash> = (1..=10).map(hash).collect();
    assert!(
        store
            .replace_recovery_codes(user.id, first, now)
            .await
            .unwrap()
    );
    assert_eq!(
        store.unused_recovery_codes(user.id).await.unwrap().len(),
        10
    );
    // Each once, and of two uses at once exactly one.
    let third = hash(3);
    let (a, b) = tokio::join!(
        store.use_recovery_code(user.id, &third, now),
        store.use_recovery_code(user.id, &third, now)
    );
    assert_eq!(
        [a.unwrap(), b.unwrap()]
            .iter()
            .filter(|used| **used)
            .count(),
        1
    );
    assert!(
        !store
            .use_recovery_code(user.id, &hash(3), now)
            .await
            .unwrap()
    );
    // the unused ones, by their hashes (what store migrate copies)
    let mut unused = store.unused_recovery_codes(user.id).await.unwrap();
    unused.sort_by_key(|h| *h.as_bytes());
    let mut expected: Vec<SecretHash> = (1..=10).filter(|i| *i != 3).map(hash).collect();
    expected.sort_by_key(|h| *h.as_bytes());
    assert!(unused == expected, "the unused codes' hashes");
    // Another account's code is not this one's.
    let other = add_user(store, "someone-else").await;
    assert!(
        !store
            .use_recovery_code(other.id, &hash(4), now)
            .await
            .unwrap()
    );

    // A new set: the old codes stop working, used or not.
    let second: Vec<SecretHash> = (11..=20).map(hash).collect();
    assert!(
        store
            .replace_recovery_codes(user.id, second, now)
            .await
            .unwrap()
    );
    assert_eq!(
        store.unused_recovery_codes(user.id).await.unwrap().len(),
        10
    );
    assert!(
        !store
            .use_recovery_code(user.id, &hash(4), now)
            .await
            .unwrap()
    );
    assert!(
        store
            .use_recovery_code(user.id, &hash(11), now)
            .await
            .unwrap()
    );
}

/// A reset link works until it expires, once; a newer one replaces it; using it
/// sets the password; of two uses at once exactly one succeeds.
async fn reset_links<S: AccountStore>(store: &S) {
    let user = add_user(store, "forgetful").await;
    let now = Timestamp::from_millis(1_800_000_000_000);
    let link = |hash: u8| ResetLink {
        user: user.id,
        hash: SecretHash::from_bytes([hash; 32]),
        created_at: now,
        expires_at: now.saturating_add(Duration::from_secs(3600)),
    };
    let hash = |h: u8| SecretHash::from_bytes([h; 32]);
    assert_eq!(store.reset_link_user(&hash(1), now).await.unwrap(), None);
    assert!(store.save_reset_link(link(1)).await.unwrap());
    assert_eq!(
        store.reset_link_user(&hash(1), now).await.unwrap(),
        Some(user.id)
    );
    // A second link replaces the first.
    assert!(store.save_reset_link(link(2)).await.unwrap());
    assert_eq!(store.reset_link_user(&hash(1), now).await.unwrap(), None);
    assert_eq!(
        store
            .use_reset_link(&hash(1), now, "$argon2id$stale")
            .await
            .unwrap(),
        None
    );
    // Expired: neither read nor used.
    let later = now.saturating_add(Duration::from_secs(3600));
    assert_eq!(store.reset_link_user(&hash(2), later).await.unwrap(), None);
    assert_eq!(
        store
            .use_reset_link(&hash(2), later, "$argon2id$late")
            .await
            .unwrap(),
        None
    );
    let credentials = store
        .user_credentials(&user.username)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(credentials.password_hash, "$argon2id$fake$forgetful");
    // Used: the password is set, and the link is gone.
    assert_eq!(
        store
            .use_reset_link(&hash(2), now, "$argon2id$new")
            .await
            .unwrap(),
        Some(user.id)
    );
    let credentials = store
        .user_credentials(&user.username)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(credentials.password_hash, "$argon2id$new");
    assert_eq!(store.reset_link_user(&hash(2), now).await.unwrap(), None);
    assert_eq!(
        store
            .use_reset_link(&hash(2), now, "$argon2id$again")
            .await
            .unwrap(),
        None
    );
    // Two uses at the same moment: one wins.
    assert!(store.save_reset_link(link(3)).await.unwrap());
    let answers = futures_join_all([
        store.use_reset_link(&hash(3), now, "$argon2id$first"),
        store.use_reset_link(&hash(3), now, "$argon2id$second"),
    ])
    .await;
    let used: Vec<_> = answers.into_iter().map(|a| a.unwrap()).collect();
    assert_eq!(used.iter().filter(|u| u.is_some()).count(), 1, "{used:?}");
    // No link for an account that does not exist.
    assert!(
        !store
            .save_reset_link(ResetLink {
                user: UserId::generate(),
                ..link(4)
            })
            .await
            .unwrap()
    );
}

fn first_of(user: UserId, client_id: ClientId) -> Consent {
    Consent {
        user,
        client_id,
        scopes: Scopes::parse("openid").unwrap(),
        granted_at: Timestamp::from_millis(1_700_000_000_000),
    }
}

/// Logouts are queued once per client and session, whoever queues them and however
/// often; a claimed logout is leased; retried ones come back when due; the
/// position only goes up; the records purge with time.
async fn backchannel_logouts<S: BackchannelStore + SessionStore>(store: &S) {
    let at = Timestamp::from_millis(1_800_000_000_000);
    let session = SessionSecret::generate().session_id();
    let other_session = SessionSecret::generate().session_id();
    let (app, other_app) = (ClientId::generate(), ClientId::generate());
    let (user, other_user) = (UserId::generate(), UserId::generate());
    let record = |session, client_id, user| SessionClient {
        session,
        client_id,
        user,
        forget_at: at.saturating_add(Duration::from_secs(3600)),
    };
    let base = store.logout_position().await.unwrap();
    // At once (a backend may write them in one statement), the same pair twice.
    let records = [
        record(session, app, user),
        record(session, app, user),
        record(session, other_app, user),
        record(other_session, app, other_user),
    ];
    let recorded =
        futures_join_all(records.into_iter().map(|r| store.record_session_client(r))).await;
    assert!(recorded.iter().all(Result::is_ok), "{recorded:?}");
    // And once more afterwards: recording is idempotent.
    store
        .record_session_client(record(session, app, user))
        .await
        .unwrap();
    // Nothing is due before a session ends.
    assert!(store.claim_logouts(at, at, 10).await.unwrap().is_empty());

    assert_eq!(
        store
            .queue_logouts(&[session], &[], base + 5, at)
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.logout_position().await.unwrap(), base + 5);
    // Again (another instance reading the same log): nothing new, and the position
    // never goes back.
    assert_eq!(
        store
            .queue_logouts(&[session], &[], base + 3, at)
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.logout_position().await.unwrap(), base + 5);
    assert_eq!(store.pending_logouts().await.unwrap(), 2);

    let lease = at.saturating_add(Duration::from_secs(30));
    let claimed = store.claim_logouts(at, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(
        claimed
            .iter()
            .all(|c| c.session == session && c.user == user && c.attempts == 1)
    );
    assert_eq!(
        claimed
            .iter()
            .map(|c| c.client_id)
            .collect::<std::collections::BTreeSet<_>>(),
        [app, other_app].into_iter().collect()
    );
    // Leased: nobody else gets them meanwhile.
    assert!(store.claim_logouts(at, lease, 10).await.unwrap().is_empty());
    store.finish_logout(claimed[0].id).await.unwrap();
    let later = at.saturating_add(Duration::from_secs(5));
    store.retry_logout(claimed[1].id, later).await.unwrap();
    assert!(
        store.claim_logouts(at, lease, 10).await.unwrap().is_empty(),
        "not due yet"
    );
    let again = store.claim_logouts(later, lease, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].attempts), (claimed[1].id, 2));
    // A lease that ran out (the instance died mid-delivery): taken again.
    let retaken = store
        .claim_logouts(lease, lease.saturating_add(Duration::from_secs(30)), 10)
        .await
        .unwrap();
    assert_eq!(retaken.len(), 1);
    store.finish_logout(retaken[0].id).await.unwrap();
    assert_eq!(store.pending_logouts().await.unwrap(), 0);

    // A user's end (kick, disable) queues every session of theirs.
    assert_eq!(
        store
            .queue_logouts(&[], &[other_user], base + 6, at)
            .await
            .unwrap(),
        1
    );
    let kicked = store.claim_logouts(at, lease, 10).await.unwrap();
    assert_eq!(kicked.len(), 1);
    assert_eq!(
        (kicked[0].session, kicked[0].client_id),
        (other_session, app)
    );
    store.finish_logout(kicked[0].id).await.unwrap();
    // Queued and delivered once: a session recorded afresh is another matter, but
    // the same end read again queues nothing.
    assert_eq!(
        store
            .queue_logouts(&[session], &[other_user], base + 6, at)
            .await
            .unwrap(),
        0
    );

    // The person removes one app: its sessions of theirs, and nothing else.
    let (phone, laptop, theirs) = (
        SessionSecret::generate().session_id(),
        SessionSecret::generate().session_id(),
        SessionSecret::generate().session_id(),
    );
    for r in [
        record(phone, app, user),
        record(laptop, app, user),
        record(phone, other_app, user),
        record(theirs, app, other_user),
    ] {
        store.record_session_client(r).await.unwrap();
    }
    assert_eq!(store.queue_client_logouts(user, app, at).await.unwrap(), 2);
    assert_eq!(store.queue_client_logouts(user, app, at).await.unwrap(), 0);
    let removed = store.claim_logouts(at, lease, 10).await.unwrap();
    assert_eq!(
        removed
            .iter()
            .map(|c| (c.session, c.client_id, c.user))
            .collect::<std::collections::BTreeSet<_>>(),
        [(phone, app, user), (laptop, app, user)]
            .into_iter()
            .collect()
    );
    for claimed in &removed {
        store.finish_logout(claimed.id).await.unwrap();
    }
    // The other app's and the other person's records stay, for their own ends.
    assert_eq!(
        store
            .queue_logouts(&[phone, theirs], &[], base + 7, at)
            .await
            .unwrap(),
        2
    );
    for claimed in store.claim_logouts(at, lease, 10).await.unwrap() {
        store.finish_logout(claimed.id).await.unwrap();
    }

    // Records of sessions that never ended go with time.
    let lingering = SessionSecret::generate().session_id();
    store
        .record_session_client(record(lingering, app, user))
        .await
        .unwrap();
    store
        .purge_expired(at.saturating_add(Duration::from_secs(7200)), at)
        .await
        .unwrap();
    assert_eq!(
        store
            .queue_logouts(&[lingering], &[], base + 7, at)
            .await
            .unwrap(),
        0
    );
}

/// A pushed request is found by its hash until it expires or is dropped.
async fn pushed_requests<S: AuthorizationCodeStore>(store: &S) {
    let now = Timestamp::now();
    let request = PushedRequest {
        hash: RefreshTokenSecret::generate().hash(),
        client_id: ClientId::generate(),
        params: "response_type=code&state=a%26b".into(),
        expires_at: now.saturating_add(Duration::from_secs(60)),
    };
    store.push_request(request.clone()).await.unwrap();
    assert_eq!(
        store.pushed_request(&request.hash, now).await.unwrap(),
        Some(request.clone())
    );
    // Found again (a sign-in came between), until it expires.
    assert!(
        store
            .pushed_request(&request.hash, now)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store
            .pushed_request(&request.hash, request.expires_at)
            .await
            .unwrap(),
        None
    );
    let never = RefreshTokenSecret::generate().hash();
    assert_eq!(store.pushed_request(&never, now).await.unwrap(), None);
    assert!(
        store.drop_pushed_request(&request.hash).await.unwrap(),
        "the first drop takes it"
    );
    assert!(
        !store.drop_pushed_request(&request.hash).await.unwrap(),
        "a second finds it taken"
    );
    assert_eq!(
        store.pushed_request(&request.hash, now).await.unwrap(),
        None
    );
}

/// Passkeys: several per account, each credential id once across accounts; a use
/// moves the counter forward only, and of two uses with one counter exactly one
/// passes; removal is the owner's.
async fn passkeys<S: AccountStore>(store: &S) {
    let ann = add_user(store, "passkey-ann").await;
    let bob = add_user(store, "passkey-bob").await;
    let now = Timestamp::now();
    let key = |id: u8, user: UserId, count: u32| PasskeyCredential {
        credential_id: vec![id; 16],
        user,
        name: format!("key {id}"),
        passkey: format!(r#"{{"cred":{id}}}"#),
        sign_count: count,
        backup_eligible: id.is_multiple_of(2),
        created_at: now.saturating_add(Duration::from_millis(u64::from(id))),
        last_used_at: None,
    };
    assert!(store.add_passkey(key(1, ann.id, 5)).await.unwrap());
    assert!(store.add_passkey(key(2, ann.id, 0)).await.unwrap());
    assert!(
        !store
            .add_passkey(key(3, UserId::generate(), 0))
            .await
            .unwrap()
    );
    // a credential id is one credential, whoever claims it
    assert!(matches!(
        store.add_passkey(key(1, bob.id, 0)).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.passkeys(ann.id).await.unwrap(),
        vec![key(1, ann.id, 5), key(2, ann.id, 0)]
    );
    assert_eq!(
        store.passkey(&[1; 16]).await.unwrap(),
        Some(key(1, ann.id, 5))
    );
    assert_eq!(store.passkey(&[9; 16]).await.unwrap(), None);

    // the counter only goes forward, and two uses with one counter: one passes
    let later = now.saturating_add(Duration::from_secs(1));
    for stale in [5, 4] {
        assert!(
            !store
                .use_passkey(&[1; 16], "{}".into(), stale, later)
                .await
                .unwrap()
        );
    }
    let (a, b) = tokio::join!(
        store.use_passkey(&[1; 16], r#"{"cred":1,"n":6}"#.into(), 6, later),
        store.use_passkey(&[1; 16], r#"{"cred":1,"n":6}"#.into(), 6, later)
    );
    assert_eq!(u8::from(a.unwrap()) + u8::from(b.unwrap()), 1);
    let used = store.passkey(&[1; 16]).await.unwrap().unwrap();
    assert_eq!((used.sign_count, used.last_used_at), (6, Some(later)));
    assert_eq!(used.passkey, r#"{"cred":1,"n":6}"#);
    // an authenticator that keeps no counter says 0 each time
    assert!(
        store
            .use_passkey(&[2; 16], "{}".into(), 0, later)
            .await
            .unwrap()
    );
    assert!(
        store
            .use_passkey(&[2; 16], "{}".into(), 0, later)
            .await
            .unwrap()
    );
    // ...until it starts one; then 0 again is a step back
    assert!(
        store
            .use_passkey(&[2; 16], "{}".into(), 1, later)
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_passkey(&[2; 16], "{}".into(), 0, later)
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_passkey(&[9; 16], "{}".into(), 1, later)
            .await
            .unwrap()
    );

    // only its owner removes it
    assert!(!store.remove_passkey(bob.id, &[1; 16]).await.unwrap());
    assert!(store.remove_passkey(ann.id, &[1; 16]).await.unwrap());
    assert!(!store.remove_passkey(ann.id, &[1; 16]).await.unwrap());
    assert_eq!(store.passkeys(ann.id).await.unwrap().len(), 1);
}

/// A ceremony is taken once, only as its kind and before it expires; once taken
/// or expired it is gone.
pub async fn ceremonies<S: CeremonyStore>(store: &S) {
    let now = Timestamp::now();
    let ceremony = Ceremony {
        hash: RefreshTokenSecret::generate().hash(),
        kind: CeremonyKind::SecondFactor,
        user: Some(UserId::generate()),
        state: r#"{"attempts":0}"#.into(),
        expires_at: now.saturating_add(Duration::from_secs(300)),
    };
    store.begin_ceremony(ceremony.clone()).await.unwrap();
    assert!(matches!(
        store.begin_ceremony(ceremony.clone()).await,
        Err(StoreError::Conflict(_))
    ));
    // looked at, it stays; not as another kind, nor once expired
    for _ in 0..2 {
        assert_eq!(
            store
                .ceremony(&ceremony.hash, CeremonyKind::SecondFactor, now)
                .await
                .unwrap(),
            Some(ceremony.clone())
        );
    }
    assert_eq!(
        store
            .ceremony(
                &ceremony.hash,
                CeremonyKind::SecondFactor,
                ceremony.expires_at
            )
            .await
            .unwrap(),
        None
    );
    let taken = store
        .take_ceremony(&ceremony.hash, CeremonyKind::SecondFactor, now)
        .await
        .unwrap();
    assert_eq!(taken, Some(ceremony.clone()));
    assert_eq!(
        store
            .take_ceremony(&ceremony.hash, CeremonyKind::SecondFactor, now)
            .await
            .unwrap(),
        None,
        "a ceremony is taken once"
    );

    // of racing takes, exactly one finds it
    let raced = Ceremony {
        hash: RefreshTokenSecret::generate().hash(),
        user: None,
        ..ceremony.clone()
    };
    store.begin_ceremony(raced.clone()).await.unwrap();
    let takes = futures_join_all(
        (0..8).map(|_| store.take_ceremony(&raced.hash, CeremonyKind::SecondFactor, now)),
    )
    .await;
    let found = takes
        .into_iter()
        .filter(|t| matches!(t, Ok(Some(_))))
        .count();
    assert_eq!(found, 1);

    // expired: gone, and not there afterwards either
    let expired = Ceremony {
        hash: RefreshTokenSecret::generate().hash(),
        ..ceremony.clone()
    };
    store.begin_ceremony(expired.clone()).await.unwrap();
    assert_eq!(
        store
            .take_ceremony(
                &expired.hash,
                CeremonyKind::SecondFactor,
                expired.expires_at
            )
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .take_ceremony(&expired.hash, CeremonyKind::SecondFactor, now)
            .await
            .unwrap(),
        None
    );
    let never = RefreshTokenSecret::generate().hash();
    assert_eq!(
        store
            .take_ceremony(&never, CeremonyKind::SecondFactor, now)
            .await
            .unwrap(),
        None
    );
}

/// Families exchanged from a browser session end with it, each logged; a family
/// revoked by its client leaves the session alone.
async fn families_of_a_session<S: AccountStore + SessionStore + RevocationLog + RefreshStore>(
    store: &S,
) {
    let user = add_user(store, "code-flow").await;
    let now = Timestamp::now();
    let (_, session) = new_session(user.id, now);
    let session_id = session.id;
    store.create_session(session).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let mut tied = family(user.id, &RefreshTokenSecret::generate(), now);
        tied.session = Some(session_id);
        ids.push(tied.id);
        store.create_family(tied).await.unwrap();
    }
    let loose = family(user.id, &RefreshTokenSecret::generate(), now);
    let loose_id = loose.id;
    store.create_family(loose).await.unwrap();

    // Revoked by its client: the person stays signed in.
    let mut revoked_by_client = family(user.id, &RefreshTokenSecret::generate(), now);
    revoked_by_client.session = Some(session_id);
    let revoked_id = revoked_by_client.id;
    store.create_family(revoked_by_client).await.unwrap();
    assert!(
        store
            .revoke_family(&revoked_id, Some(user.id), EndReason::Revoked, now)
            .await
            .unwrap()
    );
    assert!(store.session(&session_id).await.unwrap().is_some());

    let before = store.latest_revocation().await.unwrap();
    let mut revoked = store
        .revoke_families_of_session(&session_id, EndReason::Logout, now)
        .await
        .unwrap();
    revoked.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(revoked, ids);
    for id in &ids {
        assert!(store.family(id).await.unwrap().is_none());
    }
    assert!(store.family(&loose_id).await.unwrap().is_some());
    let logged: Vec<Revoked> = store
        .revocations_after(before, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.revoked)
        .collect();
    assert_eq!(logged.len(), 2, "{logged:?}");
    assert!(ids.iter().all(|id| logged.contains(&Revoked::Session(*id))));
    // Again: nothing left to revoke.
    assert!(
        store
            .revoke_families_of_session(&session_id, EndReason::Logout, now)
            .await
            .unwrap()
            .is_empty()
    );
}
