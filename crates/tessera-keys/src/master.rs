//! The master key that seals secrets at rest (`TESSERA_MASTER_KEY`): private
//! signing keys, and (issue 16) accounts' TOTP secrets.
//!
//! AES-256-GCM with a random 96-bit nonce per sealing; what the secret belongs to
//! is the associated data (a key's `kid`, `totp:<user id>`), so a sealed secret
//! copied onto another row does not open. Sealed bytes: `0x01` (format version),
//! the nonce, then ciphertext and tag.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

use crate::der::PrivateKeyDer;

const FORMAT: u8 = 1;

pub struct MasterKey(LessSafeKey);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MasterKeyError {
    #[error(
        "TESSERA_MASTER_KEY must be 32 random bytes, written as 64 hex digits or in base64 \
         (e.g. the output of `openssl rand -base64 32`)"
    )]
    Format,
    #[error(
        "a private key in the store does not open with this master key: it was sealed with \
         another one, or the store was altered"
    )]
    WrongKey,
    #[error("sealing failed")]
    Seal,
}

impl MasterKey {
    /// Parses 32 bytes given as 64 hex digits or base64 (standard or URL-safe,
    /// padded or not). Surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Self, MasterKeyError> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| MasterKeyError::Format)?
        } else {
            [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                .iter()
                .find_map(|engine| engine.decode(text).ok())
                .ok_or(MasterKeyError::Format)?
        };
        let bytes = zeroize::Zeroizing::new(bytes);
        if bytes.len() != 32 {
            return Err(MasterKeyError::Format);
        }
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| MasterKeyError::Format)?;
        Ok(Self(LessSafeKey::new(key)))
    }

    /// A key of 32 random bytes, for what this process seals for itself alone
    /// (it is never written anywhere).
    pub fn random() -> Result<Self, MasterKeyError> {
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(bytes.as_mut_slice()).map_err(|_| MasterKeyError::Seal)?;
        let key =
            UnboundKey::new(&AES_256_GCM, bytes.as_slice()).map_err(|_| MasterKeyError::Seal)?;
        Ok(Self(LessSafeKey::new(key)))
    }

    /// Seals a private signing key, bound to its `kid`.
    pub fn seal(&self, kid: &str, key: &PrivateKeyDer) -> Result<Vec<u8>, MasterKeyError> {
        self.seal_bytes(kid.as_bytes(), key.as_bytes())
    }

    pub fn open(&self, kid: &str, sealed: &[u8]) -> Result<PrivateKeyDer, MasterKeyError> {
        let plain = self.open_bytes(kid.as_bytes(), sealed)?;
        Ok(PrivateKeyDer::from_bytes(plain.to_vec()))
    }

    /// Seals `plain`, bound to `belongs_to` (the associated data): it opens only
    /// with this master key and the same `belongs_to`.
    pub fn seal_bytes(&self, belongs_to: &[u8], plain: &[u8]) -> Result<Vec<u8>, MasterKeyError> {
        let nonce_bytes = crate_random_nonce()?;
        let mut in_out = plain.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(belongs_to),
                &mut in_out,
            )
            .map_err(|_| MasterKeyError::Seal)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        sealed.push(FORMAT);
        sealed.extend_from_slice(&nonce_bytes);
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// What [`Self::seal_bytes`] sealed for `belongs_to`, wiped from memory when
    /// dropped.
    pub fn open_bytes(
        &self,
        belongs_to: &[u8],
        sealed: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, MasterKeyError> {
        let [FORMAT, rest @ ..] = sealed else {
            return Err(MasterKeyError::WrongKey);
        };
        if rest.len() < NONCE_LEN {
            return Err(MasterKeyError::WrongKey);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| MasterKeyError::WrongKey)?;
        let mut in_out = zeroize::Zeroizing::new(ciphertext.to_vec());
        let plain_len = self
            .0
            .open_in_place(nonce, Aad::from(belongs_to), &mut in_out)
            .map_err(|_| MasterKeyError::WrongKey)?
            .len();
        in_out.truncate(plain_len);
        Ok(in_out)
    }
}

fn crate_random_nonce() -> Result<[u8; NONCE_LEN], MasterKeyError> {
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| MasterKeyError::Seal)?;
    Ok(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Algorithm, generate};

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn sealed_keys_open_only_with_the_same_master_key_and_kid() {
        let master = MasterKey::parse(HEX).unwrap();
        let key = generate(Algorithm::EdDSA).unwrap();
        let sealed = master.seal("kid-1", &key).unwrap();
        assert!(
            !sealed
                .windows(16)
                .any(|w| key.as_bytes().windows(16).any(|k| k == w))
        );
        assert_eq!(
            master.open("kid-1", &sealed).unwrap().as_bytes(),
            key.as_bytes()
        );
        assert_eq!(
            master.open("kid-2", &sealed).unwrap_err(),
            MasterKeyError::WrongKey
        );
        let other = MasterKey::parse(&"ab".repeat(32)).unwrap();
        assert_eq!(
            other.open("kid-1", &sealed).unwrap_err(),
            MasterKeyError::WrongKey
        );
        let mut tampered = sealed.clone();
        if let Some(last) = tampered.last_mut() {
            *last ^= 1;
        }
        assert!(master.open("kid-1", &tampered).is_err());
        assert!(master.open("kid-1", &[]).is_err());
        assert!(master.open("kid-1", &[FORMAT, 1, 2]).is_err());
    }

    #[test]
    fn sealed_bytes_open_only_for_what_they_belong_to() {
        let master = MasterKey::parse(HEX).unwrap();
        let secret = [7u8; 20];
        let sealed = master.seal_bytes(b"totp:alice", &secret).unwrap();
        assert_eq!(sealed.len(), 1 + NONCE_LEN + secret.len() + 16);
        assert!(!sealed.windows(8).any(|w| w == [7u8; 8]));
        assert_eq!(
            master
                .open_bytes(b"totp:alice", &sealed)
                .unwrap()
                .as_slice(),
            secret
        );
        // Copied onto another account, or read as a signing key: it does not open.
        assert_eq!(
            master.open_bytes(b"totp:mallory", &sealed).unwrap_err(),
            MasterKeyError::WrongKey
        );
        assert!(master.open("totp:alice-key", &sealed).is_err());
        // Two sealings of one secret differ (a nonce each).
        assert_ne!(sealed, master.seal_bytes(b"totp:alice", &secret).unwrap());
    }

    #[test]
    fn the_master_key_is_read_as_hex_or_base64_of_32_bytes() {
        let bytes: Vec<u8> = (0..32).collect();
        for text in [
            HEX.to_owned(),
            STANDARD.encode(&bytes),
            URL_SAFE_NO_PAD.encode(&bytes),
            format!("  {}\n", STANDARD.encode(&bytes)),
        ] {
            let master = MasterKey::parse(&text).unwrap();
            let reference = MasterKey::parse(HEX).unwrap();
            let key = generate(Algorithm::EdDSA).unwrap();
            let sealed = master.seal("k", &key).unwrap();
            assert!(reference.open("k", &sealed).is_ok(), "{text}");
        }
        for bad in [
            "",
            "short",
            &"00".repeat(31),
            &STANDARD.encode([0u8; 16]),
            &"zz".repeat(32),
        ] {
            assert_eq!(
                MasterKey::parse(bad).unwrap_err(),
                MasterKeyError::Format,
                "{bad}"
            );
        }
        assert_eq!(
            format!("{:?}", MasterKey::parse(HEX).unwrap()),
            "MasterKey([redacted])"
        );
    }
}
