//! The set of revocations a verifier keeps, built from tessera's revocation feed.
//! Entries leave once what they revoke has expired anyway, so the set stays bounded
//! by what is revoked *and* still alive.

use std::collections::HashMap;

use tessera_proto::RevocationKind;

use crate::claims::AccessClaims;
use crate::error::RevokedBy;

/// One event of the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationEvent {
    Session(String),
    Token(String),
    Key(String),
    /// Tokens whose `sub` is this user and whose `iat` is at or before `before`
    /// (Unix seconds) are refused. The same second counts as before: a token from
    /// the second of the cut-off may predate it, and refusing it costs one refresh.
    User {
        id: String,
        before: i64,
    },
    /// Tokens whose `client_id` is this client and whose `iat` is at or before
    /// `before` are refused, as for [`RevocationEvent::User`].
    Client {
        id: String,
        before: i64,
    },
}

impl RevocationEvent {
    /// The event of a feed entry of `kind` naming `id`. `before` (Unix seconds,
    /// the entry's `at`) is the cut-off of a `user` or `client` entry; the other
    /// kinds ignore it.
    pub fn new(kind: RevocationKind, id: String, before: i64) -> Self {
        match kind {
            RevocationKind::Session => RevocationEvent::Session(id),
            RevocationKind::Token => RevocationEvent::Token(id),
            RevocationKind::Key => RevocationEvent::Key(id),
            RevocationKind::User => RevocationEvent::User { id, before },
            RevocationKind::Client => RevocationEvent::Client { id, before },
        }
    }
}

#[derive(Debug, Default)]
pub struct RevocationSet {
    /// Revoked ids, each with when its entry may go (Unix seconds).
    sessions: HashMap<String, i64>,
    tokens: HashMap<String, i64>,
    keys: HashMap<String, i64>,
    /// Cut-off per user: (refuse tokens issued at or before, keep until).
    users: HashMap<String, (i64, i64)>,
    /// Cut-off per client, the same way.
    clients: HashMap<String, (i64, i64)>,
    /// The sequence of the last event applied.
    position: u64,
}

impl RevocationSet {
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Records `event` (sequence `sequence`), kept until `expires_at` (Unix seconds).
    pub fn apply(&mut self, sequence: u64, event: RevocationEvent, expires_at: i64) {
        self.position = self.position.max(sequence);
        let (map, id) = match event {
            RevocationEvent::Session(id) => (&mut self.sessions, id),
            RevocationEvent::Token(id) => (&mut self.tokens, id),
            RevocationEvent::Key(id) => (&mut self.keys, id),
            RevocationEvent::User { id, before } => {
                let kept = self.users.entry(id).or_insert((before, expires_at));
                *kept = (kept.0.max(before), kept.1.max(expires_at));
                return;
            }
            RevocationEvent::Client { id, before } => {
                let kept = self.clients.entry(id).or_insert((before, expires_at));
                *kept = (kept.0.max(before), kept.1.max(expires_at));
                return;
            }
        };
        let kept = map.entry(id).or_insert(expires_at);
        *kept = (*kept).max(expires_at);
    }

    /// Moves past `sequence` without recording anything (an entry of a kind this
    /// verifier does not know).
    pub fn advance(&mut self, sequence: u64) {
        self.position = self.position.max(sequence);
    }

    /// Forgets the position but keeps every entry, for a log that turned out to be
    /// another one (a migration numbered anew, a backup restored): it is read
    /// again from its start. What was revoked stays refused until it expires,
    /// which is safe: an entry names tokens, not a place in a log.
    pub fn rewind(&mut self) {
        self.position = 0;
    }

    /// Drops entries whose tokens have all expired by `now`.
    pub fn prune(&mut self, now: i64) {
        for map in [&mut self.sessions, &mut self.tokens, &mut self.keys] {
            map.retain(|_, until| *until > now);
        }
        for map in [&mut self.users, &mut self.clients] {
            map.retain(|_, (_, until)| *until > now);
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
            + self.tokens.len()
            + self.keys.len()
            + self.users.len()
            + self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn check(&self, claims: &AccessClaims) -> Option<RevokedBy> {
        if self.is_empty() {
            return None;
        }
        if claims
            .sid
            .as_ref()
            .is_some_and(|s| self.sessions.contains_key(s))
        {
            return Some(RevokedBy::Session);
        }
        if claims
            .jti
            .as_ref()
            .is_some_and(|j| self.tokens.contains_key(j))
        {
            return Some(RevokedBy::Token);
        }
        if claims
            .kid
            .as_ref()
            .is_some_and(|k| self.keys.contains_key(k))
        {
            return Some(RevokedBy::Key);
        }
        if let Some((before, _)) = self.users.get(&claims.sub)
            && claims.iat.is_none_or(|iat| iat <= *before)
        {
            return Some(RevokedBy::User);
        }
        if let Some(client) = &claims.client_id
            && let Some((before, _)) = self.clients.get(client)
            && claims.iat.is_none_or(|iat| iat <= *before)
        {
            return Some(RevokedBy::Client);
        }
        None
    }
}
