//! What tessera publishes to everyone: its issuer, its public keys, and how long
//! either may be cached.

use std::sync::Arc;
use std::time::Duration;

use crate::services::keyring::KeySet;
use crate::services::tokens::TokenIssuer;

pub struct Discovery {
    tokens: Arc<TokenIssuer>,
    /// `max-age` of the JWKS and the metadata.
    max_age: Duration,
}

impl Discovery {
    pub fn new(tokens: Arc<TokenIssuer>, max_age: Duration) -> Self {
        Self { tokens, max_age }
    }

    pub fn issuer(&self) -> &str {
        self.tokens.issuer()
    }

    /// The published keys, with their JWKS document.
    pub fn keys(&self) -> Arc<KeySet> {
        self.tokens.keys().current()
    }

    pub fn max_age(&self) -> Duration {
        self.max_age
    }
}
