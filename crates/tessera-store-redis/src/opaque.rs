//! `OpaqueTokenStore` on Redis: one hash per token, expired by Redis at the token's
//! expiry.

use std::collections::HashMap;

use async_trait::async_trait;
use tessera_core::{
    Audience, AuthMethods, ClientId, Roles, Scopes, SecretHash, SessionId, Timestamp, UserId,
};
use tessera_store::{EndReason, OpaqueToken, OpaqueTokenStore, Revoked, StoreError};

use crate::{RedisStore, Retry, Stored, hex};

fn token_key(hash: &SecretHash) -> String {
    format!("tessera:opaque:{}", hex(hash))
}

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
        methods: t.parse_optional("amr", |m| AuthMethods::parse_stored(m).ok())?,
        dpop_jkt: t.parse_optional("dpop_jkt", |j| Some(j.to_owned()))?,
        issued_at: t.millis("issued_at")?,
        expires_at: t.millis("expires_at")?,
    }))
}

#[async_trait]
impl OpaqueTokenStore for RedisStore {
    async fn store_opaque_token(&self, token: OpaqueToken) -> Result<(), StoreError> {
        let mut fields = vec![
            ("jti", token.jti),
            ("client_id", token.client_id.to_string()),
            ("subject", token.subject),
            ("scopes", token.scopes.to_string()),
            ("roles", token.roles.to_stored()),
            ("issued_at", token.issued_at.as_millis().to_string()),
            ("expires_at", token.expires_at.as_millis().to_string()),
        ];
        if let Some(user) = token.user {
            fields.push(("user_id", user.to_string()));
        }
        if let Some(audience) = &token.audience {
            fields.push(("audience", audience.as_str().to_owned()));
        }
        if let Some(session) = &token.session {
            fields.push(("session_id", session.as_str().to_owned()));
        }
        if let Some(methods) = token.methods {
            fields.push(("amr", methods.to_stored()));
        }
        if let Some(jkt) = token.dpop_jkt {
            fields.push(("dpop_jkt", jkt));
        }
        self.insert_expiring_hash(
            token_key(&token.hash),
            token.expires_at,
            &fields,
            "an opaque token",
        )
        .await
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
