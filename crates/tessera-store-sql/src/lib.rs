//! What tessera's two SQL backends, SQLite (`tessera-store-sqlite`) and PostgreSQL
//! (`tessera-store-postgres`), share. Their schemas are identical on purpose, so the
//! SQL they both run is written once here ([`Sql`], with `$1`-style placeholders:
//! sqlx's SQLite driver binds `$N` to the N-th argument as PostgreSQL does); so are
//! the column lists ([`user_columns!`] and the others), the decoding of rows into
//! the store's types ([`rows`]), and the mapping of sqlx's errors to typed
//! [`StoreError`](tessera_store::StoreError)s ([`store_error`]). Each backend keeps
//! only what truly differs: transactions and locking, upserts and batches, the
//! revocation log's numbering, LISTEN/NOTIFY, migrations.

mod columns;
mod error;
mod queries;
pub mod rows;

pub use error::store_error;
pub use queries::Sql;
