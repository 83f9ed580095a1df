//! Using a one-time password-reset link. tessera sends no mail, so an administrator
//! issues the link (`Administration::issue_reset_link`: `tessera user reset-link
//! NAME`, the console, the admin API) and hands it to the person, who opens it and
//! chooses a new password.
//!
//! A link is a [`PasswordResetSecret`] in the query of `/reset`; the store keeps
//! its hash only, one per user (a new link replaces the earlier one), for
//! `RESET_LINK_LIFETIME` (an hour). Using it is one transaction that deletes the
//! link and sets the password, so of two uses at the same moment exactly one
//! succeeds. A reset ends every session and token the account holds, everywhere
//! (whoever knew the old password is out), and the person signs in with the new
//! one. Guessing is hopeless (256 random bits), so no throttle guards the page.

use std::sync::Arc;

use tessera_core::{Password, PasswordResetSecret};
use tessera_store::{EventKind, StoreError, User};

use crate::services::accounts::{Accounts, CutOff, LoginError};
use crate::services::admin::Administration;
use crate::services::audit::{Audit, Caller};
use crate::services::passwords::HashError;

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// Used, replaced by a newer link, expired, or never issued: the person is told
    /// the same thing for each, and what to do.
    #[error(
        "this reset link does not work: it was used already, replaced by a newer one, or \
         has expired; ask an administrator for a new one"
    )]
    NotValid,
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct ResetLinks {
    accounts: Accounts,
    admin: Arc<Administration>,
    audit: Arc<Audit>,
}

impl ResetLinks {
    pub fn new(accounts: Accounts, admin: Arc<Administration>, audit: Arc<Audit>) -> Self {
        Self {
            accounts,
            admin,
            audit,
        }
    }

    /// The account a link (as presented, unparsed) resets, while it works.
    pub async fn holder(&self, presented: &str) -> Result<User, ResetError> {
        let secret = PasswordResetSecret::parse(presented).ok_or(ResetError::NotValid)?;
        self.accounts
            .reset_link_holder(&secret)
            .await?
            .ok_or(ResetError::NotValid)
    }

    /// Sets the password the link's holder chose, uses the link up, and ends
    /// everything the account held.
    pub async fn reset(
        &self,
        presented: &str,
        password: Password,
        address: std::net::IpAddr,
    ) -> Result<CutOff, ResetError> {
        let secret = PasswordResetSecret::parse(presented).ok_or(ResetError::NotValid)?;
        let live_for = self.admin.tokens_live_for().await?;
        let cut = match self
            .accounts
            .reset_password(&secret, password, live_for)
            .await
        {
            Ok(Some(cut)) => cut,
            Ok(None) => return Err(ResetError::NotValid),
            Err(LoginError::Hash(error)) => return Err(ResetError::Hash(error)),
            Err(LoginError::Store(error)) => return Err(ResetError::Store(error)),
            // Neither is an answer of a reset (it checks no password, nor the flag).
            Err(LoginError::InvalidCredentials | LoginError::Disabled) => {
                return Err(ResetError::NotValid);
            }
        };
        self.audit
            .record(
                Caller::user(cut.user.id, address)
                    .event(EventKind::ResetLinkUsed)
                    .user(cut.user.id)
                    .username(cut.user.username.as_str())
                    .detail(format!("password set; {}", cut.ended())),
            )
            .await;
        Ok(cut)
    }
}
