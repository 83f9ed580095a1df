//! Time-based one-time passwords (RFC 6238), the second factor an authenticator
//! app gives: HMAC-SHA-1, six digits, 30-second steps, as every such app does
//! by default; a code of the step before or after the current one is accepted
//! (a phone's clock a little off, a code typed as it changed), and each step at
//! most once per account (RFC 6238 §5.2): the caller keeps the last step used
//! and passes it back. The arithmetic is `totp-rs`'s.

use std::fmt;

use totp_rs::{Builder, Totp};
use zeroize::Zeroize;

use crate::random_bytes;

/// Bytes of a secret: 160 bits, as RFC 4226 §4 recommends.
const SECRET_BYTES: usize = 20;
/// Seconds of one step.
const STEP_SECONDS: u64 = 30;
/// Steps accepted either side of the current one.
const SKEW_STEPS: u64 = 1;

/// An account's TOTP secret. Stored sealed like a signing key; shown to its
/// owner once, at enrolment (as base32 text and in the `otpauth://` link the QR
/// code carries). Never in `Debug`.
pub struct TotpSecret([u8; SECRET_BYTES]);

/// A six-digit code as typed: `123456` or `123 456`. No `PartialEq`: codes are
/// compared only by [`TotpSecret::check`], in constant time.
#[derive(Clone)]
pub struct TotpCode(String);

/// One 30-second step: what a code was for, and what an account last used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TotpStep(u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TotpRefusal {
    #[error("the code is not the current one")]
    Wrong,
    #[error("the code was already used; wait for the next one")]
    AlreadyUsed,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    #[error("a code is six digits")]
    NotACode,
    #[error("a TOTP secret is {SECRET_BYTES} bytes")]
    SecretLength,
    #[error("the account name cannot go in an authenticator link: {0}")]
    Label(String),
}

impl TotpCode {
    pub fn parse(input: &str) -> Result<Self, TotpError> {
        let digits: String = input.chars().filter(|c| *c != ' ').collect();
        if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(digits))
        } else {
            Err(TotpError::NotACode)
        }
    }
}

impl fmt::Debug for TotpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpCode(<redacted>)")
    }
}

impl TotpStep {
    /// The step `unix_seconds` falls in.
    pub fn at(unix_seconds: u64) -> Self {
        Self(unix_seconds / STEP_SECONDS)
    }

    pub fn from_stored(step: u64) -> Self {
        Self(step)
    }

    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl TotpSecret {
    pub fn generate() -> Self {
        Self(random_bytes())
    }

    /// A secret as unsealed from the store.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TotpError> {
        let bytes: [u8; SECRET_BYTES] = bytes.try_into().map_err(|_| TotpError::SecretLength)?;
        Ok(Self(bytes))
    }

    /// The raw secret, to be sealed before it is stored.
    pub fn expose_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret as people type it into an app: base32, no padding.
    pub fn expose_base32(&self) -> String {
        self.totp().secret().to_base32()
    }

    /// The `otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=ISSUER` link of the
    /// enrolment QR code (Google Authenticator's key URI format).
    pub fn expose_link(&self, issuer: &str, account: &str) -> Result<String, TotpError> {
        let label = |e: totp_rs::TotpError| TotpError::Label(e.to_string());
        Builder::new()
            .with_secret(self.0.to_vec())
            .with_issuer(Some(issuer))
            .with_account_name(account)
            .build()
            .map_err(label)?
            .to_url()
            .map_err(label)
    }

    /// Checks `code` at `unix_seconds`: `Ok` with the step it was for, which the
    /// caller records as the account's last (no code of that step or an earlier
    /// one is accepted again), or why not.
    pub fn check(
        &self,
        code: &TotpCode,
        unix_seconds: u64,
        last_used: Option<TotpStep>,
    ) -> Result<TotpStep, TotpRefusal> {
        let totp = self.totp();
        let now = TotpStep::at(unix_seconds).0;
        let window = now.saturating_sub(SKEW_STEPS)..=now.saturating_add(SKEW_STEPS);
        let fits = |step: u64| {
            step.checked_mul(STEP_SECONDS)
                .and_then(|at| totp.check(&code.0, at))
                .is_some()
        };
        let mut matched = None;
        for step in window {
            // Every step is computed, so that how long a check takes does not
            // say which one matched.
            if fits(step) && matched.is_none() {
                matched = Some(TotpStep(step));
            }
        }
        match (matched, last_used) {
            (None, _) => Err(TotpRefusal::Wrong),
            (Some(step), Some(last)) if step <= last => Err(TotpRefusal::AlreadyUsed),
            (Some(step), _) => Ok(step),
        }
    }

    fn totp(&self) -> Totp {
        Builder::new()
            .with_secret(self.0.to_vec())
            .with_skew(0)
            .build_noncompliant()
    }
}

impl Drop for TotpSecret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B's SHA-1 secret; its eight-digit codes, of which an
    /// app's six are the last six (the same truncation, modulo 10^6).
    const RFC_SECRET: &[u8; 20] = b"12345678901234567890";
    const RFC_VECTORS: &[(u64, &str)] = &[
        (59, "287082"),
        (1_111_111_109, "081804"),
        (1_111_111_111, "050471"),
        (1_234_567_890, "005924"),
        (2_000_000_000, "279037"),
        (20_000_000_000, "353130"),
    ];

    fn rfc() -> TotpSecret {
        TotpSecret::from_bytes(RFC_SECRET).unwrap()
    }

    fn code(text: &str) -> TotpCode {
        TotpCode::parse(text).unwrap()
    }

    #[test]
    fn the_rfc_vectors_check() {
        for (at, expected) in RFC_VECTORS {
            assert_eq!(
                rfc().check(&code(expected), *at, None),
                Ok(TotpStep::at(*at)),
                "at {at}"
            );
        }
    }

    #[test]
    fn one_step_of_skew_either_way_and_no_more() {
        let at: u64 = 1_111_111_111; // step 37037037, code 050471
        for offset in [-30i64, 30] {
            let then = at.checked_add_signed(offset).unwrap();
            assert!(rfc().check(&code("050471"), then, None).is_ok(), "{offset}");
        }
        for offset in [-60i64, 60, 90] {
            let then = at.checked_add_signed(offset).unwrap();
            assert_eq!(
                rfc().check(&code("050471"), then, None),
                Err(TotpRefusal::Wrong),
                "{offset}"
            );
        }
    }

    #[test]
    fn a_step_is_used_once() {
        let at: u64 = 1_111_111_111;
        let step = rfc().check(&code("050471"), at, None).unwrap();
        assert_eq!(
            rfc().check(&code("050471"), at, Some(step)),
            Err(TotpRefusal::AlreadyUsed)
        );
        // Nor a code of the step before, once a later one was used.
        let before = rfc().check(&code("081804"), 1_111_111_109, None).unwrap();
        assert!(before < step);
        assert_eq!(
            rfc().check(&code("081804"), 1_111_111_109, Some(step)),
            Err(TotpRefusal::AlreadyUsed)
        );
    }

    #[test]
    fn codes_parse_at_the_edge() {
        assert!(TotpCode::parse("123 456").is_ok());
        for bad in ["", "12345", "1234567", "12a456", "１２３４５６", "123-456"] {
            assert!(
                matches!(TotpCode::parse(bad), Err(TotpError::NotACode)),
                "{bad:?}"
            );
        }
        assert_eq!(
            TotpSecret::from_bytes(&[0; 16]).err(),
            Some(TotpError::SecretLength)
        );
    }

    #[test]
    fn the_link_carries_the_secret_and_names_the_issuer() {
        let secret = rfc();
        let link = secret.expose_link("tessera", "alice").unwrap();
        assert!(link.starts_with("otpauth://totp/tessera:alice?"), "{link}");
        assert!(link.contains(&format!("secret={}", secret.expose_base32())));
        assert!(link.contains("issuer=tessera"));
        assert_eq!(secret.expose_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn nothing_secret_in_debug() {
        let secret = TotpSecret::generate();
        assert_eq!(format!("{secret:?}"), "TotpSecret(<redacted>)");
        assert_eq!(format!("{:?}", code("123456")), "TotpCode(<redacted>)");
    }
}
