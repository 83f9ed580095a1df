//! The storage seams of tessera: one small trait per kind of state.
//!
//! Handlers never talk to a database; they call services in `tessera-server`, which
//! call these traits. Each backend implements them and runs the same
//! [`conformance`] suite, so behaviour cannot drift between backends.
//!
//! Contract shared by every method: a returned `Ok` means the change is durable
//! (committed); an `Err` means nothing was changed.

use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tessera_proto::RevocationKind;
pub use tessera_proto::{EventKind, Outcome};

use tessera_core::{
    Algorithm, Audience, AuthMethods, ClientId, ClientName, CsrfToken, DisplayName, Email,
    GrantType, LogoutUri, RedirectUri, Roles, Scopes, SecretHash, SessionId, Timestamp,
    TokenFormat, UserId, Username,
};

pub mod conformance;
mod schema;
#[macro_use]
mod set;
mod skeletons;

pub use schema::runs_on_newer_schema;
pub use set::StoreSet;
pub use skeletons::{SkeletonBackfill, backfill_skeletons};

/// Why a store call failed, by kind, so that callers can tell a missing thing from a
/// taken one from a store that is down. Every backend maps its driver's errors to
/// these in one place. Each message is for operators' logs: it names what failed
/// (the driver's message, a server's address without its password), never a
/// secret, a token or a query's parameters.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// What the call needs is not stored.
    #[error("not found in the store: {0}")]
    NotFound(String),
    /// What the call would add is there already (a unique key is taken).
    #[error("conflict in the store: {0}")]
    Conflict(String),
    /// The store did not answer: unreachable, refused, out of connections, locked
    /// or busy past its timeout, shutting down. Worth retrying shortly.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// A stored value does not parse: the data is damaged, or written by something
    /// that does not keep tessera's formats.
    #[error("corrupt data in the store: {0}")]
    Corrupt(String),
    /// The caller asked for what the store cannot do (a number out of range, an
    /// import below the log's position).
    #[error("invalid store request: {0}")]
    Invalid(String),
    /// Anything else the driver reported.
    #[error("store error: {0}")]
    Other(String),
}

impl StoreError {
    /// A stored `what` (a user id, a session's expiry…) that does not parse.
    pub fn corrupt(what: &str) -> Self {
        Self::Corrupt(format!("stored {what} is malformed"))
    }

    /// What failed, without the kind's wording.
    pub fn message(&self) -> &str {
        match self {
            Self::NotFound(message)
            | Self::Conflict(message)
            | Self::Unavailable(message)
            | Self::Corrupt(message)
            | Self::Invalid(message)
            | Self::Other(message) => message,
        }
    }

    /// Whether retrying shortly may succeed (the store was down or busy).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub roles: Roles,
    pub disabled: bool,
    pub created_at: Timestamp,
}

/// A user together with their password hash (a PHC string), for login only.
pub struct UserCredentials {
    pub user: User,
    pub password_hash: String,
}

pub struct NewUser {
    pub id: UserId,
    pub username: Username,
    pub password_hash: String,
    pub roles: Roles,
    pub created_at: Timestamp,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("the username is taken")]
    UsernameTaken,
    /// Another account's username has the same confusable skeleton
    /// ([`Username::skeleton`]): the two would look alike.
    #[error("the username looks like one that is taken")]
    LookAlike,
    #[error(transparent)]
    Store(#[from] StoreError),
}

store_trait! {
    /// Accounts. Each holds the confusable skeleton of its username
    /// ([`Username::skeleton`]) under a uniqueness constraint, so of two look-alike names
    /// registered at the same moment exactly one is created. Accounts that existed
    /// before skeletons were kept get theirs when the store opens, oldest first; one
    /// whose skeleton an older account holds already keeps its name, its password and
    /// its sessions, holds no skeleton, and is recorded as a look-alike of that older
    /// account (and logged as such).
    pub trait AccountStore: Send + Sync, in StoreSet.accounts {
        /// A username already present is `UsernameTaken`; one that looks like a present
        /// one (same skeleton) is `LookAlike`.
        async fn create_user(&self, user: NewUser) -> Result<User, CreateUserError>;
        async fn user_credentials(
            &self,
            username: &Username,
        ) -> Result<Option<UserCredentials>, StoreError>;
        async fn list_users(&self) -> Result<Vec<User>, StoreError>;
        /// The user with this id, disabled or not.
        async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
            Ok(self.list_users().await?.into_iter().find(|u| u.id == id))
        }
        /// Users whose username contains `contains` (all with ""), ordered by username,
        /// after `after` if given, at most `limit`: one page of an admin's search.
        async fn search_users(
            &self,
            contains: &str,
            after: Option<&Username>,
            limit: u32,
        ) -> Result<Vec<User>, StoreError> {
            Ok(self
                .list_users()
                .await?
                .into_iter()
                .filter(|u| u.username.as_str().contains(contains))
                .filter(|u| after.is_none_or(|a| u.username.as_str() > a.as_str()))
                .take(limit as usize)
                .collect())
        }
        /// Replaces the hash, e.g. after login re-hashed it with new parameters. Only if
        /// the stored hash is still `previous`, so a concurrent password change wins;
        /// `false` when it was not (replaced meanwhile, or no such user).
        async fn replace_password_hash(
            &self,
            user: UserId,
            previous: &str,
            new: &str,
        ) -> Result<bool, StoreError>;
        /// Marks the user disabled (or enabled again); `None` if there is no such user.
        /// Ending their sessions and cutting off their tokens is the caller's job (see
        /// `SessionStore::end_sessions_of_user`).
        async fn set_user_disabled(
            &self,
            username: &Username,
            disabled: bool,
        ) -> Result<Option<User>, StoreError>;
        /// Adds a user exactly as read from another store (`user_credentials`): id,
        /// username, roles, disabled flag, creation time and password hash, for `tessera
        /// store migrate`. One statement, so a disabled account is never there enabled,
        /// not even for a moment. A username or id already present is `UsernameTaken`.
        /// A username that looks like a present one is imported all the same (it
        /// existed already), as at open: without a skeleton, recorded as a look-alike of
        /// the present one. Import oldest first to keep the older account the holder.
        async fn import_user(&self, user: UserCredentials) -> Result<(), CreateUserError>;
        /// The user's profile; `None` if there is no such user. Kept apart from
        /// [`User`], which every session check carries: only the OpenID Connect
        /// claims and the pages about the account read it.
        async fn profile(&self, id: UserId) -> Result<Option<Profile>, StoreError>;
        /// Replaces the user's profile; `false` if there is no such user.
        async fn set_profile(&self, id: UserId, profile: Profile) -> Result<bool, StoreError>;
        /// What `user` allowed `client` (OpenID Connect consent), if they did.
        async fn consent(&self, user: UserId, client: &ClientId) -> Result<Option<Consent>, StoreError>;
        /// Records a consent, replacing any earlier one of the same user for the same
        /// client; `false` if there is no such user.
        async fn save_consent(&self, consent: Consent) -> Result<bool, StoreError>;
        /// Forgets what `user` allowed `client`; `false` if there was nothing.
        async fn withdraw_consent(&self, user: UserId, client: &ClientId) -> Result<bool, StoreError>;
        /// Every consent of `user`, oldest first.
        async fn consents(&self, user: UserId) -> Result<Vec<Consent>, StoreError>;
        /// Gives the user exactly `roles`: the roles they had, read in the same
        /// transaction, and the user as now stored; `None` if there is no such user.
        /// Sessions and tokens already issued keep the roles they were issued with:
        /// taking one away is followed by a kick (the caller's job).
        async fn set_roles(
            &self,
            id: UserId,
            roles: &Roles,
        ) -> Result<Option<(Roles, User)>, StoreError>;
        /// Keeps a password-reset link, replacing the user's earlier one (one link
        /// per user works); `false` if there is no such user.
        async fn save_reset_link(&self, link: ResetLink) -> Result<bool, StoreError>;
        /// The user of the link with this hash, if it is unused and not expired at `now`.
        async fn reset_link_user(
            &self,
            hash: &SecretHash,
            now: Timestamp,
        ) -> Result<Option<UserId>, StoreError>;
        /// Uses the link: deletes it and sets its user's password hash, in one
        /// transaction; the user, or `None` if the link was not live at `now` (used,
        /// replaced, expired, never issued). Of two uses at once, exactly one gets it.
        async fn use_reset_link(
            &self,
            hash: &SecretHash,
            now: Timestamp,
            password_hash: &str,
        ) -> Result<Option<UserId>, StoreError>;
        /// The user's TOTP credential (RFC 6238), confirmed or still being enrolled.
        async fn totp(&self, user: UserId) -> Result<Option<TotpCredential>, StoreError>;
        /// Starts an enrolment: keeps the (sealed) secret unconfirmed, replacing an
        /// earlier unconfirmed one; `false` if there is no such user, or they have a
        /// confirmed credential (which is removed first, deliberately).
        async fn begin_totp(
            &self,
            user: UserId,
            sealed_secret: Vec<u8>,
            now: Timestamp,
        ) -> Result<bool, StoreError>;
        /// Confirms the enrolment whose secret the code was checked against
        /// (`sealed_secret`, as read), with the step of that code, which counts as
        /// used; `false` if there is no such unconfirmed credential (confirmed,
        /// removed, or started over with another secret since it was read).
        async fn confirm_totp(
            &self,
            user: UserId,
            sealed_secret: &[u8],
            step: u64,
            now: Timestamp,
        ) -> Result<bool, StoreError>;
        /// Records `step` as used on the confirmed credential with this secret (as
        /// read) if it is later than the last one used: of any number of uses of a
        /// step at once, on any instance, exactly one gets `true`; `false` for a
        /// step used already, or a credential removed or replaced since.
        async fn use_totp_step(
            &self,
            user: UserId,
            sealed_secret: &[u8],
            step: u64,
        ) -> Result<bool, StoreError>;
        /// Removes the credential, confirmed or not; `false` if there was none.
        async fn remove_totp(&self, user: UserId) -> Result<bool, StoreError>;
        /// Gives the user exactly these recovery codes (their hashes), in one
        /// transaction: the earlier ones, used or not, stop working. `false` if
        /// there is no such user.
        async fn replace_recovery_codes(
            &self,
            user: UserId,
            hashes: Vec<SecretHash>,
            now: Timestamp,
        ) -> Result<bool, StoreError>;
        /// Uses the user's unused code with this hash: of any number of uses at once,
        /// exactly one gets `true`; `false` for a used, replaced or unknown code.
        async fn use_recovery_code(
            &self,
            user: UserId,
            hash: &SecretHash,
            now: Timestamp,
        ) -> Result<bool, StoreError>;
        /// The hashes of the user's recovery codes still unused (what `store
        /// migrate` copies; how many are left).
        async fn unused_recovery_codes(&self, user: UserId) -> Result<Vec<SecretHash>, StoreError>;
        /// Keeps a new passkey of its user; `false` if there is no such user. A
        /// credential id already kept (by any account) is [`StoreError::Conflict`].
        async fn add_passkey(&self, passkey: PasskeyCredential) -> Result<bool, StoreError>;
        /// The user's passkeys, oldest first.
        async fn passkeys(&self, user: UserId) -> Result<Vec<PasskeyCredential>, StoreError>;
        /// The passkey with this credential id, whoever's it is (a sign-in without
        /// a username finds its account this way).
        async fn passkey(&self, credential_id: &[u8]) -> Result<Option<PasskeyCredential>, StoreError>;
        /// Records a use: the credential's new record and signature counter, if
        /// the counter went forward (or the authenticator keeps none: 0 then and
        /// now). Of two uses with the same counter at once, exactly one gets
        /// `true`; a counter that went backwards or stayed (a cloned
        /// authenticator, a replay) gets `false` and changes nothing.
        async fn use_passkey(
            &self,
            credential_id: &[u8],
            passkey: String,
            sign_count: u32,
            at: Timestamp,
        ) -> Result<bool, StoreError>;
        /// Removes one of the user's passkeys; `false` if they have none by this id.
        async fn remove_passkey(&self, user: UserId, credential_id: &[u8]) -> Result<bool, StoreError>;
    }
}

/// A passkey (WebAuthn credential) of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyCredential {
    pub credential_id: Vec<u8>,
    pub user: UserId,
    /// What its person called it ("YubiKey", "Phone").
    pub name: String,
    /// The verifier's record of the credential (public key, flags), as JSON: no
    /// secret in it.
    pub passkey: String,
    /// The last signature counter seen (0: the authenticator keeps none).
    pub sign_count: u32,
    /// Whether the credential may be synced between devices (a software key,
    /// `swk`) rather than bound to one (`hwk`).
    pub backup_eligible: bool,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// A user's TOTP credential: the secret sealed under the master key (as signing
/// keys are; plain when no master key is set), when it was confirmed, and the last
/// step a code was accepted for. Never the secret in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpCredential {
    pub user: UserId,
    pub sealed_secret: Vec<u8>,
    pub created_at: Timestamp,
    /// `None` while being enrolled: such a credential grants nothing.
    pub confirmed_at: Option<Timestamp>,
    pub last_step: Option<u64>,
}

impl std::fmt::Debug for TotpCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpCredential")
            .field("user", &self.user)
            .field("sealed_secret", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("confirmed_at", &self.confirmed_at)
            .field("last_step", &self.last_step)
            .finish()
    }
}

/// A one-time password-reset link, by the hash of its secret (never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetLink {
    pub user: UserId,
    pub hash: SecretHash,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A user's decision to let a client have these scopes, remembered so that the
/// consent page is not shown again for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub user: UserId,
    pub client_id: ClientId,
    pub scopes: Scopes,
    pub granted_at: Timestamp,
}

/// What an account says about its person (OpenID Connect's `profile` and `email`
/// claims). Empty until set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub name: Option<DisplayName>,
    pub email: Option<Email>,
    /// Whether someone trusted (an administrator) confirmed the address: tessera
    /// sends no mail yet, so it never sets this itself.
    pub email_verified: bool,
    /// When it last changed: the `updated_at` claim. `None` if never set.
    pub updated_at: Option<Timestamp>,
}

pub struct NewSession {
    pub id: SessionId,
    pub secret_hash: SecretHash,
    pub user_id: UserId,
    pub csrf_token: CsrfToken,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
    /// How the person proved who they are: the `amr` of the session's tokens.
    pub methods: AuthMethods,
}

#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id: SessionId,
    pub secret_hash: SecretHash,
    pub user: User,
    pub csrf_token: CsrfToken,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// Absolute end of life; the idle limit comes from configuration.
    pub expires_at: Timestamp,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
    pub methods: AuthMethods,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateSessionError {
    /// The user was disabled (or removed) before the session could be committed.
    #[error("the user is disabled")]
    UserDisabled,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The enum, its stored names and their parsing, from one list: a reason added
/// here is one the revocation log can read back (a reason written but not parsed
/// stalls every reader of the log).
macro_rules! end_reasons {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// Why a session ended; recorded in the revocation log.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum EndReason {
            $($(#[$doc])* $variant,)*
        }

        impl EndReason {
            /// Every reason there is.
            pub const ALL: &[EndReason] = &[$(Self::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }

            pub fn parse(stored: &str) -> Option<Self> {
                match stored {
                    $($name => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

end_reasons! {
    Logout => "logout",
    Deleted => "deleted",
    Replaced => "replaced",
    UserDisabled => "user_disabled",
    /// A refresh token of the family was presented again after it was exchanged.
    RefreshReuse => "refresh_reuse",
    /// Revoked through the revocation endpoint.
    Revoked => "revoked",
    /// A signing key was withdrawn (`tessera keys retire`).
    KeyRetired => "key_retired",
    /// An administrator kicked the user out: every session, family and token ends.
    Kicked => "kicked",
    /// The client was removed: every token issued to it ends.
    ClientRemoved => "client_removed",
    /// A refresh token was presented by a client it was not issued to: it leaked,
    /// so its family and session end (RFC 9700 §4.14.2).
    TokenLeaked => "token_leaked",
    /// An authorization code was presented again after its exchange: what the
    /// exchange gave ends (RFC 6749 §4.1.2).
    CodeReplay => "code_replay",
    /// The password was set through a reset link: whoever knew the old one is out.
    PasswordReset => "password_reset",
}

impl EndReason {
    /// Whether a refresh family revoked for this reason takes the browser session it
    /// was exchanged from with it: only when the family was stolen (its token
    /// reused, or presented by another client), as whoever stole it may hold the
    /// session too. A client revoking its own token, or a replayed code, leaves the
    /// person signed in.
    pub fn ends_parent_session(self) -> bool {
        matches!(self, Self::RefreshReuse | Self::TokenLeaked)
    }
}

store_trait! {
    pub trait SessionStore: Send + Sync, in StoreSet.sessions {
        async fn create_session(&self, session: NewSession) -> Result<(), CreateSessionError>;
        /// The session with its user, whatever its expiry: callers judge expiry.
        async fn session(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError>;
        async fn sessions_of_user(&self, user: UserId) -> Result<Vec<SessionRecord>, StoreError>;
        /// Records activity; sessions that no longer exist are skipped.
        async fn touch_sessions(&self, seen: &[(SessionId, Timestamp)]) -> Result<(), StoreError>;
        /// Ends one session of `user` and appends its revocation; `false` if the user has
        /// no such session.
        async fn end_session(
            &self,
            user: UserId,
            id: &SessionId,
            reason: EndReason,
            at: Timestamp,
        ) -> Result<bool, StoreError>;
        /// Ends every session of `user` but `except`, appending a revocation for each.
        async fn end_sessions_of_user(
            &self,
            user: UserId,
            except: Option<&SessionId>,
            reason: EndReason,
            at: Timestamp,
        ) -> Result<Vec<SessionId>, StoreError>;
        /// Deletes sessions past their absolute expiry or idle since before `idle_cutoff`,
        /// refresh families past their lifetime, expired opaque tokens, and revocation
        /// entries that can no longer matter. Returns sessions deleted.
        #[by_hand]
        async fn purge_expired(
            &self,
            now: Timestamp,
            idle_cutoff: Timestamp,
        ) -> Result<u64, StoreError>;
        async fn count_live_sessions(
            &self,
            now: Timestamp,
            idle_cutoff: Timestamp,
        ) -> Result<u64, StoreError>;
    }
}

pub struct NewRefreshFamily {
    pub id: SessionId,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub scopes: Scopes,
    pub audience: Option<Audience>,
    /// The browser session it was exchanged from, if any: ending one ends the other.
    pub session: Option<SessionId>,
    pub token_hash: SecretHash,
    pub created_at: Timestamp,
    /// Absolute end: no refresh after this, however often the family is used.
    pub expires_at: Timestamp,
    /// The key a public client's family is bound to (DPoP, RFC 9449 §5): its
    /// refresh token is taken only with a proof signed by that key.
    pub dpop_jkt: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RefreshFamily {
    pub id: SessionId,
    pub client_id: ClientId,
    pub user: User,
    pub scopes: Scopes,
    pub audience: Option<Audience>,
    pub session: Option<SessionId>,
    pub generation: u32,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// See [`NewRefreshFamily::dpop_jkt`].
    pub dpop_jkt: Option<String>,
}

#[derive(Debug)]
pub enum RefreshOutcome {
    /// The presented token was the family's live one; it is now the new one.
    Rotated(Box<RefreshFamily>),
    /// The token was exchanged already, longer ago than the grace period: the family
    /// has been revoked (and logged), with the session it came from.
    Reused { family: SessionId, user: UserId },
    /// The token was exchanged already, within the grace period (a client racing
    /// itself): refused, and nothing else happens.
    RaceLost,
    /// Unknown, expired, or its user is disabled.
    Invalid,
}

store_trait! {
    pub trait RefreshStore: Send + Sync, in StoreSet.refresh {
        async fn create_family(&self, family: NewRefreshFamily) -> Result<(), CreateSessionError>;
        /// Exchanges the live token `presented` for `next`, atomically: of two calls
        /// with the same token, exactly one rotates. A spent token presented again
        /// is `RaceLost` if it was rotated after `grace_cutoff`, else reuse, which
        /// revokes the family: with no grace (`grace_cutoff` is `now`), always reuse.
        async fn rotate_refresh_token(
            &self,
            presented: &SecretHash,
            next: &SecretHash,
            now: Timestamp,
            grace_cutoff: Timestamp,
        ) -> Result<RefreshOutcome, StoreError>;
        /// The family with this id, if it was not revoked (expired ones included).
        /// When each client last got tokens for `user` through a refresh family (its
        /// creation, by a code exchange or a grant, or its latest rotation), for the
        /// account page's "last used". Clients without a family are left out.
        async fn last_use_by_client(
            &self,
            user: UserId,
        ) -> Result<Vec<(ClientId, Timestamp)>, StoreError>;
        async fn family(&self, id: &SessionId) -> Result<Option<RefreshFamily>, StoreError>;
        /// The family whose live token is `token`, if any (expired ones included).
        async fn family_by_token(
            &self,
            token: &SecretHash,
        ) -> Result<Option<RefreshFamily>, StoreError>;
        /// Revokes a family of `user` (or of anyone, with `None`) and logs it; `false` if
        /// there was none.
        async fn revoke_family(
            &self,
            id: &SessionId,
            user: Option<UserId>,
            reason: EndReason,
            at: Timestamp,
        ) -> Result<bool, StoreError>;
        /// Revokes every family of `user` (with `client`, only that client's: the
        /// person removed the app), logging each.
        async fn revoke_families_of_user(
            &self,
            user: UserId,
            client: Option<ClientId>,
            reason: EndReason,
            at: Timestamp,
        ) -> Result<Vec<SessionId>, StoreError>;
        /// Revokes every family exchanged from the browser session `session` (which
        /// ended), logging each; the ids revoked.
        async fn revoke_families_of_session(
            &self,
            session: &SessionId,
            reason: EndReason,
            at: Timestamp,
        ) -> Result<Vec<SessionId>, StoreError>;
    }
}

/// An opaque access token as stored: everything introspection says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpaqueToken {
    pub hash: SecretHash,
    pub jti: String,
    pub client_id: ClientId,
    /// The `sub`: a user id, or the client id for client credentials.
    pub subject: String,
    pub user: Option<UserId>,
    pub scopes: Scopes,
    pub audience: Option<Audience>,
    pub session: Option<SessionId>,
    pub roles: Roles,
    /// How the sign-in behind it went (its `amr`); `None` for a client's own.
    pub methods: Option<AuthMethods>,
    /// The key it is bound to (DPoP, RFC 9449): introspection reports it as
    /// `cnf.jkt`, and resource servers take the token only with a proof of it.
    pub dpop_jkt: Option<String>,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

store_trait! {
    pub trait OpaqueTokenStore: Send + Sync, in StoreSet.opaque {
        async fn store_opaque_token(&self, token: OpaqueToken) -> Result<(), StoreError>;
        /// The token with this hash, expired or not: callers judge expiry.
        async fn opaque_token(&self, hash: &SecretHash) -> Result<Option<OpaqueToken>, StoreError>;
        /// Deletes the token if `client` owns it, and logs its `jti` as revoked (until
        /// the token would have expired) in the same transaction; `false` if `client`
        /// has no such token.
        async fn revoke_opaque_token(
            &self,
            hash: &SecretHash,
            client: &ClientId,
            at: Timestamp,
        ) -> Result<bool, StoreError>;
    }
}

/// An authorization code as stored (RFC 6749 §4.1), by the SHA-256 of the code:
/// what the authorization request bound it to, so that the token endpoint redeems
/// it only for the same client, redirect URI and PKCE verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    pub hash: SecretHash,
    pub client_id: ClientId,
    pub user: UserId,
    /// The browser session it was issued in: the `sid` of what it is exchanged for.
    pub session: SessionId,
    /// As the authorization request gave it; the token request must give the same.
    pub redirect_uri: String,
    pub scopes: Scopes,
    /// The PKCE S256 challenge (RFC 7636 §4.2), base64url.
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    /// The thumbprint of the key the request bound the code to (`dpop_jkt`, RFC
    /// 9449 §10): its exchange must come with a DPoP proof of that key.
    pub dpop_jkt: Option<String>,
    /// When the user last authenticated: the ID token's `auth_time`.
    pub auth_time: Timestamp,
    /// The refresh family and the access token's `jti` that its exchange issues,
    /// chosen with the code, so that a replay can revoke them (RFC 6749 §4.1.2).
    pub family: SessionId,
    pub jti: String,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    /// When the store may forget it: after `expires_at`, so that a replay soon
    /// after expiry is still told from a code never issued.
    pub forget_at: Timestamp,
}

/// What presenting an authorization code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// Its first presentation, which spent it. Expiry is the caller's to judge.
    First(AuthorizationCode),
    /// It was spent before: a replay.
    Again(AuthorizationCode),
    /// Never issued, or forgotten.
    Unknown,
}

store_trait! {
    pub trait AuthorizationCodeStore: Send + Sync, in StoreSet.codes {
        /// A code whose hash is taken is [`StoreError::Conflict`].
        async fn store_code(&self, code: AuthorizationCode) -> Result<(), StoreError>;
        /// Spends the code, atomically: of any number of redemptions, on any
        /// instance, at most one is [`Redemption::First`]. Kept until `forget_at`
        /// (the database's `purge_expired`, or Redis's expiry).
        async fn redeem_code(&self, hash: &SecretHash, at: Timestamp) -> Result<Redemption, StoreError>;
        /// Keeps a pushed authorization request until its `expires_at`.
        async fn push_request(&self, request: PushedRequest) -> Result<(), StoreError>;
        /// The pushed request with this hash, if it has not expired by `at` or been
        /// dropped.
        async fn pushed_request(
            &self,
            hash: &SecretHash,
            at: Timestamp,
        ) -> Result<Option<PushedRequest>, StoreError>;
        /// Forgets a pushed request (it is used: it gives one code), atomically:
        /// of any number of calls, on any instance, one alone answers `true`.
        async fn drop_pushed_request(&self, hash: &SecretHash) -> Result<bool, StoreError>;
    }
}

/// What a ceremony is for; each is taken only as its own kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    /// A sign-in whose password was right, waiting for its second factor.
    SecondFactor,
    /// A passkey being registered: the challenge its authenticator must sign.
    PasskeyRegistration,
    /// A sign-in with a passkey: the challenge.
    PasskeySignIn,
    /// A DPoP proof seen (its key and `jti`), kept through its window so that it
    /// is used once on any instance. Never taken: begun, or found begun already.
    DpopProof,
}

impl CeremonyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SecondFactor => "second_factor",
            Self::PasskeyRegistration => "passkey_registration",
            Self::PasskeySignIn => "passkey_sign_in",
            Self::DpopProof => "dpop_proof",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        match stored {
            "second_factor" => Some(Self::SecondFactor),
            "passkey_registration" => Some(Self::PasskeyRegistration),
            "passkey_sign_in" => Some(Self::PasskeySignIn),
            "dpop_proof" => Some(Self::DpopProof),
            _ => None,
        }
    }
}

/// A ceremony under way, by the SHA-256 of the secret its browser holds: what the
/// service needs to finish it (`state`, its own serialisation), until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ceremony {
    pub hash: SecretHash,
    pub kind: CeremonyKind,
    pub user: Option<UserId>,
    pub state: String,
    pub expires_at: Timestamp,
}

store_trait! {
    /// Short-lived, single-use state of sign-in ceremonies, shared by every
    /// instance: one begun on one instance is finished on another.
    pub trait CeremonyStore: Send + Sync, in StoreSet.ceremonies {
        /// A ceremony whose hash is taken is [`StoreError::Conflict`].
        async fn begin_ceremony(&self, ceremony: Ceremony) -> Result<(), StoreError>;
        /// The ceremony, left in place (a page showing where it stands); `None` as
        /// for [`CeremonyStore::take_ceremony`].
        async fn ceremony(
            &self,
            hash: &SecretHash,
            kind: CeremonyKind,
            at: Timestamp,
        ) -> Result<Option<Ceremony>, StoreError>;
        /// Takes the ceremony away, atomically: of any number of takes, on any
        /// instance, at most one finds it. `None` when there is none of this kind
        /// with this hash, or it expired by `at` (then it is gone all the same).
        async fn take_ceremony(
            &self,
            hash: &SecretHash,
            kind: CeremonyKind,
            at: Timestamp,
        ) -> Result<Option<Ceremony>, StoreError>;
    }
}

/// What the exchange of a code writes once the code is spent first, decided from
/// the code by the service (see [`CodeExchangeStore`]).
#[derive(Default)]
pub struct CodeFollowUp {
    /// Which app got tokens from which session (for back-channel logout).
    pub session_client: Option<SessionClient>,
    /// The refresh family the exchange starts.
    pub family: Option<NewRefreshFamily>,
}

/// Decides the [`CodeFollowUp`] of the code just spent: the service's checks and
/// choices, which the store runs inside its write. Nothing written for a code spent
/// before, or never issued.
pub type PlanFollowUp = Box<dyn FnOnce(&AuthorizationCode) -> CodeFollowUp + Send>;

/// What exchanging a code found and started.
#[derive(Debug)]
pub struct CodeExchanged {
    pub redemption: Redemption,
    /// How starting the planned family went (`UserDisabled`, say); `None` when none
    /// was planned.
    pub family: Option<Result<(), CreateSessionError>>,
}

store_trait! {
    /// The code exchange's writes as one: a database spends the code and writes its
    /// follow-up in the same batch (on SQLite, one transaction), where one after the
    /// other each waited for a batch of its own. With codes in Redis, the set joins
    /// the separate stores ([`SeparateCodeExchange`]).
    pub trait CodeExchangeStore: Send + Sync, in StoreSet.exchange {
        /// Spends the code as [`AuthorizationCodeStore::redeem_code`] does and, when
        /// this was its first redemption, writes what `plan` makes of it, as
        /// [`BackchannelStore::record_session_client`] (its error is the whole
        /// call's) and [`RefreshStore::create_family`] (its answer is
        /// [`CodeExchanged::family`]) would.
        async fn exchange_code(
            &self,
            hash: &SecretHash,
            at: Timestamp,
            plan: PlanFollowUp,
        ) -> Result<CodeExchanged, StoreError>;
    }
}

/// [`CodeExchangeStore`] from separate stores, one call after the other.
pub struct SeparateCodeExchange {
    pub codes: Arc<dyn AuthorizationCodeStore>,
    pub backchannel: Arc<dyn BackchannelStore>,
    pub refresh: Arc<dyn RefreshStore>,
}

#[async_trait]
impl CodeExchangeStore for SeparateCodeExchange {
    async fn exchange_code(
        &self,
        hash: &SecretHash,
        at: Timestamp,
        plan: PlanFollowUp,
    ) -> Result<CodeExchanged, StoreError> {
        let redemption = self.codes.redeem_code(hash, at).await?;
        let Redemption::First(code) = &redemption else {
            return Ok(CodeExchanged {
                redemption,
                family: None,
            });
        };
        let follow_up = plan(code);
        if let Some(record) = follow_up.session_client {
            self.backchannel.record_session_client(record).await?;
        }
        let family = match follow_up.family {
            Some(family) => Some(self.refresh.create_family(family).await),
            None => None,
        };
        Ok(CodeExchanged { redemption, family })
    }
}

/// A pushed authorization request (RFC 9126), by the SHA-256 of its `request_uri`:
/// the parameters a client sent with its credentials, as a query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedRequest {
    pub hash: SecretHash,
    pub client_id: ClientId,
    pub params: String,
    pub expires_at: Timestamp,
}

/// A client that got tokens from a browser session: whom back-channel logout tells
/// when the session ends (OpenID Connect Back-Channel Logout 1.0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionClient {
    pub session: SessionId,
    pub client_id: ClientId,
    pub user: UserId,
    /// When the record can no longer matter: the session's absolute end.
    pub forget_at: Timestamp,
}

/// A logout token waiting to be delivered to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutDelivery {
    pub id: i64,
    pub client_id: ClientId,
    pub session: SessionId,
    pub user: UserId,
    /// Attempts so far, this one included.
    pub attempts: u32,
    pub queued_at: Timestamp,
}

store_trait! {
    /// The back-channel logout outbox: which clients got tokens from which browser
    /// session, the logouts queued for them when the session ended, and how far the
    /// revocation log has been turned into logouts. In the database, so that a
    /// restart loses nothing and every instance sees one queue.
    pub trait BackchannelStore: Send + Sync, in StoreSet.backchannel {
        /// Records that a client got tokens from a session; recording it again
        /// changes nothing.
        async fn record_session_client(&self, record: SessionClient) -> Result<(), StoreError>;
        /// In one transaction: queues a logout for every client recorded for the
        /// `ended` sessions and for every session of the `users` (each pair once,
        /// however often this is called), forgets those records, and moves the
        /// position to `position` (never down). Returns how many were queued.
        async fn queue_logouts(
            &self,
            ended: &[SessionId],
            users: &[UserId],
            position: u64,
            at: Timestamp,
        ) -> Result<u64, StoreError>;
        /// The revocation log position logouts were queued up to (0 at first).
        async fn logout_position(&self) -> Result<u64, StoreError>;
        /// Takes up to `limit` logouts due at `now`, each leased until `lease_until`:
        /// no other caller gets it before then. Counts the attempt.
        async fn claim_logouts(
            &self,
            now: Timestamp,
            lease_until: Timestamp,
            limit: u32,
        ) -> Result<Vec<LogoutDelivery>, StoreError>;
        /// Delivered, or given up: gone from the queue.
        async fn finish_logout(&self, id: i64) -> Result<(), StoreError>;
        /// Not delivered: due again at `next`.
        async fn retry_logout(&self, id: i64, next: Timestamp) -> Result<(), StoreError>;
        /// In one transaction: queues a logout for every session `client` got tokens
        /// from for `user` (the person removed the app) and forgets those records.
        /// Returns how many were queued.
        async fn queue_client_logouts(
            &self,
            user: UserId,
            client: ClientId,
            at: Timestamp,
        ) -> Result<u64, StoreError>;
        /// How many logouts wait.
        async fn pending_logouts(&self) -> Result<u64, StoreError>;
    }
}

/// What a revocation revokes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// A browser session or a refresh family: every token whose `sid` is this id.
    Session(SessionId),
    /// One JWT, by its `jti`.
    Token(String),
    /// A signing key, by its `kid`: every token it signed.
    Key(String),
    /// Every token issued to this user up to the entry's `at` (a kick): the cut-off
    /// is the entry's time, so tokens issued afterwards stay good.
    User(UserId),
    /// Every token issued to this client up to the entry's `at` (the client was
    /// removed), whoever its subject.
    Client(ClientId),
}

impl Revoked {
    /// Its kind, as stored and as the feed names it.
    pub fn kind(&self) -> RevocationKind {
        match self {
            Revoked::Session(_) => RevocationKind::Session,
            Revoked::Token(_) => RevocationKind::Token,
            Revoked::Key(_) => RevocationKind::Key,
            Revoked::User(_) => RevocationKind::User,
            Revoked::Client(_) => RevocationKind::Client,
        }
    }

    /// What it names, as stored and as the feed's `id`.
    pub fn target(&self) -> String {
        match self {
            Revoked::Session(id) => id.as_str().to_owned(),
            Revoked::Token(jti) => jti.clone(),
            Revoked::Key(kid) => kid.clone(),
            Revoked::User(id) => id.to_string(),
            Revoked::Client(id) => id.to_string(),
        }
    }

    pub fn from_stored(kind: &str, target: &str) -> Option<Self> {
        match kind.parse::<RevocationKind>().ok()? {
            RevocationKind::Session => SessionId::parse(target).ok().map(Revoked::Session),
            RevocationKind::Token => Some(Revoked::Token(target.to_owned())),
            RevocationKind::Key => Some(Revoked::Key(target.to_owned())),
            RevocationKind::User => UserId::parse(target).map(Revoked::User),
            RevocationKind::Client => ClientId::parse(target).map(Revoked::Client),
        }
    }
}

/// One entry of the revocation log, in commit order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub sequence: u64,
    pub revoked: Revoked,
    pub user: Option<UserId>,
    pub reason: EndReason,
    pub at: Timestamp,
    /// When what it revokes has expired anyway; the entry may go then.
    pub expires_at: Timestamp,
}

/// Signalled after every commit that appended to the revocation log (by this
/// process, or by another one that the backend can hear), so that this process
/// applies it at once instead of at its next poll. The count lets a reader tell
/// whether something was appended since it last read the log: a process that has
/// just ended something refuses it in its very next answer (read your own writes).
#[derive(Debug, Default)]
pub struct RevocationsAppended {
    count: std::sync::atomic::AtomicU64,
    notify: tokio::sync::Notify,
}

impl RevocationsAppended {
    /// Called by a backend after the commit of an append.
    pub fn signal(&self) {
        self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.notify.notify_one();
    }

    /// How many appends were signalled so far. Read before reading the log: every
    /// append it counts is then in what the read returns.
    pub fn count(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits for the next signal (one stored permit, for the one follower).
    pub async fn notified(&self) {
        self.notify.notified().await;
    }
}

store_trait! {
    /// The append-only record of revocations, with a monotonic sequence number. Processes
    /// that cache sessions follow it so that a session ended anywhere (another process,
    /// the CLI) stops working here; the revocation feed serves it to verifiers.
    pub trait RevocationLog: Send + Sync, in StoreSet.log {
        /// Entries with a sequence above `after`, oldest first, at most `limit`.
        async fn revocations_after(
            &self,
            after: u64,
            limit: u32,
        ) -> Result<Vec<Revocation>, StoreError>;
        /// The sequence of the newest entry ever appended (0 if none), purged or not.
        async fn latest_revocation(&self) -> Result<u64, StoreError>;
        /// Appends an entry that no other change comes with (a JWT revoked by `jti`, a
        /// key retired); kept until `expires_at`, when what it revokes has expired anyway.
        async fn append_revocation(
            &self,
            revoked: Revoked,
            user: Option<UserId>,
            reason: EndReason,
            at: Timestamp,
            expires_at: Timestamp,
        ) -> Result<u64, StoreError>;
        /// Adds `entries` exactly as read from another log (`revocations_after`), each
        /// under its own sequence number with its kind, target, user, reason and times,
        /// and raises the sequence counter to at least `latest` (the other log's
        /// `latest_revocation`, which may exceed its last entry when entries were
        /// purged): the next append is numbered above anything the other log ever
        /// numbered, so the positions of those who followed it stay meaningful here.
        /// For `tessera store migrate`. All or nothing, in one transaction: an entry
        /// whose sequence is not above this log's `latest_revocation` (a follower may
        /// be past it already, or it may collide) is an error and nothing is added.
        /// The counter never goes down.
        async fn import_revocations(
            &self,
            entries: &[Revocation],
            latest: u64,
        ) -> Result<(), StoreError>;
    }
}

/// An OAuth client as registered with `tessera client add`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: ClientId,
    pub name: ClientName,
    /// `None` for a public client (no secret: a native or browser app).
    pub secret_hash: Option<SecretHash>,
    /// Sorted, without duplicates.
    pub grants: Vec<GrantType>,
    /// The most a token for this client may carry; a request may ask for fewer.
    pub scopes: Scopes,
    /// The resource services it may get tokens for; the first is the default.
    pub audiences: Vec<Audience>,
    pub token_format: TokenFormat,
    pub algorithm: Algorithm,
    pub access_ttl: Duration,
    /// Its access tokens are always bound to its key (RFC 9449 §5.2
    /// `dpop_bound_access_tokens`): a token request without a DPoP proof is
    /// refused. Without it, binding is the client's choice, request by request.
    pub dpop_bound_access_tokens: bool,
    pub created_at: Timestamp,
    /// What it registered for signing users in through the browser (OpenID
    /// Connect's authorization-code flow); the default for any other client.
    pub code_flow: CodeFlow,
}

/// A client's registration for the authorization-code flow (OpenID Connect Dynamic
/// Client Registration 1.0 §2 names the same metadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeFlow {
    /// Where `/oauth2/authorize` may send the browser back; sorted, no duplicates.
    pub redirect_uris: Vec<RedirectUri>,
    /// Where `/oauth2/logout` may send it after logout; sorted, no duplicates.
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub backchannel_logout_uri: Option<LogoutUri>,
    /// Run by the same party as tessera: its users are not asked for consent.
    pub first_party: bool,
    /// Authorization requests only by reference, pushed first (RFC 9126 §6).
    pub require_par: bool,
    /// How its ID tokens are signed: an asymmetric algorithm, RS256 unless it said.
    pub id_token_algorithm: Algorithm,
}

impl Default for CodeFlow {
    fn default() -> Self {
        Self {
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            backchannel_logout_uri: None,
            first_party: false,
            require_par: false,
            // The one OpenID Connect Core §15.1 requires every provider to offer.
            id_token_algorithm: Algorithm::RS256,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CreateClientError {
    #[error("a client with this name exists")]
    NameTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

store_trait! {
    pub trait ClientStore: Send + Sync, in StoreSet.clients {
        async fn create_client(&self, client: Client) -> Result<(), CreateClientError>;
        async fn client(&self, id: &ClientId) -> Result<Option<Client>, StoreError>;
        async fn client_by_name(&self, name: &ClientName) -> Result<Option<Client>, StoreError>;
        async fn list_clients(&self) -> Result<Vec<Client>, StoreError>;
        /// `false` if there was no such client.
        async fn remove_client(&self, id: &ClientId) -> Result<bool, StoreError>;
        /// Replaces a confidential client's secret (its hash): the old one stops
        /// working on every instance at once (the cache generation moves). `false`
        /// if there is no such client, or it is public (it has no secret).
        async fn replace_client_secret(
            &self,
            id: &ClientId,
            secret_hash: &SecretHash,
        ) -> Result<bool, StoreError>;
        /// A number that changes whenever a client is added or removed, a profile is
        /// set or a consent withdrawn, by this process or by any other on the same
        /// store (the CLI), and that costs no database round trip: a cache of clients,
        /// profiles or consents compares it on every use and is exact. (A consent that
        /// grows needs no change: a cached smaller one only sends a reader to the
        /// store.) `None` when it cannot be told: then nothing cached may be trusted.
        fn cache_generation(&self) -> Option<u64>;
    }
}

/// A signing key as stored. Its lifecycle is in its times: it is published from
/// `created_at`, signs from `signs_from` (once verifiers have had time to fetch it),
/// stays published until `published_until` (set when a newer key takes over, to
/// when the last token it signed expires), and is withdrawn at once by `retired_at`.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub kid: String,
    /// The JOSE name: `EdDSA`, `ES256` or `RS256`.
    pub algorithm: String,
    /// PKCS#8 DER, or when `sealed` that sealed by the master key.
    pub private_key: Vec<u8>,
    pub sealed: bool,
    pub created_at: Timestamp,
    pub signs_from: Timestamp,
    pub published_until: Option<Timestamp>,
    pub retired_at: Option<Timestamp>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("sealed", &self.sealed)
            .field("created_at", &self.created_at)
            .field("signs_from", &self.signs_from)
            .field("published_until", &self.published_until)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

store_trait! {
    pub trait KeyStore: Send + Sync, in StoreSet.keys {
        /// Every key, retired ones included, oldest first.
        async fn signing_keys(&self) -> Result<Vec<StoredKey>, StoreError>;
        /// Adds `key` unless a key of its algorithm that is not retired exists; `true` if
        /// it was added. Processes starting together thus create one first key, not two.
        async fn add_first_key(&self, key: StoredKey) -> Result<bool, StoreError>;
        /// Adds `key` and, in the same transaction, ends the publication of every other
        /// unretired key of its algorithm that has no end yet at `old_published_until`.
        async fn add_rotated_key(
            &self,
            key: StoredKey,
            old_published_until: Timestamp,
        ) -> Result<(), StoreError>;
        /// Withdraws a key and, in the same transaction, appends its revocation to the
        /// log (verifiers must refuse what it signed) and adds `replacement` if given (so
        /// that no reader ever sees an algorithm without a signer); `false`, with nothing
        /// changed, if there is no such key or it was already retired.
        async fn retire_key(
            &self,
            kid: &str,
            at: Timestamp,
            replacement: Option<StoredKey>,
        ) -> Result<bool, StoreError>;
        /// Replaces the stored private key, e.g. to seal it once a master key is set.
        async fn replace_private_key(
            &self,
            kid: &str,
            private_key: Vec<u8>,
            sealed: bool,
        ) -> Result<(), StoreError>;
        /// Adds `key` exactly as read from another store (`signing_keys`), for `tessera
        /// store migrate`: private key as stored (sealed stays sealed, under the same
        /// master key), every time as given, whatever the other keys (no first-key check,
        /// no publication ended, nothing logged). A `kid` already present is an error.
        async fn import_key(&self, key: StoredKey) -> Result<(), StoreError>;
    }
}

/// That a session (or a refresh family: a token's `sid`) of `user` was in use at `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub sid: SessionId,
    pub user: UserId,
    pub at: Timestamp,
}

/// Who has been active since some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Online {
    /// Distinct users.
    pub users: u64,
    /// Distinct sessions and refresh families.
    pub sessions: u64,
}

/// How far apart two stored sightings of one session are at least.
pub const PRESENCE_RESOLUTION: Duration = Duration::from_secs(60);

store_trait! {
    /// Presence: the last time each session was seen in use, for "who is online". Kept
    /// apart from sessions because refresh families and sessions seen only by resource
    /// services count too, and because writes are rate-limited by the caller (at most one
    /// per session per minute), not tied to session expiry.
    pub trait PresenceStore: Send + Sync, in StoreSet.presence {
        /// Records each sighting, and returns how many were written. A sighting is
        /// written only if its session has none stored, or one at least
        /// [`PRESENCE_RESOLUTION`] older: so a session costs at most one write a
        /// minute whichever instances see it, and presence is kept to the minute. An
        /// older sighting never moves a newer one back; an ended session stays ended.
        async fn record_presence(&self, seen: &[Seen]) -> Result<u64, StoreError>;
        /// Sessions and users seen at or after `since`.
        async fn online_since(&self, since: Timestamp) -> Result<Online, StoreError>;
        /// Forgets sightings older than `before`; returns how many.
        async fn purge_presence(&self, before: Timestamp) -> Result<u64, StoreError>;
        /// Forgets these sessions (they ended: logged out, kicked), so they no longer
        /// count as online.
        async fn forget_presence(&self, sids: &[SessionId]) -> Result<(), StoreError>;
    }
}

/// Who did what an audit event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in user (themselves, or an admin acting on someone).
    User(UserId),
    /// A client, with its own credentials (an admin token issued to it, say).
    Client(ClientId),
    /// Someone at the host's command line: the CLI opens the store directly.
    Operator,
    /// tessera itself: reuse detection, a code replay.
    System,
    /// Someone not signed in: a failed login.
    Anonymous,
}

impl Actor {
    /// The type the log stores and shows (`user`, `client`, …).
    pub const fn kind(&self) -> &'static str {
        match self {
            Actor::User(_) => "user",
            Actor::Client(_) => "client",
            Actor::Operator => "operator",
            Actor::System => "system",
            Actor::Anonymous => "anonymous",
        }
    }

    /// The id of a user or client.
    pub fn id(&self) -> Option<String> {
        match self {
            Actor::User(id) => Some(id.to_string()),
            Actor::Client(id) => Some(id.to_string()),
            _ => None,
        }
    }

    /// Read back from its stored type and id.
    pub fn from_stored(kind: &str, id: Option<&str>) -> Option<Self> {
        Some(match (kind, id) {
            ("user", Some(id)) => Actor::User(UserId::parse(id)?),
            ("client", Some(id)) => Actor::Client(ClientId::parse(id)?),
            ("operator", None) => Actor::Operator,
            ("system", None) => Actor::System,
            ("anonymous", None) => Actor::Anonymous,
            _ => return None,
        })
    }
}

/// One security-relevant event, as recorded. Nothing secret goes in: no password,
/// token, code or cookie, and no hash of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub at: Timestamp,
    pub kind: EventKind,
    pub outcome: Outcome,
    pub actor: Actor,
    /// The account it concerns.
    pub user: Option<UserId>,
    /// The username presented or held then (a failed login's may be no account).
    pub username: Option<String>,
    /// What else it concerns, as `type:id` (`client:…`, `key:…`, `session:…`).
    pub target: Option<String>,
    /// Where the request came from.
    pub address: Option<std::net::IpAddr>,
    /// Why or what, in words.
    pub detail: Option<String>,
}

/// A recorded event, with its place in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Ascending in the order of recording, on every backend.
    pub id: i64,
    pub event: NewEvent,
}

/// How many events of one outcome a time bucket holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventCount {
    pub bucket: Timestamp,
    pub outcome: Outcome,
    pub count: u64,
}

/// Which events to read. `user` matches the account an event concerns or its
/// actor. Pages go newest first, older than `before`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    pub user: Option<UserId>,
    pub kind: Option<EventKind>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub before: Option<i64>,
    pub limit: u32,
}

store_trait! {
    /// The audit log: what happened, to whom, by whom, from where. Kept apart from the
    /// revocation log, which says what verifiers must refuse; this one is for
    /// people. Events are kept for a configured time, then purged.
    pub trait AuditStore: Send + Sync, in StoreSet.audit {
        /// Records the events, in order, all or none.
        async fn record_events(&self, events: &[NewEvent]) -> Result<(), StoreError>;
        /// The events `query` matches, newest first, at most `query.limit`.
        async fn events(&self, query: &EventQuery) -> Result<Vec<Event>, StoreError>;
        /// The events recorded after `after`, oldest first, at most `limit`: for
        /// following the log.
        async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<Event>, StoreError>;
        /// How many events of `kind` happened at or after `since`, by outcome, in
        /// buckets of `bucket` milliseconds (each bucket by its start, a multiple
        /// of `bucket` since the epoch); buckets without events are left out.
        async fn count_events(
            &self,
            kind: EventKind,
            since: Timestamp,
            bucket: i64,
        ) -> Result<Vec<EventCount>, StoreError>;
        /// Forgets the events (and the hourly online peaks) from before `before`;
        /// returns how many events.
        async fn purge_events(&self, before: Timestamp) -> Result<u64, StoreError>;
        /// Keeps `online` as the hour's peak if it is more than the peak so far (users
        /// and sessions each): every instance samples, the store keeps the most.
        async fn record_online_peak(&self, hour: Timestamp, online: Online) -> Result<(), StoreError>;
        /// The hourly peaks from `since` on, oldest first; hours never sampled are
        /// left out.
        async fn online_peaks(&self, since: Timestamp) -> Result<Vec<OnlinePeak>, StoreError>;
    }
}

/// The most users and sessions online at once in an hour (by its start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnlinePeak {
    pub hour: Timestamp,
    pub online: Online,
}

/// Rate limiting shared by every instance: GCRA over a theoretical arrival time per
/// key, so a burst of `burst` attempts is allowed and then one per `interval`.
#[async_trait]
pub trait RateLimitStore: Send + Sync {
    /// Counts one attempt against `key`: `None` if allowed, else how long until an
    /// attempt would be (a refused attempt does not count).
    async fn attempt(
        &self,
        key: &str,
        interval: Duration,
        burst: u32,
    ) -> Result<Option<Duration>, StoreError>;
}

store_trait! {
    /// Is the store answering? Backs `/readyz`.
    pub trait Health: Send + Sync, in StoreSet.health {
        #[by_hand]
        async fn ping(&self) -> Result<(), StoreError>;
    }
}
