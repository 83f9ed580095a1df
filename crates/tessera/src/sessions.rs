//! `tessera sessions …`: an operator's view of users' sessions, and the kick.

use anyhow::bail;
use clap::Subcommand;
use serde_json::json;
use tessera_server::Overrides;
use tessera_server::services::audit::Caller;
use tessera_server::views::{SessionTimes, UserView};

use crate::args::StoreArgs;

#[derive(Subcommand)]
pub enum SessionsCommand {
    /// List a user's live sessions.
    List {
        /// Username or user id.
        user: String,
        /// Print the answer as one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// End all of a user's sessions and refresh tokens, and make every verifier
    /// refuse the access tokens they hold. The account stays usable: they may log
    /// in again (to lock them out, `tessera user disable`).
    Kick {
        /// Username or user id.
        user: String,
        /// Print the answer as one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn sessions_command(
    command: SessionsCommand,
    overrides: Overrides,
) -> anyhow::Result<()> {
    match command {
        SessionsCommand::List { user, json, store } => {
            let (_, core) = crate::oauth::open(store, overrides).await?;
            let Some(found) = core.accounts.find(&user).await? else {
                bail!("no user {user:?}");
            };
            let sessions = core.sessions.list(found.id).await?;
            let policy = core.sessions.policy();
            if json {
                let listed: Vec<_> = sessions
                    .iter()
                    .map(|s| {
                        json!({
                            "session": SessionTimes::of_record(s, policy),
                            "client_address": s.client_address,
                            "user_agent": s.user_agent,
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    json!({"user": UserView::from(&found), "sessions": listed})
                );
            } else {
                println!("{:<44} {:<26} LAST SEEN", "SESSION", "CREATED");
                for s in &sessions {
                    println!(
                        "{:<44} {:<26} {}",
                        s.id.as_str(),
                        s.created_at.to_rfc3339(),
                        s.last_seen_at.to_rfc3339()
                    );
                }
            }
        }
        SessionsCommand::Kick { user, json, store } => {
            let (_, core) = crate::oauth::open(store, overrides).await?;
            let Some(found) = core.accounts.find(&user).await? else {
                bail!("no user {user:?}");
            };
            let cut = core.admin.kick(Caller::OPERATOR, found.id).await?;
            if json {
                println!(
                    "{}",
                    json!({
                        "user": UserView::from(&cut.user),
                        "tokens_before": cut.at,
                        "ended_sessions": cut.sessions,
                        "revoked_refresh_tokens": cut.families,
                    })
                );
            } else {
                println!(
                    "kicked {}: ended {} session(s) and {} refresh token(s); their access \
                     tokens issued until {} are refused",
                    cut.user.username,
                    cut.sessions,
                    cut.families,
                    cut.at.to_rfc3339()
                );
            }
        }
    }
    Ok(())
}

pub async fn online_command(
    window: u64,
    json: bool,
    store: StoreArgs,
    overrides: Overrides,
) -> anyhow::Result<()> {
    let max = tessera_server::services::presence::MAX_WINDOW.as_secs();
    if !(1..=max).contains(&window) {
        bail!("--window must be from 1 to {max} seconds");
    }
    let (_, core) = crate::oauth::open(store, overrides).await?;
    let online = core
        .presence
        .online(std::time::Duration::from_secs(window))
        .await?;
    if json {
        println!(
            "{}",
            json!({"users": online.users, "sessions": online.sessions, "window_seconds": window})
        );
    } else {
        println!(
            "{} user(s), {} session(s) active in the last {window} s",
            online.users, online.sessions
        );
    }
    Ok(())
}
