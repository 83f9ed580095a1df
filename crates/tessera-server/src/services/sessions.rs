//! Browser sessions: starting, checking, listing and ending them.
//!
//! The check (`authenticate`) is the hot path of every cookie request, so it is
//! served from an in-memory cache of sessions, and kept exact this way:
//! - a session ended by this process is evicted before the call that ended it returns;
//! - a session ended elsewhere (the CLI, another process) reaches the revocation log,
//!   which [`SessionService::follow_revocations`] polls every 100 ms and evicts from;
//! - a cache fill that races with an eviction is detected by the revocation epoch
//!   and discarded, so a revoked session can never be re-inserted from a stale read.
//!
//! The idle expiry slides in memory on every request; the store learns of activity at
//! most once per session per minute, in batches.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use quick_cache::sync::Cache;
use tessera_core::{
    AuthMethods, CsrfToken, SecretHash, SessionId, SessionSecret, Timestamp, UserId,
};
use tessera_store::{
    Actor, CreateSessionError, EndReason, EventKind, NewSession, RevocationLog, SessionRecord,
    SessionStore, StoreError, User,
};
use tokio::sync::mpsc;

use crate::services::audit::{Audit, event};

/// How often the store hears that a session is still in use.
const PERSIST_ACTIVITY_EVERY: Duration = Duration::from_secs(60);
const REVOCATION_POLL: Duration = Duration::from_millis(100);
const PURGE_EVERY: Duration = Duration::from_secs(60);
/// Cache fills retried when a revocation lands during the store read.
const FILL_ATTEMPTS: usize = 3;

#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle_timeout: Duration,
    pub absolute_lifetime: Duration,
}

/// A live session as the cache holds it: only what the check and its answer need
/// (where the session came from is read from the store when sessions are listed).
pub struct ActiveSession {
    id: SessionId,
    secret_hash: SecretHash,
    user: User,
    csrf_token: CsrfToken,
    created_at: Timestamp,
    expires_at: Timestamp,
    methods: AuthMethods,
    last_seen: AtomicI64,
    persisted_last_seen: AtomicI64,
}

/// When a session ends if unused from `last_seen_at` on.
pub fn idle_expiry(
    last_seen_at: Timestamp,
    expires_at: Timestamp,
    policy: &SessionPolicy,
) -> Timestamp {
    last_seen_at
        .saturating_add(policy.idle_timeout)
        .min(expires_at)
}

impl ActiveSession {
    fn new(record: SessionRecord) -> Self {
        let seen = record.last_seen_at.as_millis();
        Self {
            id: record.id,
            secret_hash: record.secret_hash,
            user: record.user,
            csrf_token: record.csrf_token,
            created_at: record.created_at,
            expires_at: record.expires_at,
            methods: record.methods,
            last_seen: AtomicI64::new(seen),
            persisted_last_seen: AtomicI64::new(seen),
        }
    }

    pub fn id(&self) -> &SessionId {
        &self.id
    }

    pub fn user(&self) -> &User {
        &self.user
    }

    pub fn csrf_token(&self) -> &CsrfToken {
        &self.csrf_token
    }

    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }

    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }

    /// How the person proved who they are when the session began.
    pub fn methods(&self) -> AuthMethods {
        self.methods
    }

    pub fn last_seen_at(&self) -> Timestamp {
        Timestamp::from_millis(self.last_seen.load(Ordering::Relaxed))
    }

    pub fn idle_expires_at(&self, policy: &SessionPolicy) -> Timestamp {
        idle_expiry(self.last_seen_at(), self.expires_at, policy)
    }

    fn is_expired(&self, now: Timestamp, policy: &SessionPolicy) -> bool {
        now >= self.expires_at || now > self.last_seen_at().saturating_add(policy.idle_timeout)
    }

    /// Slides the idle expiry; true when the store should be told (once a minute).
    fn seen(&self, now: Timestamp) -> bool {
        let now = now.as_millis();
        // Skip the shared write when nothing changed at second granularity.
        if now - self.last_seen.load(Ordering::Relaxed) >= 1000 {
            self.last_seen.fetch_max(now, Ordering::Relaxed);
        }
        let persisted = self.persisted_last_seen.load(Ordering::Relaxed);
        let due = i64::try_from(PERSIST_ACTIVITY_EVERY.as_millis()).unwrap_or(i64::MAX);
        now - persisted >= due
            && self
                .persisted_last_seen
                .compare_exchange(persisted, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

pub struct SessionService {
    store: Arc<dyn SessionStore>,
    cache: Cache<SessionId, Arc<ActiveSession>>,
    /// Bumped before every eviction for revocation; see the module docs.
    revocation_epoch: AtomicU64,
    activity: mpsc::Sender<(SessionId, Timestamp)>,
    policy: SessionPolicy,
    presence: Arc<crate::services::presence::Presence>,
    contact: Arc<crate::services::contact::Contact>,
    /// Pinged: a cache in front of a session store that stopped answering (Redis)
    /// may not answer past the bound either.
    store_contact: Arc<crate::services::contact::Contact>,
    audit: Arc<Audit>,
    /// Each user's list of sessions as last read, with when and at which
    /// revocation epoch: see [`SessionService::list`].
    lists: Cache<UserId, Arc<ListedSessions>>,
}

/// A user's sessions as read from the store.
struct ListedSessions {
    read_at: std::time::Instant,
    /// `revocation_epoch` before the read: any session ended since makes it stale.
    epoch: u64,
    sessions: Vec<SessionRecord>,
}

/// How long a user's list of sessions is shown from memory: sessions ended here
/// or anywhere else (the revocation feed) drop it at once, so only a session
/// begun on another instance within the last second can be missing from it.
const LIST_FRESH: Duration = Duration::from_secs(1);
/// How many users' lists are kept.
const LISTS_KEPT: usize = 10_000;

pub struct NewSessionInfo {
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
    /// How the person proved who they are.
    pub methods: AuthMethods,
}

/// The background work a [`SessionService`] needs in a long-running server.
pub struct SessionUpkeep {
    activity: mpsc::Receiver<(SessionId, Timestamp)>,
}

impl SessionService {
    pub fn new(
        store: Arc<dyn SessionStore>,
        policy: SessionPolicy,
        cache_capacity: usize,
        presence: Arc<crate::services::presence::Presence>,
        contact: Arc<crate::services::contact::Contact>,
        store_contact: Arc<crate::services::contact::Contact>,
        audit: Arc<Audit>,
    ) -> (Arc<Self>, SessionUpkeep) {
        let (activity, receiver) = mpsc::channel(16 * 1024);
        let service = Arc::new(Self {
            store,
            cache: Cache::new(cache_capacity.max(1)),
            revocation_epoch: AtomicU64::new(0),
            activity,
            policy,
            presence,
            contact,
            store_contact,
            audit,
            lists: Cache::new(LISTS_KEPT),
        });
        (service, SessionUpkeep { activity: receiver })
    }

    pub fn policy(&self) -> &SessionPolicy {
        &self.policy
    }

    /// Creates a session for `user` with a new secret. Never reuses a presented one.
    pub async fn start(
        &self,
        user: &User,
        info: NewSessionInfo,
    ) -> Result<(SessionSecret, Arc<ActiveSession>), CreateSessionError> {
        let secret = SessionSecret::generate();
        let now = Timestamp::now();
        let mut record = SessionRecord {
            id: secret.session_id(),
            secret_hash: secret.hash(),
            user: user.clone(),
            csrf_token: CsrfToken::generate(),
            created_at: now,
            last_seen_at: now,
            expires_at: now.saturating_add(self.policy.absolute_lifetime),
            client_address: info.client_address,
            user_agent: info.user_agent,
            methods: info.methods,
        };
        self.store
            .create_session(NewSession {
                id: record.id,
                secret_hash: record.secret_hash,
                user_id: user.id,
                csrf_token: record.csrf_token.clone(),
                created_at: now,
                expires_at: record.expires_at,
                client_address: record.client_address.take(),
                user_agent: record.user_agent.take(),
                methods: record.methods,
            })
            .await?;
        let active = Arc::new(ActiveSession::new(record));
        self.cache.insert(*active.id(), active.clone());
        self.lists.remove(&user.id);
        self.presence.observe(*active.id(), user.id, now);
        Ok((secret, active))
    }

    /// The live session `secret` opens, if any. Slides its idle expiry.
    pub async fn authenticate(
        &self,
        secret: &SessionSecret,
    ) -> Result<Option<Arc<ActiveSession>>, StoreError> {
        let id = secret.session_id();
        let Some(session) = self.lookup(&id).await? else {
            return Ok(None);
        };
        if !session.secret_hash.matches(&secret.hash()) || session.user().disabled {
            return Ok(None);
        }
        let now = Timestamp::now();
        if session.is_expired(now, &self.policy) {
            self.forget(&id);
            return Ok(None);
        }
        if session.seen(now) {
            // Best effort: if the writer is saturated the next minute's touch will do.
            let _ = self.activity.try_send((id, now));
            self.presence.observe(id, session.user().id, now);
        }
        Ok(Some(session))
    }

    /// The live session with this id, if any, without sliding its expiry: for
    /// confirming what others report having seen.
    pub async fn live(&self, id: &SessionId) -> Result<Option<Arc<ActiveSession>>, StoreError> {
        let Some(session) = self.lookup(id).await? else {
            return Ok(None);
        };
        let live = !session.user().disabled && !session.is_expired(Timestamp::now(), &self.policy);
        Ok(live.then_some(session))
    }

    async fn lookup(&self, id: &SessionId) -> Result<Option<Arc<ActiveSession>>, StoreError> {
        if let Some(hit) = self.cache.get(id) {
            if self.contact.is_fresh() && self.store_contact.is_fresh() {
                return Ok(Some(hit));
            }
            // Out of touch with the log: the store decides (and 503s while down).
            let record = self.store.session(id).await?;
            return Ok(record.map(|r| Arc::new(ActiveSession::new(r))));
        }
        for _ in 0..FILL_ATTEMPTS {
            let epoch = self.revocation_epoch.load(Ordering::SeqCst);
            let Some(record) = self.store.session(id).await? else {
                return Ok(None);
            };
            let session = Arc::new(ActiveSession::new(record));
            self.cache.insert(*id, session.clone());
            if self.revocation_epoch.load(Ordering::SeqCst) == epoch {
                return Ok(Some(session));
            }
            // A revocation was applied while we read: our copy may predate it.
            self.cache.remove(id);
        }
        // Revocations keep landing (a mass logout, say): answer from a fresh read
        // without caching it; the next request tries to cache again.
        Ok(self
            .store
            .session(id)
            .await?
            .map(|record| Arc::new(ActiveSession::new(record))))
    }

    fn forget(&self, id: &SessionId) {
        self.revocation_epoch.fetch_add(1, Ordering::SeqCst);
        self.cache.remove(id);
    }

    pub async fn end(
        &self,
        user: UserId,
        id: &SessionId,
        reason: EndReason,
    ) -> Result<bool, StoreError> {
        let ended = self
            .store
            .end_session(user, id, reason, Timestamp::now())
            .await?;
        self.forget(id);
        if ended {
            self.presence.forget(std::slice::from_ref(id)).await;
        }
        Ok(ended)
    }

    pub async fn end_all_of_user(
        &self,
        user: UserId,
        except: Option<&SessionId>,
        reason: EndReason,
    ) -> Result<Vec<SessionId>, StoreError> {
        let ended = self
            .store
            .end_sessions_of_user(user, except, reason, Timestamp::now())
            .await?;
        for id in &ended {
            self.forget(id);
        }
        self.presence.forget(&ended).await;
        Ok(ended)
    }

    /// The session's user signs it out, from `address`.
    pub async fn log_out(
        &self,
        session: &ActiveSession,
        address: Option<IpAddr>,
    ) -> Result<bool, StoreError> {
        let ended = self
            .end(session.user().id, session.id(), EndReason::Logout)
            .await?;
        if ended {
            self.record_logout(session.user(), session.id(), address, "signed out")
                .await;
        }
        Ok(ended)
    }

    /// A user, signed in with `current`, ends another of their sessions; `false`
    /// if they have none by `id`.
    pub async fn delete(
        &self,
        current: &ActiveSession,
        id: &SessionId,
        address: Option<IpAddr>,
    ) -> Result<bool, StoreError> {
        let ended = self.end(current.user().id, id, EndReason::Deleted).await?;
        if ended {
            self.record_logout(
                current.user(),
                id,
                address,
                "signed out from another session",
            )
            .await;
        }
        Ok(ended)
    }

    /// A user ends all their sessions but `current`.
    pub async fn delete_others(
        &self,
        current: &ActiveSession,
        address: Option<IpAddr>,
    ) -> Result<Vec<SessionId>, StoreError> {
        let ended = self
            .end_all_of_user(current.user().id, Some(current.id()), EndReason::Deleted)
            .await?;
        for id in &ended {
            self.record_logout(
                current.user(),
                id,
                address,
                "signed out every other session",
            )
            .await;
        }
        Ok(ended)
    }

    async fn record_logout(
        &self,
        user: &User,
        id: &SessionId,
        address: Option<IpAddr>,
        detail: &str,
    ) {
        self.audit
            .record(
                event(EventKind::Logout, Actor::User(user.id))
                    .user(user.id)
                    .username(user.username.as_str())
                    .target("session", id)
                    .address(address)
                    .detail(detail),
            )
            .await;
    }

    /// The user's live sessions as the store has them, with the activity this process
    /// has seen but not yet written.
    ///
    /// The list is read from the store at most once a second per user (the account
    /// page, reloaded): kept only while no session ended anywhere since (every end
    /// moves the revocation epoch, here or through the feed) and this instance is in
    /// touch with the log, and dropped when the user begins a session here.
    pub async fn list(&self, user: UserId) -> Result<Vec<SessionRecord>, StoreError> {
        let now = Timestamp::now();
        let epoch = self.revocation_epoch.load(Ordering::SeqCst);
        let kept = self.lists.get(&user).filter(|listed| {
            listed.epoch == epoch
                && listed.read_at.elapsed() < LIST_FRESH
                && self.contact.is_fresh()
                && self.store_contact.is_fresh()
        });
        let mut sessions = match kept {
            Some(listed) => listed.sessions.clone(),
            None => {
                let read = self.store.sessions_of_user(user).await?;
                self.lists.insert(
                    user,
                    Arc::new(ListedSessions {
                        read_at: std::time::Instant::now(),
                        epoch,
                        sessions: read.clone(),
                    }),
                );
                read
            }
        };
        for record in &mut sessions {
            if let Some(cached) = self.cache.peek(&record.id) {
                record.last_seen_at = record.last_seen_at.max(cached.last_seen_at());
            }
        }
        sessions.retain(|s| {
            now < s.expires_at && now <= s.last_seen_at.saturating_add(self.policy.idle_timeout)
        });
        Ok(sessions)
    }

    /// Evicts sessions ended by other processes, forever; run it as a task.
    pub async fn follow_revocations(self: Arc<Self>, log: Arc<dyn RevocationLog>) {
        // From the store's counter at start: the cache is empty then, so nothing
        // earlier can be in it. A log replaced under the process (a migration, a
        // restored backup) comes with a restart, so this position always belongs
        // to the log it reads.
        let mut after = loop {
            match log.latest_revocation().await {
                Ok(latest) => break latest,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the revocation log; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let mut tick = tokio::time::interval(REVOCATION_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match log.revocations_after(after, 1000).await {
                Ok(entries) => {
                    let caught_up = entries.len() < 1000;
                    for entry in entries {
                        if let tessera_store::Revoked::Session(id) = &entry.revoked {
                            self.forget(id);
                        }
                        after = entry.sequence;
                    }
                    // Only once everything missed is applied may the cache be trusted.
                    if caught_up {
                        self.contact.heard();
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot read the revocation log"),
            }
        }
    }

    /// Writes session activity in batches, and purges expired sessions; run as a task.
    /// When `stop` fires it writes the activity still queued, then returns.
    pub async fn upkeep(
        self: Arc<Self>,
        mut upkeep: SessionUpkeep,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let mut purge = tokio::time::interval(PURGE_EVERY);
        let mut batch = Vec::new();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                received = upkeep.activity.recv_many(&mut batch, 512) => {
                    if received == 0 {
                        return;
                    }
                    self.record_activity(&mut batch).await;
                    // Coalesce: let a burst of activity gather into one transaction.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                _ = purge.tick() => self.purge().await,
                () = &mut stop => {
                    while let Ok(seen) = upkeep.activity.try_recv() {
                        batch.push(seen);
                    }
                    self.record_activity(&mut batch).await;
                    return;
                }
            }
        }
    }

    async fn record_activity(&self, batch: &mut Vec<(SessionId, Timestamp)>) {
        if batch.is_empty() {
            return;
        }
        if let Err(error) = self.store.touch_sessions(batch).await {
            tracing::warn!(%error, "cannot record session activity");
        }
        batch.clear();
    }

    async fn purge(&self) {
        let now = Timestamp::now();
        let idle_cutoff = now.saturating_sub(self.policy.idle_timeout);
        // The store's last-seen times trail memory by up to PERSIST_ACTIVITY_EVERY:
        // purge only what is idle even allowing for that.
        let purge_cutoff = idle_cutoff.saturating_sub(PERSIST_ACTIVITY_EVERY);
        match self.store.purge_expired(now, purge_cutoff).await {
            Ok(0) => {}
            Ok(purged) => tracing::debug!(purged, "expired sessions purged"),
            Err(error) => tracing::warn!(%error, "cannot purge expired sessions"),
        }
        if let Ok(live) = self.store.count_live_sessions(now, idle_cutoff).await {
            metrics::gauge!("tessera_active_sessions").set(live as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::{Roles, Username};

    fn session_created_at(at: Timestamp) -> ActiveSession {
        ActiveSession::new(SessionRecord {
            id: SessionSecret::generate().session_id(),
            secret_hash: SecretHash::from_bytes([0; 32]),
            user: User {
                id: UserId::generate(),
                username: Username::parse("alice").unwrap(),
                roles: Roles::default(),
                disabled: false,
                created_at: at,
            },
            csrf_token: CsrfToken::generate(),
            created_at: at,
            last_seen_at: at,
            expires_at: at.saturating_add(Duration::from_secs(7 * 86400)),
            client_address: None,
            user_agent: None,
            methods: AuthMethods::password(),
        })
    }

    #[test]
    fn activity_reaches_the_store_at_most_once_a_minute() {
        let start = Timestamp::from_millis(1_000_000);
        let session = session_created_at(start);
        let at = |secs| start.saturating_add(Duration::from_secs(secs));
        let writes: Vec<bool> = [1, 30, 59, 60, 61, 90, 119, 121, 122]
            .into_iter()
            .map(|s| session.seen(at(s)))
            .collect();
        assert_eq!(
            writes,
            [false, false, false, true, false, false, false, true, false]
        );
        // but the idle expiry slid on every call
        assert_eq!(session.last_seen_at(), at(122));
    }

    /// A service over a real SQLite store in a temporary dir, with one user.
    async fn service_with_user() -> (
        tempfile::TempDir,
        Arc<tessera_store_sqlite::SqliteStore>,
        Arc<SessionService>,
        SessionUpkeep,
        User,
    ) {
        use tessera_store::{AccountStore, NewUser};
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            tessera_store_sqlite::SqliteStore::open(&dir.path().join("t.sqlite3"))
                .await
                .unwrap(),
        );
        let policy = SessionPolicy {
            idle_timeout: Duration::from_secs(600),
            absolute_lifetime: Duration::from_secs(86400),
        };
        let (presence, _) = crate::services::presence::Presence::new(store.clone(), 16);
        let contact = Arc::new(crate::services::contact::Contact::new(Duration::from_secs(
            10,
        )));
        let (service, upkeep) = SessionService::new(
            store.clone(),
            policy,
            16,
            presence,
            contact.clone(),
            contact,
            Arc::new(crate::services::audit::Audit::new(store.clone(), true)),
        );
        let user = store
            .create_user(NewUser {
                id: UserId::generate(),
                username: Username::parse("alice").unwrap(),
                password_hash: "x".into(),
                roles: Roles::default(),
                created_at: Timestamp::now(),
            })
            .await
            .unwrap();
        (dir, store, service, upkeep, user)
    }

    #[tokio::test]
    async fn the_background_purge_removes_only_what_expired() {
        let (_dir, store, service, _upkeep, user) = service_with_user().await;
        let policy = *service.policy();
        let now = Timestamp::now();
        let mut ids = Vec::new();
        // idle for: 5 min (live), 10.5 min (idle, but within the minute the store may
        // lag memory by, so kept), 12 min (gone)
        for idle_secs in [300, 630, 720] {
            let secret = SessionSecret::generate();
            let at = now.saturating_sub(Duration::from_secs(idle_secs));
            store
                .create_session(NewSession {
                    id: secret.session_id(),
                    secret_hash: secret.hash(),
                    user_id: user.id,
                    csrf_token: CsrfToken::generate(),
                    created_at: at,
                    expires_at: at.saturating_add(policy.absolute_lifetime),
                    client_address: None,
                    user_agent: None,
                    methods: AuthMethods::password(),
                })
                .await
                .unwrap();
            ids.push(secret.session_id());
        }
        service.purge().await;
        let kept: Vec<bool> = still_stored(&*store, &ids).await;
        assert_eq!(kept, [true, true, false]);
    }

    #[tokio::test]
    async fn stopping_writes_the_activity_still_queued() {
        let (_dir, store, service, upkeep, user) = service_with_user().await;
        let (_, session) = service
            .start(
                &user,
                NewSessionInfo {
                    client_address: None,
                    user_agent: None,
                    methods: AuthMethods::password(),
                },
            )
            .await
            .unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(service.clone().upkeep(upkeep, async move {
            let _ = stopped.await;
        }));
        // let the first purge tick pass, then queue activity and stop at once
        tokio::time::sleep(Duration::from_millis(50)).await;
        let later = Timestamp::now().saturating_add(Duration::from_secs(90));
        service.activity.try_send((*session.id(), later)).unwrap();
        stop.send(()).unwrap();
        task.await.unwrap();
        let stored = store.session(session.id()).await.unwrap().unwrap();
        assert_eq!(stored.last_seen_at, later);
    }

    async fn still_stored(store: &dyn SessionStore, ids: &[SessionId]) -> Vec<bool> {
        let mut kept = Vec::new();
        for id in ids {
            kept.push(store.session(id).await.unwrap().is_some());
        }
        kept
    }

    #[test]
    fn idle_and_absolute_expiry() {
        let start = Timestamp::from_millis(1_000_000);
        let session = session_created_at(start);
        let policy = SessionPolicy {
            idle_timeout: Duration::from_secs(600),
            absolute_lifetime: Duration::from_secs(7 * 86400),
        };
        let at = |secs| start.saturating_add(Duration::from_secs(secs));
        assert!(!session.is_expired(at(600), &policy));
        assert!(session.is_expired(at(601), &policy));
        session.seen(at(500));
        assert!(!session.is_expired(at(1100), &policy));
        assert_eq!(session.idle_expires_at(&policy), at(1100));
        assert!(session.is_expired(at(7 * 86400), &policy));
    }
}
