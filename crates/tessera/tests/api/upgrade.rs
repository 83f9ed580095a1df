//! A rolling upgrade, seen from the instance not upgraded yet: this tessera is
//! version N, and the next release's first instance has migrated the store to
//! N+1 under it, as that release's migration would (a table and a column added,
//! the schema version moved on). This binary goes on serving it (sign-in,
//! registration writing a row with the new column, its CLI), restarts on it, and
//! never moves the version back. When a later migration takes away what version N
//! uses, the store says so (`oldest_compatible`), and version N refuses to start,
//! naming the version it needs, and leaves the data as it was. On SQLite and on
//! PostgreSQL; the rule the migrations follow is tessera-store-sql/tests/upgrades.rs.

use serde_json::json;
use sqlx::Connection;
use tessera_testkit::Postgres;

use crate::harness::{PASSWORD, REGISTRATION_OPEN, TestServer};

/// The store under test, reached as the next release's migration would reach it.
enum Schema {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Schema {
    async fn version(&self) -> i64 {
        match self {
            Schema::Sqlite(path) => {
                let mut c =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                        .await
                        .unwrap();
                sqlx::query_scalar("PRAGMA user_version")
                    .fetch_one(&mut c)
                    .await
                    .unwrap()
            }
            Schema::Postgres(url) => {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query_scalar("SELECT version FROM tessera_schema")
                    .fetch_one(&mut c)
                    .await
                    .unwrap()
            }
        }
    }

    /// The next release's additive migration: what version N never heard of.
    async fn migrate_ahead(&self) {
        let script = match self {
            Schema::Sqlite(_) => {
                "CREATE TABLE next_release_notes (id TEXT PRIMARY KEY, body TEXT NOT NULL); \
                 ALTER TABLE users ADD COLUMN next_release_flag INTEGER NOT NULL DEFAULT 0;"
            }
            Schema::Postgres(_) => {
                "CREATE TABLE next_release_notes (id TEXT PRIMARY KEY, body TEXT NOT NULL); \
                 ALTER TABLE users ADD COLUMN next_release_flag BOOLEAN NOT NULL DEFAULT FALSE;"
            }
        };
        let next = self.version().await + 1;
        self.execute(&format!("{script} {}", self.set_version(next)))
            .await;
    }

    fn set_version(&self, version: i64) -> String {
        match self {
            Schema::Sqlite(_) => format!("PRAGMA user_version = {version};"),
            Schema::Postgres(_) => format!("UPDATE tessera_schema SET version = {version};"),
        }
    }

    /// A later release's contracting migration says that versions before
    /// `oldest` can no longer run on the schema.
    async fn contract_to(&self, oldest: i64) {
        let table = match self {
            Schema::Sqlite(_) => "schema_compatibility",
            Schema::Postgres(_) => "tessera_schema",
        };
        self.execute(&format!("UPDATE {table} SET oldest_compatible = {oldest};"))
            .await;
    }

    async fn execute(&self, script: &str) {
        let script = sqlx::AssertSqlSafe(script.to_owned());
        match self {
            Schema::Sqlite(path) => {
                let mut c =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                        .await
                        .unwrap();
                sqlx::raw_sql(script).execute(&mut c).await.unwrap();
            }
            Schema::Postgres(url) => {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::raw_sql(script).execute(&mut c).await.unwrap();
            }
        }
    }
}

async fn version_n_runs_beside_n_plus_one(mut server: TestServer, schema: Schema) {
    server.add_user("alice", &[]);
    let known = schema.version().await;
    server.terminate();

    schema.migrate_ahead().await;
    server.restart();
    let ahead = known + 1;
    // Sign-in reads the users the next release added a column to...
    assert_eq!(server.try_login("alice", PASSWORD).await.status(), 200);
    // ...registration writes one without naming it...
    let registered = server
        .post_json(
            "/v1/users",
            json!({"username": "bob", "password": "another long passphrase"}),
        )
        .await;
    assert_eq!(registered.status(), 201);
    assert_eq!(
        server
            .try_login("bob", "another long passphrase")
            .await
            .status(),
        200
    );
    // ...and so does the CLI, while the server runs.
    server.add_user("carol", &[]);
    assert_eq!(schema.version().await, ahead, "the version moved back");

    // A restart of version N mid-upgrade (a crash, a rescheduled pod) comes back.
    server.restart();
    assert_eq!(server.try_login("carol", PASSWORD).await.status(), 200);
    server.terminate();

    // A later release took away what version N uses: N refuses, and says why.
    schema.contract_to(ahead).await;
    let (status, stderr) = server.refused_start();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "has schema version {ahead}, newer than this tessera knows"
        )) && stderr.contains(&format!("schema version {ahead} or later")),
        "{stderr}"
    );
    let cli = server.cli(&["user", "list"], "");
    assert!(!cli.status.success());
    // Nothing was touched: the newer tessera finds its store as it left it.
    assert_eq!(schema.version().await, ahead);
    schema.contract_to(known).await;
    server.restart();
    for name in ["alice", "carol"] {
        assert_eq!(server.try_login(name, PASSWORD).await.status(), 200);
    }
}

#[tokio::test]
async fn on_sqlite_version_n_runs_on_the_next_releases_schema_until_it_contracts() {
    let server = TestServer::start_with(REGISTRATION_OPEN).await;
    let schema = Schema::Sqlite(server.data_dir().join("tessera.sqlite3"));
    version_n_runs_beside_n_plus_one(server, schema).await;
}

#[tokio::test]
async fn on_postgres_version_n_runs_on_the_next_releases_schema_until_it_contracts() {
    let pg = Postgres::start();
    let url = pg.url();
    let env = [REGISTRATION_OPEN, &[("TESSERA_DATABASE", url.as_str())]].concat();
    let server = TestServer::start_with(&env).await;
    version_n_runs_beside_n_plus_one(server, Schema::Postgres(url)).await;
}
