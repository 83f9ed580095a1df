//! `tessera store migrate`: moving up from the embedded SQLite file to PostgreSQL
//! keeps accounts, clients, keys and revocations working, and refuses what it must.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tessera_testkit::Postgres;

use crate::feed::{EventReader, open_feed};
use crate::harness::*;
use crate::second_factor;
use crate::tokens::{
    Registered, access_token, add_client, client_credentials, introspect, password_grant, revoke,
};

/// One issuer before and after the move, as behind the same public URL: tokens name it.
const ISSUER: &str = "http://tessera.migrate.test";
const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// `ISSUER` is not on loopback: a server without `MASTER_KEY` must be told that
/// unsealed keys are meant.
const UNSEALED: (&str, &str) = ("TESSERA_KEYS__ALLOW_UNSEALED", "true");

/// Runs `tessera ARGS` with cheap hashing and quiet logs, plus `env`.
fn tessera(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(binary())
        .args(args)
        .env("TESSERA_LOG", "warn")
        .env("TESSERA_PASSWORD__MEMORY_KIB", "256")
        .env("TESSERA_PASSWORD__ITERATIONS", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn migrate(from: &str, to: &str) -> Output {
    tessera(
        &["store", "migrate", "--from", from, "--to", to, "--json"],
        &[],
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json_of(out: &Output) -> Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("tessera.sqlite3").display())
}

/// `user list`, `client list` and `keys list` as JSON: everything that must move.
fn listing(server: &TestServer) -> Vec<Value> {
    [["user", "list"], ["client", "list"], ["keys", "list"]]
        .iter()
        .map(|command| json_of(&server.cli(&[command[0], command[1], "--json"], "")))
        .collect()
}

async fn jwks_kids(server: &TestServer) -> Vec<String> {
    let jwks: Value = server
        .client
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

fn run_cli(server: &TestServer, args: &[&str]) -> Value {
    json_of(&server.cli(args, ""))
}

/// The feed read as a verifier does (after `last_event_id`, or from the start):
/// the revocation events up to the first heartbeat, and the sequence it carries.
async fn feed_until_heartbeat(
    server: &TestServer,
    reader: &Registered,
    last_event_id: Option<&str>,
) -> (Vec<Value>, u64) {
    let (_, token) =
        access_token(client_credentials(server, reader, &[("scope", "revocations")]).await).await;
    let mut feed = EventReader::new(open_feed(server, &token, last_event_id).await);
    let mut revocations = Vec::new();
    loop {
        let event = feed.next().await;
        match event.kind.as_str() {
            "revocation" => revocations.push(event.data),
            "heartbeat" => return (revocations, event.data["sequence"].as_u64().unwrap()),
            other => panic!("unexpected event {other}"),
        }
    }
}

#[tokio::test]
async fn migrate_moves_accounts_clients_and_keys_from_sqlite_to_postgres() {
    let mut old = TestServer::start_with(&[("TESSERA_TOKENS__ISSUER", ISSUER), UNSEALED]).await;
    old.add_user("alice", &["admin"]);
    old.add_user("bob", &[]);
    old.add_user("carol", &[]);
    run_cli(&old, &["user", "disable", "carol", "--json"]);
    let profiled = run_cli(
        &old,
        &[
            "user",
            "set",
            "alice",
            "--name",
            "Alice Liddell",
            "--email",
            "alice@example.org",
            "--email-verified",
            "--json",
        ],
    );
    let svc = add_client(&old, "svc", &["--grant", "client_credentials"]);
    let rs = add_client(
        &old,
        "resource-server",
        &["--grant", "client_credentials", "--scope", "introspect"],
    );
    let app = add_client(&old, "app", &["--grant", "password", "--public"]);
    // Alice allows an app of the code flow: her consent moves with her.
    let portal = add_client(
        &old,
        "portal",
        &[
            "--grant",
            "authorization_code",
            "--redirect-uri",
            crate::code_flow::REDIRECT,
        ],
    );
    {
        let browser = old.login("alice").await;
        let request = crate::code_flow::Request::new(&portal);
        crate::code_flow::code_for(&old, &browser, &request).await;
    }
    let reader = add_client(
        &old,
        "feed-reader",
        &["--grant", "client_credentials", "--scope", "revocations"],
    );
    let (_, first) = access_token(client_credentials(&old, &svc, &[]).await).await;

    // A rotation (the first EdDSA key stays published) and a retirement (ES256's
    // first key withdrawn, its successor made): keys in every state.
    let rotated = run_cli(&old, &["keys", "rotate", "--now", "--json"]);
    let signer = rotated["kid"].as_str().unwrap().to_owned();
    let keys = run_cli(&old, &["keys", "list", "--json"]);
    let es256 = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["alg"] == "ES256")
        .unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    run_cli(&old, &["keys", "retire", &es256, "--json"]);
    eventually("the rotated key signs", || async {
        let (_, token) = access_token(client_credentials(&old, &svc, &[]).await).await;
        kid_of(&token) == signer
    })
    .await;
    let (_, signed_before) = access_token(client_credentials(&old, &svc, &[]).await).await;
    eventually("the retired key leaves the JWKS", || async {
        !jwks_kids(&old).await.contains(&es256)
    })
    .await;
    let kids_before = jwks_kids(&old).await;

    // Revocations the move must keep: a JWT revoked by jti, and a kick (Bob's
    // session's entry and his cut-off).
    let (_, revoked) = access_token(client_credentials(&old, &svc, &[]).await).await;
    revoke(&old, &svc, &revoked).await;
    let bob = password_grant(&old, &app, "bob").await;
    let bob_token = bob["access_token"].as_str().unwrap().to_owned();
    old.login("bob").await;
    run_cli(&old, &["sessions", "kick", "bob", "--json"]);
    for token in [&revoked, &bob_token] {
        eventually("the revocation reaches the old server", || async {
            introspect(&old, &rs, token).await["active"] == false
        })
        .await;
    }
    let (log_before, high_water) = feed_until_heartbeat(&old, &reader, None).await;
    let kinds: Vec<_> = log_before
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in ["key", "token", "user", "session"] {
        assert!(kinds.contains(&kind), "{kind} missing from {log_before:?}");
    }
    assert_eq!(
        log_before.last().unwrap()["sequence"].as_u64(),
        Some(high_water)
    );
    assert!(old.terminate().success());
    let before = listing(&old);
    let states: Vec<_> = before[2]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    for state in ["signing", "published", "retired"] {
        assert!(states.contains(&state), "{state} missing from {states:?}");
    }

    let audit_before = String::from_utf8(
        old.cli(&["events", "--json", "--limit", "10000"], "")
            .stdout,
    )
    .unwrap();
    assert!(audit_before.contains("key.retired"), "{audit_before}");
    let pg = Postgres::start();
    let url = pg.url();
    let moved = json_of(&migrate(&sqlite_url(old.data_dir()), &url));
    assert_eq!(
        moved["copied"],
        serde_json::json!({
            "accounts": 3,
            "clients": 5,
            "keys": 5,
            "revocations": log_before.len(),
            "events": audit_before.lines().count(),
        }),
        "{moved}"
    );
    assert_eq!(moved["revocation_sequence"], high_water);
    assert_eq!(moved["sealed_keys"], 0);
    assert_eq!(
        moved["not_copied"],
        serde_json::json!(["sessions", "refresh_tokens", "opaque_tokens", "presence"])
    );
    let text = tessera(&["store", "migrate", "--help"], &[]);
    let help = String::from_utf8_lossy(&text.stdout);
    assert!(
        help.contains("Not copied: sessions")
            && help.contains("log in again")
            && help.contains("revocation log")
            && help.contains("resume where they were"),
        "{help}"
    );

    let new = TestServer::start_with(&[
        ("TESSERA_TOKENS__ISSUER", ISSUER),
        UNSEALED,
        ("TESSERA_DATABASE", url.as_str()),
    ])
    .await;
    // The audit log moved whole, in its order (only the ids are new).
    let without_ids = |text: &str| -> Vec<Value> {
        text.lines()
            .map(|line| {
                let mut event: Value = serde_json::from_str(line).unwrap();
                event.as_object_mut().unwrap().remove("id");
                event
            })
            .collect()
    };
    let audit_after = String::from_utf8(
        new.cli(&["events", "--json", "--limit", "10000"], "")
            .stdout,
    )
    .unwrap();
    assert_eq!(without_ids(&audit_after), without_ids(&audit_before));
    // Users log in with their passwords; roles, ids, times and the disabled flag moved.
    let alice = new.login("alice").await;
    assert_eq!(alice.login["user"]["roles"], serde_json::json!(["admin"]));
    let id = profiled["user"]["id"].as_str().unwrap();
    let shown = new.get_as(&format!("/admin/v1/users/{id}"), &alice).await;
    let shown: Value = shown.json().await.unwrap();
    assert_eq!(shown["profile"], profiled["profile"], "the profile moved");
    let grants: Value = new.get_as("/v1/grants", &alice).await.json().await.unwrap();
    assert_eq!(
        grants["grants"][0]["client_id"],
        portal.id.as_str(),
        "the consent moved"
    );
    new.login("bob").await;
    assert_eq!(
        error_of(new.try_login("alice", "not the password").await).await,
        (401, "invalid_credentials".into())
    );
    assert_eq!(
        error_of(new.try_login("carol", PASSWORD).await).await,
        (403, "account_disabled".into())
    );
    assert_eq!(
        listing(&new),
        before,
        "accounts, clients and keys as they were"
    );

    // The client authenticates with its secret and gets a token from the same signer.
    let (_, token) = access_token(client_credentials(&new, &svc, &[]).await).await;
    assert_eq!(kid_of(&token), signer);
    assert_eq!(
        jwks_kids(&new).await,
        kids_before,
        "the same key set is published"
    );
    // Tokens signed before the move are still good for their lifetime...
    for token in [&first, &signed_before] {
        let described = introspect(&new, &rs, token).await;
        assert_eq!(described["active"], true, "{described}");
        assert_eq!(described["client_id"], svc.id.as_str());
    }
    // ...unless they were revoked: by jti, or by the kick's cut-off.
    assert_eq!(introspect(&new, &rs, &revoked).await["active"], false);
    assert_eq!(introspect(&new, &rs, &bob_token).await["active"], false);
    // The cut-off is a time, not a ban: Bob's tokens from after the move are good.
    let again = password_grant(&new, &app, "bob").await;
    let fresh = again["access_token"].as_str().unwrap();
    assert_eq!(introspect(&new, &rs, fresh).await["active"], true);

    // The feed serves the same entries under the same numbers, and carries on:
    // a verifier resuming at the old high-water mark gets what is revoked next.
    let (log_after, sequence) = feed_until_heartbeat(&new, &reader, None).await;
    assert_eq!(log_after, log_before, "the log as it was");
    assert_eq!(sequence, high_water);
    let (_, feed_token) =
        access_token(client_credentials(&new, &reader, &[("scope", "revocations")]).await).await;
    let resumed = high_water.to_string();
    let mut feed = EventReader::new(open_feed(&new, &feed_token, Some(&resumed)).await);
    let (_, next) = access_token(client_credentials(&new, &svc, &[]).await).await;
    revoke(&new, &svc, &next).await;
    let later = feed.next_revocation().await;
    assert_eq!(later.data["kind"], "token");
    let sequence = later.data["sequence"].as_u64().unwrap();
    assert!(
        sequence > high_water,
        "{sequence} must come after {high_water}"
    );

    // A second migration into the same target is refused and changes nothing.
    let again = migrate(&sqlite_url(old.data_dir()), &url);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("the target database is not empty"),
        "{}",
        stderr(&again)
    );
    assert!(again.stdout.is_empty());
    assert_eq!(listing(&new), before);
}

#[tokio::test]
async fn sealed_keys_stay_sealed_and_open_with_the_same_master_key() {
    let env = [
        ("TESSERA_TOKENS__ISSUER", ISSUER),
        ("TESSERA_MASTER_KEY", MASTER_KEY),
    ];
    let mut old = TestServer::start_with(&env).await;
    let svc = add_client(&old, "svc", &["--grant", "client_credentials"]);
    let rs = add_client(
        &old,
        "resource-server",
        &["--grant", "client_credentials", "--scope", "introspect"],
    );
    let (_, before) = access_token(client_credentials(&old, &svc, &[]).await).await;
    // A second factor moves with its account, sealed under the same master key.
    old.add_user("frank", &[]);
    let frank = old.login("frank").await;
    let (key, recovery, confirming) = second_factor::enrol_with(&old, &frank).await;
    assert!(old.terminate().success());

    let pg = Postgres::start();
    let url = pg.url();
    let moved = json_of(&migrate(&sqlite_url(old.data_dir()), &url));
    assert_eq!(moved["copied"]["keys"], 3);
    assert_eq!(moved["sealed_keys"], 3, "{moved}");

    // Sealed in the target too: without the master key they cannot be opened.
    let without = tessera(&["keys", "list", "--database", &url], &[]);
    assert!(!without.status.success());
    assert!(
        stderr(&without).contains("TESSERA_MASTER_KEY"),
        "{}",
        stderr(&without)
    );

    let new = TestServer::start_with(&[env[0], env[1], ("TESSERA_DATABASE", url.as_str())]).await;
    let (_, token) = access_token(client_credentials(&new, &svc, &[]).await).await;
    assert_eq!(kid_of(&token), kid_of(&before));
    assert_eq!(introspect(&new, &rs, &before).await["active"], true);

    // The password alone does not sign Frank in; his app's next code does, the
    // code spent before the move stays spent, and his recovery codes work once.
    let pending = second_factor::first_step(&new, "frank").await;
    let spent = second_factor::second_step(&new, &pending, &confirming).await;
    assert_eq!(error_of(spent).await, (401, "invalid_code".into()));
    let signed_in = second_factor::second_step(&new, &pending, &second_factor::code(&key, 1)).await;
    assert_eq!(signed_in.status(), 200);
    let pending = second_factor::first_step(&new, "frank").await;
    let recovered = second_factor::second_step(&new, &pending, &recovery[0]).await;
    assert_eq!(recovered.status(), 200);
}

#[tokio::test]
async fn bad_urls_and_unreachable_databases_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("TESSERA_LOG".to_owned(), "warn".to_owned()),
        ("TESSERA_PASSWORD__MEMORY_KIB".to_owned(), "256".to_owned()),
        ("TESSERA_PASSWORD__ITERATIONS".to_owned(), "1".to_owned()),
    ];
    let added = cli_in(
        dir.path(),
        &env,
        &["user", "add", "dave", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let source = sqlite_url(dir.path());
    let nowhere = format!(
        "postgres://tessera:hunter2@127.0.0.1:{}/tessera",
        tessera_testkit::free_port()
    );
    let missing = format!("sqlite://{}", dir.path().join("missing.sqlite3").display());
    let cases: [(&str, &str, &str); 6] = [
        (
            &source,
            "mysql://root:hunter2@db/tessera",
            "--to: the database URL",
        ),
        (&source, "postgres://u:hunter2@db:port/tessera", "not valid"),
        (&source, "sqlite://", "names no file"),
        (&missing, &source, "there is no SQLite database"),
        (&source, &source, "the same database"),
        (&source, &nowhere, "cannot connect to PostgreSQL"),
    ];
    for (from, to, expected) in cases {
        let out = migrate(from, to);
        let message = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{from} → {to}: {message}");
        assert!(message.contains(expected), "{from} → {to}: {message}");
        assert!(!message.contains("hunter2"), "a password shown: {message}");
        assert!(out.stdout.is_empty());
    }
    assert!(
        !dir.path().join("missing.sqlite3").exists(),
        "a missing source is not created"
    );
}

/// Runs SQL on the test server's PostgreSQL, in `database`.
fn psql(pg: &Postgres, database: &str, sql: &str) {
    let out = Command::new("psql")
        .arg(format!(
            "postgres://tessera@127.0.0.1:{}/{database}",
            pg.port()
        ))
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .expect("psql (apt-get install postgresql-client)");
    assert!(out.status.success(), "psql: {}", stderr(&out));
}

#[tokio::test]
async fn a_copy_that_fails_midway_says_the_target_is_partly_filled_and_how_to_retry() {
    let server = TestServer::start().await;
    server.add_user("erin", &[]);
    server.add_user("frank", &[]);
    let svc = add_client(&server, "svc", &["--grant", "client_credentials"]);
    let (_, token) = access_token(client_credentials(&server, &svc, &[]).await).await;
    revoke(&server, &svc, &token).await;
    let source = sqlite_url(server.data_dir());
    let pg = Postgres::start();
    let target = pg.url();

    // The target's schema, with accounts made to fail as a full disk would.
    psql(&pg, "tessera", "CREATE DATABASE empty");
    let empty = format!("postgres://tessera@127.0.0.1:{}/empty", pg.port());
    let nothing = json_of(&migrate(&empty, &target));
    assert_eq!(
        nothing["copied"],
        serde_json::json!({"accounts": 0, "clients": 0, "keys": 0, "revocations": 0, "events": 0})
    );
    psql(
        &pg,
        "tessera",
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'no space left (test)'; END $$; \
         CREATE TRIGGER refuse BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION refuse();",
    );

    let failed = migrate(&source, &target);
    let message = stderr(&failed);
    assert_eq!(failed.status.code(), Some(1), "{message}");
    for expected in [
        "copying stopped after 0 of 2 accounts, 1 of 1 clients and 3 of 3 keys (1 of 1 \
         revocations)",
        "no space left (test)",
        "partly filled",
        "drop and recreate it",
    ] {
        assert!(
            message.contains(expected),
            "{expected:?} missing: {message}"
        );
    }
    psql(&pg, "tessera", "DROP TRIGGER refuse ON users");
    let again = migrate(&source, &target);
    assert!(
        stderr(&again)
            .contains("not empty: it holds 0 account(s), 1 client(s) and 3 signing key(s)"),
        "{}",
        stderr(&again)
    );
    // A log that numbered entries is in use too, even with nothing else left.
    psql(
        &pg,
        "tessera",
        "DELETE FROM clients; DELETE FROM signing_keys",
    );
    let again = migrate(&source, &target);
    assert!(
        stderr(&again).contains(
            "it holds 0 account(s), 0 client(s) and 0 signing key(s), and its revocation log \
             is at sequence 1"
        ),
        "{}",
        stderr(&again)
    );

    // Following the advice works.
    psql(&pg, "postgres", "DROP DATABASE tessera");
    psql(&pg, "postgres", "CREATE DATABASE tessera");
    let moved = json_of(&migrate(&source, &target));
    assert_eq!(
        moved["copied"],
        serde_json::json!({"accounts": 2, "clients": 1, "keys": 3, "revocations": 1, "events": 3})
    );
}
