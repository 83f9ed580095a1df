//! DPoP proofs (RFC 9449): the checks of §4.3 on a `DPoP` header, for the token
//! endpoint and for resource servers alike, and the key's thumbprint (RFC 7638)
//! that a bound token names as `cnf.jkt`.
//!
//! A proof is a JWS signed by the key it carries in its header (`jwk`): the
//! opposite of an access token, whose key must never come from the token. So it
//! has a parse of its own, as strict: a JSON object with no key twice, `typ`
//! `dpop+jwt`, an asymmetric `alg` that the key's type and curve agree with, a
//! public key and no private member, the signature, then the claims: `jti`,
//! `htm` and `htu` for this request (the URL compared without query or
//! fragment, after the normalisation `url` does), `iat` within a window, `ath`
//! when a token comes with the proof, and the server's `nonce` when it asks for
//! one. Replays (`jti` seen before) are the caller's to refuse, with
//! [`ReplayCache`] or a shared store: [`VerifiedProof::replay_key`] is what to
//! remember and until when.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use serde_json::{Map, Value};
use tessera_proto::Algorithm;

use crate::keys::{KeyMaterial, material};

/// The `typ` of a proof (§4.2).
pub const DPOP_JWT_TYPE: &str = "dpop+jwt";
/// The algorithms a proof may be signed with: asymmetric only (§4.3 item 5).
pub const DPOP_ALGORITHMS: [Algorithm; 3] = [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256];
/// The longest proof read: a proof with an RSA key is about 1.5 KB.
pub const MAX_PROOF_BYTES: usize = 8 * 1024;
/// The longest `jti` kept: its replay entry must stay small.
const MAX_JTI_BYTES: usize = 256;
/// Members of a JWK that only a private key has (RFC 7517, 7518 §6).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a proof is refused; each is `invalid_dpop_proof` on the wire (§7.1),
/// except [`DpopError::UseNonce`] (`use_dpop_nonce`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    #[error("the DPoP proof is malformed: {0}")]
    Malformed(&'static str),
    #[error("the DPoP proof has a duplicate JSON key")]
    DuplicateKey,
    #[error("the DPoP proof's typ is not dpop+jwt")]
    WrongType,
    #[error("the DPoP proof's algorithm is not accepted (ES256, EdDSA or RS256)")]
    AlgorithmNotAllowed,
    #[error(
        "the DPoP proof's jwk is missing, not a public key of its algorithm, or holds a private key"
    )]
    BadKey,
    #[error("the DPoP proof's signature is invalid")]
    BadSignature,
    #[error("the DPoP proof has no {0} claim")]
    MissingClaim(&'static str),
    #[error("the DPoP proof is for another HTTP method")]
    WrongMethod,
    #[error("the DPoP proof is for another URL")]
    WrongUrl,
    #[error("the DPoP proof was not made just now (iat)")]
    NotFresh,
    #[error("the DPoP proof is not for this access token (ath)")]
    WrongTokenHash,
    #[error("the DPoP proof must carry the nonce this server gave")]
    UseNonce,
    #[error("the DPoP proof was used already")]
    Replayed,
}

/// What a proof must be for: the request it came with.
#[derive(Debug, Clone, Copy)]
pub struct ProofRequest<'a> {
    /// The request's method (`POST`).
    pub method: &'a str,
    /// The URL the request was sent to, as the client saw it (the public URL).
    pub url: &'a str,
    /// Now, in seconds since the epoch.
    pub now: i64,
    /// How far `iat` may be in the past, and (a clock slightly ahead) in the future.
    pub max_age: i64,
    pub leeway: i64,
    /// The access token sent with the proof, whose hash the proof must carry.
    pub access_token: Option<&'a str>,
    /// The nonce the server gave, when it asks for one.
    pub nonce: Option<&'a str>,
}

/// A proof that passed every check but replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// The key's RFC 7638 thumbprint, base64url: what `cnf.jkt` names.
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
    pub algorithm: Algorithm,
}

impl VerifiedProof {
    /// What a replay cache keeps of this proof: the key and the `jti` (two keys
    /// may pick the same `jti`).
    pub fn replay_key(&self) -> String {
        format!("{}:{}", self.jkt, self.jti)
    }
}

/// Checks `proof` (the `DPoP` header's value) for `request`: every check of
/// RFC 9449 §4.3 but the replay of its `jti`.
pub fn verify_proof(proof: &str, request: &ProofRequest<'_>) -> Result<VerifiedProof, DpopError> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(DpopError::Malformed("the proof is too large"));
    }
    let mut parts = proof.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(DpopError::Malformed("a JWS has three dot-separated parts"));
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| DpopError::Malformed("a part is not base64url without padding"))
    };
    let header = object(&decode(header_b64)?)?;
    let payload = object(&decode(payload_b64)?)?;
    let signature = decode(signature_b64)?;

    if header.get("typ").and_then(Value::as_str) != Some(DPOP_JWT_TYPE) {
        return Err(DpopError::WrongType);
    }
    if header.contains_key("crit") {
        return Err(DpopError::Malformed("crit is not understood"));
    }
    let algorithm = match header.get("alg").and_then(Value::as_str) {
        Some("ES256") => Algorithm::ES256,
        Some("EdDSA") => Algorithm::EdDSA,
        Some("RS256") => Algorithm::RS256,
        _ => return Err(DpopError::AlgorithmNotAllowed),
    };
    let Some(Value::Object(jwk_members)) = header.get("jwk") else {
        return Err(DpopError::BadKey);
    };
    if PRIVATE_MEMBERS.iter().any(|m| jwk_members.contains_key(*m)) {
        return Err(DpopError::BadKey);
    }
    let jwk: Jwk = serde_json::from_value(Value::Object(jwk_members.clone()))
        .map_err(|_| DpopError::BadKey)?;
    let Some(KeyMaterial::Public(key)) = material(algorithm, &jwk.algorithm) else {
        return Err(DpopError::BadKey);
    };
    let signing_input_len = header_b64.len() + 1 + payload_b64.len();
    let signing_input = &proof.as_bytes()[..signing_input_len];
    if key.verify_sig(signing_input, &signature).is_err() {
        return Err(DpopError::BadSignature);
    }

    let text = |name: &'static str| {
        payload
            .get(name)
            .and_then(Value::as_str)
            .ok_or(DpopError::MissingClaim(name))
    };
    let jti = text("jti")?;
    if jti.is_empty() || jti.len() > MAX_JTI_BYTES {
        return Err(DpopError::Malformed("jti must be 1 to 256 bytes"));
    }
    // Methods are case-sensitive (RFC 9110 §9.1).
    if text("htm")? != request.method {
        return Err(DpopError::WrongMethod);
    }
    let expected = normalised(request.url).ok_or(DpopError::WrongUrl)?;
    if normalised(text("htu")?).as_deref() != Some(expected.as_str()) {
        return Err(DpopError::WrongUrl);
    }
    let iat = payload
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or(DpopError::MissingClaim("iat"))?;
    if iat < request.now - request.max_age || iat > request.now + request.leeway {
        return Err(DpopError::NotFresh);
    }
    if let Some(token) = request.access_token {
        let expected = URL_SAFE_NO_PAD.encode(digest(&SHA256, token.as_bytes()));
        match payload.get("ath").and_then(Value::as_str) {
            Some(ath) if ath == expected => {}
            Some(_) => return Err(DpopError::WrongTokenHash),
            None => return Err(DpopError::MissingClaim("ath")),
        }
    }
    if let Some(nonce) = request.nonce
        && payload.get("nonce").and_then(Value::as_str) != Some(nonce)
    {
        return Err(DpopError::UseNonce);
    }
    Ok(VerifiedProof {
        jkt: thumbprint(&jwk).ok_or(DpopError::BadKey)?,
        jti: jti.to_owned(),
        iat,
        algorithm,
    })
}

/// A JSON object with no member given twice.
fn object(bytes: &[u8]) -> Result<Map<String, Value>, DpopError> {
    struct Strict(Map<String, Value>);
    impl<'de> serde::Deserialize<'de> for Strict {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Members;
            impl<'de> serde::de::Visitor<'de> for Members {
                type Value = Map<String, Value>;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut access: A,
                ) -> Result<Self::Value, A::Error> {
                    let mut map = Map::new();
                    while let Some((key, value)) = access.next_entry::<String, Value>()? {
                        if map.insert(key, value).is_some() {
                            return Err(serde::de::Error::custom("duplicate"));
                        }
                    }
                    Ok(map)
                }
            }
            d.deserialize_map(Members).map(Strict)
        }
    }
    match serde_json::from_slice::<Strict>(bytes) {
        Ok(Strict(map)) => Ok(map),
        Err(e) if e.to_string().starts_with("duplicate") => Err(DpopError::DuplicateKey),
        Err(_) => Err(DpopError::Malformed("a part is not a JSON object")),
    }
}

/// `url` as §4.3 compares it: parsed (which lowers the scheme and host, drops a
/// default port and normalises percent-encoding case), without query or fragment.
fn normalised(url: &str) -> Option<String> {
    let mut parsed = url::Url::parse(url).ok()?;
    parsed.set_query(None);
    parsed.set_fragment(None);
    Some(parsed.into())
}

/// The RFC 7638 thumbprint of a public key: SHA-256 over its required members in
/// lexicographic order, no spaces, base64url.
pub fn thumbprint(jwk: &Jwk) -> Option<String> {
    let canonical = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => format!(
            r#"{{"crv":"P-256","kty":"EC","x":{},"y":{}}}"#,
            serde_json::to_string(&p.x).ok()?,
            serde_json::to_string(&p.y).ok()?
        ),
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => format!(
            r#"{{"crv":"Ed25519","kty":"OKP","x":{}}}"#,
            serde_json::to_string(&p.x).ok()?
        ),
        AlgorithmParameters::RSA(p) => format!(
            r#"{{"e":{},"kty":"RSA","n":{}}}"#,
            serde_json::to_string(&p.e).ok()?,
            serde_json::to_string(&p.n).ok()?
        ),
        _ => return None,
    };
    Some(URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes())))
}

/// The `jti`s of proofs seen within their window, so that a proof is used once
/// (§11.1). Bounded: past `capacity` entries the oldest go first, so keep the
/// capacity above the proofs a window can bring (a proof older than the window is
/// refused anyway). One process's memory: instances that share traffic share a
/// store instead (the server keeps them in Redis).
pub struct ReplayCache {
    capacity: usize,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    until: HashMap<String, i64>,
    order: VecDeque<(i64, String)>,
}

impl ReplayCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            seen: Mutex::new(Seen::default()),
        }
    }

    /// Records `proof` as used until `until` (seconds); [`DpopError::Replayed`]
    /// if it was already, and still within its window at `now`.
    pub fn first_use(&self, proof: &VerifiedProof, until: i64, now: i64) -> Result<(), DpopError> {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while seen.order.front().is_some_and(|(at, _)| *at < now) {
            if let Some((_, key)) = seen.order.pop_front() {
                seen.until.remove(&key);
            }
        }
        let key = proof.replay_key();
        if seen.until.get(&key).is_some_and(|at| *at >= now) {
            return Err(DpopError::Replayed);
        }
        while seen.until.len() >= self.capacity {
            match seen.order.pop_front() {
                Some((_, old)) => {
                    seen.until.remove(&old);
                }
                None => break,
            }
        }
        seen.until.insert(key.clone(), until);
        seen.order.push_back((until, key));
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .until
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests;
