//! One value that is every store, each kind of state held by the backend chosen
//! for it: a PostgreSQL database for accounts and the log, Redis for sessions, say.
//!
//! It implements every trait by delegation, so the conformance suite runs unchanged
//! against a split deployment, and services take their stores from one place. The
//! delegation is not written out: each trait is declared through [`store_trait!`],
//! which also implements it for the set, forwarding every method to the set's field
//! for that kind of state. The few methods that do more in a set (`#[by_hand]`) are
//! the functions at the end of this file.

use std::sync::Arc;

use tessera_core::Timestamp;

use crate::{
    AccountStore, AuditStore, AuthorizationCodeStore, BackchannelStore, CeremonyStore, ClientStore,
    CodeExchangeStore, Health, KeyStore, OpaqueTokenStore, PresenceStore, RefreshStore,
    RevocationLog, SessionStore, StoreError,
};

/// Declares a store trait (`#[async_trait]`, `Send + Sync`) and implements it for
/// [`StoreSet`] from the same declaration: `pub trait SessionStore: Send + Sync, in
/// StoreSet.sessions { … }` forwards each method to `self.sessions`. A method marked
/// `#[by_hand]` (after its docs) calls the function of its name in this module
/// instead. Methods take `&self` and named arguments; `async` or not.
macro_rules! store_trait {
    (
        $(#[$attr:meta])*
        pub trait $name:ident: Send + Sync, in StoreSet.$field:ident {
            $($items:tt)*
        }
    ) => {
        store_trait!(@items [$(#[$attr])*] $name $field [] [] $($items)*);
    };
    // Every method read: the trait, and the set's implementation of it.
    (@items [$($attr:tt)*] $name:ident $field:ident [$($declared:tt)*] [$($forwarded:tt)*]) => {
        $($attr)*
        #[async_trait::async_trait]
        pub trait $name: Send + Sync {
            $($declared)*
        }

        #[async_trait::async_trait]
        impl $name for $crate::StoreSet {
            $($forwarded)*
        }
    };
    // A method the set implements in `set.rs`.
    (@items $attr:tt $name:ident $field:ident [$($declared:tt)*] [$($forwarded:tt)*]
        $(#[doc = $doc:literal])*
        #[by_hand]
        async fn $method:ident(&$self:ident $(, $arg:ident: $type:ty)* $(,)?) -> $return:ty;
        $($rest:tt)*
    ) => {
        store_trait!(@items $attr $name $field
            [$($declared)* $(#[doc = $doc])* async fn $method(&$self $(, $arg: $type)*) -> $return;]
            [$($forwarded)*
                async fn $method(&$self $(, $arg: $type)*) -> $return {
                    $crate::set::$method($self $(, $arg)*).await
                }
            ]
            $($rest)*);
    };
    // A required method.
    (@items $attr:tt $name:ident $field:ident [$($declared:tt)*] [$($forwarded:tt)*]
        $(#[$meta:meta])*
        async fn $method:ident(&$self:ident $(, $arg:ident: $type:ty)* $(,)?) -> $return:ty;
        $($rest:tt)*
    ) => {
        store_trait!(@items $attr $name $field
            [$($declared)* $(#[$meta])* async fn $method(&$self $(, $arg: $type)*) -> $return;]
            [$($forwarded)*
                async fn $method(&$self $(, $arg: $type)*) -> $return {
                    $self.$field.$method($($arg),*).await
                }
            ]
            $($rest)*);
    };
    // A provided method: the set forwards it all the same, since the backend may
    // implement it better.
    (@items $attr:tt $name:ident $field:ident [$($declared:tt)*] [$($forwarded:tt)*]
        $(#[$meta:meta])*
        async fn $method:ident(&$self:ident $(, $arg:ident: $type:ty)* $(,)?) -> $return:ty
        $body:block
        $($rest:tt)*
    ) => {
        store_trait!(@items $attr $name $field
            [$($declared)* $(#[$meta])* async fn $method(&$self $(, $arg: $type)*) -> $return $body]
            [$($forwarded)*
                async fn $method(&$self $(, $arg: $type)*) -> $return {
                    $self.$field.$method($($arg),*).await
                }
            ]
            $($rest)*);
    };
    // A method that is not `async`.
    (@items $attr:tt $name:ident $field:ident [$($declared:tt)*] [$($forwarded:tt)*]
        $(#[$meta:meta])*
        fn $method:ident(&$self:ident $(, $arg:ident: $type:ty)* $(,)?) -> $return:ty;
        $($rest:tt)*
    ) => {
        store_trait!(@items $attr $name $field
            [$($declared)* $(#[$meta])* fn $method(&$self $(, $arg: $type)*) -> $return;]
            [$($forwarded)*
                fn $method(&$self $(, $arg: $type)*) -> $return {
                    $self.$field.$method($($arg),*)
                }
            ]
            $($rest)*);
    };
}

#[derive(Clone)]
pub struct StoreSet {
    pub accounts: Arc<dyn AccountStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub refresh: Arc<dyn RefreshStore>,
    pub opaque: Arc<dyn OpaqueTokenStore>,
    pub codes: Arc<dyn AuthorizationCodeStore>,
    pub ceremonies: Arc<dyn CeremonyStore>,
    /// The code exchange's writes; with codes elsewhere than the database, a
    /// [`SeparateCodeExchange`](crate::SeparateCodeExchange) of the three stores.
    pub exchange: Arc<dyn CodeExchangeStore>,
    pub backchannel: Arc<dyn BackchannelStore>,
    pub log: Arc<dyn RevocationLog>,
    pub clients: Arc<dyn ClientStore>,
    pub keys: Arc<dyn KeyStore>,
    pub presence: Arc<dyn PresenceStore>,
    pub audit: Arc<dyn AuditStore>,
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
            + AuthorizationCodeStore
            + CeremonyStore
            + CodeExchangeStore
            + BackchannelStore
            + RevocationLog
            + ClientStore
            + KeyStore
            + PresenceStore
            + AuditStore
            + Health
            + 'static,
    {
        Self {
            accounts: store.clone(),
            sessions: store.clone(),
            refresh: store.clone(),
            opaque: store.clone(),
            codes: store.clone(),
            ceremonies: store.clone(),
            exchange: store.clone(),
            backchannel: store.clone(),
            log: store.clone(),
            clients: store.clone(),
            keys: store.clone(),
            presence: store.clone(),
            audit: store.clone(),
            health: vec![store],
            also_purge: Vec::new(),
        }
    }
}

/// Purges the sessions' store, then every other store that keeps expiring state.
pub(crate) async fn purge_expired(
    set: &StoreSet,
    now: Timestamp,
    idle_cutoff: Timestamp,
) -> Result<u64, StoreError> {
    let purged = set.sessions.purge_expired(now, idle_cutoff).await?;
    for store in &set.also_purge {
        store.purge_expired(now, idle_cutoff).await?;
    }
    Ok(purged)
}

/// Every backend in use must answer.
pub(crate) async fn ping(set: &StoreSet) -> Result<(), StoreError> {
    for store in &set.health {
        store.ping().await?;
    }
    Ok(())
}
