//! The gateway's own DPoP key (RFC 9449), for routes with `dpop = true`: made at
//! start and never written anywhere, so the tokens bound to it are good only
//! through this process. It proves the key to tessera when it exchanges a session
//! (the token comes back bound: `cnf.jkt`), then signs a fresh proof for every
//! request it forwards with such a token: the method, the upstream URL the
//! request goes to, and the token's hash.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub struct DpopKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
    /// The proofs' header, encoded once: `typ`, `alg` and the public key.
    header: String,
    /// The key's RFC 7638 thumbprint: what bound tokens name as `cnf.jkt`.
    jkt: String,
}

/// The key could not be made (the system's random source failed).
#[derive(Debug, thiserror::Error)]
#[error("cannot make the gateway's DPoP key")]
pub struct KeyError;

impl DpopKey {
    pub fn generate() -> Result<Self, KeyError> {
        let pair =
            EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| KeyError)?;
        // An uncompressed point: 0x04, then x and y.
        let point = pair.public_key().as_ref();
        let (x, y) = (
            URL_SAFE_NO_PAD.encode(point.get(1..33).ok_or(KeyError)?),
            URL_SAFE_NO_PAD.encode(point.get(33..65).ok_or(KeyError)?),
        );
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y});
        // RFC 7638: the required members, sorted, no whitespace.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let jkt = URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes()));
        let header = URL_SAFE_NO_PAD
            .encode(serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}).to_string());
        Ok(Self {
            pair,
            rng: SystemRandom::new(),
            header,
            jkt,
        })
    }

    pub fn jkt(&self) -> &str {
        &self.jkt
    }

    /// A proof for one request of `method` to `url` (without query or fragment),
    /// carrying the hash of `access_token` when one goes with it, and the server's
    /// `nonce` when it asked for one (RFC 9449 §8).
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<String, KeyError> {
        let mut jti = [0u8; 16];
        self.rng.fill(&mut jti).map_err(|_| KeyError)?;
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut claims = serde_json::json!({
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "htm": method,
            "htu": url,
            "iat": iat,
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = nonce.into();
        }
        if let Some(token) = access_token {
            claims["ath"] = URL_SAFE_NO_PAD
                .encode(digest(&SHA256, token.as_bytes()))
                .into();
        }
        let input = format!(
            "{}.{}",
            self.header,
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&self.rng, input.as_bytes())
            .map_err(|_| KeyError)?;
        Ok(format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn proofs_pass_the_verifiers_checks_and_name_the_key() {
        let key = DpopKey::generate().unwrap();
        let proof = key
            .proof("GET", "http://127.0.0.1:9000/orders", Some("token"), None)
            .unwrap();
        let verified = tessera_verify::dpop::verify_proof(
            &proof,
            &tessera_verify::dpop::ProofRequest {
                method: "GET",
                url: "http://127.0.0.1:9000/orders",
                now: i64::try_from(
                    SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap()
                        .as_secs(),
                )
                .unwrap(),
                max_age: 60,
                leeway: 5,
                access_token: Some("token"),
                nonce: None,
            },
        )
        .unwrap();
        assert_eq!(verified.jkt, key.jkt());
        assert_ne!(
            key.proof("GET", "http://x/", None, None).unwrap(),
            key.proof("GET", "http://x/", None, None).unwrap(),
            "each proof has its own jti"
        );
    }
}
