//! [`sql_store!`]: the store-trait methods a SQL backend implements by calling the
//! [`Sql`](crate::Sql) method of the same name on its pool, written once.

/// Implements a store trait for a SQL backend: the methods named after `forward` as
/// calls of the shared statement on the backend's pool, the rest as written.
///
/// ```ignore
/// sql_store! {
///     impl AccountStore for SqliteStore {
///         forward to Sqlite on self.pool {
///             create_user, user_credentials, list_users, user, search_users,
///         }
///
///         async fn import_user(&self, user: UserCredentials) -> Result<(), CreateUserError> {
///             /* what only this backend does */
///         }
///     }
/// }
/// ```
///
/// expands to one `#[async_trait] impl AccountStore for SqliteStore` holding
/// `async fn create_user(&self, user: NewUser) -> Result<User, CreateUserError> {
/// <Sqlite as Sql>::create_user(&self.pool, user).await }` and so on, followed by
/// the methods written out. So every method of every backend is found in that
/// backend's `impl` of its trait: by name in the `forward` list (whose body is
/// [`Sql`](crate::Sql)'s method of that name, unless the table below says
/// otherwise), or written out below it.
///
/// The forwardable methods, with their signatures, are the table in
/// `__sql_store_forward!` below (in `src/forward.rs`); a name not in it is a
/// compile error. Four are written by the backend's group-commit writer, and
/// call the [`Batches`](crate::Batches) method of the same name on
/// `self.batches`, which a backend forwarding them must have: `store_code`,
/// `redeem_code`, `create_family` and `record_session_client`. Of the rest, all but
/// three call the `Sql` method of the same name with the same arguments:
/// `store_opaque_token` [`insert_opaque_token`](crate::Sql::insert_opaque_token),
/// `add_first_key` [`insert_first_key`](crate::Sql::insert_first_key) (atomic only
/// where the database serialises writers: SQLite) and `import_key`
/// [`insert_key`](crate::Sql::insert_key).
#[macro_export]
macro_rules! sql_store {
    (
        impl $Trait:ident for $Store:ident {
            forward to $DB:ident on self . $pool:ident { $($method:ident),* $(,)? }
            $($own:tt)*
        }
    ) => {
        $crate::__sql_store_forward! { [$Trait $Store $DB $pool] [$($method)*] [] $($own)* }
    };
}

/// The work of [`sql_store!`]: takes the forwarded names one at a time, appending
/// each one's method to the third bracket, then writes the `impl`. The types in the
/// table are `tessera-store`'s and `tessera-core`'s (`__ty::`), as the traits
/// declare them.
#[doc(hidden)]
#[macro_export]
macro_rules! __sql_store_forward {
    // Every name done: the impl, forwarders first, then the backend's own methods.
    ([$Trait:ident $Store:ident $DB:ident $pool:ident] [] [$($done:tt)*] $($own:tt)*) => {
        const _: () = {
            use $crate::__private::forwarded as __ty;

            #[$crate::__private::async_trait]
            impl $Trait for $Store {
                $($done)*
                $($own)*
            }
        };
    };
    // One forwarder: `name(args) -> output = sql_method(call arguments)`.
    (@method [$Trait:ident $Store:ident $DB:ident $pool:ident] $rest:tt [$($done:tt)*]
        [$name:ident($($arg:ident: $ty:ty),*) -> $output:ty = $sql:ident($($call:expr),*)]
        $($own:tt)*
    ) => {
        $crate::__sql_store_forward! { [$Trait $Store $DB $pool] $rest [
            $($done)*
            async fn $name(&self, $($arg: $ty),*) -> $output {
                <$DB as $crate::Sql>::$sql(&self.$pool, $($call),*).await
            }
        ] $($own)* }
    };

    // One forwarder to the backend's batch writer: `name(args) -> output = batched`.
    (@method [$Trait:ident $Store:ident $DB:ident $pool:ident] $rest:tt [$($done:tt)*]
        [$name:ident($($arg:ident: $ty:ty),*) -> $output:ty = batched]
        $($own:tt)*
    ) => {
        $crate::__sql_store_forward! { [$Trait $Store $DB $pool] $rest [
            $($done)*
            async fn $name(&self, $($arg: $ty),*) -> $output {
                self.batches.$name($($arg),*).await
            }
        ] $($own)* }
    };

    // The table. AccountStore.
    ($head:tt [create_user $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [create_user(user: __ty::NewUser) -> Result<__ty::User, __ty::CreateUserError> = create_user(user)] $($own)* } };
    ($head:tt [user_credentials $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [user_credentials(username: &__ty::Username) -> Result<Option<__ty::UserCredentials>, __ty::StoreError> = user_credentials(username)] $($own)* } };
    ($head:tt [list_users $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [list_users() -> Result<Vec<__ty::User>, __ty::StoreError> = list_users()] $($own)* } };
    ($head:tt [user $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [user(id: __ty::UserId) -> Result<Option<__ty::User>, __ty::StoreError> = user(id)] $($own)* } };
    ($head:tt [search_users $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [search_users(contains: &str, after: Option<&__ty::Username>, limit: u32) -> Result<Vec<__ty::User>, __ty::StoreError> = search_users(contains, after, limit)] $($own)* } };
    ($head:tt [replace_password_hash $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [replace_password_hash(user: __ty::UserId, previous: &str, new: &str) -> Result<bool, __ty::StoreError> = replace_password_hash(user, previous, new)] $($own)* } };
    ($head:tt [set_user_disabled $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [set_user_disabled(username: &__ty::Username, disabled: bool) -> Result<Option<__ty::User>, __ty::StoreError> = set_user_disabled(username, disabled)] $($own)* } };
    ($head:tt [profile $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [profile(id: __ty::UserId) -> Result<Option<__ty::Profile>, __ty::StoreError> = profile(id)] $($own)* } };
    ($head:tt [set_profile $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [set_profile(id: __ty::UserId, profile: __ty::Profile) -> Result<bool, __ty::StoreError> = set_profile(id, profile)] $($own)* } };
    ($head:tt [consent $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [consent(user: __ty::UserId, client: &__ty::ClientId) -> Result<Option<__ty::Consent>, __ty::StoreError> = consent(user, client)] $($own)* } };
    ($head:tt [save_consent $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [save_consent(consent: __ty::Consent) -> Result<bool, __ty::StoreError> = save_consent(consent)] $($own)* } };
    ($head:tt [withdraw_consent $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [withdraw_consent(user: __ty::UserId, client: &__ty::ClientId) -> Result<bool, __ty::StoreError> = withdraw_consent(user, client)] $($own)* } };
    ($head:tt [consents $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [consents(user: __ty::UserId) -> Result<Vec<__ty::Consent>, __ty::StoreError> = consents(user)] $($own)* } };
    ($head:tt [set_roles $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [set_roles(id: __ty::UserId, roles: &__ty::Roles) -> Result<Option<(__ty::Roles, __ty::User)>, __ty::StoreError> = set_roles(id, roles)] $($own)* } };
    ($head:tt [save_reset_link $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [save_reset_link(link: __ty::ResetLink) -> Result<bool, __ty::StoreError> = save_reset_link(link)] $($own)* } };
    ($head:tt [reset_link_user $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [reset_link_user(hash: &__ty::SecretHash, now: __ty::Timestamp) -> Result<Option<__ty::UserId>, __ty::StoreError> = reset_link_user(hash, now)] $($own)* } };
    ($head:tt [use_reset_link $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [use_reset_link(hash: &__ty::SecretHash, now: __ty::Timestamp, password_hash: &str) -> Result<Option<__ty::UserId>, __ty::StoreError> = use_reset_link(hash, now, password_hash)] $($own)* } };
    ($head:tt [totp $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [totp(user: __ty::UserId) -> Result<Option<__ty::TotpCredential>, __ty::StoreError> = totp(user)] $($own)* } };
    ($head:tt [begin_totp $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [begin_totp(user: __ty::UserId, sealed_secret: Vec<u8>, now: __ty::Timestamp) -> Result<bool, __ty::StoreError> = begin_totp(user, sealed_secret, now)] $($own)* } };
    ($head:tt [confirm_totp $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [confirm_totp(user: __ty::UserId, sealed_secret: &[u8], step: u64, now: __ty::Timestamp) -> Result<bool, __ty::StoreError> = confirm_totp(user, sealed_secret, step, now)] $($own)* } };
    ($head:tt [use_totp_step $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [use_totp_step(user: __ty::UserId, sealed_secret: &[u8], step: u64) -> Result<bool, __ty::StoreError> = use_totp_step(user, sealed_secret, step)] $($own)* } };
    ($head:tt [remove_totp $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [remove_totp(user: __ty::UserId) -> Result<bool, __ty::StoreError> = remove_totp(user)] $($own)* } };
    ($head:tt [replace_recovery_codes $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [replace_recovery_codes(user: __ty::UserId, hashes: Vec<__ty::SecretHash>, now: __ty::Timestamp) -> Result<bool, __ty::StoreError> = replace_recovery_codes(user, hashes, now)] $($own)* } };
    ($head:tt [use_recovery_code $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [use_recovery_code(user: __ty::UserId, hash: &__ty::SecretHash, now: __ty::Timestamp) -> Result<bool, __ty::StoreError> = use_recovery_code(user, hash, now)] $($own)* } };
    ($head:tt [add_passkey $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [add_passkey(passkey: __ty::PasskeyCredential) -> Result<bool, __ty::StoreError> = add_passkey(passkey)] $($own)* } };
    ($head:tt [passkeys $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [passkeys(user: __ty::UserId) -> Result<Vec<__ty::PasskeyCredential>, __ty::StoreError> = passkeys(user)] $($own)* } };
    ($head:tt [passkey $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [passkey(credential_id: &[u8]) -> Result<Option<__ty::PasskeyCredential>, __ty::StoreError> = passkey(credential_id)] $($own)* } };
    ($head:tt [use_passkey $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [use_passkey(credential_id: &[u8], passkey: String, sign_count: u32, at: __ty::Timestamp) -> Result<bool, __ty::StoreError> = use_passkey(credential_id, passkey, sign_count, at)] $($own)* } };
    ($head:tt [remove_passkey $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [remove_passkey(user: __ty::UserId, credential_id: &[u8]) -> Result<bool, __ty::StoreError> = remove_passkey(user, credential_id)] $($own)* } };
    ($head:tt [unused_recovery_codes $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [unused_recovery_codes(user: __ty::UserId) -> Result<Vec<__ty::SecretHash>, __ty::StoreError> = unused_recovery_codes(user)] $($own)* } };
    // SessionStore.
    ($head:tt [create_session $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [create_session(session: __ty::NewSession) -> Result<(), __ty::CreateSessionError> = create_session(session)] $($own)* } };
    ($head:tt [session $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [session(id: &__ty::SessionId) -> Result<Option<__ty::SessionRecord>, __ty::StoreError> = session(id)] $($own)* } };
    ($head:tt [sessions_of_user $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [sessions_of_user(user: __ty::UserId) -> Result<Vec<__ty::SessionRecord>, __ty::StoreError> = sessions_of_user(user)] $($own)* } };
    ($head:tt [purge_expired $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [purge_expired(now: __ty::Timestamp, idle_cutoff: __ty::Timestamp) -> Result<u64, __ty::StoreError> = purge_expired(now, idle_cutoff)] $($own)* } };
    ($head:tt [count_live_sessions $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [count_live_sessions(now: __ty::Timestamp, idle_cutoff: __ty::Timestamp) -> Result<u64, __ty::StoreError> = count_live_sessions(now, idle_cutoff)] $($own)* } };
    // RefreshStore.
    ($head:tt [create_family $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [create_family(family: __ty::NewRefreshFamily) -> Result<(), __ty::CreateSessionError> = batched] $($own)* } };
    ($head:tt [last_use_by_client $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [last_use_by_client(user: __ty::UserId) -> Result<Vec<(__ty::ClientId, __ty::Timestamp)>, __ty::StoreError> = last_use_by_client(user)] $($own)* } };
    ($head:tt [family $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [family(id: &__ty::SessionId) -> Result<Option<__ty::RefreshFamily>, __ty::StoreError> = family(id)] $($own)* } };
    ($head:tt [family_by_token $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [family_by_token(token: &__ty::SecretHash) -> Result<Option<__ty::RefreshFamily>, __ty::StoreError> = family_by_token(token)] $($own)* } };
    // OpaqueTokenStore.
    ($head:tt [store_opaque_token $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [store_opaque_token(token: __ty::OpaqueToken) -> Result<(), __ty::StoreError> = insert_opaque_token(token)] $($own)* } };
    ($head:tt [opaque_token $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [opaque_token(hash: &__ty::SecretHash) -> Result<Option<__ty::OpaqueToken>, __ty::StoreError> = opaque_token(hash)] $($own)* } };
    // AuthorizationCodeStore.
    ($head:tt [store_code $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [store_code(code: __ty::AuthorizationCode) -> Result<(), __ty::StoreError> = batched] $($own)* } };
    ($head:tt [redeem_code $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [redeem_code(hash: &__ty::SecretHash, at: __ty::Timestamp) -> Result<__ty::Redemption, __ty::StoreError> = batched] $($own)* } };
    // CodeExchangeStore.
    ($head:tt [exchange_code $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [exchange_code(hash: &__ty::SecretHash, at: __ty::Timestamp, plan: __ty::PlanFollowUp) -> Result<__ty::CodeExchanged, __ty::StoreError> = batched] $($own)* } };
    ($head:tt [push_request $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [push_request(request: __ty::PushedRequest) -> Result<(), __ty::StoreError> = push_request(request)] $($own)* } };
    ($head:tt [pushed_request $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [pushed_request(hash: &__ty::SecretHash, at: __ty::Timestamp) -> Result<Option<__ty::PushedRequest>, __ty::StoreError> = pushed_request(hash, at)] $($own)* } };
    ($head:tt [drop_pushed_request $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [drop_pushed_request(hash: &__ty::SecretHash) -> Result<bool, __ty::StoreError> = drop_pushed_request(hash)] $($own)* } };
    // CeremonyStore.
    ($head:tt [begin_ceremony $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [begin_ceremony(ceremony: __ty::Ceremony) -> Result<(), __ty::StoreError> = begin_ceremony(ceremony)] $($own)* } };
    ($head:tt [ceremony $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [ceremony(hash: &__ty::SecretHash, kind: __ty::CeremonyKind, at: __ty::Timestamp) -> Result<Option<__ty::Ceremony>, __ty::StoreError> = ceremony(hash, kind, at)] $($own)* } };
    ($head:tt [take_ceremony $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [take_ceremony(hash: &__ty::SecretHash, kind: __ty::CeremonyKind, at: __ty::Timestamp) -> Result<Option<__ty::Ceremony>, __ty::StoreError> = take_ceremony(hash, kind, at)] $($own)* } };
    // BackchannelStore.
    ($head:tt [record_session_client $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [record_session_client(record: __ty::SessionClient) -> Result<(), __ty::StoreError> = batched] $($own)* } };
    ($head:tt [queue_client_logouts $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [queue_client_logouts(user: __ty::UserId, client: __ty::ClientId, at: __ty::Timestamp) -> Result<u64, __ty::StoreError> = queue_client_logouts(user, client, at)] $($own)* } };
    ($head:tt [queue_logouts $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [queue_logouts(ended: &[__ty::SessionId], users: &[__ty::UserId], position: u64, at: __ty::Timestamp) -> Result<u64, __ty::StoreError> = queue_logouts(ended, users, position, at)] $($own)* } };
    ($head:tt [logout_position $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [logout_position() -> Result<u64, __ty::StoreError> = logout_position()] $($own)* } };
    ($head:tt [claim_logouts $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [claim_logouts(now: __ty::Timestamp, lease_until: __ty::Timestamp, limit: u32) -> Result<Vec<__ty::LogoutDelivery>, __ty::StoreError> = claim_logouts(now, lease_until, limit)] $($own)* } };
    ($head:tt [finish_logout $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [finish_logout(id: i64) -> Result<(), __ty::StoreError> = finish_logout(id)] $($own)* } };
    ($head:tt [retry_logout $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [retry_logout(id: i64, next: __ty::Timestamp) -> Result<(), __ty::StoreError> = retry_logout(id, next)] $($own)* } };
    ($head:tt [pending_logouts $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [pending_logouts() -> Result<u64, __ty::StoreError> = pending_logouts()] $($own)* } };
    // RevocationLog.
    ($head:tt [revocations_after $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [revocations_after(after: u64, limit: u32) -> Result<Vec<__ty::Revocation>, __ty::StoreError> = revocations_after(after, limit)] $($own)* } };
    // ClientStore.
    ($head:tt [client $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [client(id: &__ty::ClientId) -> Result<Option<__ty::Client>, __ty::StoreError> = client(id)] $($own)* } };
    ($head:tt [client_by_name $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [client_by_name(name: &__ty::ClientName) -> Result<Option<__ty::Client>, __ty::StoreError> = client_by_name(name)] $($own)* } };
    ($head:tt [list_clients $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [list_clients() -> Result<Vec<__ty::Client>, __ty::StoreError> = list_clients()] $($own)* } };
    // KeyStore.
    ($head:tt [signing_keys $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [signing_keys() -> Result<Vec<__ty::StoredKey>, __ty::StoreError> = signing_keys()] $($own)* } };
    ($head:tt [add_first_key $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [add_first_key(key: __ty::StoredKey) -> Result<bool, __ty::StoreError> = insert_first_key(&key)] $($own)* } };
    ($head:tt [replace_private_key $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [replace_private_key(kid: &str, private_key: Vec<u8>, sealed: bool) -> Result<(), __ty::StoreError> = replace_private_key(kid, private_key, sealed)] $($own)* } };
    ($head:tt [import_key $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [import_key(key: __ty::StoredKey) -> Result<(), __ty::StoreError> = insert_key(&key)] $($own)* } };
    // PresenceStore.
    ($head:tt [online_since $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [online_since(since: __ty::Timestamp) -> Result<__ty::Online, __ty::StoreError> = online_since(since)] $($own)* } };
    ($head:tt [purge_presence $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [purge_presence(before: __ty::Timestamp) -> Result<u64, __ty::StoreError> = purge_presence(before)] $($own)* } };
    // AuditStore.
    ($head:tt [events $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [events(query: &__ty::EventQuery) -> Result<Vec<__ty::Event>, __ty::StoreError> = events(query)] $($own)* } };
    ($head:tt [events_after $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [events_after(after: i64, limit: u32) -> Result<Vec<__ty::Event>, __ty::StoreError> = events_after(after, limit)] $($own)* } };
    ($head:tt [count_events $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [count_events(kind: __ty::EventKind, since: __ty::Timestamp, bucket: i64) -> Result<Vec<__ty::EventCount>, __ty::StoreError> = count_events(kind, since, bucket)] $($own)* } };
    ($head:tt [purge_events $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [purge_events(before: __ty::Timestamp) -> Result<u64, __ty::StoreError> = purge_events(before)] $($own)* } };
    ($head:tt [record_online_peak $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [record_online_peak(hour: __ty::Timestamp, online: __ty::Online) -> Result<(), __ty::StoreError> = record_online_peak(hour, online)] $($own)* } };
    ($head:tt [online_peaks $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [online_peaks(since: __ty::Timestamp) -> Result<Vec<__ty::OnlinePeak>, __ty::StoreError> = online_peaks(since)] $($own)* } };
    // Health.
    ($head:tt [ping $($rest:ident)*] $done:tt $($own:tt)*) => { $crate::__sql_store_forward! { @method $head [$($rest)*] $done
        [ping() -> Result<(), __ty::StoreError> = ping()] $($own)* } };

    ($head:tt [$other:ident $($rest:ident)*] $($tail:tt)*) => {
        ::core::compile_error!(::core::concat!(
            "sql_store!: `", ::core::stringify!($other),
            "` is not a forwardable method (see the table in tessera_store_sql::__sql_store_forward!)"
        ));
    };
}
