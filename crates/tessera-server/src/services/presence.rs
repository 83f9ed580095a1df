//! Who is online: sightings of sessions and refresh families, written to the store
//! at most once per session per minute, in batches, off the request path.
//!
//! A sighting comes from a session's use (once a minute, when its activity is due),
//! a login, a refresh-token rotation, or a resource service reporting the `sid`s
//! of the tokens it saw (`POST /v1/activity`). The answer to "who is online in the
//! last W seconds" is one store query, the same from every instance.

use std::sync::Arc;
use std::time::Duration;

use quick_cache::sync::Cache;
use tessera_core::{SessionId, Timestamp, UserId};
use tessera_store::{Online, PresenceStore, Seen, StoreError};
use tokio::sync::mpsc;

/// The longest window one may ask about; sightings older than this are purged.
pub const MAX_WINDOW: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(300);
/// One write per session per this much time, per instance.
const WRITE_EVERY_MILLIS: i64 = 60_000;
const PURGE_EVERY: Duration = Duration::from_secs(600);
/// The least time between two presence writes: a sighting is in the store at most
/// this late (who is online is told by the minute).
const WRITE_PACE: Duration = Duration::from_millis(200);

pub struct Presence {
    store: Arc<dyn PresenceStore>,
    /// The minute each session was last queued in, to drop repeats.
    written: Cache<SessionId, i64>,
    queue: mpsc::Sender<Seen>,
}

/// The writer a [`Presence`] needs in a long-running process.
pub struct PresenceWriter {
    store: Arc<dyn PresenceStore>,
    queue: mpsc::Receiver<Seen>,
}

impl Presence {
    pub fn new(store: Arc<dyn PresenceStore>, capacity: usize) -> (Arc<Self>, PresenceWriter) {
        let (queue, receiver) = mpsc::channel(16 * 1024);
        let presence = Arc::new(Self {
            store: store.clone(),
            written: Cache::new(capacity.max(1)),
            queue,
        });
        (
            presence,
            PresenceWriter {
                store,
                queue: receiver,
            },
        )
    }

    /// Notes that `sid` of `user` is in use now; cheap, never waits on the store.
    pub fn observe(&self, sid: SessionId, user: UserId, now: Timestamp) {
        let minute = now.as_millis() / WRITE_EVERY_MILLIS;
        if self.written.get(&sid) == Some(minute) {
            return;
        }
        self.written.insert(sid, minute);
        // Best effort: a full queue means the store is behind; the next minute counts.
        let _ = self.queue.try_send(Seen { sid, user, at: now });
    }

    /// These sessions or families ended: they stop counting as online at once. Best
    /// effort: a failure is logged, and the sighting ages out of the window anyway.
    pub async fn forget(&self, sids: &[SessionId]) {
        if sids.is_empty() {
            return;
        }
        for sid in sids {
            self.written.remove(sid);
        }
        if let Err(error) = self.store.forget_presence(sids).await {
            tracing::warn!(%error, "cannot forget the presence of ended sessions");
        }
    }

    /// Users and sessions seen in the last `window` (at most [`MAX_WINDOW`]).
    pub async fn online(&self, window: Duration) -> Result<Online, StoreError> {
        let since = Timestamp::now().saturating_sub(window.min(MAX_WINDOW));
        self.store.online_since(since).await
    }
}

impl PresenceWriter {
    /// Writes sightings as they come, coalescing what arrives within [`WRITE_PACE`]
    /// of the last write into one batch; purges old ones now and then. Runs until every [`Presence`] handle is gone.
    pub async fn run(mut self) {
        let mut batch = Vec::new();
        let mut purge = tokio::time::interval(PURGE_EVERY);
        loop {
            tokio::select! {
                received = self.queue.recv_many(&mut batch, 1024) => {
                    if received == 0 {
                        return;
                    }
                    match self.store.record_presence(&batch).await {
                        Ok(written) => {
                            metrics::counter!("tessera_presence_writes_total").increment(written);
                        }
                        Err(error) => tracing::warn!(%error, "cannot record presence"),
                    }
                    batch.clear();
                    // Under load sightings trickle in all the time, and a write per
                    // trickle held SQLite's one write lock nearly always: the code
                    // flow's writer then slept in the busy handler for it (a
                    // millisecond at a time). What arrives meanwhile is one write.
                    tokio::time::sleep(WRITE_PACE).await;
                }
                _ = purge.tick() => {
                    let before = Timestamp::now().saturating_sub(MAX_WINDOW);
                    if let Err(error) = self.store.purge_presence(before).await {
                        tracing::warn!(%error, "cannot purge presence");
                    }
                }
            }
        }
    }
}
