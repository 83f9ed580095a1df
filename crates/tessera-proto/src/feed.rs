//! The revocation feed (`GET /v1/revocations`, Server-Sent Events): a
//! `revocation` event per entry of the log (its sequence also the SSE `id`, for
//! `Last-Event-ID`), `heartbeat` events with the log's sequence, and a last
//! `reconnect` event when the instance stops.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The SSE event name of an entry.
pub const REVOCATION_EVENT: &str = "revocation";
/// The SSE event name of a heartbeat.
pub const HEARTBEAT_EVENT: &str = "heartbeat";
/// The SSE event name that ends a stream because this instance is stopping: the
/// verifier reconnects at once (to another instance, through its balancer) and
/// resumes with `Last-Event-ID`, so it misses nothing. Its data is empty.
pub const RECONNECT_EVENT: &str = "reconnect";
/// The header a client resumes with, after the last sequence it applied.
pub const LAST_EVENT_ID: &str = "last-event-id";

/// What an entry revokes, by the `kind` the feed names it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RevocationKind {
    /// A session or refresh family: every token whose `sid` is the `id`.
    Session,
    /// One JWT, by its `jti`.
    Token,
    /// A signing key, by its `kid`: every token it signed.
    Key,
    /// Every token of this user (`sub`) issued up to the entry's `at`.
    User,
    /// Every token of this client (`client_id`) issued up to the entry's `at`.
    Client,
}

impl RevocationKind {
    pub const ALL: [RevocationKind; 5] = [
        RevocationKind::Session,
        RevocationKind::Token,
        RevocationKind::Key,
        RevocationKind::User,
        RevocationKind::Client,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            RevocationKind::Session => "session",
            RevocationKind::Token => "token",
            RevocationKind::Key => "key",
            RevocationKind::User => "user",
            RevocationKind::Client => "client",
        }
    }
}

impl fmt::Display for RevocationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `kind` that is none of [`RevocationKind`]'s (perhaps from a newer issuer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKind;

impl FromStr for RevocationKind {
    type Err = UnknownKind;

    fn from_str(kind: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == kind)
            .ok_or(UnknownKind)
    }
}

/// The data of a `revocation` event. Members in this order (sorted), as the
/// feed has always written them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationEntry {
    /// When it happened, RFC 3339: the cut-off of a `user` or `client` entry.
    pub at: String,
    /// Unix seconds after which nothing it revokes can still be valid.
    pub expires_at: i64,
    /// What it names: a session id, `jti`, `kid`, user id or client id.
    pub id: String,
    /// One of [`RevocationKind`]'s names. Text rather than the enum, so that a
    /// reader can skip (and move past) a kind a newer issuer added.
    pub kind: String,
    /// Why (`logout`, `kicked`, `revoked`, …); for people and logs.
    #[serde(default)]
    pub reason: String,
    /// Its position in the log, also the event's SSE `id`.
    pub sequence: u64,
    /// The user it concerns, if any.
    #[serde(default)]
    pub user: Option<String>,
}

/// The data of a `heartbeat` event: the sequence of the newest entry of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub sequence: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_revocation_entry_is_pinned() {
        let entry = RevocationEntry {
            at: "2026-01-02T03:04:05.678Z".into(),
            expires_at: 1_767_330_000,
            id: "019a8f3c-6a1e-7b52-9c1d-3f4e5a6b7c8d".into(),
            kind: RevocationKind::User.as_str().into(),
            reason: "kicked".into(),
            sequence: 42,
            user: Some("019a8f3c-6a1e-7b52-9c1d-3f4e5a6b7c8d".into()),
        };
        let json = r#"{"at":"2026-01-02T03:04:05.678Z","expires_at":1767330000,"id":"019a8f3c-6a1e-7b52-9c1d-3f4e5a6b7c8d","kind":"user","reason":"kicked","sequence":42,"user":"019a8f3c-6a1e-7b52-9c1d-3f4e5a6b7c8d"}"#;
        assert_eq!(serde_json::to_string(&entry).unwrap(), json);
        assert_eq!(
            serde_json::from_str::<RevocationEntry>(json).unwrap(),
            entry
        );

        let token = RevocationEntry {
            kind: RevocationKind::Token.as_str().into(),
            id: "q3Vx0m9rT2yLkP8aZc4NfA".into(),
            user: None,
            reason: "revoked".into(),
            ..entry
        };
        assert_eq!(
            serde_json::to_string(&token).unwrap(),
            r#"{"at":"2026-01-02T03:04:05.678Z","expires_at":1767330000,"id":"q3Vx0m9rT2yLkP8aZc4NfA","kind":"token","reason":"revoked","sequence":42,"user":null}"#
        );
    }

    #[test]
    fn an_entry_needs_only_what_a_verifier_reads() {
        let entry: RevocationEntry = serde_json::from_str(
            r#"{"sequence":7,"kind":"later","id":"x","at":"2026-01-02T03:04:05Z","expires_at":1,"new":true}"#,
        )
        .unwrap();
        assert_eq!(
            (entry.sequence, entry.user, entry.reason.as_str()),
            (7, None, "")
        );
        assert!(entry.kind.parse::<RevocationKind>().is_err());
    }

    #[test]
    fn a_heartbeat_is_pinned() {
        let json = r#"{"sequence":1234}"#;
        assert_eq!(
            serde_json::to_string(&Heartbeat { sequence: 1234 }).unwrap(),
            json
        );
        assert_eq!(
            serde_json::from_str::<Heartbeat>(json).unwrap(),
            Heartbeat { sequence: 1234 }
        );
    }

    #[test]
    fn kinds_are_named_as_the_feed_names_them() {
        for kind in RevocationKind::ALL {
            assert_eq!(kind.as_str().parse::<RevocationKind>(), Ok(kind));
            assert_eq!(
                serde_json::to_string(&kind).unwrap(),
                format!("\"{}\"", kind.as_str())
            );
        }
        assert_eq!(
            RevocationKind::ALL.map(RevocationKind::as_str),
            ["session", "token", "key", "user", "client"]
        );
    }
}
