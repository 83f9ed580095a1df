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

use sqlx::{Pool, Postgres};
use tessera_core::{SecretHash, Timestamp};
use tessera_store::{
    AuthorizationCode, CodeExchanged, CreateSessionError, NewRefreshFamily, PlanFollowUp,
    Redemption, SessionClient, StoreError,
};
use tokio::sync::{mpsc, oneshot};

use crate::batch_sql::{self, BatchConnection, Statement};
use crate::{Sql, store_error};

/// The most requests one batch carries: 14 parameters a code, well inside both
/// databases' limits on a statement's parameters (32,766 and 65,535).
const MOST: usize = 128;

type Reply<R> = oneshot::Sender<R>;

enum Job {
    Code(AuthorizationCode, Reply<Result<(), StoreError>>),
    /// A code to spend, and what to write once it is spent first (an exchange).
    Redemption(
        (SecretHash, Timestamp, Option<PlanFollowUp>),
        Reply<Result<CodeExchanged, StoreError>>,
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
    redemptions:
        Pending<(SecretHash, Timestamp, Option<PlanFollowUp>), Result<CodeExchanged, StoreError>>,
    families: Pending<NewRefreshFamily, Result<(), CreateSessionError>>,
    session_clients: Pending<SessionClient, Result<(), StoreError>>,
}

/// What a batch's statements answered, held until the commit decides them.
struct Answers {
    codes: Vec<Result<(), StoreError>>,
    redemptions: Vec<Result<CodeExchanged, StoreError>>,
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

    /// Runs each kind's statement (none for a kind without requests) on `conn`;
    /// `lock_user` is the database's [`Sql::LOCK_USER`]. The follow-ups of the
    /// codes spent first join the session-client records and the families.
    async fn write<C: BatchConnection>(&mut self, conn: &mut C, lock_user: &str) -> Answers {
        let codes = std::mem::take(&mut self.codes.0);
        let (presented, plans): (Vec<_>, Vec<_>) = std::mem::take(&mut self.redemptions.0)
            .into_iter()
            .map(|(hash, at, plan)| ((hash, at), plan))
            .unzip();
        let mut families = std::mem::take(&mut self.families.0);
        let mut session_clients = std::mem::take(&mut self.session_clients.0);
        let codes = if codes.is_empty() {
            Vec::new()
        } else {
            batch_sql::insert_codes(conn, codes).await
        };
        // After the codes: a code written and spent in one batch is found.
        let redemptions = if presented.is_empty() {
            Vec::new()
        } else {
            batch_sql::redeem_codes(conn, presented).await
        };
        // Which redemption each planned record and family answers to.
        let (own_families, own_records) = (families.len(), session_clients.len());
        let (mut planned_families, mut record_of) = (Vec::new(), Vec::new());
        for (at, (redeemed, plan)) in redemptions.iter().zip(plans).enumerate() {
            if let (Ok(Redemption::First(code)), Some(plan)) = (redeemed, plan) {
                let follow_up = plan(code);
                if let Some(record) = follow_up.session_client {
                    session_clients.push(record);
                    record_of.push(at);
                }
                planned_families.extend(follow_up.family.map(|family| (at, family)));
            }
        }
        let mut redemptions: Vec<Result<CodeExchanged, StoreError>> = redemptions
            .into_iter()
            .map(|redeemed| {
                redeemed.map(|redemption| CodeExchanged {
                    redemption,
                    family: None,
                })
            })
            .collect();
        // Recorded before the family, as the exchange did one after the other: an
        // exchange whose record failed is that error, and starts no family.
        let mut session_clients = if session_clients.is_empty() {
            Vec::new()
        } else {
            batch_sql::record_session_clients(conn, session_clients).await
        };
        for (answer, at) in session_clients.drain(own_records..).zip(record_of) {
            if let Err(e) = answer {
                redemptions[at] = Err(e);
            }
        }
        let mut family_of = Vec::new();
        for (at, family) in planned_families {
            if redemptions[at].is_ok() {
                families.push(family);
                family_of.push(at);
            }
        }
        let mut families = if families.is_empty() {
            Vec::new()
        } else {
            batch_sql::create_families(conn, families, lock_user).await
        };
        for (answer, at) in families.drain(own_families..).zip(family_of) {
            if let Ok(exchanged) = &mut redemptions[at] {
                exchanged.family = Some(answer);
            }
        }
        Answers {
            codes,
            redemptions,
            families,
            session_clients,
        }
    }

    /// Whether it writes more than one statement: several kinds of request, or a
    /// code whose follow-up must be written with it.
    fn writes_more_than_one(&self) -> bool {
        let kinds = [
            self.codes.0.is_empty(),
            self.redemptions.0.is_empty(),
            self.families.0.is_empty(),
            self.session_clients.0.is_empty(),
        ]
        .iter()
        .filter(|empty| !**empty)
        .count();
        kinds > 1 || self.redemptions.0.iter().any(|(_, _, plan)| plan.is_some())
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
async fn write_sqlite<C: BatchConnection>(conn: &mut C, mut batch: Batch) {
    let run = |text: &str| Statement {
        text: text.to_owned(),
        values: Vec::new(),
    };
    if !batch.writes_more_than_one() {
        // One statement that writes is a transaction of its own.
        let answers = batch.write(conn, sqlx::Sqlite::LOCK_USER).await;
        batch.answer(answers);
        return conn.committed();
    }
    if let Err(e) = conn.rows(run("BEGIN IMMEDIATE")).await {
        return batch.fail(e);
    }
    let answers = batch.write(conn, sqlx::Sqlite::LOCK_USER).await;
    match conn.rows(run("COMMIT")).await {
        Ok(_) => {
            batch.answer(answers);
            conn.committed();
        }
        Err(e) => {
            // Leaves the connection clean; nothing of the batch is kept.
            let _ = conn.rows(run("ROLLBACK")).await;
            batch.fail(e);
        }
    }
}

/// PostgreSQL: each statement its own commit.
async fn write_postgres(pool: &Pool<Postgres>, mut batch: Batch) {
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(e) => return batch.fail(store_error(e)),
    };
    let answers = batch.write(&mut *conn, Postgres::LOCK_USER).await;
    batch.answer(answers);
}

/// The writer of one backend's pool. Dropping it (with every clone of the store)
/// ends its task once it has answered what it holds.
pub struct Batches {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Batches {
    /// Starts the writer of a SQLite database on a thread of its own, with its own
    /// connection `conn` (see `batch_sql`): every statement a direct call, and the
    /// thread woken by the first request of a batch straight away (on the server's
    /// runtime it had waited in line behind the requests' tasks).
    pub fn sqlite<C: BatchConnection + Send + 'static>(mut conn: C) -> std::io::Result<Self> {
        let (jobs, mut waiting) = mpsc::unbounded_channel::<Job>();
        // Drives the statements' futures, which are ready at once.
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        std::thread::Builder::new()
            .name("tessera-store-writer".into())
            .spawn(move || {
                let mut taken = Vec::with_capacity(MOST);
                while let Some(first) = waiting.blocking_recv() {
                    taken.push(first);
                    while taken.len() < MOST {
                        match waiting.try_recv() {
                            Ok(job) => taken.push(job),
                            Err(_) => break,
                        }
                    }
                    let size = taken.len();
                    let started = std::time::Instant::now();
                    runtime.block_on(write_sqlite(&mut conn, Batch::take(&mut taken)));
                    record(size, started);
                }
            })?;
        Ok(Self { jobs })
    }

    /// Starts the writer for a PostgreSQL pool on the current Tokio runtime (its
    /// connections belong to the runtime that opened them).
    pub fn postgres(pool: Pool<Postgres>) -> Self {
        let (jobs, mut waiting) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut taken = Vec::with_capacity(MOST);
            while waiting.recv_many(&mut taken, MOST).await > 0 {
                let size = taken.len();
                let started = std::time::Instant::now();
                write_postgres(&pool, Batch::take(&mut taken)).await;
                record(size, started);
            }
        });
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
        self.submit(|reply| Job::Redemption((*hash, at, None), reply))
            .await?
            .map(|exchanged| exchanged.redemption)
    }

    /// `CodeExchangeStore::exchange_code`, batched: the follow-up in the batch
    /// that spends the code.
    pub async fn exchange_code(
        &self,
        hash: &SecretHash,
        at: Timestamp,
        plan: PlanFollowUp,
    ) -> Result<CodeExchanged, StoreError> {
        self.submit(|reply| Job::Redemption((*hash, at, Some(plan)), reply))
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

/// A batch's size and time, in the metrics.
fn record(size: usize, started: std::time::Instant) {
    metrics::histogram!("tessera_store_batch_requests").record(size as f64);
    metrics::histogram!("tessera_store_batch_seconds").record(started.elapsed().as_secs_f64());
}
