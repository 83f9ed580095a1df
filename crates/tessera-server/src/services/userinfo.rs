//! The userinfo endpoint's answer (OpenID Connect Core §5.3): the standard claims
//! the access token's scopes allow about its user.
//!
//! Which tokens it takes: any live access token of this issuer that carries the
//! `openid` scope and speaks for a user, whatever its audience. A code-flow client
//! whose tokens are for a resource service (its registered audience) can then still
//! read userinfo with them, as every OpenID Connect client expects; the `openid`
//! scope, granted only by the user through the browser flow, is what allows it.
//! HS256 tokens are refused: whoever verifies them holds the secret and could make
//! one for anyone.

use std::sync::Arc;

use serde::Serialize;
use tessera_core::{PresentedToken, Scopes, UserId};
use tessera_proto::scope::oidc;
use tessera_store::{Profile, User};

use tessera_verify::{Presented, VerifyError};

use crate::services::accounts::Accounts;
use crate::services::dpop::DpopProofs;
use crate::services::id_tokens::ProfileClaims;
use crate::services::introspection::{Description, Introspection};
use crate::services::oauth::OAuthError;

#[derive(Debug)]
pub enum UserInfoError {
    /// Not a live access token of this issuer for a user (RFC 6750 `invalid_token`).
    InvalidToken(&'static str),
    /// Live, but bound to a key and shown without a good proof of it (or not
    /// bound and shown as `DPoP`).
    Binding(VerifyError),
    /// Live, but without the `openid` scope (RFC 6750 `insufficient_scope`).
    InsufficientScope,
    OAuth(OAuthError),
}

impl From<OAuthError> for UserInfoError {
    fn from(error: OAuthError) -> Self {
        Self::OAuth(error)
    }
}

/// The answer: `sub` and what the scopes allow.
#[derive(Debug)]
pub struct UserInfo {
    user: User,
    profile: Option<Profile>,
    scopes: Scopes,
}

impl Serialize for UserInfo {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Body<'a> {
            sub: String,
            #[serde(flatten)]
            claims: ProfileClaims<'a>,
        }
        Body {
            sub: self.user.id.to_string(),
            claims: ProfileClaims::of(&self.scopes, &self.user, self.profile.as_ref()),
        }
        .serialize(serializer)
    }
}

pub struct UserInfoService {
    introspection: Arc<Introspection>,
    accounts: Accounts,
    dpop: Arc<DpopProofs>,
}

impl UserInfoService {
    pub fn new(
        introspection: Arc<Introspection>,
        accounts: Accounts,
        dpop: Arc<DpopProofs>,
    ) -> Self {
        Self {
            introspection,
            accounts,
            dpop,
        }
    }

    /// The answer to a request of `method` to `path` that presented a token.
    pub async fn user_info(
        &self,
        presented: &Presented<'_>,
        method: &str,
        path: &str,
    ) -> Result<UserInfo, UserInfoError> {
        let invalid = UserInfoError::InvalidToken;
        let token = presented.token;
        let (_, description) = self.introspection.access(token).await?;
        let Some(Description::Access(claims)) = description else {
            return Err(invalid("the access token is invalid, expired or revoked"));
        };
        self.dpop
            .check(&claims, presented, method, path)
            .await
            .map_err(UserInfoError::Binding)?;
        if matches!(PresentedToken::classify(token), PresentedToken::Jwt(_)) && claims.kid.is_none()
        {
            return Err(invalid("userinfo does not take HS256 tokens"));
        }
        if !claims.has_scope(oidc::OPENID) {
            return Err(UserInfoError::InsufficientScope);
        }
        let Some(id) = UserId::parse(&claims.sub) else {
            return Err(invalid("the access token does not speak for a user"));
        };
        let user = self
            .accounts
            .user_of_session(id, claims.sid.as_deref())
            .await
            .map_err(OAuthError::from)?
            .filter(|u| !u.disabled)
            .ok_or(invalid(
                "the access token's user no longer exists or is disabled",
            ))?;
        let scopes = Scopes::parse(claims.scope.as_deref().unwrap_or_default()).unwrap_or_default();
        let wants_profile = scopes.contains(oidc::PROFILE) || scopes.contains(oidc::EMAIL);
        let profile = if wants_profile {
            self.accounts.profile(id).await.map_err(OAuthError::from)?
        } else {
            None
        };
        Ok(UserInfo {
            user,
            profile,
            scopes,
        })
    }
}
