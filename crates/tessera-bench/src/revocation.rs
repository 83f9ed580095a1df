//! Revocation latency: from the revoke call returning to a `tessera-verify`
//! verifier (following the feed, as a resource service does) refusing the token.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use tessera_verify::{ClientCredentials, RemoteVerifier, VerifyError};

#[derive(Clone)]
pub struct Client {
    pub id: String,
    pub secret: String,
}

/// Parses `ID:SECRET`.
pub fn client(text: &str) -> Result<Client, String> {
    let (id, secret) = text
        .split_once(':')
        .ok_or_else(|| "give a client as ID:SECRET".to_owned())?;
    Ok(Client {
        id: id.to_owned(),
        secret: secret.to_owned(),
    })
}

/// Mints a token with `minter` (client credentials, JWT, audience `audience`),
/// checks that `verifiers` accept it, revokes it, and times until every verifier
/// refuses it; `count` times. Prints percentiles in milliseconds.
pub async fn run(
    issuer: String,
    audience: String,
    feed: Client,
    minter: Client,
    verifiers: usize,
    count: usize,
) -> anyhow::Result<()> {
    let mut all = Vec::new();
    for _ in 0..verifiers.max(1) {
        all.push(
            RemoteVerifier::builder(&issuer)
                .audience(&audience)
                .client(ClientCredentials::new(&feed.id, &feed.secret))
                .build()
                .await?,
        );
    }
    let http = reqwest::Client::new();
    let token_endpoint = format!("{issuer}/oauth2/token");
    let revoke_endpoint = format!("{issuer}/oauth2/revoke");
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let answer: Value = http
            .post(&token_endpoint)
            .basic_auth(&minter.id, Some(&minter.secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = answer["access_token"]
            .as_str()
            .context("no access_token")?
            .to_owned();
        for verifier in &all {
            verifier
                .verify(&token)
                .await
                .with_context(|| "a fresh token was refused".to_owned())?;
        }
        http.post(&revoke_endpoint)
            .basic_auth(&minter.id, Some(&minter.secret))
            .form(&[("token", token.as_str())])
            .send()
            .await?
            .error_for_status()?;
        let revoked = Instant::now();
        let mut pending: Vec<&RemoteVerifier> = all.iter().collect();
        while !pending.is_empty() {
            pending.retain(|v| !matches!(v.local().verify(&token), Err(VerifyError::Revoked(_))));
            if revoked.elapsed() > Duration::from_secs(10) {
                bail!("a verifier still accepts a token revoked 10 s ago");
            }
            tokio::task::yield_now().await;
        }
        latencies.push(revoked.elapsed());
    }
    // Microseconds, so the percentiles are the probe's.
    let mut micros: Vec<u64> = latencies
        .iter()
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .collect();
    micros.sort_unstable();
    let at = |p: f64| crate::percentile(&micros, p) as f64 / 1000.0;
    println!(
        "revocations={} verifiers={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        micros.len(),
        all.len(),
        at(50.0),
        at(99.0),
        at(100.0)
    );
    Ok(())
}
