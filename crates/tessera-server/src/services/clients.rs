//! OAuth clients: registering them, and authenticating them at the token endpoint.
//!
//! Client secrets are 256 random bits (`tcs_…`), so a plain SHA-256 is the right way
//! to keep them: there is nothing to brute-force, and checking one costs a
//! microsecond rather than the tens of milliseconds Argon2 spends on a password.
//!
//! What did cost was reading the client from the store on every request to the
//! token and introspection endpoints: a SQLite round trip through sqlx's worker
//! thread took about as long as a whole hello-world request. Clients are therefore
//! cached, keyed by the store's clients generation, which changes (for every
//! process) whenever a client is added or removed and is read without a round trip:
//! a client removed with the CLI is refused by the next request, as before.

use std::sync::Arc;
use std::time::Duration;

use tessera_core::{
    Algorithm, Audience, ClientId, ClientName, ClientSecret, GrantType, MAX_ACCESS_TTL,
    MIN_ACCESS_TTL, Scopes, Timestamp, TokenFormat,
};
use tessera_store::{
    ClientStore, CreateClientError, EndReason, RevocationLog, Revoked, StoreError,
};

/// What a client of the browser flow registers, as [`ClientSpec`] takes it: the
/// store's record, named here so that routes reach it through this service.
pub use tessera_store::{Client, CodeFlow};

use crate::services::cache::{Generation, GenerationCache};

/// What `tessera client add` and `POST /admin/v1/clients` ask for.
pub struct ClientSpec {
    pub name: ClientName,
    pub grants: Vec<GrantType>,
    pub public: bool,
    pub scopes: Scopes,
    pub audiences: Vec<Audience>,
    pub token_format: TokenFormat,
    pub algorithm: Algorithm,
    pub access_ttl: Duration,
    /// Every access token bound to the client's key (DPoP).
    pub dpop_bound_access_tokens: bool,
    /// Checked and put in order by [`Clients::add`].
    pub code_flow: CodeFlow,
}

impl ClientSpec {
    /// The access-token lifetime of a client that names none.
    pub const DEFAULT_ACCESS_TTL: Duration = Duration::from_secs(300);
}

#[derive(Debug, thiserror::Error)]
pub enum AddClientError {
    #[error("{0}")]
    Invalid(String),
    #[error("a client named {0:?} exists")]
    NameTaken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a client identified itself at the token endpoint.
pub struct PresentedClient {
    pub id: String,
    /// `None` for a public client, which sends only its id.
    pub secret: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    /// Unknown client, wrong secret, a secret for a public client or none for a
    /// confidential one: one answer for all, so nothing is learnt by probing.
    #[error("client authentication failed")]
    Failed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct Clients {
    store: Arc<dyn ClientStore>,
    log: Arc<dyn RevocationLog>,
    cache: Arc<GenerationCache<ClientId, Client>>,
    generation: Generation,
}

impl Clients {
    pub fn new(store: Arc<dyn ClientStore>, log: Arc<dyn RevocationLog>) -> Self {
        Self {
            generation: Generation(store.clone()),
            store,
            log,
            // Holds no more clients than the store does.
            cache: Arc::new(GenerationCache::new(usize::MAX)),
        }
    }

    /// The client with this id, from the cache when the store's clients have not
    /// changed since it was read.
    pub async fn get(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        self.cache
            .get_or_read(&self.generation, *id, self.store.client(id))
            .await
    }

    /// Registers a client; the secret (for a confidential client) is returned once
    /// and kept only as its hash.
    pub async fn add(
        &self,
        spec: ClientSpec,
        hs256_configured: bool,
    ) -> Result<(Client, Option<ClientSecret>), AddClientError> {
        let invalid = |m: &str| Err(AddClientError::Invalid(m.to_owned()));
        let mut grants = spec.grants;
        grants.sort();
        grants.dedup();
        if grants.is_empty() {
            return invalid("give at least one grant with --grant");
        }
        if spec.public
            && grants
                .iter()
                .any(|g| matches!(g, GrantType::ClientCredentials | GrantType::TokenExchange))
        {
            return invalid(
                "a public client cannot use client_credentials or token exchange: those grants \
                 need a client that keeps a secret",
            );
        }
        if !(MIN_ACCESS_TTL..=MAX_ACCESS_TTL).contains(&spec.access_ttl) {
            return invalid("--access-ttl must be between 10s and 24h");
        }
        if spec.algorithm == Algorithm::HS256 && !hs256_configured {
            return invalid(
                "HS256 needs a shared secret: set tokens.hs256_secret (or \
                 TESSERA_TOKENS__HS256_SECRET) first",
            );
        }
        let code_flow = checked_code_flow(&grants, spec.code_flow)?;
        let secret = (!spec.public).then(ClientSecret::generate);
        let client = Client {
            id: ClientId::generate(),
            name: spec.name,
            secret_hash: secret.as_ref().map(ClientSecret::hash),
            grants,
            scopes: spec.scopes,
            audiences: spec.audiences,
            token_format: spec.token_format,
            algorithm: spec.algorithm,
            access_ttl: spec.access_ttl,
            dpop_bound_access_tokens: spec.dpop_bound_access_tokens,
            created_at: Timestamp::now(),
            code_flow,
        };
        match self.store.create_client(client.clone()).await {
            Ok(()) => Ok((client, secret)),
            Err(CreateClientError::NameTaken) => {
                Err(AddClientError::NameTaken(client.name.to_string()))
            }
            Err(CreateClientError::Store(e)) => Err(e.into()),
        }
    }

    pub async fn list(&self) -> Result<Vec<Client>, StoreError> {
        self.store.list_clients().await
    }

    /// The longest an access token can live: the longest of the clients' lifetimes
    /// and `also` (the session token's), for how long a revocation must be kept.
    pub async fn longest_access_ttl(
        &self,
        also: std::time::Duration,
    ) -> Result<std::time::Duration, StoreError> {
        Ok(self
            .list()
            .await?
            .iter()
            .map(|c| c.access_ttl)
            .fold(also, std::cmp::Ord::max))
    }

    /// The client named by its id or its name.
    pub async fn find(&self, id_or_name: &str) -> Result<Option<Client>, StoreError> {
        if let Some(id) = ClientId::parse(id_or_name) {
            return self.store.client(&id).await;
        }
        match ClientName::parse(id_or_name) {
            Ok(name) => self.store.client_by_name(&name).await,
            Err(_) => Ok(None),
        }
    }

    /// Removes a client and ends every token issued to it: a `client` cut-off in
    /// the revocation log first (kept as long as its tokens can live), so that from
    /// the moment it is durable every verifier refuses them, then the client
    /// itself, so it can get no new ones. `false` if there was no such client.
    pub async fn remove(&self, id: &ClientId) -> Result<bool, StoreError> {
        let Some(client) = self.store.client(id).await? else {
            return Ok(false);
        };
        let at = Timestamp::now();
        self.log
            .append_revocation(
                Revoked::Client(client.id),
                None,
                EndReason::ClientRemoved,
                at,
                at.saturating_add(client.access_ttl),
            )
            .await?;
        self.store.remove_client(id).await
    }

    /// A new secret for a confidential client, returned once and kept as its hash;
    /// the old one stops working on every instance at once. `None` if there is no
    /// such confidential client.
    pub async fn rotate_secret(&self, id: &ClientId) -> Result<Option<ClientSecret>, StoreError> {
        let secret = ClientSecret::generate();
        let replaced = self.store.replace_client_secret(id, &secret.hash()).await?;
        Ok(replaced.then_some(secret))
    }

    pub async fn authenticate(
        &self,
        presented: &PresentedClient,
    ) -> Result<Client, ClientAuthError> {
        let client = match ClientId::parse(&presented.id) {
            Some(id) => self.get(&id).await?,
            None => None,
        };
        let presented_hash = presented
            .secret
            .as_deref()
            .map(|s| ClientSecret::parse(s).map(|s| s.hash()));
        let Some(client) = client else {
            return Err(ClientAuthError::Failed);
        };
        let accepted = match (&client.secret_hash, presented_hash) {
            (None, None) => true,
            (Some(stored), Some(Some(presented))) => stored.matches(&presented),
            _ => false,
        };
        if accepted {
            Ok(client)
        } else {
            Err(ClientAuthError::Failed)
        }
    }
}

/// A code-flow registration that holds together: redirect URIs exactly when the
/// client may use the authorization-code grant (and the rest of the flow's settings
/// only then), ID tokens signed asymmetrically (a relying party verifies them with
/// the published keys), and the URI lists in order without duplicates.
fn checked_code_flow(grants: &[GrantType], mut flow: CodeFlow) -> Result<CodeFlow, AddClientError> {
    let invalid = |m: &str| Err(AddClientError::Invalid(m.to_owned()));
    flow.redirect_uris.sort();
    flow.redirect_uris.dedup();
    flow.post_logout_redirect_uris.sort();
    flow.post_logout_redirect_uris.dedup();
    if grants.contains(&GrantType::AuthorizationCode) {
        if flow.redirect_uris.is_empty() {
            return invalid(
                "the authorization_code grant needs at least one redirect URI (--redirect-uri)",
            );
        }
    } else if flow != CodeFlow::default() {
        return invalid(
            "redirect and logout URIs, first-party, PAR and the ID-token algorithm are for a \
             client with the authorization_code grant",
        );
    }
    if !Algorithm::ASYMMETRIC.contains(&flow.id_token_algorithm) {
        return invalid("ID tokens are signed with RS256, ES256 or EdDSA (--id-token-alg)");
    }
    Ok(flow)
}
