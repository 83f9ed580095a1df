//! What the server keeps of the store's records between requests (clients,
//! profiles, consents): each entry read at one cache generation
//! ([`ClientStore::cache_generation`]) and trusted only while the store's generation
//! is still that one, so a change by any process (the CLI, another instance) is seen
//! by the next request. A read of the store is a round trip through a database
//! driver's worker: on the authorize and token endpoints it cost as much as the rest
//! of the request.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};

use tessera_store::ClientStore;

/// Records as read at one generation. Holds at most `most` of them: past that it
/// starts again empty (a full cache of profiles is a few tens of megabytes; the
/// next reads refill it).
pub(crate) struct GenerationCache<K, V> {
    entries: RwLock<(u64, HashMap<K, V>)>,
    most: usize,
}

impl<K: Eq + Hash, V: Clone> GenerationCache<K, V> {
    pub(crate) fn new(most: usize) -> Self {
        Self {
            entries: RwLock::new((0, HashMap::new())),
            most,
        }
    }

    pub(crate) fn get(&self, generation: u64, key: &K) -> Option<V> {
        let entries = self.entries.read().ok()?;
        if entries.0 != generation {
            return None;
        }
        entries.1.get(key).cloned()
    }

    /// Keeps `value`, read from the store after the generation was `generation`.
    pub(crate) fn put(&self, generation: u64, key: K, value: V) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.0 != generation || entries.1.len() >= self.most {
                *entries = (generation, HashMap::new());
            }
            entries.1.insert(key, value);
        }
    }

    /// The cached value for `key`, or `read`'s, kept when the generation can be
    /// told and `read` found one.
    pub(crate) async fn get_or_read<E, F>(
        &self,
        generation: &Generation,
        key: K,
        read: F,
    ) -> Result<Option<V>, E>
    where
        F: Future<Output = Result<Option<V>, E>>,
    {
        let at = generation.now();
        if let Some(value) = at.and_then(|g| self.get(g, &key)) {
            return Ok(Some(value));
        }
        let value = read.await?;
        if let (Some(at), Some(value)) = (at, &value) {
            self.put(at, key, value.clone());
        }
        Ok(value)
    }
}

/// Where the cache generation is read: the client store, which keeps it for every
/// record the server caches.
#[derive(Clone)]
pub(crate) struct Generation(pub(crate) Arc<dyn ClientStore>);

impl Generation {
    /// `None` when it cannot be told: nothing cached is trusted then.
    pub(crate) fn now(&self) -> Option<u64> {
        self.0.cache_generation()
    }
}
