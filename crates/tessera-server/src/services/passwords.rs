//! Password hashing with Argon2id on a dedicated, bounded pool of threads.
//!
//! Why a pool of our own rather than `spawn_blocking`: hashing must never starve the
//! async runtime that answers session checks. The pool has one thread per core and
//! a bounded queue (a full queue answers 503 rather than letting latency grow without
//! bound), and its threads run under `SCHED_IDLE`, so when logins and session checks
//! compete for the cores the session checks go first, while an otherwise idle machine
//! still hashes at full speed.

use std::sync::Arc;
use std::time::Instant;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;
use tessera_core::Password;
use tokio::sync::oneshot;

use crate::config::PasswordConfig;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("too many password checks are waiting; try again shortly")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

pub struct Verification {
    pub matches: bool,
    /// When the password matched a hash made with other parameters than the configured
    /// ones: a new hash with the current parameters, to store in its place.
    pub rehashed: Option<String>,
}

const SALT_BYTES: usize = 16;

/// One hashing thread's state: the configured parameters and the Argon2 memory,
/// allocated once and reused by every hash the thread computes.
///
/// Reusing the memory is the one thing this module does beyond the `argon2` crate's
/// `PasswordHasher`/`PasswordVerifier`, which allocate (and the kernel zeroes) 19 MiB
/// per hash: measured here, that allocation costs about 10% of the hash rate. The
/// hashing itself is the crate's (`hash_password_into_with_memory`); the tests below
/// check that both paths accept and refuse exactly the same passwords.
pub(crate) struct Workspace {
    params: Params,
    blocks: Vec<Block>,
}

impl Workspace {
    pub(crate) fn new(params: Params) -> Self {
        Self {
            params,
            blocks: Vec::new(),
        }
    }

    fn compute(
        &mut self,
        algorithm: Algorithm,
        version: Version,
        params: Params,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<(), argon2::Error> {
        let needed = params.block_count();
        if self.blocks.len() < needed {
            self.blocks.resize(needed, Block::default());
        }
        Argon2::new(algorithm, version, params).hash_password_into_with_memory(
            password,
            salt,
            out,
            &mut self.blocks[..needed],
        )
    }

    /// A PHC string for `password` with the configured parameters and a fresh salt.
    pub(crate) fn hash(&mut self, password: &[u8]) -> Result<String, String> {
        let salt = tessera_core::random_bytes::<SALT_BYTES>();
        let params = self.params.clone();
        let length = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let mut out = [0u8; Output::MAX_LENGTH];
        let out = out.get_mut(..length).ok_or("output length")?;
        self.compute(
            Algorithm::Argon2id,
            Version::V0x13,
            params.clone(),
            password,
            &salt,
            out,
        )
        .map_err(|e| e.to_string())?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
            salt: Some(Salt::new(&salt).map_err(|e| e.to_string())?),
            hash: Some(Output::new(out).map_err(|e| e.to_string())?),
        };
        Ok(phc.to_string())
    }

    /// Whether `password` matches the PHC string `stored`, computed with the
    /// parameters, algorithm and salt written in it. Anything malformed matches nothing.
    pub(crate) fn verify(&mut self, password: &[u8], stored: &PasswordHash) -> bool {
        let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
            return false;
        };
        let Ok(algorithm) = Algorithm::try_from(stored.algorithm.as_str()) else {
            return false;
        };
        let version = match stored.version.map(Version::try_from).transpose() {
            Ok(version) => version.unwrap_or_default(),
            Err(_) => return false,
        };
        let Ok(params) = Params::try_from(stored) else {
            return false;
        };
        let mut out = [0u8; Output::MAX_LENGTH];
        let Some(out) = out.get_mut(..expected.len()) else {
            return false;
        };
        self.compute(algorithm, version, params, password, salt.as_ref(), out)
            .is_ok()
            && bool::from(out.ct_eq(expected.as_bytes()))
    }

    fn is_current(&self, stored: &PasswordHash) -> bool {
        Params::try_from(stored).is_ok_and(|p| {
            (p.m_cost(), p.t_cost(), p.p_cost())
                == (
                    self.params.m_cost(),
                    self.params.t_cost(),
                    self.params.p_cost(),
                )
        }) && stored.algorithm == Algorithm::Argon2id.ident()
            && stored.version == Some(Version::V0x13.into())
    }
}

type Job = Box<dyn FnOnce(&mut Workspace) + Send>;

pub struct PasswordHasher {
    jobs: crossbeam_channel::Sender<Job>,
    /// A hash of a random password, verified against when the user does not exist so
    /// that "no such user" takes as long as "wrong password".
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    pub fn start(config: &PasswordConfig, threads: usize) -> Result<Self, String> {
        let params = config.argon2_params()?;
        let (jobs, queue) = crossbeam_channel::bounded::<Job>(config.queue_depth);
        for index in 0..threads.max(1) {
            let queue = queue.clone();
            let mut workspace = Workspace::new(params.clone());
            std::thread::Builder::new()
                .name(format!("tessera-hash-{index}"))
                .spawn(move || {
                    lower_this_threads_priority();
                    for job in queue {
                        job(&mut workspace);
                    }
                })
                .map_err(|e| format!("cannot start a hashing thread: {e}"))?;
        }
        let dummy = tessera_core::random_bytes::<32>();
        let dummy_hash = Workspace::new(params).hash(&dummy)?;
        Ok(Self {
            jobs,
            dummy_hash: dummy_hash.into(),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Workspace) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |workspace| {
            let started = Instant::now();
            let value = work(workspace);
            metrics::histogram!("tessera_password_hash_seconds")
                .record(started.elapsed().as_secs_f64());
            let _ = done.send(value);
        });
        self.jobs.try_send(job).map_err(|e| match e {
            crossbeam_channel::TrySendError::Full(_) => HashError::Busy,
            crossbeam_channel::TrySendError::Disconnected(_) => {
                HashError::Failed("the hashing threads have stopped".into())
            }
        })?;
        result
            .await
            .map_err(|_| HashError::Failed("a hashing thread stopped mid-job".into()))
    }

    /// A new PHC string for `password`, with a fresh random salt.
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        self.run(move |workspace| workspace.hash(password.expose()).map_err(HashError::Failed))
            .await?
    }

    /// Checks `password` against `stored`, or against a dummy hash when there is no
    /// stored hash (unknown user), so both answers take the same time.
    pub async fn verify(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<Verification, HashError> {
        let known_user = stored.is_some();
        let stored: Arc<str> = stored.map_or_else(|| self.dummy_hash.clone(), Into::into);
        let dummy = self.dummy_hash.clone();
        self.run(move |workspace| {
            let parsed = PasswordHash::new(&stored).ok();
            // An unparsable stored hash matches nothing; do the same work anyway.
            let verified = match &parsed {
                Some(parsed) => workspace.verify(password.expose(), parsed),
                None => PasswordHash::new(&dummy)
                    .map(|d| workspace.verify(password.expose(), &d))
                    .unwrap_or(false),
            };
            let matches = verified && known_user;
            let outdated = parsed.as_ref().is_none_or(|p| !workspace.is_current(p));
            let rehashed = (matches && outdated)
                .then(|| workspace.hash(password.expose()).ok())
                .flatten();
            Verification { matches, rehashed }
        })
        .await
    }
}

#[cfg(target_os = "linux")]
fn lower_this_threads_priority() {
    // SCHED_IDLE: the thread runs only on CPU time no normal thread wants, and any
    // waking request handler preempts it at once. Measured here, nice 10 still let
    // hashing triple the p99 of session checks; SCHED_IDLE keeps it under 2x, and
    // costs nothing when the machine is otherwise idle. Under a CPU-saturating load
    // of other requests, logins slow down first, which is the order of sacrifice we
    // want. Lowering one's own priority needs no privilege; on failure fall back to
    // nice 10, and failing that keep the default.
    // SAFETY: plain system calls on the calling thread (`0`); `param` outlives the
    // call and is only read.
    #[allow(unsafe_code)]
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            let _ = libc::setpriority(libc::PRIO_PROCESS, 0, 10);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_threads_priority() {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;

    fn small() -> PasswordConfig {
        PasswordConfig {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            hash_threads: 1,
            queue_depth: 4,
        }
    }

    fn pw(s: &str) -> Password {
        Password::parse(s.into()).unwrap()
    }

    #[tokio::test]
    async fn hashes_verify_and_wrong_passwords_fail() {
        let hasher = PasswordHasher::start(&small(), 1).unwrap();
        let hash = hasher.hash(pw("correct horse")).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
        let ok = hasher
            .verify(pw("correct horse"), Some(hash.clone()))
            .await
            .unwrap();
        assert!(ok.matches && ok.rehashed.is_none());
        let wrong = hasher
            .verify(pw("wrong horse"), Some(hash.clone()))
            .await
            .unwrap();
        assert!(!wrong.matches && wrong.rehashed.is_none());
        assert!(
            !hasher
                .verify(pw("correct horse"), None)
                .await
                .unwrap()
                .matches
        );
        for garbage in ["garbage", "", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ"] {
            let v = hasher
                .verify(pw("correct horse"), Some(garbage.into()))
                .await
                .unwrap();
            assert!(!v.matches && v.rehashed.is_none(), "{garbage}");
        }

        let stronger = PasswordConfig {
            memory_kib: 128,
            ..small()
        };
        let rehasher = PasswordHasher::start(&stronger, 1).unwrap();
        let v = rehasher
            .verify(pw("correct horse"), Some(hash))
            .await
            .unwrap();
        assert!(v.matches);
        assert!(v.rehashed.unwrap().contains("m=128"));
    }

    /// Our reused-memory path and the crate's own hasher and verifier agree, both ways,
    /// for every Argon2 variant and for parameters other than the configured ones.
    #[test]
    fn agrees_with_the_crates_own_hasher_and_verifier() {
        let mut workspace = Workspace::new(small().argon2_params().unwrap());
        let ours = workspace.hash(b"correct horse").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong horse", &parsed)
                .is_err()
        );

        for algorithm in [Algorithm::Argon2id, Algorithm::Argon2i, Algorithm::Argon2d] {
            for (m, t, p) in [(64, 1, 1), (256, 2, 2), (32, 3, 1)] {
                let argon = Argon2::new(
                    algorithm,
                    Version::V0x13,
                    Params::new(m, t, p, None).unwrap(),
                );
                let theirs = argon.hash_password(b"correct horse").unwrap();
                assert!(workspace.verify(b"correct horse", &theirs), "{theirs}");
                assert!(!workspace.verify(b"correct horsf", &theirs), "{theirs}");
                assert!(!workspace.verify(b"", &theirs), "{theirs}");
            }
        }
        // the reused memory grew for the larger hash and still verifies small ones
        assert!(workspace.verify(b"correct horse", &parsed));
        // a version-0x10 hash is computed as such
        let old = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x10,
            Params::new(64, 1, 1, None).unwrap(),
        )
        .hash_password(b"correct horse")
        .unwrap();
        assert!(workspace.verify(b"correct horse", &old));
        assert!(
            !workspace.is_current(&old),
            "an old version is re-hashed at next login"
        );
        assert!(workspace.is_current(&parsed));
    }
}
