//! `tessera store migrate`: moving a deployment to another database, typically up
//! from the embedded SQLite file to PostgreSQL when one machine is no longer enough.
//!
//! What moves is what defines the service and cannot be made again: accounts (with
//! their password hashes, roles, disabled flag, ids and creation times, and their
//! second factors: a confirmed authenticator app, sealed as stored and bound to
//! the account's id, which moves too, the unused recovery codes and the passkeys
//! with their counters), OAuth
//! clients (with their secret hashes) and every signing key (retired and expired
//! ones too, private keys exactly as stored, so sealed keys stay sealed under the
//! same `TESSERA_MASTER_KEY`, and every lifecycle time, so the JWKS and the signer
//! are the same after the move), and the revocation log: every entry still in force
//! (a JWT revoked by `jti`, a kick's cut-off, an ended session or refresh family, a
//! retired key), under its own sequence number, with the target's counter raised to
//! the source's high-water mark. JWTs outlive the move (their keys move), so what
//! was revoked before it must stay revoked after it; and every verifier following
//! `/v1/revocations` holds a position in the source's numbering, which therefore
//! carries on in the target: the next revocation is numbered above anything the
//! source ever numbered, and a verifier resuming with `Last-Event-ID` misses nothing.
//!
//! What does not move, deliberately: sessions, refresh tokens, opaque access
//! tokens and presence. They are short-lived (minutes to days) and cheap to make
//! again: users log in again and clients ask for new tokens. Their revocations,
//! which are in the log, move anyway, so a token bound to an ended session stays
//! refused.

use std::fmt::Write as _;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use tessera_core::Timestamp;
use tessera_server::Overrides;
use tessera_server::config::StoreUrl;
use tessera_server::stores::{Database, DatabaseLocation};
use tessera_store::{AccountStore, AuditStore, ClientStore, KeyStore, RevocationLog, StoreSet};

/// What is left behind, as the JSON output names it.
const NOT_COPIED: [&str; 4] = ["sessions", "refresh_tokens", "opaque_tokens", "presence"];

/// Revocation log entries read per page.
const LOG_PAGE: u32 = 1000;
/// Audit events read, and written, per page.
const EVENT_PAGE: u32 = 1000;

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Copy accounts, OAuth clients, signing keys and the revocation log into
    /// another, empty database (e.g. from the SQLite file to PostgreSQL).
    ///
    /// Copies accounts (password hashes, roles, disabled flag, ids, creation times,
    /// authenticator apps and unused recovery codes),
    /// clients (secret hashes, everything as stored), every signing key (retired
    /// ones too; private keys as stored, so sealed keys need the same
    /// TESSERA_MASTER_KEY afterwards) and every revocation still in force, under its
    /// own sequence number: tokens revoked, kicks and retired keys stay refused, and
    /// the log's numbering carries on, so resource services following
    /// /v1/revocations resume where they were. The audit log comes along, in its
    /// order (its ids are numbered afresh). Refuses a target that holds any
    /// account, client, key or revocation, writing nothing. Stop the servers on the
    /// source first: what changes during the copy may be missed.
    ///
    /// Not copied: sessions, refresh tokens, opaque access tokens and presence.
    /// Users log in again and clients ask for new tokens; JWT access tokens already
    /// issued stay valid until they expire, unless they were revoked.
    Migrate(MigrateArgs),
    /// Copy the SQLite database into a new file while servers use it (SQLite's
    /// online backup: one consistent snapshot; the servers go on answering).
    ///
    /// The copy is 0600: it holds password hashes and, without a master key,
    /// private signing keys. Keep TESSERA_MASTER_KEY with it, apart from it:
    /// sealed keys cannot be used without it. To restore, stop the servers, put
    /// the copy in place of tessera.sqlite3 (removing its -wal and -shm files),
    /// and start them. On PostgreSQL use pg_dump instead (see the README).
    Backup(BackupArgs),
}

#[derive(Args)]
pub struct BackupArgs {
    /// The new file to write (never overwritten).
    #[arg(long, value_name = "FILE")]
    to: std::path::PathBuf,
    #[command(flatten)]
    store: crate::args::StoreArgs,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct MigrateArgs {
    /// The database to copy from: sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB
    #[arg(long, value_name = "URL")]
    from: String,
    /// The empty database to copy into: sqlite://PATH (created if missing) or
    /// postgres://USER:PASSWORD@HOST:PORT/DB
    #[arg(long, value_name = "URL")]
    to: String,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

pub async fn store_command(command: StoreCommand, overrides: Overrides) -> anyhow::Result<()> {
    match command {
        StoreCommand::Migrate(args) => migrate(args, overrides).await,
        StoreCommand::Backup(args) => backup(args, overrides),
    }
}

fn backup(args: BackupArgs, overrides: Overrides) -> anyhow::Result<()> {
    let config = crate::args::load_config(args.store, overrides)?;
    let path = match DatabaseLocation::of(&config)? {
        DatabaseLocation::Sqlite(path) => path,
        DatabaseLocation::Postgres(url) => bail!(
            "{} is PostgreSQL: back it up with its own tools, e.g. pg_dump --format=custom \
             (see \"Back up, restore, upgrade\" in the README)",
            url.redacted()
        ),
    };
    let summary = tessera_server::stores::backup_sqlite(&path, &args.to)?;
    if args.json {
        println!(
            "{}",
            json!({
                "from": path.display().to_string(),
                "to": args.to.display().to_string(),
                "pages": summary.pages,
                "bytes": summary.bytes,
            })
        );
    } else {
        println!(
            "backed up {} to {} ({} bytes)",
            path.display(),
            args.to.display(),
            summary.bytes
        );
    }
    Ok(())
}

/// Everything that moves, read in full before anything is written.
struct Export {
    users: Vec<Account>,
    clients: Vec<tessera_store::Client>,
    keys: Vec<tessera_store::StoredKey>,
    /// The log's entries still in force, oldest first.
    revocations: Vec<tessera_store::Revocation>,
    /// The source log's high-water mark: the newest sequence it ever numbered.
    revocation_sequence: u64,
    /// The audit log, oldest first (renumbered in the target, in the same order).
    events: Vec<tessera_store::NewEvent>,
}

/// An account with what belongs to it alone.
struct Account {
    credentials: tessera_store::UserCredentials,
    profile: tessera_store::Profile,
    consents: Vec<tessera_store::Consent>,
    /// Its authenticator app, when confirmed (an enrolment under way is not a
    /// factor yet, and is started again), sealed as stored.
    totp: Option<tessera_store::TotpCredential>,
    /// The hashes of its unused recovery codes.
    recovery_codes: Vec<tessera_core::SecretHash>,
    /// Its passkeys, with their counters.
    passkeys: Vec<tessera_store::PasskeyCredential>,
}

/// How far a copy got.
#[derive(Default)]
struct Copied {
    accounts: usize,
    clients: usize,
    keys: usize,
    revocations: usize,
    events: usize,
}

async fn migrate(args: MigrateArgs, overrides: Overrides) -> anyhow::Result<()> {
    tessera_server::init_logging(overrides.log_format.unwrap_or_default());
    let (from_url, to_url) = (StoreUrl(args.from), StoreUrl(args.to));
    let from = DatabaseLocation::parse(&from_url).context("--from")?;
    let to = DatabaseLocation::parse(&to_url).context("--to")?;
    if from == to {
        bail!("--from and --to name the same database");
    }
    if let DatabaseLocation::Sqlite(path) = &from
        && !path.is_file()
    {
        bail!("--from: there is no SQLite database at {}", path.display());
    }
    let source = Database::open(&from)
        .await
        .with_context(|| format!("cannot open the source {}", from_url.redacted()))?;
    let target = match Database::open(&to).await {
        Ok(target) => target,
        Err(error) => {
            source.close().await;
            return Err(error.context(format!("cannot open the target {}", to_url.redacted())));
        }
    };
    let done = copy(&source.store_set(), &target.store_set(), &to_url).await;
    source.close().await;
    target.close().await;
    let (copied, sealed, sequence) = done?;

    let (from_shown, to_shown) = (from_url.redacted(), to_url.redacted());
    if args.json {
        println!(
            "{}",
            json!({
                "from": from_shown,
                "to": to_shown,
                "copied": {
                    "accounts": copied.accounts,
                    "clients": copied.clients,
                    "keys": copied.keys,
                    "revocations": copied.revocations,
                    "events": copied.events,
                },
                "revocation_sequence": sequence,
                "sealed_keys": sealed,
                "not_copied": NOT_COPIED,
            })
        );
    } else {
        let mut out = format!(
            "copied {} accounts, {} clients, {} keys, {} revocations and {} audit events from \
             {from_shown} to {to_shown}\n",
            copied.accounts, copied.clients, copied.keys, copied.revocations, copied.events
        );
        let _ = writeln!(
            out,
            "the revocation log carries on after sequence {sequence}: resource services \
             following /v1/revocations resume where they were"
        );
        out.push_str(
            "not copied: sessions, refresh tokens, opaque access tokens and presence: users \
             log in again and clients ask for new tokens\n",
        );
        if sealed > 0 {
            let _ = writeln!(
                out,
                "{sealed} of the keys are sealed: run the servers on the target with the same \
                 TESSERA_MASTER_KEY"
            );
        }
        let _ = write!(
            out,
            "next: point every server and command at the target (TESSERA_DATABASE or \
             --database)"
        );
        println!("{out}");
    }
    Ok(())
}

/// Copies what moves from `source` into `target`, which must hold no account,
/// client, key or revocation. Returns what was copied, how many keys are sealed and
/// the revocation sequence the target's log carries on from.
async fn copy(
    source: &StoreSet,
    target: &StoreSet,
    to_url: &StoreUrl,
) -> anyhow::Result<(Copied, usize, u64)> {
    // Refuse before reading or writing anything else: a target in use is a mistake.
    // A log that ever numbered an entry (purged or not) is in use too, and its
    // followers' positions could not be kept.
    let held = (
        target.list_users().await?.len(),
        target.list_clients().await?.len(),
        target.signing_keys().await?.len(),
        target.latest_revocation().await?,
    );
    if held != (0, 0, 0, 0) {
        bail!(
            "the target database is not empty: it holds {} account(s), {} client(s) and {} \
             signing key(s), and its revocation log is at sequence {}; nothing was written. \
             store migrate copies only into a database that no tessera has used (any \
             tessera server or command run on it creates signing keys at once): drop and \
             recreate it, or choose another",
            held.0,
            held.1,
            held.2,
            held.3
        );
    }
    let export = read(source).await.context("cannot read the source")?;
    let sealed = export.keys.iter().filter(|k| k.sealed).count();
    let mut copied = Copied::default();
    if let Err(error) = write(target, &export, &mut copied).await {
        bail!(
            "copying stopped after {} of {} accounts, {} of {} clients and {} of {} keys \
             ({} of {} revocations): {error:#}. The target {} is now partly filled, and \
             store migrate refuses a \
             database that is not empty: drop and recreate it (PostgreSQL: DROP DATABASE \
             and CREATE DATABASE; SQLite: delete the file with its -wal and -shm files), \
             then run the migration again. The source is unchanged.",
            copied.accounts,
            export.users.len(),
            copied.clients,
            export.clients.len(),
            copied.keys,
            export.keys.len(),
            copied.revocations,
            export.revocations.len(),
            to_url.redacted()
        );
    }
    Ok((copied, sealed, export.revocation_sequence))
}

async fn read(source: &StoreSet) -> anyhow::Result<Export> {
    let listed = source.list_users().await?;
    let mut users = Vec::with_capacity(listed.len());
    for user in &listed {
        let Some(credentials) = source.user_credentials(&user.username).await? else {
            bail!(
                "the account {} vanished while it was read: is a server still using the source?",
                user.username
            );
        };
        users.push(Account {
            credentials,
            profile: source.profile(user.id).await?.unwrap_or_default(),
            consents: source.consents(user.id).await?,
            totp: source
                .totp(user.id)
                .await?
                .filter(|c| c.confirmed_at.is_some()),
            recovery_codes: source.unused_recovery_codes(user.id).await?,
            passkeys: source.passkeys(user.id).await?,
        });
    }
    // Oldest first, as the source gave out look-alike keys: of two accounts whose
    // names look alike, the older one holds the name's look in the target too.
    users.sort_by_key(|account| {
        (
            account.credentials.user.created_at,
            account.credentials.user.id,
        )
    });
    // The high-water mark first: entries appended meanwhile (a server still running)
    // are then read too, and the import raises the counter past them.
    let revocation_sequence = source.latest_revocation().await?;
    let now = Timestamp::now();
    let mut revocations = Vec::new();
    let mut after = 0;
    loop {
        let page = source.revocations_after(after, LOG_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.sequence;
        // Entries whose tokens have all expired can refuse nothing any more.
        revocations.extend(page.into_iter().filter(|entry| entry.expires_at > now));
    }
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let page = source.events_after(after, EVENT_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        events.extend(page.into_iter().map(|e| e.event));
    }
    Ok(Export {
        users,
        clients: source.list_clients().await?,
        keys: source.signing_keys().await?,
        revocations,
        revocation_sequence,
        events,
    })
}

/// Writes keys first, so that a server started on the target too early finds keys
/// and makes none of its own, then the revocation log (in one transaction), so that
/// nothing revoked is honoured by the target once accounts and clients are there;
/// counts each item in `copied` once it is committed.
async fn write(target: &StoreSet, export: &Export, copied: &mut Copied) -> anyhow::Result<()> {
    for key in &export.keys {
        target
            .import_key(key.clone())
            .await
            .with_context(|| format!("cannot copy the key {}", key.kid))?;
        copied.keys += 1;
    }
    target
        .import_revocations(&export.revocations, export.revocation_sequence)
        .await
        .context("cannot copy the revocation log")?;
    copied.revocations = export.revocations.len();
    for client in &export.clients {
        target
            .create_client(client.clone())
            .await
            .with_context(|| format!("cannot copy the client {}", client.name))?;
        copied.clients += 1;
    }
    for Account {
        credentials,
        profile,
        consents,
        totp,
        recovery_codes,
        passkeys,
    } in &export.users
    {
        target
            .import_user(tessera_store::UserCredentials {
                user: credentials.user.clone(),
                password_hash: credentials.password_hash.clone(),
            })
            .await
            .with_context(|| format!("cannot copy the account {}", credentials.user.username))?;
        if *profile != tessera_store::Profile::default() {
            target
                .set_profile(credentials.user.id, profile.clone())
                .await
                .with_context(|| {
                    format!("cannot copy the profile of {}", credentials.user.username)
                })?;
        }
        for consent in consents {
            target
                .save_consent(consent.clone())
                .await
                .with_context(|| {
                    format!("cannot copy the consents of {}", credentials.user.username)
                })?;
        }
        // A second factor left behind would let the password alone in.
        let id = credentials.user.id;
        let factors = async {
            if let Some(totp) = totp {
                let (Some(confirmed_at), Some(step)) = (totp.confirmed_at, totp.last_step) else {
                    bail!("its authenticator app was confirmed without a step");
                };
                let kept = target
                    .begin_totp(id, totp.sealed_secret.clone(), totp.created_at)
                    .await?
                    && target
                        .confirm_totp(id, &totp.sealed_secret, step, confirmed_at)
                        .await?;
                anyhow::ensure!(kept, "the target did not keep its authenticator app");
            }
            if !recovery_codes.is_empty() {
                target
                    .replace_recovery_codes(id, recovery_codes.clone(), Timestamp::now())
                    .await?;
            }
            for passkey in passkeys {
                anyhow::ensure!(
                    target.add_passkey(passkey.clone()).await?,
                    "the target did not keep a passkey"
                );
            }
            Ok(())
        };
        factors.await.with_context(|| {
            format!(
                "cannot copy the second factors of {}",
                credentials.user.username
            )
        })?;
        copied.accounts += 1;
    }
    // Last: who did what, about accounts and clients that are all there now.
    for chunk in export.events.chunks(EVENT_PAGE as usize) {
        target
            .record_events(chunk)
            .await
            .context("cannot copy the audit log")?;
        copied.events += chunk.len();
    }
    Ok(())
}
