//! The signing keys in use: which key signs for each algorithm, and the JWKS.
//!
//! The store's rows are the truth (see `tessera_store::StoredKey` for the lifecycle
//! in their times); every process derives the same signer and JWKS from them, and
//! re-reads them every [`RELOAD_INTERVAL`], so a key rotated or retired by the CLI or
//! another instance takes effect here within that time. Reads on the hot path are one
//! atomic load of the current [`KeySet`].

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tessera_core::Timestamp;
use tessera_keys::{MasterKey, PrivateKeyDer, SigningKey};
use tessera_proto::Algorithm;
use tessera_store::{KeyStore, StoreError, StoredKey};

/// How often the key rows are re-read.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] tessera_keys::KeyError),
    #[error(transparent)]
    Master(#[from] tessera_keys::MasterKeyError),
    #[error(
        "the signing keys in the store are sealed with a master key: set TESSERA_MASTER_KEY \
         to the key they were sealed with"
    )]
    MasterKeyMissing,
    #[error("the store holds a key with an unknown algorithm {0:?}")]
    UnknownAlgorithm(String),
}

/// One key as the service sees it: its public facts, and the key itself.
pub struct KeyEntry {
    pub algorithm: Algorithm,
    pub kid: String,
    pub created_at: Timestamp,
    pub signs_from: Timestamp,
    pub published_until: Option<Timestamp>,
    pub retired_at: Option<Timestamp>,
    signing: Option<Arc<SigningKey>>,
}

impl KeyEntry {
    pub fn is_published(&self, now: Timestamp) -> bool {
        self.retired_at.is_none() && self.published_until.is_none_or(|until| until > now)
    }

    /// The state a listing shows.
    pub fn state(&self, now: Timestamp, signer: bool) -> &'static str {
        if self.retired_at.is_some() {
            "retired"
        } else if !self.is_published(now) {
            "expired"
        } else if signer {
            "signing"
        } else if self.signs_from > now {
            "next"
        } else {
            "published"
        }
    }
}

/// The keys at one moment, with what is derived from them.
pub struct KeySet {
    pub keys: Vec<KeyEntry>,
    signers: Vec<(Algorithm, Arc<SigningKey>)>,
    /// The JWKS document, serialised once per change.
    pub jwks: Bytes,
    /// A strong validator of `jwks`.
    pub jwks_etag: String,
}

impl KeySet {
    pub fn signer(&self, algorithm: Algorithm) -> Option<&Arc<SigningKey>> {
        self.signers
            .iter()
            .find(|(a, _)| *a == algorithm)
            .map(|(_, key)| key)
    }

    pub fn is_signer(&self, kid: &str) -> bool {
        self.signers.iter().any(|(_, key)| key.kid() == kid)
    }
}

pub struct KeyRing {
    store: Arc<dyn KeyStore>,
    master: Option<Arc<MasterKey>>,
    rotation_delay: Duration,
    current: ArcSwap<KeySet>,
}

impl KeyRing {
    /// Loads the keys, first creating one per algorithm where there is none, and
    /// sealing plain keys when a master key is given.
    pub async fn open(
        store: Arc<dyn KeyStore>,
        master: Option<Arc<MasterKey>>,
        rotation_delay: Duration,
    ) -> Result<Self, KeyRingError> {
        let existing = store.signing_keys().await?;
        for algorithm in Algorithm::ASYMMETRIC {
            let has_one = existing
                .iter()
                .any(|k| k.algorithm == algorithm.as_str() && k.retired_at.is_none());
            if !has_one {
                let now = Timestamp::now();
                let key = new_stored_key(algorithm, master.as_deref(), now, now)?;
                if store.add_first_key(key).await? {
                    tracing::info!(%algorithm, "created the first signing key");
                }
            }
        }
        if let Some(master) = &master {
            for key in store.signing_keys().await? {
                if !key.sealed {
                    let der = PrivateKeyDer::from_bytes(key.private_key.clone());
                    store
                        .replace_private_key(&key.kid, master.seal(&key.kid, &der)?, true)
                        .await?;
                    tracing::info!(kid = %key.kid, "sealed a signing key with the master key");
                }
            }
        }
        let rows = store.signing_keys().await?;
        let set = build(&rows, master.as_deref(), Timestamp::now())?;
        Ok(Self {
            store,
            master,
            rotation_delay,
            current: ArcSwap::from_pointee(set),
        })
    }

    /// Whether the private keys are sealed at rest: with a master key, `open` seals
    /// any plain one, and every key made afterwards is sealed.
    pub fn is_sealed(&self) -> bool {
        self.master.is_some()
    }

    /// The master key, which seals other secrets at rest too (TOTP secrets).
    pub fn master_key(&self) -> Option<Arc<MasterKey>> {
        self.master.clone()
    }

    pub fn current(&self) -> Arc<KeySet> {
        self.current.load_full()
    }

    /// Re-reads the rows and recomputes signers and JWKS (publication windows end
    /// with time, so this runs even when no row changed).
    pub async fn reload(&self) -> Result<(), KeyRingError> {
        let rows = self.store.signing_keys().await?;
        let set = build(&rows, self.master.as_deref(), Timestamp::now())?;
        self.current.store(Arc::new(set));
        Ok(())
    }

    /// Keeps the key set current until the task is dropped.
    pub async fn follow(self: Arc<Self>) {
        let mut tick = tokio::time::interval(RELOAD_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(error) = self.reload().await {
                tracing::warn!(%error, "could not reload the signing keys; keeping the last ones");
            }
        }
    }

    /// Creates a new key for `algorithm`, published at once. It signs after the
    /// rotation delay (or at once with `immediately`); the keys it replaces stay
    /// published until the last token they can have signed expires.
    pub async fn rotate(
        &self,
        algorithm: Algorithm,
        immediately: bool,
        longest_token_lifetime: Duration,
    ) -> Result<String, KeyRingError> {
        let now = Timestamp::now();
        let signs_from = if immediately {
            now
        } else {
            now.saturating_add(self.rotation_delay)
        };
        let key = new_stored_key(algorithm, self.master.as_deref(), now, signs_from)?;
        let kid = key.kid.clone();
        self.store
            .add_rotated_key(key, signs_from.saturating_add(longest_token_lifetime))
            .await?;
        self.reload().await?;
        Ok(kid)
    }

    /// Withdraws a key at once: it leaves the JWKS and signs nothing more. `false`
    /// if there is no such key, or it was already retired. If it was the signer for
    /// its algorithm, the next key in line signs at once; if none is left, a new one
    /// is made.
    pub async fn retire(&self, kid: &str) -> Result<bool, KeyRingError> {
        let now = Timestamp::now();
        self.reload().await?;
        let set = self.current();
        // If no other key of its algorithm could sign, its successor is created in
        // the same transaction, so no instance ever finds itself without a signer.
        let replacement = match set.keys.iter().find(|k| k.kid == kid) {
            Some(retiring) => {
                let others_usable = set.keys.iter().any(|k| {
                    k.kid != kid && k.algorithm == retiring.algorithm && k.signing.is_some()
                });
                if others_usable {
                    None
                } else {
                    Some(new_stored_key(
                        retiring.algorithm,
                        self.master.as_deref(),
                        now,
                        now,
                    )?)
                }
            }
            None => None,
        };
        if !self.store.retire_key(kid, now, replacement).await? {
            return Ok(false);
        }
        self.reload().await?;
        Ok(true)
    }
}

fn new_stored_key(
    algorithm: Algorithm,
    master: Option<&MasterKey>,
    created_at: Timestamp,
    signs_from: Timestamp,
) -> Result<StoredKey, KeyRingError> {
    let der = tessera_keys::generate(algorithm)?;
    let kid = SigningKey::from_pkcs8(algorithm, &der)?.kid().to_owned();
    let (private_key, sealed) = match master {
        Some(master) => (master.seal(&kid, &der)?, true),
        None => (der.as_bytes().to_vec(), false),
    };
    Ok(StoredKey {
        kid,
        algorithm: algorithm.as_str().to_owned(),
        private_key,
        sealed,
        created_at,
        signs_from,
        published_until: None,
        retired_at: None,
    })
}

fn build(
    rows: &[StoredKey],
    master: Option<&MasterKey>,
    now: Timestamp,
) -> Result<KeySet, KeyRingError> {
    let mut keys = Vec::with_capacity(rows.len());
    for row in rows {
        let algorithm = row
            .algorithm
            .parse::<Algorithm>()
            .ok()
            .filter(|a| a.is_asymmetric())
            .ok_or_else(|| KeyRingError::UnknownAlgorithm(row.algorithm.clone()))?;
        let usable = row.retired_at.is_none() && row.published_until.is_none_or(|t| t > now);
        // Only keys that may still be published are opened: a retired key's
        // private half is never loaded again.
        let signing = if usable {
            let der = match (row.sealed, master) {
                (true, Some(master)) => master.open(&row.kid, &row.private_key)?,
                (true, None) => return Err(KeyRingError::MasterKeyMissing),
                (false, _) => PrivateKeyDer::from_bytes(row.private_key.clone()),
            };
            Some(Arc::new(SigningKey::from_pkcs8(algorithm, &der)?))
        } else {
            None
        };
        keys.push(KeyEntry {
            algorithm,
            kid: row.kid.clone(),
            created_at: row.created_at,
            signs_from: row.signs_from,
            published_until: row.published_until,
            retired_at: row.retired_at,
            signing,
        });
    }
    let mut signers = Vec::new();
    for algorithm in Algorithm::ASYMMETRIC {
        let usable = || {
            keys.iter()
                .filter(move |k| k.algorithm == algorithm)
                .filter_map(|k| k.signing.as_ref().map(|s| (k.signs_from, s)))
        };
        // The newest key whose time has come; failing that (its predecessor was
        // retired early), the next in line: verifiers fetch an unknown kid anyway.
        let chosen = usable()
            .filter(|(from, _)| *from <= now)
            .max_by_key(|(from, _)| *from)
            .or_else(|| usable().min_by_key(|(from, _)| *from));
        if let Some((_, key)) = chosen {
            signers.push((algorithm, key.clone()));
        }
    }
    let published = keys
        .iter()
        .filter(|k| k.is_published(now))
        .filter_map(|k| k.signing.as_ref().map(|s| s.public_jwk()));
    let jwks = serde_json::to_vec(&tessera_keys::jwk_set(published))
        .map_err(|_| tessera_keys::KeyError::Sign)?;
    let digest = Sha256::digest(&jwks);
    let jwks_etag = format!(
        "\"{}\"",
        digest
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    Ok(KeySet {
        keys,
        signers,
        jwks: Bytes::from(jwks),
        jwks_etag,
    })
}
