//! Group commit for the writes of the code flow. Each sign-in through an app writes
//! its authorization code, then spends it, then starts a refresh family: three
//! commits, each a WAL fsync on SQLite under `synchronous = FULL`, each a round trip
//! through sqlx's worker thread, and on SQLite each waiting for the one write lock
//! in the busy handler's sleeps when many come at once. Measured, that put the code
//! exchange at 0.01 of hello world.
//!
//! So each of the three has one task that takes everything waiting for it and
//! writes it in one statement: one commit (one fsync) and one round trip for however
//! many requests arrived while the previous statement ran, and no contention for
//! the write lock among them. A lone request goes straight through, so nothing
//! waits on a timer; under load the batches grow by themselves. Each request still
//! gets its own answer (a taken code hash, a disabled user), as a statement per
//! request would have given; an error of the whole statement (the database down)
//! is every request's error.

use std::future::Future;

use sqlx::{Pool, Postgres, Sqlite};
use tessera_core::{SecretHash, Timestamp};
use tessera_store::{
    AuthorizationCode, CreateSessionError, NewRefreshFamily, Redemption, StoreError,
};
use tokio::sync::{mpsc, oneshot};

use crate::Sql;

/// The most requests one statement carries: 14 parameters a code, well inside
/// both databases' limits on a statement's parameters (32,766 and 65,535).
const MOST: usize = 128;

/// One task running `run` on everything submitted since its last run.
struct Batcher<J, R> {
    jobs: mpsc::UnboundedSender<(J, oneshot::Sender<R>)>,
}

impl<J: Send + 'static, R: Send + 'static> Batcher<J, R> {
    /// `run` answers its jobs in their order, one answer each.
    fn start<F, Fut>(run: F) -> Self
    where
        F: Fn(Vec<J>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<R>> + Send,
    {
        let (jobs, mut waiting) = mpsc::unbounded_channel::<(J, oneshot::Sender<R>)>();
        tokio::spawn(async move {
            let mut taken = Vec::with_capacity(MOST);
            while waiting.recv_many(&mut taken, MOST).await > 0 {
                let (inputs, replies): (Vec<J>, Vec<oneshot::Sender<R>>) = taken.drain(..).unzip();
                for (answer, reply) in run(inputs).await.into_iter().zip(replies) {
                    // The asker may have gone (its request was dropped): nothing to do.
                    let _ = reply.send(answer);
                }
            }
        });
        Self { jobs }
    }

    async fn submit(&self, job: J) -> Result<R, StoreError> {
        let gone = || StoreError::Unavailable("the store's writer has stopped".into());
        let (reply, answer) = oneshot::channel();
        self.jobs.send((job, reply)).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())
    }
}

/// The batched writes of one backend's pool. Dropping it (with every clone of the
/// store) ends its tasks once they have answered what they hold.
pub struct Batches {
    codes: Batcher<AuthorizationCode, Result<(), StoreError>>,
    redemptions: Batcher<(SecretHash, Timestamp), Result<Redemption, StoreError>>,
    families: Batcher<NewRefreshFamily, Result<(), CreateSessionError>>,
}

/// The three batchers on `$pool` of database `$DB`: written for each database
/// rather than for any `Sql`, since only on a concrete database does the compiler
/// know the statements' futures to be `Send`.
macro_rules! start_batches {
    ($DB:ty, $pool:expr) => {{
        let pool = $pool;
        let codes = {
            let pool = pool.clone();
            Batcher::start(move |codes| {
                let pool = pool.clone();
                async move { <$DB as Sql>::insert_codes(&pool, codes).await }
            })
        };
        let redemptions = {
            let pool = pool.clone();
            Batcher::start(move |hashes| {
                let pool = pool.clone();
                async move { <$DB as Sql>::redeem_codes(&pool, hashes).await }
            })
        };
        let families = Batcher::start(move |families| {
            let pool = pool.clone();
            async move { <$DB as Sql>::create_families(&pool, families).await }
        });
        Batches {
            codes,
            redemptions,
            families,
        }
    }};
}

impl Batches {
    /// Starts the writer tasks for a SQLite pool on the current Tokio runtime.
    pub fn sqlite(pool: Pool<Sqlite>) -> Self {
        start_batches!(Sqlite, pool)
    }

    /// Starts the writer tasks for a PostgreSQL pool on the current Tokio runtime.
    pub fn postgres(pool: Pool<Postgres>) -> Self {
        start_batches!(Postgres, pool)
    }

    /// `AuthorizationCodeStore::store_code`, batched.
    pub async fn store_code(&self, code: AuthorizationCode) -> Result<(), StoreError> {
        self.codes.submit(code).await?
    }

    /// `AuthorizationCodeStore::redeem_code`, batched.
    pub async fn redeem_code(
        &self,
        hash: &SecretHash,
        at: Timestamp,
    ) -> Result<Redemption, StoreError> {
        self.redemptions.submit((*hash, at)).await?
    }

    /// `RefreshStore::create_family`, batched.
    pub async fn create_family(&self, family: NewRefreshFamily) -> Result<(), CreateSessionError> {
        self.families.submit(family).await?
    }
}

/// `($first, …), (…), …`: `rows` rows of `columns` placeholders, numbered on from
/// `first`. Only numbers: nothing a request sent enters a statement's text, which
/// is why the statements built from these are `AssertSqlSafe`.
pub(crate) fn value_rows(rows: usize, columns: usize, first: usize) -> String {
    (0..rows)
        .map(|row| {
            let numbers: Vec<String> = (0..columns)
                .map(|column| format!("${}", first + row * columns + column))
                .collect();
            format!("({})", numbers.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `$first, …`: `count` placeholders.
pub(crate) fn placeholders(count: usize, first: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_rows_then_columns() {
        assert_eq!(value_rows(2, 3, 1), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(placeholders(3, 2), "$2, $3, $4");
    }
}
