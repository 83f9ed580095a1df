//! `tessera events`: the audit log from the command line, read from the store (as
//! `GET /admin/v1/events` reads it), newest first, or followed as it grows.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use tessera_core::{Timestamp, UserId};
use tessera_proto::AuditEventBody;
use tessera_server::Overrides;
use tessera_server::views::event_view;
use tessera_store::{Event, EventKind, EventQuery};

use crate::args::StoreArgs;

/// How often `--follow` looks for new events.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

#[derive(Args)]
pub struct EventsArgs {
    /// Only events that concern this user, or that they did (a username or id).
    #[arg(long)]
    user: Option<String>,
    /// Only this kind of event (login, logout, session.ended, user.kicked, ...).
    #[arg(long)]
    kind: Option<EventKind>,
    /// Only events at or after this RFC 3339 time (2026-12-04T10:00:00Z).
    #[arg(long, value_parser = parse_time)]
    since: Option<Timestamp>,
    /// Only events before this RFC 3339 time.
    #[arg(long, value_parser = parse_time)]
    until: Option<Timestamp>,
    /// How many of the latest to show.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    limit: u32,
    /// One JSON object per line, as the admin API writes an event.
    #[arg(long)]
    json: bool,
    /// Keep going: print each new event as it is recorded, on any instance (with
    /// --user or --kind, only the matching ones).
    #[arg(long)]
    follow: bool,
    #[command(flatten)]
    store: StoreArgs,
}

fn parse_time(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(text)
        .ok_or_else(|| format!("{text:?} is not an RFC 3339 time, like 2026-12-04T10:00:00Z"))
}

pub async fn events_command(args: EventsArgs, overrides: Overrides) -> anyhow::Result<()> {
    let (_, core) = crate::oauth::open(args.store, overrides).await?;
    let user = match &args.user {
        None => None,
        Some(user) => match UserId::parse(user) {
            Some(id) => Some(id),
            None => match core.admin.find_user(user).await? {
                Some(found) => Some(found.id),
                None => bail!("no user named {user:?}"),
            },
        },
    };
    let query = EventQuery {
        user,
        kind: args.kind,
        since: args.since,
        until: args.until,
        before: None,
        limit: args.limit,
    };
    let mut latest = core.admin.events(&query).await?;
    // Printed oldest first, as a log reads.
    latest.reverse();
    if !args.json && !latest.is_empty() {
        println!(
            "{:<24} {:<22} {:<7} {:<44} {:<24} {:<16} DETAIL",
            "AT", "KIND", "OUTCOME", "ACTOR", "USER", "ADDRESS"
        );
    }
    let mut position = latest.last().map_or(0, |e| e.id);
    for event in &latest {
        print_event(event, args.json)?;
    }
    if !args.follow {
        return Ok(());
    }
    if latest.is_empty() {
        // Nothing matched: follow from the end of the whole log.
        position = core
            .admin
            .events(&EventQuery {
                limit: 1,
                ..EventQuery::default()
            })
            .await?
            .first()
            .map_or(0, |e| e.id);
    }
    loop {
        let new = core.admin.events_after(position, 1000).await?;
        for event in &new {
            position = event.id;
            let e = &event.event;
            let matches = query.kind.is_none_or(|k| k == e.kind)
                && query
                    .user
                    .is_none_or(|u| e.user == Some(u) || e.actor.id() == Some(u.to_string()));
            if matches {
                print_event(event, args.json)?;
            }
        }
        if new.is_empty() {
            tokio::time::sleep(FOLLOW_EVERY).await;
        }
    }
}

fn print_event(event: &Event, json: bool) -> anyhow::Result<()> {
    let view: AuditEventBody = event_view(event);
    if json {
        println!(
            "{}",
            serde_json::to_string(&view).context("cannot write the event as JSON")?
        );
        return Ok(());
    }
    let actor = match &view.actor.id {
        Some(id) => format!("{}:{id}", view.actor.kind),
        None => view.actor.kind.clone(),
    };
    let user = view
        .username
        .clone()
        .or(view.user.clone())
        .unwrap_or_default();
    let detail = [view.target.clone(), view.detail.clone()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    println!(
        "{:<24} {:<22} {:<7} {:<44} {:<24} {:<16} {}",
        view.at,
        view.kind.as_str(),
        view.outcome.as_str(),
        actor,
        user,
        view.address.unwrap_or_default(),
        detail
    );
    Ok(())
}
