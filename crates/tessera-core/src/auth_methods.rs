//! How a session was authenticated: the methods a person proved, which become the
//! `amr` (RFC 8176) and `acr` of every token issued from the session.
//!
//! Stored with the session as the `amr` names separated by spaces (`"pwd otp"`),
//! in a fixed order. A recovery code is a one-time code the account was given, so
//! it counts as `otp` (the audit log says which was used). `mfa` is not stored: it
//! is what two factors of different kinds add up to, and [`AuthMethods::amr`]
//! adds it.

use std::fmt;

/// One way of proving who one is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// A password (`pwd`).
    Password,
    /// A one-time code: TOTP or a recovery code (`otp`).
    OneTimeCode,
    /// A passkey kept in hardware (`hwk`).
    HardwareKey,
    /// A passkey kept in software, such as a synced passkey (`swk`).
    SoftwareKey,
}

const ALL: [AuthMethod; 4] = [
    AuthMethod::Password,
    AuthMethod::OneTimeCode,
    AuthMethod::HardwareKey,
    AuthMethod::SoftwareKey,
];

impl AuthMethod {
    /// The RFC 8176 name.
    pub fn amr(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::OneTimeCode => "otp",
            Self::HardwareKey => "hwk",
            Self::SoftwareKey => "swk",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Self::Password => 1,
            Self::OneTimeCode => 2,
            Self::HardwareKey => 4,
            Self::SoftwareKey => 8,
        }
    }

    /// Something known, or something held: two methods of the same kind are one
    /// factor.
    fn is_possession(self) -> bool {
        !matches!(self, Self::Password)
    }
}

/// The set of methods a session was authenticated with.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthMethods(u8);

pub use tessera_proto::acr::{ACR_ONE_FACTOR, ACR_TWO_FACTORS, ACR_VALUES};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a list of authentication methods tessera knows (pwd, otp, hwk, swk)")]
pub struct AuthMethodsError;

impl AuthMethods {
    pub fn password() -> Self {
        Self::default().with(AuthMethod::Password)
    }

    #[must_use]
    pub fn with(self, method: AuthMethod) -> Self {
        Self(self.0 | method.bit())
    }

    /// The methods of both.
    #[must_use]
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub fn contains(self, method: AuthMethod) -> bool {
        self.0 & method.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn methods(self) -> impl Iterator<Item = AuthMethod> {
        ALL.into_iter().filter(move |m| self.contains(*m))
    }

    /// Two factors of different kinds: something known and something held; or a
    /// passkey, which tessera accepts only with user verification (the key held,
    /// unlocked by a PIN or a biometric: two factors in one gesture).
    pub fn is_multi_factor(self) -> bool {
        let known = self.methods().any(|m| !m.is_possession());
        let held = self.methods().any(AuthMethod::is_possession);
        let passkey =
            self.contains(AuthMethod::HardwareKey) || self.contains(AuthMethod::SoftwareKey);
        (known && held) || passkey
    }

    /// The `amr` claim: each method's name, then `mfa` for two factors.
    pub fn amr(self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.methods().map(AuthMethod::amr).collect();
        if self.is_multi_factor() {
            names.push("mfa");
        }
        names
    }

    /// The `acr` claim.
    pub fn acr(self) -> &'static str {
        if self.is_multi_factor() {
            ACR_TWO_FACTORS
        } else {
            ACR_ONE_FACTOR
        }
    }

    /// Whether these methods reach `acr` (one of [`ACR_VALUES`]); an `acr` tessera
    /// does not issue is never reached.
    pub fn reaches(self, acr: &str) -> bool {
        tessera_proto::acr::meets(self.acr(), acr)
    }

    /// As stored: the names separated by spaces (never `mfa`).
    pub fn to_stored(self) -> String {
        self.methods()
            .map(AuthMethod::amr)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Reads [`to_stored`](Self::to_stored)'s form. At least one method.
    pub fn parse_stored(stored: &str) -> Result<Self, AuthMethodsError> {
        let mut methods = Self::default();
        for name in stored.split(' ') {
            let method = ALL
                .into_iter()
                .find(|m| m.amr() == name)
                .ok_or(AuthMethodsError)?;
            methods = methods.with(method);
        }
        if methods.is_empty() {
            return Err(AuthMethodsError);
        }
        Ok(methods)
    }
}

impl fmt::Debug for AuthMethods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.amr()).finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_password_alone_is_one_factor() {
        let pwd = AuthMethods::password();
        assert_eq!(pwd.amr(), ["pwd"]);
        assert_eq!(pwd.acr(), "1");
        assert!(pwd.reaches("1") && !pwd.reaches("2"));
    }

    #[test]
    fn a_password_and_a_code_are_two() {
        let both = AuthMethods::password().with(AuthMethod::OneTimeCode);
        assert_eq!(both.amr(), ["pwd", "otp", "mfa"]);
        assert_eq!(both.acr(), "2");
        assert!(both.reaches("1") && both.reaches("2"));
        assert!(!both.reaches("3") && !both.reaches("urn:other"));
    }

    #[test]
    fn two_codes_held_are_one_factor_and_a_verified_passkey_two() {
        let codes = AuthMethods::default().with(AuthMethod::OneTimeCode);
        assert!(!codes.is_multi_factor());
        let passkey = AuthMethods::default().with(AuthMethod::SoftwareKey);
        assert!(passkey.is_multi_factor());
        assert_eq!(passkey.amr(), ["swk", "mfa"]);
        assert_eq!(passkey.acr(), "2");
    }

    #[test]
    fn stored_form_round_trips_and_refuses_the_unknown() {
        let both = AuthMethods::password().with(AuthMethod::HardwareKey);
        assert_eq!(both.to_stored(), "pwd hwk");
        assert_eq!(AuthMethods::parse_stored("pwd hwk").unwrap(), both);
        for bad in ["", "pwd  otp", "mfa", "pwd,otp", "PWD"] {
            assert!(AuthMethods::parse_stored(bad).is_err(), "{bad:?}");
        }
    }
}
