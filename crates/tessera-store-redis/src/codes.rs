//! `AuthorizationCodeStore` on Redis: one hash per code, expired by Redis at the
//! code's `forget_at`; a redemption is one script, so exactly one finds it unspent.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use redis::Script;
use tessera_core::{ClientId, Scopes, SecretHash, SessionId, Timestamp, UserId};
use tessera_store::{
    AuthorizationCode, AuthorizationCodeStore, PushedRequest, Redemption, StoreError,
};

use crate::{RedisStore, Retry, Stored, hex};

fn code_key(hash: &SecretHash) -> String {
    format!("tessera:code:{}", hex(hash))
}

fn pushed_key(hash: &SecretHash) -> String {
    format!("tessera:par:{}", hex(hash))
}

/// KEYS: the code's hash. ARGV: now. The code's fields, with `first` set to `1`
/// when this call spent it; nothing for an unknown code.
static REDEEM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local first = redis.call('HSETNX', KEYS[1], 'redeemed_at', ARGV[1])
local fields = redis.call('HGETALL', KEYS[1])
table.insert(fields, 'first')
table.insert(fields, tostring(first))
return fields
",
    )
});

fn code_from(
    hash: &SecretHash,
    fields: HashMap<String, String>,
) -> Result<Option<(AuthorizationCode, bool)>, StoreError> {
    let Some(c) = Stored::new("authorization code", fields) else {
        return Ok(None);
    };
    let code = AuthorizationCode {
        hash: *hash,
        client_id: c.parse("client_id", ClientId::parse)?,
        user: c.parse("user_id", UserId::parse)?,
        session: c.parse("session_id", |s| SessionId::parse(s).ok())?,
        redirect_uri: c.text("redirect_uri")?.to_owned(),
        scopes: c.parse("scopes", |s| Scopes::parse(s).ok())?,
        code_challenge: c.optional("code_challenge").map(str::to_owned),
        nonce: c.optional("nonce").map(str::to_owned),
        dpop_jkt: c.optional("dpop_jkt").map(str::to_owned),
        auth_time: c.millis("auth_time")?,
        family: c.parse("family_id", |s| SessionId::parse(s).ok())?,
        jti: c.text("jti")?.to_owned(),
        issued_at: c.millis("issued_at")?,
        expires_at: c.millis("expires_at")?,
        forget_at: c.millis("forget_at")?,
    };
    let first = c.text("first")? == "1";
    Ok(Some((code, first)))
}

#[async_trait]
impl AuthorizationCodeStore for RedisStore {
    async fn store_code(&self, code: AuthorizationCode) -> Result<(), StoreError> {
        let mut fields = vec![
            ("client_id", code.client_id.to_string()),
            ("user_id", code.user.to_string()),
            ("session_id", code.session.as_str().to_owned()),
            ("redirect_uri", code.redirect_uri),
            ("scopes", code.scopes.to_string()),
            ("auth_time", code.auth_time.as_millis().to_string()),
            ("family_id", code.family.as_str().to_owned()),
            ("jti", code.jti),
            ("issued_at", code.issued_at.as_millis().to_string()),
            ("expires_at", code.expires_at.as_millis().to_string()),
            ("forget_at", code.forget_at.as_millis().to_string()),
        ];
        if let Some(challenge) = code.code_challenge {
            fields.push(("code_challenge", challenge));
        }
        if let Some(nonce) = code.nonce {
            fields.push(("nonce", nonce));
        }
        if let Some(jkt) = code.dpop_jkt {
            fields.push(("dpop_jkt", jkt));
        }
        self.insert_expiring_hash(
            code_key(&code.hash),
            code.forget_at,
            &fields,
            "an authorization code",
        )
        .await
    }

    async fn redeem_code(
        &self,
        hash: &SecretHash,
        at: Timestamp,
    ) -> Result<Redemption, StoreError> {
        let mut invocation = REDEEM.prepare_invoke();
        invocation.key(code_key(hash)).arg(at.as_millis());
        let invocation = &invocation;
        // Not retried: a second run after a lost answer would call the first
        // redemption a replay.
        let fields: HashMap<String, String> = self
            .run(Retry::Once, |mut c| async move {
                invocation.invoke_async(&mut c).await
            })
            .await?;
        Ok(match code_from(hash, fields)? {
            Some((code, true)) => Redemption::First(code),
            Some((code, false)) => Redemption::Again(code),
            None => Redemption::Unknown,
        })
    }

    async fn push_request(&self, request: PushedRequest) -> Result<(), StoreError> {
        let fields = [
            ("client_id", request.client_id.to_string()),
            ("params", request.params),
            ("expires_at", request.expires_at.as_millis().to_string()),
        ];
        self.insert_expiring_hash(
            pushed_key(&request.hash),
            request.expires_at,
            &fields,
            "a pushed authorization request",
        )
        .await
    }

    async fn pushed_request(
        &self,
        hash: &SecretHash,
        at: Timestamp,
    ) -> Result<Option<PushedRequest>, StoreError> {
        let key = pushed_key(hash);
        let key = &key;
        let fields: HashMap<String, String> = self
            .run(Retry::Idempotent, |mut c| async move {
                redis::cmd("HGETALL").arg(key).query_async(&mut c).await
            })
            .await?;
        let Some(stored) = Stored::new("pushed authorization request", fields) else {
            return Ok(None);
        };
        let request = PushedRequest {
            hash: *hash,
            client_id: stored.parse("client_id", ClientId::parse)?,
            params: stored.text("params")?.to_owned(),
            expires_at: stored.millis("expires_at")?,
        };
        // Redis expires the key at `expires_at`; this answers for the moment asked.
        Ok((request.expires_at > at).then_some(request))
    }

    async fn drop_pushed_request(&self, hash: &SecretHash) -> Result<bool, StoreError> {
        let key = pushed_key(hash);
        let key = &key;
        // Not retried once it may have reached Redis: a second DEL would answer
        // that someone else took it.
        self.run(Retry::Once, |mut c| async move {
            redis::cmd("DEL").arg(key).query_async::<i64>(&mut c).await
        })
        .await
        .map(|deleted| deleted > 0)
    }
}
