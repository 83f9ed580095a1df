//! DPoP proofs (RFC 9449): the checks of §4.3 on a `DPoP` header, for the token
//! endpoint and for resource servers alike, and the key's thumbprint (RFC 7638)
//! that a bound token names as `cnf.jkt`.
//!
//! A proof is a JWS signed by the key it carries in its header (`jwk`): the
//! opposite of an access token, whose key must never come from the token. So its
//! header has members of its own, read by the same strict reader (`jws::object`:
//! a JSON object with no key twice), and must have `typ`
//! `dpop+jwt`, an asymmetric `alg` that the key's type and curve agree with, a
//! public key and no private member, the signature, then the claims: `jti`,
//! `htm` and `htu` for this request (the URL compared without query or
//! fragment, after the normalisation `url` does), `iat` within a window, `ath`
//! when a token comes with the proof, and the server's `nonce` when it asks for
//! one. Replays (`jti` seen before) are the caller's to refuse, with
//! [`ReplayCache`] or a shared store: [`VerifiedProof::replay_key`] is what to
//! remember and until when.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use serde::de::MapAccess;
use serde_json::Value;
use tessera_proto::Algorithm;

use crate::claims::{Time, TimeSeed};
pub use crate::error::DpopError;
use crate::error::VerifyError;
use crate::jws::{self, Flat, Members, Text, TextSeed, Valid};
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
    /// The proof's `nonce`, for a server whose nonces are not one fixed value
    /// to check it its own way.
    pub nonce: Option<String>,
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
    let parts = Parts::split(proof)?;
    let key = ProofKey::of_header(parts.header)?;
    check(proof, &parts, &key, request)
}

/// The keys of proofs seen lately, by header: a client signs every proof with
/// one key, so its header segment repeats byte for byte, and what parsing it
/// gave (the key parsed, its thumbprint) is kept instead of done again. Keyed by
/// the exact bytes, so this only saves work and never changes an answer.
/// Bounded: when full it starts over.
pub struct ProofKeys {
    capacity: usize,
    by_header: Mutex<HashMap<String, std::sync::Arc<ProofKey>>>,
}

impl ProofKeys {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            by_header: Mutex::new(HashMap::new()),
        }
    }

    /// [`verify_proof`], with the header's key from here when it was seen.
    pub fn verify(
        &self,
        proof: &str,
        request: &ProofRequest<'_>,
    ) -> Result<VerifiedProof, DpopError> {
        let parts = Parts::split(proof)?;
        let cached = self
            .by_header
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(parts.header)
            .cloned();
        let key = match cached {
            Some(key) => key,
            None => {
                let key = std::sync::Arc::new(ProofKey::of_header(parts.header)?);
                let mut by_header = self
                    .by_header
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if by_header.len() >= self.capacity {
                    by_header.clear();
                }
                by_header.insert(parts.header.to_owned(), key.clone());
                key
            }
        };
        check(proof, &parts, &key, request)
    }
}

/// A proof's three segments, split.
struct Parts<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
}

impl<'a> Parts<'a> {
    fn split(proof: &'a str) -> Result<Self, DpopError> {
        if proof.len() > MAX_PROOF_BYTES {
            return Err(DpopError::Malformed("the proof is too large"));
        }
        let mut parts = proof.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(DpopError::Malformed("a JWS has three dot-separated parts"));
        };
        Ok(Self {
            header,
            payload,
            signature,
        })
    }
}

fn decode(part: &str) -> Result<Vec<u8>, DpopError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| DpopError::Malformed("a part is not base64url without padding"))
}

/// What a proof's header gives: the key it is signed with.
pub struct ProofKey {
    algorithm: Algorithm,
    key: aws_lc_rs::signature::ParsedPublicKey,
    jkt: String,
}

impl ProofKey {
    /// The header's checks (§4.3 items 4 to 6): `typ`, `alg`, a public `jwk` of
    /// that algorithm.
    fn of_header(segment: &str) -> Result<Self, DpopError> {
        let decoded = decode(segment)?;
        let header: ProofHeader<'_> = read(&decoded, "the header is not a JSON object")?;
        if text(&header.typ)? != Some(DPOP_JWT_TYPE) {
            return Err(DpopError::WrongType);
        }
        if header.crit {
            return Err(DpopError::Malformed("crit is not understood"));
        }
        let algorithm = match text(&header.alg)? {
            Some("ES256") => Algorithm::ES256,
            Some("EdDSA") => Algorithm::EdDSA,
            Some("RS256") => Algorithm::RS256,
            _ => return Err(DpopError::AlgorithmNotAllowed),
        };
        let Some(Value::Object(jwk_members)) = header.jwk else {
            return Err(DpopError::BadKey);
        };
        if PRIVATE_MEMBERS.iter().any(|m| jwk_members.contains_key(*m)) {
            return Err(DpopError::BadKey);
        }
        let jwk: Jwk =
            serde_json::from_value(Value::Object(jwk_members)).map_err(|_| DpopError::BadKey)?;
        let Some(KeyMaterial::Public(key)) = material(algorithm, &jwk.algorithm) else {
            return Err(DpopError::BadKey);
        };
        Ok(Self {
            algorithm,
            key,
            jkt: thumbprint(&jwk).ok_or(DpopError::BadKey)?,
        })
    }
}

/// The signature and the claims (§4.3 items 7 to 12).
fn check(
    proof: &str,
    parts: &Parts<'_>,
    key: &ProofKey,
    request: &ProofRequest<'_>,
) -> Result<VerifiedProof, DpopError> {
    let payload_bytes = decode(parts.payload)?;
    let payload: ProofClaims<'_> = read(&payload_bytes, "the claims are not a JSON object")?;
    let signature = decode(parts.signature)?;
    let signing_input = &proof.as_bytes()[..parts.header.len() + 1 + parts.payload.len()];
    if key.key.verify_sig(signing_input, &signature).is_err() {
        return Err(DpopError::BadSignature);
    }

    let jti = text(&payload.jti)?.ok_or(DpopError::MissingClaim("jti"))?;
    if jti.is_empty() || jti.len() > MAX_JTI_BYTES {
        return Err(DpopError::Malformed("jti must be 1 to 256 bytes"));
    }
    // Methods are case-sensitive (RFC 9110 §9.1).
    if text(&payload.htm)?.ok_or(DpopError::MissingClaim("htm"))? != request.method {
        return Err(DpopError::WrongMethod);
    }
    let htu = text(&payload.htu)?.ok_or(DpopError::MissingClaim("htu"))?;
    // Most clients send the URL as the server names it: compared as it is first.
    if htu != request.url {
        let expected = normalised(request.url).ok_or(DpopError::WrongUrl)?;
        if normalised(htu).as_deref() != Some(expected.as_str()) {
            return Err(DpopError::WrongUrl);
        }
    }
    let iat = match payload.iat {
        Some(Time::Seconds(seconds)) => seconds,
        Some(Time::NotSeconds | Time::NotNumber) => {
            return Err(DpopError::Malformed("iat is not a number of seconds"));
        }
        None => return Err(DpopError::MissingClaim("iat")),
    };
    if iat < request.now - request.max_age || iat > request.now + request.leeway {
        return Err(DpopError::NotFresh);
    }
    if let Some(token) = request.access_token {
        let expected = URL_SAFE_NO_PAD.encode(digest(&SHA256, token.as_bytes()));
        match text(&payload.ath)? {
            Some(ath) if ath == expected => {}
            Some(_) => return Err(DpopError::WrongTokenHash),
            None => return Err(DpopError::MissingClaim("ath")),
        }
    }
    if let Some(nonce) = request.nonce
        && text(&payload.nonce)? != Some(nonce)
    {
        return Err(DpopError::UseNonce);
    }
    Ok(VerifiedProof {
        jkt: key.jkt.clone(),
        jti: jti.to_owned(),
        iat,
        algorithm: key.algorithm,
        nonce: text(&payload.nonce)?.map(str::to_owned),
    })
}

// The header members a proof's checks read.
const TYP: u16 = 0;
const ALG: u16 = 1;
const JWK: u16 = 2;
const CRIT: u16 = 3;

/// A proof's header, read by the same strict reader as a token's
/// ([`jws::object`]: no key given twice, the flat fast path first); unlike a
/// token's, its `jwk` is what it is about.
#[derive(Default)]
struct ProofHeader<'de> {
    typ: Option<Text<'de>>,
    alg: Option<Text<'de>>,
    /// `Null` when it was given but is not an object.
    jwk: Option<Value>,
    crit: bool,
}

impl<'de> Members<'de> for ProofHeader<'de> {
    fn known(name: &str) -> Option<u16> {
        Some(match name {
            "typ" => TYP,
            "alg" => ALG,
            "jwk" => JWK,
            "crit" => CRIT,
            _ => return None,
        })
    }

    fn value<A: MapAccess<'de>>(&mut self, member: u16, map: &mut A) -> Result<(), A::Error> {
        match member {
            TYP => self.typ = Some(map.next_value_seed(TextSeed)?),
            ALG => self.alg = Some(map.next_value_seed(TextSeed)?),
            JWK => self.jwk = Some(map.next_value_seed(DistinctMembers)?),
            _ => {
                map.next_value_seed(Valid)?;
                self.crit = true;
            }
        }
        Ok(())
    }

    fn flat(&mut self, member: u16, value: Flat<'de>) {
        match member {
            TYP => self.typ = Some(flat_text(value)),
            ALG => self.alg = Some(flat_text(value)),
            // A flat value (a string, a number) is no key.
            JWK => self.jwk = Some(Value::Null),
            _ => self.crit = true,
        }
    }
}

/// A proof's `jwk`: an object whose members are all distinct, else `Null` (no
/// key). serde_json would keep the last `x` of two, another parser the first:
/// the key that signs and the thumbprint a token is bound to must be read one
/// way only.
struct DistinctMembers;

impl<'de> serde::de::DeserializeSeed<'de> for DistinctMembers {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for DistinctMembers {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = serde_json::Map::new();
        let mut twice = false;
        while let Some(name) = map.next_key::<String>()? {
            let value: Value = map.next_value()?;
            twice |= members.insert(name, value).is_some();
        }
        Ok(if twice {
            Value::Null
        } else {
            Value::Object(members)
        })
    }

    // Anything else is no key: read past it.
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Value::Null)
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

// The claims a proof's checks read.
const JTI: u16 = 0;
const HTM: u16 = 1;
const HTU: u16 = 2;
const IAT: u16 = 3;
const ATH: u16 = 4;
const NONCE: u16 = 5;

/// A proof's claims, borrowed from the decoded payload where they hold no
/// escapes.
#[derive(Default)]
struct ProofClaims<'de> {
    jti: Option<Text<'de>>,
    htm: Option<Text<'de>>,
    htu: Option<Text<'de>>,
    iat: Option<Time>,
    ath: Option<Text<'de>>,
    nonce: Option<Text<'de>>,
}

impl<'de> ProofClaims<'de> {
    fn text(&mut self, member: u16) -> &mut Option<Text<'de>> {
        match member {
            JTI => &mut self.jti,
            HTM => &mut self.htm,
            HTU => &mut self.htu,
            ATH => &mut self.ath,
            _ => &mut self.nonce,
        }
    }
}

impl<'de> Members<'de> for ProofClaims<'de> {
    fn known(name: &str) -> Option<u16> {
        Some(match name {
            "jti" => JTI,
            "htm" => HTM,
            "htu" => HTU,
            "iat" => IAT,
            "ath" => ATH,
            "nonce" => NONCE,
            _ => return None,
        })
    }

    fn value<A: MapAccess<'de>>(&mut self, member: u16, map: &mut A) -> Result<(), A::Error> {
        if member == IAT {
            self.iat = Some(map.next_value_seed(TimeSeed)?);
        } else {
            *self.text(member) = Some(map.next_value_seed(TextSeed)?);
        }
        Ok(())
    }

    fn flat(&mut self, member: u16, value: Flat<'de>) {
        if member == IAT {
            self.iat = Some(match value {
                Flat::Int(seconds) => Time::Seconds(seconds),
                Flat::Str(_) | Flat::Strings(_) => Time::NotNumber,
            });
        } else {
            *self.text(member) = Some(flat_text(value));
        }
    }
}

fn flat_text(value: Flat<'_>) -> Text<'_> {
    match value {
        Flat::Str(s) => Text::Str(Cow::Borrowed(s)),
        Flat::Int(_) | Flat::Strings(_) => Text::Other,
    }
}

/// A JSON object of a proof, read strictly; its refusals as the proof's.
fn read<'de, M: Members<'de>>(bytes: &'de [u8], what: &'static str) -> Result<M, DpopError> {
    jws::object(bytes, what).map_err(|error| match error {
        VerifyError::DuplicateKey => DpopError::DuplicateKey,
        _ => DpopError::Malformed(what),
    })
}

/// A member that must be a string, if it is there.
fn text<'a>(member: &'a Option<Text<'_>>) -> Result<Option<&'a str>, DpopError> {
    match member {
        None => Ok(None),
        Some(Text::Str(s)) => Ok(Some(s)),
        Some(Text::Other) => Err(DpopError::Malformed("a member has the wrong type")),
    }
}

/// `url` as §4.3 compares it, with the syntax- and scheme-based normalisation
/// RFC 9110 §4.2.3 asks of servers: parsed (which lowers the scheme and host,
/// drops a default port and resolves dot segments, `%2e` ones too), the path's
/// percent-encodings in one form, without query or fragment.
fn normalised(url: &str) -> Option<String> {
    let mut parsed = url::Url::parse(url).ok()?;
    parsed.set_query(None);
    parsed.set_fragment(None);
    if parsed.path().contains('%') {
        let path = percent_normalised(parsed.path());
        parsed.set_path(&path);
    }
    Some(parsed.into())
}

/// RFC 3986 §6.2.2.1–2: an encoded unreserved character decoded (`%7E` is `~`),
/// every other encoding in upper case (`%2f` is `%2F`); nothing else changes, so
/// an encoded `/` stays apart from a plain one.
fn percent_normalised(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = |i: usize| bytes.get(i).and_then(|b| (*b as char).to_digit(16));
        if bytes[at] == b'%'
            && let (Some(high), Some(low)) = (hex(at + 1), hex(at + 2))
        {
            let value = (high * 16 + low) as u8;
            if value.is_ascii_alphanumeric() || b"-._~".contains(&value) {
                out.push(value as char);
            } else {
                out.push('%');
                out.push_str(&path[at + 1..at + 3].to_ascii_uppercase());
            }
            at += 3;
            continue;
        }
        // A parsed URL's path is ASCII: `url` percent-encodes the rest.
        out.push(bytes[at] as char);
        at += 1;
    }
    out
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
/// (§11.1). One process's memory: instances that share traffic share a store
/// instead (the server keeps them in Redis or PostgreSQL).
///
/// Bounded, and never by forgetting a proof that could still be replayed: past
/// `capacity` entries the oldest go first, and every proof remembered no later
/// than one forgotten early is refused from then on as not fresh (it may be that
/// one). Under more proofs than the capacity holds in a window, the window
/// shrinks (to `capacity` ÷ proofs per second), for fresh proofs nothing changes.
/// Each entry is a fixed 16-byte digest of the key and `jti`, whatever the
/// `jti`'s length, so the capacity bounds the memory too (about 64 bytes an entry).
pub struct ReplayCache {
    capacity: usize,
    seen: Mutex<Seen>,
}

/// What a replay cache keeps of a proof: SHA-256 of its key's thumbprint and its
/// `jti`, cut to 128 bits (two keys may pick the same `jti`).
type ReplayDigest = [u8; 16];

#[derive(Default)]
struct Seen {
    until: HashMap<ReplayDigest, i64>,
    order: VecDeque<(i64, ReplayDigest)>,
    /// The latest `until` of an entry forgotten before it ran out: a proof
    /// remembered no later than this may have been seen, so it is refused.
    floor: i64,
}

impl Seen {
    /// Forgets `key` if `at` is still its time: a key used again after its window
    /// (a client that reuses a `jti`) has a later entry of its own further back,
    /// which the earlier one, reaching the front, must not take with it. Whether
    /// it forgot anything.
    fn forget(&mut self, at: i64, key: &ReplayDigest) -> bool {
        if self.until.get(key) != Some(&at) {
            return false;
        }
        self.until.remove(key);
        true
    }
}

impl ReplayCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            seen: Mutex::new(Seen::default()),
        }
    }

    fn digest(proof: &VerifiedProof) -> ReplayDigest {
        let mut context = aws_lc_rs::digest::Context::new(&SHA256);
        // The thumbprint is base64url (no ':'), so the pair reads back one way.
        context.update(proof.jkt.as_bytes());
        context.update(b":");
        context.update(proof.jti.as_bytes());
        let mut digest = [0u8; 16];
        digest.copy_from_slice(&context.finish().as_ref()[..16]);
        digest
    }

    /// Records `proof` as used until `until` (seconds); [`DpopError::Replayed`]
    /// if it was already, and still within its window at `now`;
    /// [`DpopError::NotFresh`] if it is no newer than a proof the cache had to
    /// forget early (see the type's documentation).
    pub fn first_use(&self, proof: &VerifiedProof, until: i64, now: i64) -> Result<(), DpopError> {
        let key = Self::digest(proof);
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while seen.order.front().is_some_and(|(at, _)| *at < now) {
            if let Some((at, old)) = seen.order.pop_front() {
                seen.forget(at, &old);
            }
        }
        if seen.until.get(&key).is_some_and(|at| *at >= now) {
            return Err(DpopError::Replayed);
        }
        if until <= seen.floor {
            return Err(DpopError::NotFresh);
        }
        while seen.until.len() >= self.capacity {
            let Some((at, old)) = seen.order.pop_front() else {
                break;
            };
            if seen.forget(at, &old) {
                // Still replayable when forgotten: refuse whatever it could be.
                seen.floor = seen.floor.max(at);
            }
        }
        seen.until.insert(key, until);
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
