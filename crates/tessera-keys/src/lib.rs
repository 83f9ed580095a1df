//! tessera's signing keys: generating them, sealing them at rest, publishing their
//! public halves as JWKs, and signing JWTs with them.
//!
//! Signing goes straight to `aws-lc-rs` with the key pair parsed once, rather than
//! through `jsonwebtoken::encode`, which parses the PKCS#8 document again for every
//! token (for RSA that costs more than the signature). The JWK types and the RFC 7638
//! thumbprint are `jsonwebtoken`'s, so what we publish is what verifiers parse.
//!
//! Invariants: private key bytes live only in [`PrivateKeyDer`] (zeroed on drop,
//! redacted in `Debug`) and in the key pairs parsed from them; a key's `kid` is the
//! thumbprint of its public JWK, so it names the key and nothing else.

mod der;
mod master;

use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, JwkSet, KeyAlgorithm, OctetKeyPairParameters, OctetKeyPairType,
    PublicKeyUse, RSAKeyParameters, RSAKeyType, ThumbprintHash,
};

pub use der::PrivateKeyDer;
pub use master::{MasterKey, MasterKeyError};

/// The algorithms, the wire's one enum. Keys here are the asymmetric ones
/// ([`Algorithm::ASYMMETRIC`]); HS256's key is a shared secret from configuration,
/// never generated, stored or published ([`HmacKey`] signs with it).
pub use tessera_proto::Algorithm;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("could not generate a {0} key")]
    Generate(Algorithm),
    #[error("the stored {0} private key is not a valid PKCS#8 document for it")]
    Malformed(Algorithm),
    #[error("signing failed")]
    Sign,
    #[error("{0} has no key pair: its key is a shared secret from configuration")]
    Symmetric(Algorithm),
}

/// A fresh private key for `algorithm` from the OS's random source. RSA keys are
/// 2048-bit: enough through 2030 (NIST SP 800-57), and signing time grows with the
/// cube of the size.
pub fn generate(algorithm: Algorithm) -> Result<PrivateKeyDer, KeyError> {
    use aws_lc_rs::encoding::AsDer;
    let failed = |_| KeyError::Generate(algorithm);
    let bytes = match algorithm {
        Algorithm::EdDSA => Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(failed)?
            .as_ref()
            .to_vec(),
        Algorithm::ES256 => {
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(failed)?
                .as_ref()
                .to_vec()
        }
        Algorithm::RS256 => RsaKeyPair::generate(KeySize::Rsa2048)
            .map_err(failed)?
            .as_der()
            .map_err(failed)?
            .as_ref()
            .to_vec(),
        Algorithm::HS256 => return Err(KeyError::Symmetric(algorithm)),
    };
    Ok(PrivateKeyDer::from_bytes(bytes))
}

enum Signer {
    Ed25519(Ed25519KeyPair),
    P256(EcdsaKeyPair, SystemRandom),
    Rsa(RsaKeyPair, SystemRandom),
}

/// A private key ready to sign, with its public JWK and `kid`.
pub struct SigningKey {
    algorithm: Algorithm,
    kid: String,
    jwk: Jwk,
    signer: Signer,
    /// The base64url JWS header for access tokens signed by this key; the same for
    /// every token, so encoded once.
    access_token_header: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl SigningKey {
    pub fn from_pkcs8(algorithm: Algorithm, der: &PrivateKeyDer) -> Result<Self, KeyError> {
        let malformed = |_| KeyError::Malformed(algorithm);
        let (signer, parameters) = match algorithm {
            Algorithm::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(der.as_bytes()).map_err(malformed)?;
                let parameters = AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                    key_type: OctetKeyPairType::OctetKeyPair,
                    curve: EllipticCurve::Ed25519,
                    x: b64(pair.public_key().as_ref()),
                });
                (Signer::Ed25519(pair), parameters)
            }
            Algorithm::ES256 => {
                let pair =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_bytes())
                        .map_err(malformed)?;
                // An uncompressed point: 0x04, then x and y, 32 bytes each.
                let point = pair.public_key().as_ref();
                let (x, y) = match point {
                    [4, rest @ ..] if rest.len() == 64 => rest.split_at(32),
                    _ => return Err(KeyError::Malformed(algorithm)),
                };
                let parameters = AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                    key_type: EllipticCurveKeyType::EC,
                    curve: EllipticCurve::P256,
                    x: b64(x),
                    y: b64(y),
                });
                (Signer::P256(pair, SystemRandom::new()), parameters)
            }
            Algorithm::RS256 => {
                let pair = RsaKeyPair::from_pkcs8(der.as_bytes()).map_err(malformed)?;
                let components = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                let parameters = AlgorithmParameters::RSA(RSAKeyParameters {
                    key_type: RSAKeyType::RSA,
                    n: b64(&components.n),
                    e: b64(&components.e),
                });
                (Signer::Rsa(pair, SystemRandom::new()), parameters)
            }
            Algorithm::HS256 => return Err(KeyError::Symmetric(algorithm)),
        };
        let mut jwk = Jwk {
            common: CommonParameters::default(),
            algorithm: parameters,
        };
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|_| KeyError::Malformed(algorithm))?;
        jwk.common = CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(match algorithm {
                Algorithm::EdDSA => KeyAlgorithm::EdDSA,
                Algorithm::ES256 => KeyAlgorithm::ES256,
                Algorithm::RS256 => KeyAlgorithm::RS256,
                Algorithm::HS256 => KeyAlgorithm::HS256,
            }),
            key_id: Some(kid.clone()),
            ..CommonParameters::default()
        };
        let header = serde_json::json!({
            "alg": algorithm.as_str(),
            "typ": tessera_proto::token_type::ACCESS_TOKEN_JWT_TYPE,
            "kid": kid,
        });
        Ok(Self {
            algorithm,
            access_token_header: b64(header.to_string().as_bytes()),
            kid,
            jwk,
            signer,
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The RFC 7638 thumbprint (SHA-256) of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as published in the JWKS (`kid`, `alg`, `use: sig`).
    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// A compact JWS with header `{"alg", "typ": "at+jwt", "kid"}` over `claims`
    /// (already-serialised JSON).
    pub fn sign_access_token(&self, claims: &[u8]) -> Result<String, KeyError> {
        let payload_len = claims.len().div_ceil(3) * 4;
        let mut token =
            String::with_capacity(self.access_token_header.len() + payload_len + 2 + 344);
        token.push_str(&self.access_token_header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(claims, &mut token);
        let signature = self.sign(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }

    /// A compact JWS over any header and payload (both already-serialised JSON).
    /// Issuing uses [`Self::sign_access_token`]; this is for tools and for tests
    /// that need tokens a verifier must refuse.
    pub fn sign_jws(&self, header: &[u8], payload: &[u8]) -> Result<String, KeyError> {
        let mut token = b64(header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let signature = self.sign(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.signer {
            Signer::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Signer::P256(pair, rng) => pair
                .sign(rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Sign),
            Signer::Rsa(pair, rng) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, rng, message, &mut signature)
                    .map_err(|_| KeyError::Sign)?;
                Ok(signature)
            }
        }
    }
}

/// The shared-secret key for HS256 tokens, from configuration. Never published; the
/// header carries no `kid`.
pub struct HmacKey {
    key: aws_lc_rs::hmac::Key,
    access_token_header: String,
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacKey([redacted])")
    }
}

impl HmacKey {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret),
            access_token_header: b64(br#"{"alg":"HS256","typ":"at+jwt"}"#),
        }
    }

    pub fn sign_access_token(&self, claims: &[u8]) -> String {
        let mut token =
            String::with_capacity(self.access_token_header.len() + claims.len() * 4 / 3 + 48);
        token.push_str(&self.access_token_header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(claims, &mut token);
        let tag = aws_lc_rs::hmac::sign(&self.key, token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(tag.as_ref(), &mut token);
        token
    }
}

/// The JWKS document for `keys`.
pub fn jwk_set<'a>(keys: impl IntoIterator<Item = &'a Jwk>) -> JwkSet {
    JwkSet {
        keys: keys.into_iter().cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;

    #[derive(serde::Deserialize, serde::Serialize, PartialEq, Debug)]
    struct Claims {
        sub: String,
        exp: u64,
    }

    fn far_future() -> u64 {
        4_000_000_000
    }

    #[test]
    fn tokens_of_every_algorithm_verify_with_jsonwebtoken_through_the_published_jwk() {
        for algorithm in Algorithm::ASYMMETRIC {
            let key = SigningKey::from_pkcs8(algorithm, &generate(algorithm).unwrap()).unwrap();
            let claims = Claims {
                sub: "alice".into(),
                exp: far_future(),
            };
            let token = key
                .sign_access_token(&serde_json::to_vec(&claims).unwrap())
                .unwrap();
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.kid.as_deref(), Some(key.kid()));
            assert_eq!(header.typ.as_deref(), Some("at+jwt"));
            let decoding = DecodingKey::from_jwk(key.public_jwk()).unwrap();
            let alg = jsonwebtoken::Algorithm::from_str(algorithm.as_str()).unwrap();
            let mut validation = Validation::new(alg);
            validation.validate_aud = false;
            let data = jsonwebtoken::decode::<Claims>(&token, &decoding, &validation).unwrap();
            assert_eq!(data.claims, claims, "{algorithm}");
        }
    }

    #[test]
    fn hs256_tokens_verify_with_jsonwebtoken() {
        let secret = b"an HS256 secret of at least 32 bytes!";
        let claims = Claims {
            sub: "svc".into(),
            exp: far_future(),
        };
        let token = HmacKey::new(secret).sign_access_token(&serde_json::to_vec(&claims).unwrap());
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.validate_aud = false;
        let data =
            jsonwebtoken::decode::<Claims>(&token, &DecodingKey::from_secret(secret), &validation)
                .unwrap();
        assert_eq!(data.claims, claims);
        assert!(
            jsonwebtoken::decode::<Claims>(
                &token,
                &DecodingKey::from_secret(b"other"),
                &validation
            )
            .is_err()
        );
    }

    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint_and_survives_a_reload() {
        for algorithm in Algorithm::ASYMMETRIC {
            let der = generate(algorithm).unwrap();
            let a = SigningKey::from_pkcs8(algorithm, &der).unwrap();
            let b = SigningKey::from_pkcs8(algorithm, &der).unwrap();
            assert_eq!(a.kid(), b.kid());
            assert_eq!(a.kid().len(), 43, "base64url of 32 bytes");
            let mut bare = a.public_jwk().clone();
            bare.common = CommonParameters::default();
            assert_eq!(bare.thumbprint(ThumbprintHash::SHA256).unwrap(), a.kid());
        }
    }

    #[test]
    fn the_rfc_7638_example_thumbprint_is_reproduced() {
        // RFC 7638 §3.1: this RSA key's SHA-256 thumbprint.
        let jwk: Jwk = serde_json::from_str(
            r#"{"kty":"RSA","e":"AQAB","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}"#,
        )
        .unwrap();
        assert_eq!(
            jwk.thumbprint(ThumbprintHash::SHA256).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn a_key_of_another_algorithm_or_garbage_is_refused() {
        let ed = generate(Algorithm::EdDSA).unwrap();
        assert!(matches!(
            SigningKey::from_pkcs8(Algorithm::ES256, &ed),
            Err(KeyError::Malformed(Algorithm::ES256))
        ));
        let garbage = PrivateKeyDer::from_bytes(vec![1, 2, 3]);
        for algorithm in Algorithm::ASYMMETRIC {
            assert!(SigningKey::from_pkcs8(algorithm, &garbage).is_err());
        }
    }

    #[test]
    fn nothing_secret_in_debug() {
        let der = generate(Algorithm::EdDSA).unwrap();
        let key = SigningKey::from_pkcs8(Algorithm::EdDSA, &der).unwrap();
        assert_eq!(format!("{der:?}"), "PrivateKeyDer([redacted])");
        let shown = format!("{key:?}");
        assert!(shown.contains(key.kid()) && !shown.contains("signer"));
    }

    use std::str::FromStr;
}
