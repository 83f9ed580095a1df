//! What tessera's two SQL backends, SQLite (`tessera-store-sqlite`) and PostgreSQL
//! (`tessera-store-postgres`), share. Their schemas are identical on purpose, so the
//! SQL they both run is written once here ([`Sql`], with `$1`-style placeholders:
//! sqlx's SQLite driver binds `$N` to the N-th argument as PostgreSQL does; the few
//! details the dialects spell differently are `Sql`'s consts, from which
//! [`Statements`] builds the statements that need them); so are the column lists
//! ([`user_columns!`] and the others), the decoding of rows into the store's types
//! ([`rows`]), the mapping of sqlx's errors to typed
//! [`StoreError`](tessera_store::StoreError)s ([`store_error`]), and the store-trait
//! methods that do nothing but run one of those statements on the backend's pool
//! ([`sql_store!`]). Each backend keeps only what truly differs: transactions and
//! locking, upserts and batches, the revocation log's numbering, LISTEN/NOTIFY,
//! migrations.

mod batch;
mod batch_sql;
mod columns;
mod dialect;
mod error;
mod forward;
mod log;
mod queries;
pub mod rows;

pub use batch::Batches;
pub use batch_sql::{BatchConnection, OwnedRow, Statement, Value};
pub use dialect::Statements;
pub use error::store_error;
pub use log::import_sequences;
pub use queries::{LAST_USE_BY_CLIENT, Sql};

/// What [`sql_store!`]'s expansion names, reachable from the backend crates.
#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;

    /// The types of the forwarded methods' signatures, in scope in the expansion.
    pub mod forwarded {
        pub use tessera_core::{
            ClientId, ClientName, Roles, SecretHash, SessionId, Timestamp, UserId, Username,
        };
        pub use tessera_store::{
            AuthorizationCode, Ceremony, CeremonyKind, Client, CodeExchanged, Consent,
            CreateSessionError, CreateUserError, Event, EventCount, EventKind, EventQuery,
            LogoutDelivery, NewRefreshFamily, NewSession, NewUser, Online, OnlinePeak, OpaqueToken,
            PasskeyCredential, PlanFollowUp, Profile, PushedRequest, Redemption, RefreshFamily,
            ResetLink, Revocation, SessionClient, SessionRecord, StoreError, StoredKey,
            TotpCredential, User, UserCredentials,
        };
    }
}
