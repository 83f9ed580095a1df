//! `CeremonyStore` on Redis: one hash per ceremony, expired by Redis at its
//! `expires_at`; a take is one script that reads and deletes, so exactly one of
//! racing takes finds it.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use redis::Script;
use tessera_core::{SecretHash, Timestamp, UserId};
use tessera_store::{Ceremony, CeremonyKind, CeremonyStore, StoreError};

use crate::{RedisStore, Retry, Stored, hex};

fn ceremony_key(hash: &SecretHash) -> String {
    format!("tessera:ceremony:{}", hex(hash))
}

/// KEYS: the ceremony's hash. ARGV: its kind. The fields, and the key deleted;
/// nothing (and nothing deleted) for another kind.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'kind') ~= ARGV[1] then return {} end
local fields = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return fields
",
    )
});

#[async_trait]
impl CeremonyStore for RedisStore {
    async fn begin_ceremony(&self, ceremony: Ceremony) -> Result<(), StoreError> {
        let mut fields = vec![
            ("kind", ceremony.kind.as_str().to_owned()),
            ("state", ceremony.state),
            ("expires_at", ceremony.expires_at.as_millis().to_string()),
        ];
        if let Some(user) = ceremony.user {
            fields.push(("user_id", user.to_string()));
        }
        self.insert_expiring_hash(
            ceremony_key(&ceremony.hash),
            ceremony.expires_at,
            &fields,
            "a ceremony",
        )
        .await
    }

    async fn ceremony(
        &self,
        hash: &SecretHash,
        kind: CeremonyKind,
        at: Timestamp,
    ) -> Result<Option<Ceremony>, StoreError> {
        let key = ceremony_key(hash);
        let key = &key;
        let fields: HashMap<String, String> = self
            .run(Retry::Idempotent, |mut c| async move {
                redis::cmd("HGETALL").arg(key).query_async(&mut c).await
            })
            .await?;
        Ok(read(hash, fields, at)?.filter(|c| c.kind == kind))
    }

    async fn take_ceremony(
        &self,
        hash: &SecretHash,
        kind: CeremonyKind,
        at: Timestamp,
    ) -> Result<Option<Ceremony>, StoreError> {
        let mut invocation = TAKE.prepare_invoke();
        invocation.key(ceremony_key(hash)).arg(kind.as_str());
        let invocation = &invocation;
        // Not retried: a second run after a lost answer would find it taken.
        let fields: HashMap<String, String> = self
            .run(Retry::Once, |mut c| async move {
                invocation.invoke_async(&mut c).await
            })
            .await?;
        read(hash, fields, at)
    }
}

/// A ceremony from its hash's fields, if there were any and it has not expired
/// by `at` (Redis expires the key at `expires_at`; this answers for the moment
/// asked).
fn read(
    hash: &SecretHash,
    fields: HashMap<String, String>,
    at: Timestamp,
) -> Result<Option<Ceremony>, StoreError> {
    let Some(stored) = Stored::new("ceremony", fields) else {
        return Ok(None);
    };
    let ceremony = Ceremony {
        hash: *hash,
        kind: stored.parse("kind", CeremonyKind::parse)?,
        user: stored
            .optional("user_id")
            .map(|id| UserId::parse(id).ok_or_else(|| StoreError::corrupt("ceremony user")))
            .transpose()?,
        state: stored.text("state")?.to_owned(),
        expires_at: stored.millis("expires_at")?,
    };
    Ok((ceremony.expires_at > at).then_some(ceremony))
}
