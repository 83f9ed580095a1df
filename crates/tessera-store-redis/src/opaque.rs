//! `OpaqueTokenStore` on Redis: one hash per token, expired by Redis at the token's
//! expiry.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use redis::Script;
use tessera_core::{Audience, ClientId, Roles, Scopes, SecretHash, SessionId, Timestamp, UserId};
use tessera_store::{EndReason, OpaqueToken, OpaqueTokenStore, Revoked, StoreError};

use crate::{RedisStore, Retry, Stored, hex};

fn token_key(hash: &SecretHash) -> String {
    format!("tessera:opaque:{}", hex(hash))
}

/// KEYS: the token's hash. ARGV: expires at, then field/value pairs. 0 if a token
/// with this hash exists.
static STORE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1
",
    )
});

fn token_from(
    hash: &SecretHash,
    fields: HashMap<String, String>,
) -> Result<Option<OpaqueToken>, StoreError> {
    let Some(t) = Stored::new("opaque token", fields) else {
        return Ok(None);
    };
    Ok(Some(OpaqueToken {
        hash: *hash,
        jti: t.text("jti")?.to_owned(),
        client_id: t.parse("client_id", ClientId::parse)?,
        subject: t.text("subject")?.to_owned(),
        user: t.parse_optional("user_id", UserId::parse)?,
        scopes: t.parse("scopes", |s| Scopes::parse(s).ok())?,
        audience: t.parse_optional("audience", |a| Audience::parse(a).ok())?,
        session: t.parse_optional("session_id", |s| SessionId::parse(s).ok())?,
        roles: t.parse("roles", |r| Roles::from_stored(r).ok())?,
        issued_at: t.millis("issued_at")?,
        expires_at: t.millis("expires_at")?,
    }))
}

#[async_trait]
impl OpaqueTokenStore for RedisStore {
    async fn store_opaque_token(&self, token: OpaqueToken) -> Result<(), StoreError> {
        let mut invocation = STORE.prepare_invoke();
        invocation
            .key(token_key(&token.hash))
            .arg(token.expires_at.as_millis())
            .arg("jti")
            .arg(&token.jti)
            .arg("client_id")
            .arg(token.client_id.to_string())
            .arg("subject")
            .arg(&token.subject)
            .arg("scopes")
            .arg(token.scopes.to_string())
            .arg("roles")
            .arg(token.roles.to_stored())
            .arg("issued_at")
            .arg(token.issued_at.as_millis())
            .arg("expires_at")
            .arg(token.expires_at.as_millis());
        if let Some(user) = token.user {
            invocation.arg("user_id").arg(user.to_string());
        }
        if let Some(audience) = &token.audience {
            invocation.arg("audience").arg(audience.as_str());
        }
        if let Some(session) = &token.session {
            invocation.arg("session_id").arg(session.as_str());
        }
        let invocation = &invocation;
        // Not retried on a dropped connection: a second run would find the first's
        // token and report the hash as taken.
        let stored: i64 = self
            .run(Retry::Once, |mut c| async move {
                invocation.invoke_async(&mut c).await
            })
            .await?;
        if stored == 0 {
            return Err(StoreError::Conflict(
                "an opaque token with this hash exists".into(),
            ));
        }
        Ok(())
    }

    async fn opaque_token(&self, hash: &SecretHash) -> Result<Option<OpaqueToken>, StoreError> {
        let key = token_key(hash);
        let key = &key;
        let fields: HashMap<String, String> = self
            .run(Retry::Idempotent, |mut c| async move {
                redis::cmd("HGETALL").arg(key).query_async(&mut c).await
            })
            .await?;
        token_from(hash, fields)
    }

    async fn revoke_opaque_token(
        &self,
        hash: &SecretHash,
        client: &ClientId,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let Some(token) = self.opaque_token(hash).await? else {
            return Ok(false);
        };
        if token.client_id != *client {
            return Ok(false);
        }
        // The log first (see the crate docs): logged like a JWT's jti, so verifiers
        // that cached an introspection answer for this token learn of it from the
        // feed, until the token would have expired anyway.
        self.log
            .append_revocation(
                Revoked::Token(token.jti),
                token.user,
                EndReason::Revoked,
                at,
                token.expires_at,
            )
            .await?;
        let key = token_key(hash);
        let key = &key;
        self.run(Retry::Idempotent, |mut c| async move {
            redis::cmd("DEL").arg(key).query_async::<i64>(&mut c).await
        })
        .await?;
        Ok(true)
    }
}
