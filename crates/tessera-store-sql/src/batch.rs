//! Group commit for the writes of the code flow. Each sign-in through an app writes
//! its authorization code, then spends it, then starts a refresh family: three
//! commits, each a WAL fsync on SQLite under `synchronous = FULL`, each a round trip
//! through sqlx's worker thread, and on SQLite each waiting for the one write lock
//! in the busy handler's sleeps when many come at once. Measured, that put the code
//! exchange at 0.01 of hello world.
//!
//! So one task, the writer, takes everything waiting (and the record of which app
//! got tokens from which session, for back-channel logout) and writes each kind in
//! one statement: on SQLite the three statements in one transaction (one fsync for
//! however many requests arrived while the previous one ran, and no contention for
//! the write lock among them); on PostgreSQL one after the other, each its own
//! commit (an error there would abort a shared transaction, and its commits do not
//! wait for each other). A lone request goes straight through, so nothing waits on
//! a timer; under load the batches grow by themselves. Each request still gets its
//! own answer (a taken code hash, a disabled user), as a statement per request would
//! have given; an error of a whole statement or commit (the database down) is every
//! one of its requests' error.

use sqlx::{Pool, Postgres, Sqlite, SqliteConnection};
use tessera_core::{SecretHash, Timestamp};
use tessera_store::{
    AuthorizationCode, CreateSessionError, NewRefreshFamily, Redemption, SessionClient, StoreError,
};
use tokio::sync::{mpsc, oneshot};

use crate::{Sql, store_error};

/// The most requests one batch carries: 14 parameters a code, well inside both
/// databases' limits on a statement's parameters (32,766 and 65,535).
const MOST: usize = 128;

type Reply<R> = oneshot::Sender<R>;

enum Job {
    Code(AuthorizationCode, Reply<Result<(), StoreError>>),
    Redemption(
        (SecretHash, Timestamp),
        Reply<Result<Redemption, StoreError>>,
    ),
    Family(NewRefreshFamily, Reply<Result<(), CreateSessionError>>),
    SessionClient(SessionClient, Reply<Result<(), StoreError>>),
}

/// Requests of one kind: what to write and whom to answer, in the same order.
type Pending<J, R> = (Vec<J>, Vec<Reply<R>>);

/// One batch, by kind.
#[derive(Default)]
struct Batch {
    codes: Pending<AuthorizationCode, Result<(), StoreError>>,
    redemptions: Pending<(SecretHash, Timestamp), Result<Redemption, StoreError>>,
    families: Pending<NewRefreshFamily, Result<(), CreateSessionError>>,
    session_clients: Pending<SessionClient, Result<(), StoreError>>,
}

/// What a batch's statements answered, held until the commit decides them.
struct Answers {
    codes: Vec<Result<(), StoreError>>,
    redemptions: Vec<Result<Redemption, StoreError>>,
    families: Vec<Result<(), CreateSessionError>>,
    session_clients: Vec<Result<(), StoreError>>,
}

impl Batch {
    fn take(jobs: &mut Vec<Job>) -> Self {
        let mut batch = Self::default();
        for job in jobs.drain(..) {
            match job {
                Job::Code(code, reply) => {
                    batch.codes.0.push(code);
                    batch.codes.1.push(reply);
                }
                Job::Redemption(presented, reply) => {
                    batch.redemptions.0.push(presented);
                    batch.redemptions.1.push(reply);
                }
                Job::Family(family, reply) => {
                    batch.families.0.push(family);
                    batch.families.1.push(reply);
                }
                Job::SessionClient(record, reply) => {
                    batch.session_clients.0.push(record);
                    batch.session_clients.1.push(reply);
                }
            }
        }
        batch
    }

    /// Runs each kind's statement (none for a kind without requests) on `conn`.
    async fn write<DB: Sql>(&mut self, conn: &mut DB::Connection) -> Answers
    where
        for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
        DB::Arguments: sqlx::IntoArguments<DB>,
        DB::Row: crate::rows::Columns,
        for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        for<'q> bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        for<'q> Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        for<'q> Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        for<'q> Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        for<'q> Option<Vec<u8>>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    {
        let codes = std::mem::take(&mut self.codes.0);
        let redemptions = std::mem::take(&mut self.redemptions.0);
        let families = std::mem::take(&mut self.families.0);
        let session_clients = std::mem::take(&mut self.session_clients.0);
        Answers {
            codes: if codes.is_empty() {
                Vec::new()
            } else {
                DB::insert_codes(conn, codes).await
            },
            // After the codes: a code written and spent in one batch is found.
            redemptions: if redemptions.is_empty() {
                Vec::new()
            } else {
                DB::redeem_codes(conn, redemptions).await
            },
            families: if families.is_empty() {
                Vec::new()
            } else {
                DB::create_families(conn, families).await
            },
            session_clients: if session_clients.is_empty() {
                Vec::new()
            } else {
                DB::record_session_clients(conn, session_clients).await
            },
        }
    }

    /// How many kinds of request it holds.
    fn kinds(&self) -> usize {
        [
            self.codes.0.is_empty(),
            self.redemptions.0.is_empty(),
            self.families.0.is_empty(),
            self.session_clients.0.is_empty(),
        ]
        .iter()
        .filter(|empty| !**empty)
        .count()
    }

    fn answer(self, answers: Answers) {
        // An asker may have gone (its request was dropped): nothing to do for it.
        for (answer, reply) in answers.codes.into_iter().zip(self.codes.1) {
            let _ = reply.send(answer);
        }
        for (answer, reply) in answers.redemptions.into_iter().zip(self.redemptions.1) {
            let _ = reply.send(answer);
        }
        for (answer, reply) in answers.families.into_iter().zip(self.families.1) {
            let _ = reply.send(answer);
        }
        for (answer, reply) in answers
            .session_clients
            .into_iter()
            .zip(self.session_clients.1)
        {
            let _ = reply.send(answer);
        }
    }

    /// Every request's answer is `error`.
    fn fail(self, error: StoreError) {
        for reply in self.codes.1 {
            let _ = reply.send(Err(error.clone()));
        }
        for reply in self.redemptions.1 {
            let _ = reply.send(Err(error.clone()));
        }
        for reply in self.families.1 {
            let _ = reply.send(Err(CreateSessionError::Store(error.clone())));
        }
        for reply in self.session_clients.1 {
            let _ = reply.send(Err(error.clone()));
        }
    }
}

/// SQLite: the batch in one `BEGIN IMMEDIATE` transaction, answered once committed.
async fn write_sqlite(pool: &Pool<Sqlite>, mut batch: Batch) {
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(e) => return batch.fail(store_error(e)),
    };
    let conn: &mut SqliteConnection = &mut conn;
    if batch.kinds() == 1 {
        // One statement that writes is a transaction of its own: two round trips
        // to sqlx's worker fewer, the same single commit.
        let answers = batch.write::<Sqlite>(conn).await;
        return batch.answer(answers);
    }
    if let Err(e) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
        return batch.fail(store_error(e));
    }
    let answers = batch.write::<Sqlite>(conn).await;
    match sqlx::query("COMMIT").execute(&mut *conn).await {
        Ok(_) => batch.answer(answers),
        Err(e) => {
            // Leaves the connection clean for the pool; nothing of the batch is kept.
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            batch.fail(store_error(e));
        }
    }
}

/// PostgreSQL: each statement its own commit.
async fn write_postgres(pool: &Pool<Postgres>, mut batch: Batch) {
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(e) => return batch.fail(store_error(e)),
    };
    let answers = batch.write::<Postgres>(conn.as_mut()).await;
    batch.answer(answers);
}

/// The writer of one backend's pool. Dropping it (with every clone of the store)
/// ends its task once it has answered what it holds.
pub struct Batches {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Batches {
    /// Starts the writer for a SQLite pool on the current Tokio runtime.
    pub fn sqlite(pool: Pool<Sqlite>) -> Self {
        Self::start(
            move |batch| {
                let pool = pool.clone();
                async move { write_sqlite(&pool, batch).await }
            },
            true,
        )
    }

    /// Starts the writer for a PostgreSQL pool on the current Tokio runtime.
    pub fn postgres(pool: Pool<Postgres>) -> Self {
        Self::start(
            move |batch| {
                let pool = pool.clone();
                async move { write_postgres(&pool, batch).await }
            },
            false,
        )
    }

    /// Runs the writer on a thread of its own when `own_thread` (SQLite): its every
    /// step is a hand-off to sqlx's worker thread and back, and on the server's
    /// runtime each answer waited in line behind the requests' tasks, which
    /// stretched a batch to several times its work. Its own thread is woken
    /// straight away. (PostgreSQL's connections belong to the runtime that opened
    /// them: its writer stays there.)
    fn start<F, Fut>(write: F, own_thread: bool) -> Self
    where
        F: Fn(Batch) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let (jobs, mut waiting) = mpsc::unbounded_channel();
        let writer = async move {
            let mut taken = Vec::with_capacity(MOST);
            while waiting.recv_many(&mut taken, MOST).await > 0 {
                let size = taken.len();
                let started = std::time::Instant::now();
                write(Batch::take(&mut taken)).await;
                metrics::histogram!("tessera_store_batch_requests").record(size as f64);
                metrics::histogram!("tessera_store_batch_seconds")
                    .record(started.elapsed().as_secs_f64());
            }
        };
        let runtime = own_thread
            .then(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()
            })
            .flatten();
        match runtime {
            // Should the thread not start, the channel closes and every write is
            // refused as unavailable: said, not hung.
            Some(runtime) => drop(
                std::thread::Builder::new()
                    .name("tessera-store-writer".into())
                    .spawn(move || runtime.block_on(writer)),
            ),
            None => drop(tokio::spawn(writer)),
        }
        Self { jobs }
    }

    async fn submit<R>(&self, job: impl FnOnce(Reply<R>) -> Job) -> Result<R, StoreError> {
        let gone = || StoreError::Unavailable("the store's writer has stopped".into());
        let (reply, answer) = oneshot::channel();
        self.jobs.send(job(reply)).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())
    }

    /// `AuthorizationCodeStore::store_code`, batched.
    pub async fn store_code(&self, code: AuthorizationCode) -> Result<(), StoreError> {
        self.submit(|reply| Job::Code(code, reply)).await?
    }

    /// `AuthorizationCodeStore::redeem_code`, batched.
    pub async fn redeem_code(
        &self,
        hash: &SecretHash,
        at: Timestamp,
    ) -> Result<Redemption, StoreError> {
        self.submit(|reply| Job::Redemption((*hash, at), reply))
            .await?
    }

    /// `BackchannelStore::record_session_client`, batched.
    pub async fn record_session_client(&self, record: SessionClient) -> Result<(), StoreError> {
        self.submit(|reply| Job::SessionClient(record, reply))
            .await?
    }

    /// `RefreshStore::create_family`, batched.
    pub async fn create_family(&self, family: NewRefreshFamily) -> Result<(), CreateSessionError> {
        self.submit(|reply| Job::Family(family, reply)).await?
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
