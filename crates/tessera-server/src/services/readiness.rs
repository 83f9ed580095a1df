//! Whether this instance can serve: every store answers.

use std::sync::Arc;

use tessera_store::{Health, StoreError};

use crate::services::keyring::KeyRing;

pub struct Readiness {
    stores: Arc<dyn Health>,
    keys: Arc<KeyRing>,
}

/// What a ready instance reports.
pub struct Ready {
    /// Whether the private signing keys are sealed at rest.
    pub keys_sealed: bool,
}

impl Readiness {
    pub fn new(stores: Arc<dyn Health>, keys: Arc<KeyRing>) -> Self {
        Self { stores, keys }
    }

    pub async fn check(&self) -> Result<Ready, StoreError> {
        self.stores.ping().await?;
        Ok(Ready {
            keys_sealed: self.keys.is_sealed(),
        })
    }
}
