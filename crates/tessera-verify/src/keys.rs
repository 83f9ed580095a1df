//! The keys a verifier trusts, parsed once from a JWKS (and an optional HS256
//! secret), each bound to the one algorithm it may verify.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256,
    RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use tessera_proto::Algorithm;
use tessera_proto::token_type::ACCESS_TOKEN_JWT_TYPE;

pub(crate) enum KeyMaterial {
    Public(ParsedPublicKey),
    Hmac(Box<aws_lc_rs::hmac::Key>),
}

pub(crate) struct VerifyingKey {
    pub algorithm: Algorithm,
    pub material: KeyMaterial,
}

impl VerifyingKey {
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.material {
            KeyMaterial::Public(key) => key.verify_sig(message, signature).is_ok(),
            KeyMaterial::Hmac(key) => aws_lc_rs::hmac::verify(key, message, signature).is_ok(),
        }
    }
}

/// Trusted keys by `kid`, plus the HS256 secret (which has no `kid`).
#[derive(Default)]
pub struct VerifyingKeys {
    by_kid: HashMap<String, VerifyingKey>,
    hmac: Option<VerifyingKey>,
    /// The headers tessera itself writes for these keys, built at first use.
    headers: OnceLock<KnownHeaders>,
}

impl fmt::Debug for VerifyingKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKeys")
            .field("kids", &self.by_kid.keys().collect::<Vec<_>>())
            .field("hs256", &self.hmac.is_some())
            .finish()
    }
}

impl VerifyingKeys {
    /// Parses the signing keys of a JWKS. Keys without `kid`, without `alg`, of an
    /// algorithm we don't verify, or not for signatures are skipped: a key is
    /// trusted only for the one algorithm it declares, so a token cannot pick
    /// another (the algorithm-confusion attacks). Symmetric (`oct`) keys are taken
    /// only with `allow_symmetric`, for a local key file, never from a JWKS URL.
    pub fn from_jwks(set: &JwkSet, allow_symmetric: bool) -> Self {
        let mut keys = Self::default();
        for jwk in &set.keys {
            // A kid-less oct key (local files only) verifies the HS256 tokens that
            // carry no kid, as tessera's do; any other key needs a kid.
            let kid = jwk.common.key_id.clone();
            let kidless_secret = kid.is_none()
                && allow_symmetric
                && jwk.common.key_algorithm == Some(KeyAlgorithm::HS256);
            if kid.is_none() && !kidless_secret {
                continue;
            }
            if jwk
                .common
                .public_key_use
                .as_ref()
                .is_some_and(|u| *u != jsonwebtoken::jwk::PublicKeyUse::Signature)
            {
                continue;
            }
            let algorithm = match jwk.common.key_algorithm {
                Some(KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
                Some(KeyAlgorithm::ES256) => Algorithm::ES256,
                Some(KeyAlgorithm::RS256) => Algorithm::RS256,
                Some(KeyAlgorithm::HS256) if allow_symmetric => Algorithm::HS256,
                _ => continue,
            };
            if let Some(material) = material(algorithm, &jwk.algorithm) {
                let key = VerifyingKey {
                    algorithm,
                    material,
                };
                match kid {
                    Some(kid) => {
                        keys.by_kid.insert(kid, key);
                    }
                    None => keys.hmac = Some(key),
                }
            }
        }
        keys
    }

    /// Adds the HS256 shared secret, for tokens that carry no `kid`.
    pub fn with_hs256_secret(mut self, secret: &[u8]) -> Self {
        self.hmac = Some(VerifyingKey {
            algorithm: Algorithm::HS256,
            material: KeyMaterial::Hmac(Box::new(aws_lc_rs::hmac::Key::new(
                aws_lc_rs::hmac::HMAC_SHA256,
                secret,
            ))),
        });
        self
    }

    pub fn contains(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }

    pub fn len(&self) -> usize {
        self.by_kid.len() + usize::from(self.hmac.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn find(&self, kid: Option<&str>) -> Option<&VerifyingKey> {
        match kid {
            Some(kid) => self.by_kid.get(kid),
            None => self.hmac.as_ref(),
        }
    }
}

pub(crate) fn material(
    algorithm: Algorithm,
    parameters: &AlgorithmParameters,
) -> Option<KeyMaterial> {
    let bytes = |text: &str| URL_SAFE_NO_PAD.decode(text).ok();
    let public = match (algorithm, parameters) {
        (Algorithm::EdDSA, AlgorithmParameters::OctetKeyPair(p))
            if p.curve == EllipticCurve::Ed25519 =>
        {
            ParsedPublicKey::new(&ED25519, bytes(&p.x)?).ok()?
        }
        (Algorithm::ES256, AlgorithmParameters::EllipticCurve(p))
            if p.curve == EllipticCurve::P256 =>
        {
            let (x, y) = (bytes(&p.x)?, bytes(&p.y)?);
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            let mut point = Vec::with_capacity(65);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).ok()?
        }
        (Algorithm::RS256, AlgorithmParameters::RSA(p)) => {
            let components = RsaPublicKeyComponents {
                n: bytes(&p.n)?,
                e: bytes(&p.e)?,
            };
            let der = components.as_der().ok()?;
            ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der.as_ref()).ok()?
        }
        (Algorithm::HS256, AlgorithmParameters::OctetKey(p)) => {
            return Some(KeyMaterial::Hmac(Box::new(aws_lc_rs::hmac::Key::new(
                aws_lc_rs::hmac::HMAC_SHA256,
                &bytes(&p.value)?,
            ))));
        }
        _ => return None,
    };
    Some(KeyMaterial::Public(public))
}

/// The header segments that tessera's own tokens carry: `{"alg","kid","typ"}` for
/// each key (`{"alg","typ"}` for the HS256 secret), base64url-encoded. Every token
/// a key signs starts with the same one, so a token that does is known to have the
/// header that parsing those bytes gives, without decoding or parsing it again.
/// Any other header (members in another order, other members, other spelling) is
/// parsed as usual: this only ever saves work, it decides nothing.
pub(crate) struct KnownHeaders {
    /// Each segment with the `kid` (none for HS256) and algorithm it stands for.
    headers: Vec<(String, Option<String>, Algorithm)>,
    /// The same, by segment, once there are too many to compare one by one.
    by_segment: HashMap<String, usize>,
}

/// Past this many segments, look them up by hash rather than compare each.
const COMPARED: usize = 16;

impl KnownHeaders {
    fn new(keys: &VerifyingKeys) -> Self {
        let mut headers = Vec::new();
        let mut add = |json: String, kid: Option<&str>, algorithm: Algorithm| {
            // Kept only if parsing the bytes gives exactly what the entry claims,
            // so that skipping the parse can never change an answer.
            let parsed = crate::jws::read_header(json.as_bytes());
            let same = parsed.is_ok_and(|h| {
                h.alg == algorithm.as_str()
                    && h.typ.as_deref() == Some(ACCESS_TOKEN_JWT_TYPE)
                    && h.kid.as_deref() == kid
            });
            if same {
                headers.push((
                    URL_SAFE_NO_PAD.encode(json),
                    kid.map(str::to_owned),
                    algorithm,
                ));
            }
        };
        let typ = ACCESS_TOKEN_JWT_TYPE;
        for (kid, key) in &keys.by_kid {
            let (Ok(alg), Ok(quoted_kid), Ok(typ)) = (
                serde_json::to_string(key.algorithm.as_str()),
                serde_json::to_string(kid),
                serde_json::to_string(typ),
            ) else {
                continue;
            };
            // serde_json's own order (sorted), which tessera-keys writes; and the
            // order of insertion, should serde_json's `preserve_order` be on.
            add(
                format!(r#"{{"alg":{alg},"kid":{quoted_kid},"typ":{typ}}}"#),
                Some(kid),
                key.algorithm,
            );
            add(
                format!(r#"{{"alg":{alg},"typ":{typ},"kid":{quoted_kid}}}"#),
                Some(kid),
                key.algorithm,
            );
        }
        if keys.hmac.is_some() {
            add(
                format!(r#"{{"alg":"HS256","typ":"{typ}"}}"#),
                None,
                Algorithm::HS256,
            );
        }
        let by_segment = if headers.len() > COMPARED {
            headers
                .iter()
                .enumerate()
                .map(|(i, (segment, _, _))| (segment.clone(), i))
                .collect()
        } else {
            HashMap::new()
        };
        Self {
            headers,
            by_segment,
        }
    }
}

impl VerifyingKeys {
    /// The header and key for a header segment of tessera's own form for one of
    /// these keys.
    pub(crate) fn known_header(
        &self,
        segment: &str,
    ) -> Option<(crate::jws::Header<'_>, &VerifyingKey)> {
        let known = self.headers.get_or_init(|| KnownHeaders::new(self));
        let (_, kid, algorithm) = if known.by_segment.is_empty() {
            known.headers.iter().find(|(s, _, _)| s == segment)?
        } else {
            known.headers.get(*known.by_segment.get(segment)?)?
        };
        let key = self.find(kid.as_deref())?;
        Some((
            crate::jws::Header {
                alg: Cow::Borrowed(algorithm.as_str()),
                typ: Some(Cow::Borrowed(ACCESS_TOKEN_JWT_TYPE)),
                kid: kid.as_deref().map(Cow::Borrowed),
            },
            key,
        ))
    }
}
