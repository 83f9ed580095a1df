//! What tessera's two SQL backends, SQLite (`tessera-store-sqlite`) and PostgreSQL
//! (`tessera-store-postgres`), share. Their schemas are identical on purpose, so the
//! SQL they both run is written once here, with `$1`-style placeholders (sqlx's
//! SQLite driver binds `$N` to the N-th argument as PostgreSQL does); so are the
//! column lists, the decoding of rows into the store's types, and the mapping of
//! sqlx's errors to [`tessera_store::StoreError`]. Each backend keeps only what truly
//! differs: transactions and locking, upserts and batches, LISTEN/NOTIFY,
//! migrations.

mod error;

pub use error::{is_unique_violation, store_error};
