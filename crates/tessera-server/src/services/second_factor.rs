//! Second factors (issue 16): TOTP and recovery codes, enrolled, checked and
//! removed. Sign-in (`services/sign_in.rs`) asks for one when an account has a
//! TOTP authenticator.
//!
//! A TOTP secret is sealed under the master key like a signing key, bound to its
//! account (`totp:<user id>`: copied onto another row it does not open); without
//! a master key it is stored plainly, as keys are (`serve` warns). Stored bytes
//! begin with their form: `0x00` plain, `0x01` sealed (`MasterKey`'s format).
//! A plain secret opens whether or not a master key is set (one enrolled before
//! the key was), as plain signing keys do.
//! A code's step is recorded as used in the same statement that accepts it, so a
//! code works once, whichever instance it reaches first; that statement, and the
//! confirmation, name the secret the code was checked against, so a code of a
//! secret replaced meanwhile (an enrolment started over in another tab) counts
//! for nothing.

use std::sync::Arc;

use tessera_core::{RecoveryCode, Timestamp, TotpCode, TotpRefusal, TotpSecret, UserId};
use tessera_keys::MasterKey;
use tessera_store::{AccountStore, StoreError, TotpCredential, User};

/// The first byte of a stored secret that is not sealed.
const PLAIN: u8 = 0;

#[derive(Debug, thiserror::Error)]
pub enum SecondFactorError {
    #[error("there is no such account")]
    NoSuchUser,
    #[error("a TOTP authenticator is set up already: remove it first")]
    AlreadyEnrolled,
    #[error("no TOTP authenticator is being set up: start again")]
    NotEnrolling,
    #[error("no TOTP authenticator is set up")]
    NotEnrolled,
    #[error(transparent)]
    Refused(#[from] TotpRefusal),
    /// The issuer name or the username cannot go in an `otpauth://` link.
    #[error("{0}")]
    Link(String),
    /// The stored secret does not open: sealed with another master key, or
    /// without one set, or altered.
    #[error("the stored TOTP secret does not open: {0}")]
    Sealing(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What enrolment shows its person once: the secret as text, and the link a QR
/// code carries.
pub struct Enrolment {
    pub secret_base32: String,
    pub link: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment(<redacted>)")
    }
}

/// The name an authenticator app shows for tessera's accounts: the public URL's
/// host (`id.example.com`), which the person recognises; `tessera` if it has none.
/// A port is left out: `otpauth://` issuers cannot hold a colon.
pub fn issuer_name(public_url: &str) -> String {
    url::Url::parse(public_url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_else(|| "tessera".to_owned())
}

/// The clock TOTP codes are read against: seconds since the Unix epoch.
pub fn unix_seconds() -> u64 {
    u64::try_from(Timestamp::now().as_millis() / 1000).unwrap_or(0)
}

/// Where an account's TOTP authenticator stands.
#[derive(Debug)]
pub enum TotpState {
    None,
    /// Set up but not confirmed with a code yet.
    Enrolling(Enrolment),
    Active {
        recovery_codes_left: u32,
    },
}

/// The second factors an account has.
#[derive(Clone, Copy, Debug, Default)]
pub struct Factors {
    pub totp: bool,
    pub passkey: bool,
}

impl Factors {
    pub fn any(self) -> bool {
        self.totp || self.passkey
    }
}

pub struct SecondFactors {
    store: Arc<dyn AccountStore>,
    master: Option<Arc<MasterKey>>,
    /// The issuer name an authenticator app shows beside the account.
    issuer: String,
}

impl SecondFactors {
    pub fn new(
        store: Arc<dyn AccountStore>,
        master: Option<Arc<MasterKey>>,
        issuer: impl Into<String>,
    ) -> Self {
        Self {
            store,
            master,
            issuer: issuer.into(),
        }
    }

    /// Starts (or starts over) setting up a TOTP authenticator: a new secret,
    /// kept unconfirmed until [`Self::confirm_totp`] sees a code from it.
    pub async fn begin_totp(&self, user: &User) -> Result<Enrolment, SecondFactorError> {
        let secret = TotpSecret::generate();
        let link = secret
            .expose_link(&self.issuer, user.username.as_str())
            .map_err(|e| SecondFactorError::Link(e.to_string()))?;
        let stored = self.seal(user.id, &secret)?;
        if !self
            .store
            .begin_totp(user.id, stored, Timestamp::now())
            .await?
        {
            return Err(match self.store.totp(user.id).await? {
                Some(_) => SecondFactorError::AlreadyEnrolled,
                None => SecondFactorError::NoSuchUser,
            });
        }
        Ok(Enrolment {
            secret_base32: secret.expose_base32(),
            link,
        })
    }

    /// Confirms the authenticator being set up with a code from it (at
    /// `unix_seconds`); from then on it is the account's second factor.
    pub async fn confirm_totp(
        &self,
        user: UserId,
        code: &TotpCode,
        unix_seconds: u64,
    ) -> Result<(), SecondFactorError> {
        let (credential, secret) = self.credential(user, false).await?;
        let step = secret.check(code, unix_seconds, None)?;
        let sealed = &credential.sealed_secret;
        if self
            .store
            .confirm_totp(user, sealed, step.as_u64(), Timestamp::now())
            .await?
        {
            Ok(())
        } else {
            // Confirmed, removed or started over meanwhile by another request:
            // the code was for a secret no longer being set up.
            Err(SecondFactorError::NotEnrolling)
        }
    }

    /// Checks a code of the account's confirmed authenticator, and uses it up.
    pub async fn check_totp(
        &self,
        user: UserId,
        code: &TotpCode,
        unix_seconds: u64,
    ) -> Result<(), SecondFactorError> {
        let (credential, secret) = self.credential(user, true).await?;
        let last = credential
            .last_step
            .map(tessera_core::TotpStep::from_stored);
        let step = secret.check(code, unix_seconds, last)?;
        if self
            .store
            .use_totp_step(user, &credential.sealed_secret, step.as_u64())
            .await?
        {
            Ok(())
        } else {
            // The same code, a moment earlier, on this or another instance.
            Err(TotpRefusal::AlreadyUsed.into())
        }
    }

    /// Where the account's TOTP stands: what the account page shows. An
    /// authenticator being set up is shown again (its secret, to its own
    /// account's session), so that a page reload does not lose the enrolment.
    pub async fn state(&self, user: &User) -> Result<TotpState, SecondFactorError> {
        let Some(credential) = self.store.totp(user.id).await? else {
            return Ok(TotpState::None);
        };
        if credential.confirmed_at.is_some() {
            return Ok(TotpState::Active {
                recovery_codes_left: u32::try_from(
                    self.store.unused_recovery_codes(user.id).await?.len(),
                )
                .unwrap_or(u32::MAX),
            });
        }
        let secret = self.open(user.id, &credential.sealed_secret)?;
        let link = secret
            .expose_link(&self.issuer, user.username.as_str())
            .map_err(|e| SecondFactorError::Link(e.to_string()))?;
        Ok(TotpState::Enrolling(Enrolment {
            secret_base32: secret.expose_base32(),
            link,
        }))
    }

    /// The second factors the account has: what a sign-in's second step accepts,
    /// and what the password grant (which cannot ask for one) is refused for. A
    /// TOTP credential that does not open counts as there: the second step then
    /// says why it cannot be checked, and nothing goes around it.
    pub async fn factors(&self, user: UserId) -> Result<Factors, StoreError> {
        let totp = match self.has_totp(user).await {
            Ok(has) => has,
            Err(SecondFactorError::Store(e)) => return Err(e),
            Err(_) => true,
        };
        let passkey = !self.store.passkeys(user).await?.is_empty();
        Ok(Factors { totp, passkey })
    }

    /// Whether the account has a confirmed TOTP authenticator.
    pub async fn has_totp(&self, user: UserId) -> Result<bool, SecondFactorError> {
        Ok(self
            .store
            .totp(user)
            .await?
            .is_some_and(|c| c.confirmed_at.is_some()))
    }

    /// Removes the authenticator, confirmed or being set up; `false` if none.
    pub async fn remove_totp(&self, user: UserId) -> Result<bool, SecondFactorError> {
        Ok(self.store.remove_totp(user).await?)
    }

    /// A new set of recovery codes, replacing the account's earlier ones; shown
    /// to their person once.
    pub async fn new_recovery_codes(
        &self,
        user: UserId,
    ) -> Result<Vec<RecoveryCode>, SecondFactorError> {
        let codes = RecoveryCode::generate_set();
        let hashes = codes.iter().map(RecoveryCode::hash).collect();
        if self
            .store
            .replace_recovery_codes(user, hashes, Timestamp::now())
            .await?
        {
            Ok(codes)
        } else {
            Err(SecondFactorError::NoSuchUser)
        }
    }

    /// Removes every passkey of the account (an admin's reset); how many.
    pub async fn remove_passkeys(&self, user: UserId) -> Result<usize, SecondFactorError> {
        let mut removed = 0;
        for passkey in self.store.passkeys(user).await? {
            if self
                .store
                .remove_passkey(user, &passkey.credential_id)
                .await?
            {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Voids the account's recovery codes (its second factor is gone).
    pub async fn remove_recovery_codes(&self, user: UserId) -> Result<(), SecondFactorError> {
        self.store
            .replace_recovery_codes(user, Vec::new(), Timestamp::now())
            .await?;
        Ok(())
    }

    /// Uses one of the account's recovery codes; `false` if it is not one of its
    /// unused ones.
    pub async fn use_recovery_code(
        &self,
        user: UserId,
        code: &RecoveryCode,
    ) -> Result<bool, SecondFactorError> {
        Ok(self
            .store
            .use_recovery_code(user, &code.hash(), Timestamp::now())
            .await?)
    }

    /// The account's credential, confirmed or being set up as asked, and its
    /// secret opened.
    async fn credential(
        &self,
        user: UserId,
        confirmed: bool,
    ) -> Result<(TotpCredential, TotpSecret), SecondFactorError> {
        let credential = self
            .store
            .totp(user)
            .await?
            .filter(|c| c.confirmed_at.is_some() == confirmed)
            .ok_or(if confirmed {
                SecondFactorError::NotEnrolled
            } else {
                SecondFactorError::NotEnrolling
            })?;
        let secret = self.open(user, &credential.sealed_secret)?;
        Ok((credential, secret))
    }

    fn seal(&self, user: UserId, secret: &TotpSecret) -> Result<Vec<u8>, SecondFactorError> {
        match &self.master {
            Some(master) => master
                .seal_bytes(belongs_to(user).as_bytes(), secret.expose_bytes())
                .map_err(|e| SecondFactorError::Sealing(e.to_string())),
            None => Ok([&[PLAIN], secret.expose_bytes()].concat()),
        }
    }

    fn open(&self, user: UserId, stored: &[u8]) -> Result<TotpSecret, SecondFactorError> {
        let sealing = |why: &str| SecondFactorError::Sealing(why.to_owned());
        match (stored.split_first(), &self.master) {
            (Some((&PLAIN, plain)), _) => {
                TotpSecret::from_bytes(plain).map_err(|e| sealing(&e.to_string()))
            }
            (Some(_), Some(master)) => {
                let plain = master
                    .open_bytes(belongs_to(user).as_bytes(), stored)
                    .map_err(|e| sealing(&e.to_string()))?;
                TotpSecret::from_bytes(&plain).map_err(|e| sealing(&e.to_string()))
            }
            (Some(_), None) => Err(sealing("it is sealed, and TESSERA_MASTER_KEY is not set")),
            (None, _) => Err(sealing("it is empty")),
        }
    }
}

/// What a sealed TOTP secret is bound to.
fn belongs_to(user: UserId) -> String {
    format!("totp:{user}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::{Roles, Username};
    use tessera_store::NewUser;

    const MASTER: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    async fn setup(
        master: Option<&str>,
    ) -> (
        tempfile::TempDir,
        Arc<tessera_store_sqlite::SqliteStore>,
        SecondFactors,
        User,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            tessera_store_sqlite::SqliteStore::open(&dir.path().join("t.sqlite3"))
                .await
                .unwrap(),
        );
        let user = store
            .create_user(NewUser {
                id: UserId::generate(),
                username: Username::parse("alice").unwrap(),
                password_hash: "x".into(),
                roles: Roles::default(),
                created_at: Timestamp::now(),
            })
            .await
            .unwrap();
        let master = master.map(|m| Arc::new(MasterKey::parse(m).unwrap()));
        let service = SecondFactors::new(store.clone(), master, "tessera");
        (dir, store, service, user)
    }

    /// An authenticator app of its own: `totp-rs` from the base32 text shown.
    fn app(enrolment: &Enrolment) -> totp_rs::Totp {
        totp_rs::Builder::new()
            .with_secret(totp_rs::Secret::try_from_base32(&enrolment.secret_base32).unwrap())
            .build()
            .unwrap()
    }

    fn code_at(app: &totp_rs::Totp, unix_seconds: u64) -> TotpCode {
        TotpCode::parse(&app.generate(unix_seconds).to_string()).unwrap()
    }

    #[tokio::test]
    async fn enrol_confirm_check_and_remove_with_an_independent_authenticator() {
        for master in [Some(MASTER), None] {
            let (_dir, store, service, user) = setup(master).await;
            let enrolment = service.begin_totp(&user).await.unwrap();
            assert!(enrolment.link.starts_with("otpauth://totp/tessera:alice?"));
            assert_eq!(format!("{enrolment:?}"), "Enrolment(<redacted>)");
            let app = app(&enrolment);
            let t = 1_800_000_000;
            // Before confirmation it is no second factor.
            assert!(!service.has_totp(user.id).await.unwrap());
            assert!(matches!(
                service.check_totp(user.id, &code_at(&app, t), t).await,
                Err(SecondFactorError::NotEnrolled)
            ));
            // A wrong code does not confirm; the app's code does.
            let wrong = TotpCode::parse("000000").unwrap();
            if app.generate(t).to_string() != "000000" {
                assert!(matches!(
                    service.confirm_totp(user.id, &wrong, t).await,
                    Err(SecondFactorError::Refused(TotpRefusal::Wrong))
                ));
            }
            service
                .confirm_totp(user.id, &code_at(&app, t), t)
                .await
                .unwrap();
            assert!(service.has_totp(user.id).await.unwrap());
            // The confirming code's step is used; the next step's code works once.
            assert!(matches!(
                service.check_totp(user.id, &code_at(&app, t), t).await,
                Err(SecondFactorError::Refused(TotpRefusal::AlreadyUsed))
            ));
            let later = t + 30;
            service
                .check_totp(user.id, &code_at(&app, later), later)
                .await
                .unwrap();
            assert!(matches!(
                service
                    .check_totp(user.id, &code_at(&app, later), later)
                    .await,
                Err(SecondFactorError::Refused(TotpRefusal::AlreadyUsed))
            ));
            // A confirmed authenticator is not replaced by starting over.
            assert!(matches!(
                service.begin_totp(&user).await,
                Err(SecondFactorError::AlreadyEnrolled)
            ));
            // Sealed when there is a master key: the secret is not in the store as is.
            let stored = store.totp(user.id).await.unwrap().unwrap().sealed_secret;
            let raw = totp_rs::Secret::try_from_base32(&enrolment.secret_base32).unwrap();
            let in_the_clear = stored
                .windows(raw.as_bytes().len())
                .any(|w| w == raw.as_bytes());
            assert_eq!(in_the_clear, master.is_none());
            assert!(service.remove_totp(user.id).await.unwrap());
            assert!(!service.has_totp(user.id).await.unwrap());
        }
    }

    #[tokio::test]
    async fn a_sealed_secret_opens_only_for_its_account_and_with_its_master_key() {
        let (_dir, store, service, user) = setup(Some(MASTER)).await;
        let enrolment = service.begin_totp(&user).await.unwrap();
        let app = app(&enrolment);
        let t = 1_800_000_000;
        let sealed = store.totp(user.id).await.unwrap().unwrap().sealed_secret;
        // Copied onto another account.
        let other = store
            .create_user(NewUser {
                id: UserId::generate(),
                username: Username::parse("mallory").unwrap(),
                password_hash: "x".into(),
                roles: Roles::default(),
                created_at: Timestamp::now(),
            })
            .await
            .unwrap();
        assert!(
            store
                .begin_totp(other.id, sealed, Timestamp::now())
                .await
                .unwrap()
        );
        assert!(matches!(
            service.confirm_totp(other.id, &code_at(&app, t), t).await,
            Err(SecondFactorError::Sealing(_))
        ));
        // Without the master key, or with another.
        let without = SecondFactors::new(store.clone(), None, "tessera");
        assert!(matches!(
            without.confirm_totp(user.id, &code_at(&app, t), t).await,
            Err(SecondFactorError::Sealing(_))
        ));
        let another = SecondFactors::new(
            store.clone(),
            Some(Arc::new(MasterKey::parse(&"ab".repeat(32)).unwrap())),
            "tessera",
        );
        assert!(matches!(
            another.confirm_totp(user.id, &code_at(&app, t), t).await,
            Err(SecondFactorError::Sealing(_))
        ));
        service
            .confirm_totp(user.id, &code_at(&app, t), t)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn recovery_codes_work_once_and_a_new_set_replaces_the_old() {
        let (_dir, _store, service, user) = setup(None).await;
        let first = service.new_recovery_codes(user.id).await.unwrap();
        assert_eq!(first.len(), tessera_core::RECOVERY_CODES);
        let typed = RecoveryCode::parse(&first[0].expose().to_uppercase()).unwrap();
        assert!(service.use_recovery_code(user.id, &typed).await.unwrap());
        assert!(!service.use_recovery_code(user.id, &first[0]).await.unwrap());
        let second = service.new_recovery_codes(user.id).await.unwrap();
        assert!(!service.use_recovery_code(user.id, &first[1]).await.unwrap());
        assert!(
            service
                .use_recovery_code(user.id, &second[1])
                .await
                .unwrap()
        );
        assert!(matches!(
            service.new_recovery_codes(UserId::generate()).await,
            Err(SecondFactorError::NoSuchUser)
        ));
    }
}
