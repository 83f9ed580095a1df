//! The audit log's vocabulary: what kinds of event it records, and the JSON of an
//! event as `GET /admin/v1/events` and `tessera events --json` write it. The kind
//! names are stable: filters, dashboards and log searches are written against them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! event_kinds {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// A security-relevant thing that happened, by the name the log gives it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum EventKind {
            $($(#[$doc])* #[serde(rename = $name)] $variant,)*
        }

        impl EventKind {
            pub const ALL: &[EventKind] = &[$(EventKind::$variant,)*];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(EventKind::$variant => $name,)*
                }
            }
        }
    };
}

event_kinds! {
    /// A sign-in with a password (the login page, `POST /v1/login`, the password
    /// grant), and with a second factor when the account has one: succeeded, or
    /// failed and why.
    Login => "login",
    /// The user signed a session out (`POST /v1/logout`, RP-initiated logout, a
    /// session ended from the account's own list).
    Logout => "logout",
    /// A session or refresh family ended for a reason other than its user's logout:
    /// an admin ended it, a refresh token or code was replayed.
    SessionEnded => "session.ended",
    /// Everything the user held was cut off; the account stays usable.
    UserKicked => "user.kicked",
    UserDisabled => "user.disabled",
    UserEnabled => "user.enabled",
    /// An account was created (registration, the CLI, an admin).
    UserRegistered => "user.registered",
    UserDeleted => "user.deleted",
    /// Name, email or whether the email is verified changed.
    ProfileChanged => "user.profile_changed",
    RolesChanged => "user.roles_changed",
    PasswordChanged => "password.changed",
    /// A TOTP authenticator was set up (confirmed with a code).
    SecondFactorAdded => "second_factor.added",
    /// A second factor was removed: by its user, or every one by an admin (a reset).
    SecondFactorRemoved => "second_factor.removed",
    /// A new set of recovery codes replaced the account's earlier ones.
    RecoveryCodesIssued => "recovery_codes.issued",
    ResetLinkIssued => "reset_link.issued",
    ResetLinkUsed => "reset_link.used",
    /// The user allowed a client the scopes it asked for.
    ConsentGiven => "consent.given",
    ConsentWithdrawn => "consent.withdrawn",
    ClientAdded => "client.added",
    ClientRemoved => "client.removed",
    ClientSecretRotated => "client.secret_rotated",
    KeyRotated => "key.rotated",
    KeyRetired => "key.retired",
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind the log does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEventKind(pub String);

impl fmt::Display for UnknownEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a kind of event the audit log records",
            self.0
        )
    }
}

impl std::error::Error for UnknownEventKind {}

impl FromStr for EventKind {
    type Err = UnknownEventKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventKind::ALL
            .iter()
            .copied()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownEventKind(s.to_owned()))
    }
}

/// How it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

impl FromStr for Outcome {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "success" => Ok(Outcome::Success),
            "failure" => Ok(Outcome::Failure),
            _ => Err(()),
        }
    }
}

/// Who did it, by `type`: `user` and `client` have an `id`; `operator` is someone
/// at the host's command line (`tessera user disable`, say), who has no account;
/// `system` is tessera itself (reuse detection, expiry); `anonymous` is someone not
/// signed in (a failed login).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorBody {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// One event of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEventBody {
    /// Ascending in the order events were recorded: the cursor for paging and for
    /// following the log.
    pub id: i64,
    /// RFC 3339, UTC, milliseconds.
    pub at: String,
    pub kind: EventKind,
    pub outcome: Outcome,
    pub actor: ActorBody,
    /// The id of the account the event concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The username as it was presented or held at the time (a failed login names
    /// what was typed, which may be no account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// What else it concerns, as `type:id`: `client:…`, `key:…`, `session:…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The address the request came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Why, or what, in words; never a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A page of events, newest first; `next` is the `before` of the next (older) page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub events: Vec<AuditEventBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn kinds_are_named_once_and_read_back() {
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>(), Ok(*kind));
            assert_eq!(
                serde_json::to_string(kind).unwrap(),
                format!("\"{}\"", kind.as_str())
            );
        }
        assert!("login.nope".parse::<EventKind>().is_err());
    }

    #[test]
    fn an_event_is_this_json() {
        let event = AuditEventBody {
            id: 7,
            at: "2026-12-04T10:00:00.000Z".into(),
            kind: EventKind::Login,
            outcome: Outcome::Failure,
            actor: ActorBody {
                kind: "anonymous".into(),
                id: None,
            },
            user: None,
            username: Some("alice".into()),
            target: None,
            address: Some("127.0.0.1".into()),
            detail: Some("wrong password".into()),
        };
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({
                "id": 7, "at": "2026-12-04T10:00:00.000Z", "kind": "login",
                "outcome": "failure", "actor": {"type": "anonymous"},
                "username": "alice", "address": "127.0.0.1", "detail": "wrong password"
            })
        );
    }
}
