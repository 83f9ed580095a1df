//! Passkeys (issue 16; the ceremonies, not wired to routes yet): registering a
//! WebAuthn credential for an account, and signing in with one, through
//! Kanidm's `webauthn-rs`.
//!
//! - The relying party is `public_url`: its host is the RP id and its origin the
//!   one origin accepted. A host that is an IP address cannot be an RP id
//!   (WebAuthn, and browsers, refuse it), so passkeys are then unavailable and say
//!   why; run tessera under a name (`localhost` will do for a test).
//! - Between a ceremony's start and finish its state (the challenge) is a
//!   ceremony in the `CeremonyStore`, taken once, on any instance: a challenge
//!   cannot be answered twice.
//! - User verification is always required (webauthn-rs's passkey policy), so a
//!   passkey is two factors on its own: something held, unlocked by something
//!   known or something one is. Its `amr` is `hwk`, or `swk` for a credential that
//!   may be synced (backup-eligible), and it makes `acr` 2.
//! - A use records the new signature counter in the statement that checks it went
//!   forward, so a cloned authenticator or a replayed assertion is refused even
//!   when two arrive at once.
//! - Registration asks for a discoverable credential where the authenticator
//!   can make one (resident key "preferred"), so that the same passkey also signs
//!   in without a username.

use std::sync::Arc;
use std::time::Duration;

use tessera_core::{AuthMethod, AuthMethods, CeremonySecret, Timestamp, UserId};
use tessera_store::{AccountStore, Ceremony, CeremonyKind, CeremonyStore, StoreError, User};

/// A passkey as the store keeps it (routes name it through here).
pub use tessera_store::PasskeyCredential;
use webauthn_rs::prelude::{
    CreationChallengeResponse, Credential, DiscoverableAuthentication, Passkey,
    PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url, Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

/// How long a ceremony waits for its authenticator.
pub const CEREMONY_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// The longest name a person may give a passkey.
const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("passkeys are not available: {0}")]
    Unavailable(String),
    #[error("this passkey ceremony has expired or was already used: start again")]
    Expired,
    #[error("the passkey was not accepted: {0}")]
    Refused(String),
    /// A counter that did not go forward: a cloned authenticator, or a replay.
    #[error("the passkey's signature counter went backwards: it may have been copied")]
    CounterWentBack,
    #[error("this passkey is registered already")]
    AlreadyRegistered,
    #[error("a passkey's name is 1 to {MAX_NAME_CHARS} characters")]
    BadName,
    #[error("there is no such account")]
    NoSuchUser,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A sign-in with a passkey, finished: whose account, and how it was proved.
#[derive(Debug)]
pub struct PasskeySignIn {
    pub user: UserId,
    pub methods: AuthMethods,
    /// The passkey's name, for the audit log.
    pub name: String,
}

/// A registration under way: the name to keep the passkey under, and the
/// challenge.
#[derive(serde::Serialize, serde::Deserialize)]
struct Registering {
    name: String,
    state: PasskeyRegistration,
}

pub struct Passkeys {
    webauthn: Result<Webauthn, String>,
    accounts: Arc<dyn AccountStore>,
    ceremonies: Arc<dyn CeremonyStore>,
}

impl Passkeys {
    /// The relying party of `public_url`.
    pub fn new(
        public_url: &str,
        accounts: Arc<dyn AccountStore>,
        ceremonies: Arc<dyn CeremonyStore>,
    ) -> Self {
        Self {
            webauthn: relying_party(public_url),
            accounts,
            ceremonies,
        }
    }

    /// Why passkeys are off (the public URL names no domain), if they are.
    pub fn unavailable(&self) -> Option<&str> {
        self.webauthn.as_ref().err().map(String::as_str)
    }

    fn webauthn(&self) -> Result<&Webauthn, PasskeyError> {
        self.webauthn
            .as_ref()
            .map_err(|why| PasskeyError::Unavailable(why.clone()))
    }

    /// Starts registering a passkey for `user`, to be kept under `name`: the
    /// options for the browser's `navigator.credentials.create`, and the secret
    /// that finishes it.
    pub async fn begin_registration(
        &self,
        user: &User,
        name: &str,
    ) -> Result<(CeremonySecret, CreationChallengeResponse), PasskeyError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(PasskeyError::BadName);
        }
        let webauthn = self.webauthn()?;
        let existing = self.accounts.passkeys(user.id).await?;
        let exclude = existing.iter().map(|p| p.credential_id.clone()).collect();
        let (mut options, state) = webauthn
            .start_passkey_registration(
                user_handle(user.id),
                user.username.as_str(),
                user.username.as_str(),
                Some(exclude),
            )
            .map_err(refused)?;
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(webauthn_rs_proto::ResidentKeyRequirement::Preferred);
        }
        let pending = Registering {
            name: name.to_owned(),
            state,
        };
        let secret = self
            .begin(CeremonyKind::PasskeyRegistration, Some(user.id), &pending)
            .await?;
        Ok((secret, options))
    }

    /// Finishes a registration `begin_registration` started for the same `user`.
    pub async fn finish_registration(
        &self,
        user: &User,
        pending: &CeremonySecret,
        response: &RegisterPublicKeyCredential,
    ) -> Result<PasskeyCredential, PasskeyError> {
        let webauthn = self.webauthn()?;
        let (owner, registering): (_, Registering) = self
            .take(CeremonyKind::PasskeyRegistration, pending)
            .await?;
        if owner != Some(user.id) {
            return Err(PasskeyError::Expired);
        }
        let passkey = webauthn
            .finish_passkey_registration(response, &registering.state)
            .map_err(refused)?;
        let credential = Credential::from(passkey.clone());
        let record = PasskeyCredential {
            credential_id: passkey.cred_id().to_vec(),
            user: user.id,
            name: registering.name,
            passkey: to_json(&passkey)?,
            sign_count: credential.counter,
            backup_eligible: credential.backup_eligible,
            created_at: Timestamp::now(),
            last_used_at: None,
        };
        match self.accounts.add_passkey(record.clone()).await {
            Ok(true) => Ok(record),
            Ok(false) => Err(PasskeyError::NoSuchUser),
            Err(StoreError::Conflict(_)) => Err(PasskeyError::AlreadyRegistered),
            Err(e) => Err(e.into()),
        }
    }

    /// The user's passkeys, oldest first.
    pub async fn of(&self, user: UserId) -> Result<Vec<PasskeyCredential>, PasskeyError> {
        Ok(self.accounts.passkeys(user).await?)
    }

    /// The passkey with this credential id, whoever's it is.
    pub async fn stored(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<PasskeyCredential>, PasskeyError> {
        Ok(self.accounts.passkey(credential_id).await?)
    }

    /// Removes one of the user's passkeys; `false` if they have none by this id.
    pub async fn remove(&self, user: UserId, credential_id: &[u8]) -> Result<bool, PasskeyError> {
        Ok(self.accounts.remove_passkey(user, credential_id).await?)
    }

    /// Starts a sign-in with one of `user`'s passkeys: the options for the
    /// browser's `navigator.credentials.get`, and the secret that finishes it.
    pub async fn begin_sign_in(
        &self,
        user: &User,
    ) -> Result<(CeremonySecret, RequestChallengeResponse), PasskeyError> {
        let webauthn = self.webauthn()?;
        let passkeys = self
            .accounts
            .passkeys(user.id)
            .await?
            .iter()
            .map(|p| from_json(&p.passkey))
            .collect::<Result<Vec<Passkey>, _>>()?;
        if passkeys.is_empty() {
            return Err(PasskeyError::Refused(
                "this account has no passkey".to_owned(),
            ));
        }
        let (options, state) = webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(refused)?;
        let secret = self
            .begin(CeremonyKind::PasskeySignIn, Some(user.id), &state)
            .await?;
        Ok((secret, options))
    }

    /// Starts a sign-in with any passkey the authenticator holds for tessera
    /// (discoverable credentials): no account named, the authenticator says whose
    /// it is.
    pub async fn begin_discoverable(
        &self,
    ) -> Result<(CeremonySecret, RequestChallengeResponse), PasskeyError> {
        let webauthn = self.webauthn()?;
        let (options, state) = webauthn
            .start_discoverable_authentication()
            .map_err(refused)?;
        let secret = self
            .begin(CeremonyKind::PasskeySignIn, None, &state)
            .await?;
        Ok((secret, options))
    }

    /// Finishes a sign-in `begin_sign_in` or `begin_discoverable` started: the
    /// account it proves, once. For `begin_sign_in`'s, the passkey must be of the
    /// account it named.
    pub async fn finish_sign_in(
        &self,
        pending: &CeremonySecret,
        response: &PublicKeyCredential,
    ) -> Result<PasskeySignIn, PasskeyError> {
        let webauthn = self.webauthn()?;
        let ceremony = self
            .ceremonies
            .take_ceremony(
                &pending.hash(),
                CeremonyKind::PasskeySignIn,
                Timestamp::now(),
            )
            .await?
            .ok_or(PasskeyError::Expired)?;
        let not_registered = || PasskeyError::Refused("this passkey is not registered".to_owned());
        let (stored, mut passkey, result) = match ceremony.user {
            Some(user) => {
                let state: PasskeyAuthentication = from_json(&ceremony.state)?;
                let result = webauthn
                    .finish_passkey_authentication(response, &state)
                    .map_err(counter_or_refused)?;
                let stored = self
                    .accounts
                    .passkey(result.cred_id())
                    .await?
                    .filter(|p| p.user == user)
                    .ok_or_else(not_registered)?;
                let passkey: Passkey = from_json(&stored.passkey)?;
                (stored, passkey, result)
            }
            None => {
                let state: DiscoverableAuthentication = from_json(&ceremony.state)?;
                let (handle, credential_id) = webauthn
                    .identify_discoverable_authentication(response)
                    .map_err(refused)?;
                let stored = self
                    .accounts
                    .passkey(credential_id)
                    .await?
                    // The authenticator names the account; the store must agree.
                    .filter(|p| user_handle(p.user) == handle)
                    .ok_or_else(not_registered)?;
                let passkey: Passkey = from_json(&stored.passkey)?;
                let result = webauthn
                    .finish_discoverable_authentication_v2(response, state, &passkey)
                    .map_err(counter_or_refused)?;
                (stored, passkey, result)
            }
        };
        passkey.update_credential(&result);
        if !self
            .accounts
            .use_passkey(
                &stored.credential_id,
                to_json(&passkey)?,
                result.counter(),
                Timestamp::now(),
            )
            .await?
        {
            return Err(PasskeyError::CounterWentBack);
        }
        let held = if stored.backup_eligible || result.backup_eligible() {
            AuthMethod::SoftwareKey
        } else {
            AuthMethod::HardwareKey
        };
        Ok(PasskeySignIn {
            user: stored.user,
            methods: AuthMethods::default().with(held),
            name: stored.name,
        })
    }

    /// Keeps a ceremony's state for its finish.
    async fn begin<T: serde::Serialize>(
        &self,
        kind: CeremonyKind,
        user: Option<UserId>,
        state: &T,
    ) -> Result<CeremonySecret, PasskeyError> {
        let secret = CeremonySecret::generate();
        self.ceremonies
            .begin_ceremony(Ceremony {
                hash: secret.hash(),
                kind,
                user,
                state: to_json(state)?,
                expires_at: Timestamp::now().saturating_add(CEREMONY_LIFETIME),
            })
            .await?;
        Ok(secret)
    }

    /// Takes a ceremony's state, once.
    async fn take<T: serde::de::DeserializeOwned>(
        &self,
        kind: CeremonyKind,
        pending: &CeremonySecret,
    ) -> Result<(Option<UserId>, T), PasskeyError> {
        let ceremony = self
            .ceremonies
            .take_ceremony(&pending.hash(), kind, Timestamp::now())
            .await?
            .ok_or(PasskeyError::Expired)?;
        Ok((ceremony.user, from_json(&ceremony.state)?))
    }
}

/// The relying party of `public_url`, or why there is none.
fn relying_party(public_url: &str) -> Result<Webauthn, String> {
    let origin = Url::parse(public_url).map_err(|e| format!("the public URL: {e}"))?;
    let Some(rp_id) = origin.domain() else {
        return Err(format!(
            "the public URL {public_url} names no domain (an IP address cannot be a WebAuthn \
             relying party): set public_url to a name, such as http://localhost:PORT"
        ));
    };
    WebauthnBuilder::new(rp_id, &origin)
        .and_then(|builder| builder.rp_name("tessera").build())
        .map_err(|e| format!("the public URL {public_url}: {e}"))
}

/// The user handle authenticators keep: the account's id.
fn user_handle(user: UserId) -> Uuid {
    Uuid::from_bytes(*user.as_bytes())
}

fn counter_or_refused(error: WebauthnError) -> PasskeyError {
    match error {
        WebauthnError::CredentialPossibleCompromise => PasskeyError::CounterWentBack,
        e => refused(e),
    }
}

fn refused(error: WebauthnError) -> PasskeyError {
    PasskeyError::Refused(error.to_string())
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, PasskeyError> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid(e.to_string()).into())
}

fn from_json<T: serde::de::DeserializeOwned>(stored: &str) -> Result<T, PasskeyError> {
    serde_json::from_str(stored).map_err(|_| StoreError::corrupt("passkey state").into())
}
