//! One value that is every store, each kind of state held by the backend chosen
//! for it: a PostgreSQL database for accounts and the log, Redis for sessions, say.
//!
//! It implements every trait by delegation, so the conformance suite runs unchanged
//! against a split deployment, and services take their stores from one place.

use std::sync::Arc;

use async_trait::async_trait;
use tessera_core::{ClientId, ClientName, SecretHash, SessionId, Timestamp, UserId, Username};

use crate::{
    AccountStore, Client, ClientStore, CreateClientError, CreateSessionError, CreateUserError,
    EndReason, Health, KeyStore, NewRefreshFamily, NewSession, NewUser, Online, OpaqueToken,
    OpaqueTokenStore, PresenceStore, RefreshFamily, RefreshOutcome, RefreshStore, Revocation,
    RevocationLog, Revoked, Seen, SessionRecord, SessionStore, StoreError, StoredKey, User,
    UserCredentials,
};

#[derive(Clone)]
pub struct StoreSet {
    pub accounts: Arc<dyn AccountStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub refresh: Arc<dyn RefreshStore>,
    pub opaque: Arc<dyn OpaqueTokenStore>,
    pub log: Arc<dyn RevocationLog>,
    pub clients: Arc<dyn ClientStore>,
    pub keys: Arc<dyn KeyStore>,
    pub presence: Arc<dyn PresenceStore>,
    /// Every backend in use, each pinged by `/readyz`.
    pub health: Vec<Arc<dyn Health>>,
    /// Further stores whose `purge_expired` must run too: the database, when
    /// sessions live elsewhere (its families, opaque tokens and log entries expire).
    pub also_purge: Vec<Arc<dyn SessionStore>>,
}

impl StoreSet {
    /// Every kind of state in one backend.
    pub fn single<S>(store: Arc<S>) -> Self
    where
        S: AccountStore
            + SessionStore
            + RefreshStore
            + OpaqueTokenStore
            + RevocationLog
            + ClientStore
            + KeyStore
            + PresenceStore
            + Health
            + 'static,
    {
        Self {
            accounts: store.clone(),
            sessions: store.clone(),
            refresh: store.clone(),
            opaque: store.clone(),
            log: store.clone(),
            clients: store.clone(),
            keys: store.clone(),
            presence: store.clone(),
            health: vec![store],
            also_purge: Vec::new(),
        }
    }
}

#[async_trait]
impl AccountStore for StoreSet {
    async fn create_user(&self, user: NewUser) -> Result<User, CreateUserError> {
        self.accounts.create_user(user).await
    }
    async fn user_credentials(
        &self,
        username: &Username,
    ) -> Result<Option<UserCredentials>, StoreError> {
        self.accounts.user_credentials(username).await
    }
    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.accounts.list_users().await
    }
    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.accounts.user(id).await
    }
    async fn search_users(
        &self,
        contains: &str,
        after: Option<&Username>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError> {
        self.accounts.search_users(contains, after, limit).await
    }
    async fn replace_password_hash(
        &self,
        user: UserId,
        previous: &str,
        new: &str,
    ) -> Result<(), StoreError> {
        self.accounts
            .replace_password_hash(user, previous, new)
            .await
    }
    async fn set_user_disabled(
        &self,
        username: &Username,
        disabled: bool,
    ) -> Result<Option<User>, StoreError> {
        self.accounts.set_user_disabled(username, disabled).await
    }
    async fn import_user(&self, user: UserCredentials) -> Result<(), CreateUserError> {
        self.accounts.import_user(user).await
    }
}

#[async_trait]
impl SessionStore for StoreSet {
    async fn create_session(&self, session: NewSession) -> Result<(), CreateSessionError> {
        self.sessions.create_session(session).await
    }
    async fn session(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        self.sessions.session(id).await
    }
    async fn sessions_of_user(&self, user: UserId) -> Result<Vec<SessionRecord>, StoreError> {
        self.sessions.sessions_of_user(user).await
    }
    async fn touch_sessions(&self, seen: &[(SessionId, Timestamp)]) -> Result<(), StoreError> {
        self.sessions.touch_sessions(seen).await
    }
    async fn end_session(
        &self,
        user: UserId,
        id: &SessionId,
        reason: EndReason,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.sessions.end_session(user, id, reason, at).await
    }
    async fn end_sessions_of_user(
        &self,
        user: UserId,
        except: Option<&SessionId>,
        reason: EndReason,
        at: Timestamp,
    ) -> Result<Vec<SessionId>, StoreError> {
        self.sessions
            .end_sessions_of_user(user, except, reason, at)
            .await
    }
    async fn purge_expired(
        &self,
        now: Timestamp,
        idle_cutoff: Timestamp,
    ) -> Result<u64, StoreError> {
        let purged = self.sessions.purge_expired(now, idle_cutoff).await?;
        for store in &self.also_purge {
            store.purge_expired(now, idle_cutoff).await?;
        }
        Ok(purged)
    }
    async fn count_live_sessions(
        &self,
        now: Timestamp,
        idle_cutoff: Timestamp,
    ) -> Result<u64, StoreError> {
        self.sessions.count_live_sessions(now, idle_cutoff).await
    }
}

#[async_trait]
impl RefreshStore for StoreSet {
    async fn create_family(&self, family: NewRefreshFamily) -> Result<(), CreateSessionError> {
        self.refresh.create_family(family).await
    }
    async fn rotate_refresh_token(
        &self,
        presented: &SecretHash,
        next: &SecretHash,
        now: Timestamp,
        grace_cutoff: Timestamp,
    ) -> Result<RefreshOutcome, StoreError> {
        self.refresh
            .rotate_refresh_token(presented, next, now, grace_cutoff)
            .await
    }
    async fn family(&self, id: &SessionId) -> Result<Option<RefreshFamily>, StoreError> {
        self.refresh.family(id).await
    }
    async fn family_by_token(
        &self,
        token: &SecretHash,
    ) -> Result<Option<RefreshFamily>, StoreError> {
        self.refresh.family_by_token(token).await
    }
    async fn revoke_family(
        &self,
        id: &SessionId,
        user: Option<UserId>,
        reason: EndReason,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.refresh.revoke_family(id, user, reason, at).await
    }
    async fn revoke_families_of_user(
        &self,
        user: UserId,
        reason: EndReason,
        at: Timestamp,
    ) -> Result<Vec<SessionId>, StoreError> {
        self.refresh.revoke_families_of_user(user, reason, at).await
    }
}

#[async_trait]
impl OpaqueTokenStore for StoreSet {
    async fn store_opaque_token(&self, token: OpaqueToken) -> Result<(), StoreError> {
        self.opaque.store_opaque_token(token).await
    }
    async fn opaque_token(&self, hash: &SecretHash) -> Result<Option<OpaqueToken>, StoreError> {
        self.opaque.opaque_token(hash).await
    }
    async fn revoke_opaque_token(
        &self,
        hash: &SecretHash,
        client: &ClientId,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.opaque.revoke_opaque_token(hash, client, at).await
    }
}

#[async_trait]
impl RevocationLog for StoreSet {
    async fn revocations_after(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Revocation>, StoreError> {
        self.log.revocations_after(after, limit).await
    }
    async fn latest_revocation(&self) -> Result<u64, StoreError> {
        self.log.latest_revocation().await
    }
    async fn append_revocation(
        &self,
        revoked: Revoked,
        user: Option<UserId>,
        reason: EndReason,
        at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<u64, StoreError> {
        self.log
            .append_revocation(revoked, user, reason, at, expires_at)
            .await
    }
    async fn import_revocations(
        &self,
        entries: &[Revocation],
        latest: u64,
    ) -> Result<(), StoreError> {
        self.log.import_revocations(entries, latest).await
    }
}

#[async_trait]
impl ClientStore for StoreSet {
    async fn create_client(&self, client: Client) -> Result<(), CreateClientError> {
        self.clients.create_client(client).await
    }
    async fn client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        self.clients.client(id).await
    }
    async fn client_by_name(&self, name: &ClientName) -> Result<Option<Client>, StoreError> {
        self.clients.client_by_name(name).await
    }
    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        self.clients.list_clients().await
    }
    async fn remove_client(&self, id: &ClientId) -> Result<bool, StoreError> {
        self.clients.remove_client(id).await
    }
    fn clients_generation(&self) -> Option<u64> {
        self.clients.clients_generation()
    }
}

#[async_trait]
impl KeyStore for StoreSet {
    async fn signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        self.keys.signing_keys().await
    }
    async fn add_first_key(&self, key: StoredKey) -> Result<bool, StoreError> {
        self.keys.add_first_key(key).await
    }
    async fn add_rotated_key(
        &self,
        key: StoredKey,
        old_published_until: Timestamp,
    ) -> Result<(), StoreError> {
        self.keys.add_rotated_key(key, old_published_until).await
    }
    async fn retire_key(
        &self,
        kid: &str,
        at: Timestamp,
        replacement: Option<StoredKey>,
    ) -> Result<bool, StoreError> {
        self.keys.retire_key(kid, at, replacement).await
    }
    async fn replace_private_key(
        &self,
        kid: &str,
        private_key: Vec<u8>,
        sealed: bool,
    ) -> Result<(), StoreError> {
        self.keys
            .replace_private_key(kid, private_key, sealed)
            .await
    }
    async fn import_key(&self, key: StoredKey) -> Result<(), StoreError> {
        self.keys.import_key(key).await
    }
}

#[async_trait]
impl PresenceStore for StoreSet {
    async fn record_presence(&self, seen: &[Seen]) -> Result<u64, StoreError> {
        self.presence.record_presence(seen).await
    }
    async fn online_since(&self, since: Timestamp) -> Result<Online, StoreError> {
        self.presence.online_since(since).await
    }
    async fn purge_presence(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.presence.purge_presence(before).await
    }
    async fn forget_presence(&self, sids: &[SessionId]) -> Result<(), StoreError> {
        self.presence.forget_presence(sids).await
    }
}

#[async_trait]
impl Health for StoreSet {
    async fn ping(&self) -> Result<(), StoreError> {
        for store in &self.health {
            store.ping().await?;
        }
        Ok(())
    }
}
