//! Recovery codes: the way back in when the second factor is lost. Ten per
//! account, each good once, shown to their owner once and stored hashed.
//! 80 random bits each, written for people: sixteen characters of Crockford's
//! base32 in four groups (`k3f9-q2xm-7hpa-c4dz`); typed back in either case,
//! with or without the dashes, `i`/`l` read as `1` and `o` as `0`.

use std::fmt;

use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::{SecretHash, random_bytes};

/// How many codes an account gets at a time.
pub const RECOVERY_CODES: usize = 10;
const CODE_BYTES: usize = 10;
const CODE_CHARS: usize = 16;
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Hashes of recovery codes are of their own kind: no other secret's hash.
const HASH_DOMAIN: &[u8] = b"tessera recovery code\0";

pub struct RecoveryCode([u8; CODE_BYTES]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a recovery code is sixteen letters and digits, like k3f9-q2xm-7hpa-c4dz")]
pub struct RecoveryCodeError;

impl RecoveryCode {
    pub fn generate() -> Self {
        Self(random_bytes())
    }

    /// A fresh set for one account.
    pub fn generate_set() -> Vec<Self> {
        (0..RECOVERY_CODES).map(|_| Self::generate()).collect()
    }

    pub fn parse(input: &str) -> Result<Self, RecoveryCodeError> {
        let mut value: u128 = 0;
        let mut chars = 0;
        for c in input.chars().filter(|c| *c != '-' && *c != ' ') {
            let c = match c.to_ascii_lowercase() {
                'i' | 'l' => '1',
                'o' => '0',
                c => c,
            };
            let digit = ALPHABET
                .iter()
                .position(|a| char::from(*a) == c)
                .ok_or(RecoveryCodeError)?;
            chars += 1;
            if chars > CODE_CHARS {
                return Err(RecoveryCodeError);
            }
            value = (value << 5) | digit as u128;
        }
        if chars != CODE_CHARS {
            return Err(RecoveryCodeError);
        }
        let bytes = value.to_be_bytes();
        let mut code = [0u8; CODE_BYTES];
        code.copy_from_slice(&bytes[16 - CODE_BYTES..]);
        Ok(Self(code))
    }

    /// The written form. Call only where the codes are shown to their owner.
    pub fn expose(&self) -> String {
        let mut padded = [0u8; 16];
        padded[16 - CODE_BYTES..].copy_from_slice(&self.0);
        let value = u128::from_be_bytes(padded);
        let mut written = String::with_capacity(CODE_CHARS + 3);
        for i in 0..CODE_CHARS {
            if i > 0 && i % 4 == 0 {
                written.push('-');
            }
            let shift = 5 * (CODE_CHARS - 1 - i);
            written.push(char::from(ALPHABET[((value >> shift) & 31) as usize]));
        }
        written
    }

    pub fn hash(&self) -> SecretHash {
        SecretHash::from_bytes(
            Sha256::new()
                .chain_update(HASH_DOMAIN)
                .chain_update(self.0)
                .finalize()
                .into(),
        )
    }
}

impl Drop for RecoveryCode {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_shown_parses_back_to_the_same_code() {
        for code in RecoveryCode::generate_set() {
            let written = code.expose();
            assert_eq!(written.len(), 19, "{written}");
            assert_eq!(written.matches('-').count(), 3);
            let again = RecoveryCode::parse(&written).unwrap();
            assert!(again.hash().matches(&code.hash()));
            let typed = written.replace('-', "").to_uppercase();
            assert!(
                RecoveryCode::parse(&typed)
                    .unwrap()
                    .hash()
                    .matches(&code.hash())
            );
        }
    }

    #[test]
    fn look_alike_characters_read_as_digits() {
        let exact = RecoveryCode::parse("0000-1111-2222-3333").unwrap();
        let typed = RecoveryCode::parse("oooo-iIlL-2222-3333").unwrap();
        assert!(exact.hash().matches(&typed.hash()));
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "0000-1111-2222-333",
            "0000-1111-2222-33333",
            "0000-1111-2222-333u",
            "0000_1111_2222_3333",
            "０000-1111-2222-3333",
        ] {
            assert!(RecoveryCode::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_set_is_ten_different_codes_and_nothing_secret_in_debug() {
        let set = RecoveryCode::generate_set();
        assert_eq!(set.len(), RECOVERY_CODES);
        let mut written: Vec<String> = set.iter().map(RecoveryCode::expose).collect();
        written.sort();
        written.dedup();
        assert_eq!(written.len(), RECOVERY_CODES);
        assert_eq!(format!("{:?}", set[0]), "RecoveryCode(<redacted>)");
        // Its hash is not the hash of the same bytes as another kind of secret.
        let code = RecoveryCode::parse("0000-0000-0000-0000").unwrap();
        let plain: [u8; 32] = Sha256::digest([0u8; CODE_BYTES]).into();
        assert!(!code.hash().matches(&SecretHash::from_bytes(plain)));
    }
}
