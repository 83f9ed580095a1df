//! What the shared suite cannot see: the keys as laid out in Redis, the race of a
//! login with a disabling, nothing recreated or left behind, and the cost of
//! counting at 100,000 sessions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use tessera_core::{
    AccessTokenSecret, ClientId, CsrfToken, MAX_ACCESS_TTL, Roles, Scopes, SecretHash, SessionId,
    SessionSecret, Timestamp, UserId, Username,
};
use tessera_store::{
    AccountStore, Consent, CreateSessionError, CreateUserError, EndReason, NewSession, NewUser,
    OpaqueToken, OpaqueTokenStore, PresenceStore, Profile, ResetLink, RevocationLog, Revoked, Seen,
    SessionStore, StoreError, TotpCredential, User, UserCredentials,
};
use tessera_store_postgres::PostgresStore;
use tessera_store_redis::RedisStore;
use tessera_testkit::{Postgres, Redis};

async fn raw(redis: &Redis) -> MultiplexedConnection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

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

fn new_session(user: UserId, now: Timestamp, lifetime: Duration) -> NewSession {
    let secret = SessionSecret::generate();
    NewSession {
        id: secret.session_id(),
        secret_hash: secret.hash(),
        user_id: user,
        csrf_token: CsrfToken::generate(),
        created_at: now,
        expires_at: now.saturating_add(lifetime),
        client_address: None,
        user_agent: Some("tests".into()),
        methods: tessera_core::AuthMethods::password(),
    }
}

/// The database's accounts, except that the second read of a user disables them
/// first: a disabling that commits while a session is being written.
struct DisablesDuringLogin {
    inner: Arc<PostgresStore>,
    reads: AtomicU32,
    victim: Username,
}

#[async_trait]
impl AccountStore for DisablesDuringLogin {
    async fn create_user(&self, user: NewUser) -> Result<User, CreateUserError> {
        self.inner.create_user(user).await
    }
    async fn user_credentials(
        &self,
        username: &Username,
    ) -> Result<Option<UserCredentials>, StoreError> {
        self.inner.user_credentials(username).await
    }
    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.inner.list_users().await
    }
    async fn profile(&self, id: UserId) -> Result<Option<Profile>, StoreError> {
        self.inner.profile(id).await
    }
    async fn set_profile(&self, id: UserId, profile: Profile) -> Result<bool, StoreError> {
        self.inner.set_profile(id, profile).await
    }
    async fn consent(
        &self,
        user: UserId,
        client: &ClientId,
    ) -> Result<Option<Consent>, StoreError> {
        self.inner.consent(user, client).await
    }
    async fn save_consent(&self, consent: Consent) -> Result<bool, StoreError> {
        self.inner.save_consent(consent).await
    }
    async fn withdraw_consent(&self, user: UserId, client: &ClientId) -> Result<bool, StoreError> {
        self.inner.withdraw_consent(user, client).await
    }
    async fn consents(&self, user: UserId) -> Result<Vec<Consent>, StoreError> {
        self.inner.consents(user).await
    }
    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        if self.reads.fetch_add(1, Ordering::SeqCst) == 1 {
            self.inner.set_user_disabled(&self.victim, true).await?;
        }
        self.inner.user(id).await
    }
    async fn replace_password_hash(
        &self,
        user: UserId,
        previous: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        self.inner.replace_password_hash(user, previous, new).await
    }
    async fn set_user_disabled(
        &self,
        username: &Username,
        disabled: bool,
    ) -> Result<Option<User>, StoreError> {
        self.inner.set_user_disabled(username, disabled).await
    }
    async fn import_user(&self, user: UserCredentials) -> Result<(), CreateUserError> {
        self.inner.import_user(user).await
    }
    async fn set_roles(
        &self,
        id: UserId,
        roles: &Roles,
    ) -> Result<Option<(Roles, User)>, StoreError> {
        self.inner.set_roles(id, roles).await
    }
    async fn save_reset_link(&self, link: ResetLink) -> Result<bool, StoreError> {
        self.inner.save_reset_link(link).await
    }
    async fn reset_link_user(
        &self,
        hash: &SecretHash,
        now: Timestamp,
    ) -> Result<Option<UserId>, StoreError> {
        self.inner.reset_link_user(hash, now).await
    }
    async fn use_reset_link(
        &self,
        hash: &SecretHash,
        now: Timestamp,
        password_hash: &str,
    ) -> Result<Option<UserId>, StoreError> {
        self.inner.use_reset_link(hash, now, password_hash).await
    }
    async fn totp(&self, user: UserId) -> Result<Option<TotpCredential>, StoreError> {
        self.inner.totp(user).await
    }
    async fn begin_totp(
        &self,
        user: UserId,
        sealed_secret: Vec<u8>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.inner.begin_totp(user, sealed_secret, now).await
    }
    async fn confirm_totp(
        &self,
        user: UserId,
        sealed_secret: &[u8],
        step: u64,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.inner
            .confirm_totp(user, sealed_secret, step, now)
            .await
    }
    async fn use_totp_step(
        &self,
        user: UserId,
        sealed_secret: &[u8],
        step: u64,
    ) -> Result<bool, StoreError> {
        self.inner.use_totp_step(user, sealed_secret, step).await
    }
    async fn remove_totp(&self, user: UserId) -> Result<bool, StoreError> {
        self.inner.remove_totp(user).await
    }
    async fn replace_recovery_codes(
        &self,
        user: UserId,
        hashes: Vec<SecretHash>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.inner.replace_recovery_codes(user, hashes, now).await
    }
    async fn use_recovery_code(
        &self,
        user: UserId,
        hash: &SecretHash,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.inner.use_recovery_code(user, hash, now).await
    }
    async fn unused_recovery_codes(&self, user: UserId) -> Result<Vec<SecretHash>, StoreError> {
        self.inner.unused_recovery_codes(user).await
    }
    async fn add_passkey(
        &self,
        passkey: tessera_store::PasskeyCredential,
    ) -> Result<bool, StoreError> {
        self.inner.add_passkey(passkey).await
    }
    async fn passkeys(
        &self,
        user: UserId,
    ) -> Result<Vec<tessera_store::PasskeyCredential>, StoreError> {
        self.inner.passkeys(user).await
    }
    async fn passkey(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<tessera_store::PasskeyCredential>, StoreError> {
        self.inner.passkey(credential_id).await
    }
    async fn use_passkey(
        &self,
        credential_id: &[u8],
        passkey: String,
        sign_count: u32,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.inner
            .use_passkey(credential_id, passkey, sign_count, at)
            .await
    }
    async fn remove_passkey(&self, user: UserId, credential_id: &[u8]) -> Result<bool, StoreError> {
        self.inner.remove_passkey(user, credential_id).await
    }
}

#[tokio::test]
async fn layout_races_and_cleanup() {
    let pg = Postgres::start();
    let redis = Redis::start();
    let postgres = Arc::new(PostgresStore::open(&pg.url()).await.unwrap());
    let store = RedisStore::open(&redis.url(), postgres.clone(), postgres.clone())
        .await
        .unwrap();
    assert_eq!(
        store.name(),
        format!("redis://127.0.0.1:{}/0", redis.port())
    );
    let mut r = raw(&redis).await;
    let now = Timestamp::now();
    let hour = Duration::from_secs(3600);

    // The layout: every field but the user, the user's id, and the indices.
    let ann = add_user(&*postgres, "ann").await;
    let session = new_session(ann.id, now, hour);
    let id = session.id;
    store.create_session(session).await.unwrap();
    let key = format!("tessera:session:{id}");
    let fields: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(&key)
        .query_async(&mut r)
        .await
        .unwrap();
    let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "amr",
            "created_at",
            "csrf_token",
            "expires_at",
            "last_seen_at",
            "secret_hash",
            "user_agent",
            "user_id"
        ]
    );
    assert_eq!(fields["user_id"], ann.id.to_string());
    let expire_time: i64 = redis::cmd("PEXPIRETIME")
        .arg(&key)
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(expire_time, now.saturating_add(hour).as_millis());
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!("tessera:user-sessions:{}", ann.id))
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(members, [id.to_string()]);
    let seen: Option<i64> = redis::cmd("ZSCORE")
        .arg("tessera:sessions:by-seen")
        .arg(id.as_str())
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(seen, Some(now.as_millis()));

    // Activity moves forward only.
    let later = now.saturating_add(Duration::from_secs(60));
    store
        .touch_sessions(&[(id, later), (id, now)])
        .await
        .unwrap();
    store.touch_sessions(&[(id, now)]).await.unwrap();
    assert_eq!(
        store.session(&id).await.unwrap().unwrap().last_seen_at,
        later
    );

    // Ending: logged first, with the session's expiry plus the longest token
    // lifetime; then nothing is left, and a late touch recreates nothing.
    let before = postgres.latest_revocation().await.unwrap();
    assert!(
        store
            .end_session(ann.id, &id, EndReason::Logout, later)
            .await
            .unwrap()
    );
    let logged = postgres.revocations_after(before, 10).await.unwrap();
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].revoked, Revoked::Session(id));
    assert_eq!(
        logged[0].expires_at,
        now.saturating_add(hour).saturating_add(MAX_ACCESS_TTL)
    );
    store
        .touch_sessions(&[(id, later.saturating_add(Duration::from_secs(60)))])
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("tessera:*")
        .query_async(&mut r)
        .await
        .unwrap();
    assert!(keys.is_empty(), "left behind: {keys:?}");

    // A disabling that commits while the session is written: the second read of
    // the user sees it, and the session is gone again.
    let bea = add_user(&*postgres, "bea").await;
    let racing = RedisStore::open(
        &redis.url(),
        Arc::new(DisablesDuringLogin {
            inner: postgres.clone(),
            reads: AtomicU32::new(0),
            victim: bea.username.clone(),
        }),
        postgres.clone(),
    )
    .await
    .unwrap();
    let session = new_session(bea.id, now, hour);
    let id = session.id;
    assert!(matches!(
        racing.create_session(session).await,
        Err(CreateSessionError::UserDisabled)
    ));
    assert!(store.session(&id).await.unwrap().is_none());
    assert!(store.sessions_of_user(bea.id).await.unwrap().is_empty());
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("tessera:*")
        .query_async(&mut r)
        .await
        .unwrap();
    assert!(keys.is_empty(), "left behind: {keys:?}");

    // A session Redis expires by itself: its indices are cleaned by the purge,
    // which counts it, and it no longer counts as live.
    let cid = add_user(&*postgres, "cid").await;
    let short = new_session(cid.id, Timestamp::now(), Duration::from_millis(200));
    let short_id = short.id;
    store.create_session(short).await.unwrap();
    let kept = new_session(cid.id, Timestamp::now(), hour);
    let kept_id = kept.id;
    store.create_session(kept).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let now = Timestamp::now();
    let cutoff = now.saturating_sub(hour);
    assert!(store.session(&short_id).await.unwrap().is_none());
    assert_eq!(store.count_live_sessions(now, cutoff).await.unwrap(), 1);
    assert_eq!(
        store
            .sessions_of_user(cid.id)
            .await
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect::<Vec<_>>(),
        [kept_id]
    );
    assert_eq!(store.purge_expired(now, cutoff).await.unwrap(), 1);
    assert_eq!(store.purge_expired(now, cutoff).await.unwrap(), 0);
    let in_index: Vec<String> = redis::cmd("ZRANGE")
        .arg("tessera:sessions:by-expiry")
        .arg(0)
        .arg(-1)
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(in_index, [format!("{kept_id}:{}", cid.id)]);
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!("tessera:user-sessions:{}", cid.id))
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(members, [kept_id.to_string()]);
    assert_eq!(store.count_live_sessions(now, cutoff).await.unwrap(), 1);

    // A malformed field is an error that names it, never a panic or a wrong record.
    let _: () = redis::cmd("HSET")
        .arg(format!("tessera:session:{kept_id}"))
        .arg("csrf_token")
        .arg("not a token")
        .query_async(&mut r)
        .await
        .unwrap();
    let error = store.session(&kept_id).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
    assert_eq!(error.message(), "stored session csrf_token is malformed");

    // Opaque tokens: kept until their expiry, revoked only by their client.
    let secret = AccessTokenSecret::generate();
    let owner = ClientId::generate();
    let token = OpaqueToken {
        hash: secret.hash(),
        jti: "jti-layout".into(),
        client_id: owner,
        subject: owner.to_string(),
        user: None,
        scopes: Scopes::parse("read write").unwrap(),
        audience: None,
        session: None,
        roles: Roles::default(),
        methods: None,
        dpop_jkt: None,
        issued_at: now,
        expires_at: now.saturating_add(Duration::from_secs(300)),
    };
    store.store_opaque_token(token.clone()).await.unwrap();
    assert!(
        store.store_opaque_token(token.clone()).await.is_err(),
        "a hash is never overwritten"
    );
    assert_eq!(
        store.opaque_token(&secret.hash()).await.unwrap(),
        Some(token)
    );
    let token_keys: Vec<String> = redis::cmd("KEYS")
        .arg("tessera:opaque:*")
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(token_keys.len(), 1);
    assert_eq!(token_keys[0].len(), "tessera:opaque:".len() + 64);
    let expire_time: i64 = redis::cmd("PEXPIRETIME")
        .arg(&token_keys[0])
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(
        expire_time,
        now.saturating_add(Duration::from_secs(300)).as_millis()
    );
    let before = postgres.latest_revocation().await.unwrap();
    assert!(
        !store
            .revoke_opaque_token(&secret.hash(), &ClientId::generate(), now)
            .await
            .unwrap()
    );
    assert_eq!(postgres.latest_revocation().await.unwrap(), before);
    assert!(
        store
            .revoke_opaque_token(&secret.hash(), &owner, now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_opaque_token(&secret.hash(), &owner, now)
            .await
            .unwrap()
    );
    assert_eq!(postgres.latest_revocation().await.unwrap(), before + 1);
    postgres.close().await;
}

/// Presence and session counts at 100,000 live sessions: the counts must not grow
/// with them. Prints what it measured (`--no-capture`).
#[tokio::test]
async fn counting_at_a_hundred_thousand_sessions() {
    const SESSIONS: usize = 100_000;
    const USERS: usize = 20_000;
    let pg = Postgres::start();
    let redis = Redis::start();
    let postgres = Arc::new(PostgresStore::open(&pg.url()).await.unwrap());
    let store = RedisStore::open(&redis.url(), postgres.clone(), postgres.clone())
        .await
        .unwrap();
    let now = Timestamp::now();
    let users: Vec<UserId> = (0..USERS).map(|_| UserId::generate()).collect();
    let sids: Vec<SessionId> = (0..SESSIONS)
        .map(|_| SessionSecret::generate().session_id())
        .collect();
    // One sighting per session, spread over the last 100 minutes.
    let seen: Vec<Seen> = sids
        .iter()
        .enumerate()
        .map(|(i, sid)| Seen {
            sid: *sid,
            user: users[i % USERS],
            at: now.saturating_sub(Duration::from_millis((i as u64 % 100) * 60_000)),
        })
        .collect();
    let started = Instant::now();
    for batch in seen.chunks(1000) {
        store.record_presence(batch).await.unwrap();
    }
    let recording = started.elapsed();

    let minute_ago = now.saturating_sub(Duration::from_secs(60));
    let started = Instant::now();
    const COUNTS: u32 = 200;
    let mut online = Default::default();
    for _ in 0..COUNTS {
        online = store.online_since(minute_ago).await.unwrap();
    }
    let counting = started.elapsed() / COUNTS;
    let recent: Vec<&Seen> = seen.iter().filter(|s| s.at >= minute_ago).collect();
    let recent_users: std::collections::HashSet<UserId> = recent.iter().map(|s| s.user).collect();
    assert_eq!(recent.len(), 2_000);
    assert_eq!(
        (online.users, online.sessions),
        (recent_users.len() as u64, 2_000)
    );
    let all = store
        .online_since(now.saturating_sub(Duration::from_secs(6_000)))
        .await
        .unwrap();
    assert_eq!((all.users, all.sessions), (USERS as u64, SESSIONS as u64));

    // Seed as many sessions straight into Redis (through create_session each would
    // be two database reads), then count and purge them.
    let mut r = raw(&redis).await;
    let hour_ago = now.saturating_sub(Duration::from_secs(3600));
    // Small pipelines: each must answer within the connection's response timeout,
    // on a CI machine busy with other tests.
    for (chunk_index, chunk) in sids.chunks(1_000).enumerate() {
        let mut pipe = redis::pipe();
        for (j, sid) in chunk.iter().enumerate() {
            let user = users[(chunk_index * 1_000 + j) % USERS];
            // Half of them idle for two hours.
            let last_seen = if j % 2 == 0 {
                now
            } else {
                now.saturating_sub(Duration::from_secs(7200))
            };
            let expires = now.saturating_add(Duration::from_secs(86_400));
            pipe.cmd("HSET")
                .arg(format!("tessera:session:{sid}"))
                .arg("user_id")
                .arg(user.to_string())
                .arg("last_seen_at")
                .arg(last_seen.as_millis())
                .ignore();
            pipe.cmd("SADD")
                .arg(format!("tessera:user-sessions:{user}"))
                .arg(sid.as_str())
                .ignore();
            pipe.cmd("ZADD")
                .arg("tessera:sessions:by-seen")
                .arg(last_seen.as_millis())
                .arg(sid.as_str())
                .ignore();
            pipe.cmd("ZADD")
                .arg("tessera:sessions:by-expiry")
                .arg(expires.as_millis())
                .arg(format!("{sid}:{user}"))
                .ignore();
        }
        let _: () = pipe.query_async(&mut r).await.unwrap();
    }
    let started = Instant::now();
    let live = store.count_live_sessions(now, hour_ago).await.unwrap();
    let count_live = started.elapsed();
    assert_eq!(live, (SESSIONS / 2) as u64);
    let started = Instant::now();
    let purged = store.purge_expired(now, hour_ago).await.unwrap();
    let purging = started.elapsed();
    assert_eq!(purged, (SESSIONS / 2) as u64);
    assert_eq!(
        store.count_live_sessions(now, hour_ago).await.unwrap(),
        (SESSIONS / 2) as u64
    );

    let started = Instant::now();
    let gone = store.purge_presence(minute_ago).await.unwrap();
    let purging_presence = started.elapsed();
    assert_eq!(gone, (SESSIONS - 2_000) as u64);
    assert_eq!(store.online_since(hour_ago).await.unwrap().sessions, 2_000);
    println!(
        "{SESSIONS} sessions of {USERS} users: record_presence {:.1} µs per sighting \
         (batches of 1000); online_since {:?} per call; count_live_sessions {count_live:?}; \
         purge_expired of {} idle sessions {purging:?}; purge_presence of {gone} \
         sightings {purging_presence:?}",
        recording.as_secs_f64() * 1e6 / SESSIONS as f64,
        counting,
        SESSIONS / 2,
    );
    assert!(
        counting < Duration::from_millis(20),
        "online_since took {counting:?}"
    );
    postgres.close().await;
}
