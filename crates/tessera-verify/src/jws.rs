//! Strict parsing of a compact JWS: three base64url segments without padding, a
//! header and a payload that are JSON objects with no key given twice.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::VerifyError;

/// The header members a verifier acts on. Anything that would let the token choose
/// its own key (`jwk`, `jku`, `x5u`, `x5c`) or demand extensions we don't know
/// (`crit`) is refused before any key is looked at.
pub(crate) struct Header {
    pub alg: String,
    pub typ: Option<String>,
    pub kid: Option<String>,
}

pub(crate) struct Parsed<'a> {
    pub header: Header,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'a [u8],
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

pub(crate) fn parse(token: &str, max_bytes: usize) -> Result<Parsed<'_>, VerifyError> {
    if token.len() > max_bytes {
        return Err(VerifyError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed(
            "a JWS has three dot-separated parts",
        ));
    };
    if signature.is_empty() {
        return Err(VerifyError::Malformed("the signature is missing"));
    }
    let decode = |part: &str, what: &'static str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| VerifyError::Malformed(what))
    };
    let header_bytes = decode(header, "the header is not base64url")?;
    let payload_bytes = decode(payload, "the payload is not base64url")?;
    let signature = decode(signature, "the signature is not base64url")?;
    let members = object(&header_bytes, "the header is not a JSON object")?;
    for embedded in ["jwk", "jku", "x5u", "x5c"] {
        if members.contains_key(embedded) {
            return Err(VerifyError::EmbeddedKey);
        }
    }
    if members.contains_key("crit") {
        // We understand no extension, so any critical one must be refused (RFC 7515
        // §4.1.11).
        return Err(VerifyError::UnknownCritical);
    }
    let text = |name: &str| -> Result<Option<String>, VerifyError> {
        match members.get(name) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(VerifyError::Malformed("a header member has the wrong type")),
        }
    };
    let header = Header {
        alg: text("alg")?.ok_or(VerifyError::Malformed("the header has no alg"))?,
        typ: text("typ")?,
        kid: text("kid")?,
    };
    Ok(Parsed {
        header,
        signing_input: token
            .as_bytes()
            .get(..token.rfind('.').unwrap_or(0))
            .unwrap_or_default(),
        payload: payload_bytes,
        signature,
    })
}

/// A JSON object whose keys are all distinct. serde_json keeps the last of
/// duplicate keys, so two parsers could disagree on what a token says; we refuse.
pub(crate) fn object(
    bytes: &[u8],
    what: &'static str,
) -> Result<BTreeMap<String, serde_json::Value>, VerifyError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let map = UniqueKeys::deserialize(&mut deserializer).map_err(|e| {
        if e.to_string().contains(DUPLICATE) {
            VerifyError::DuplicateKey
        } else {
            VerifyError::Malformed(what)
        }
    })?;
    deserializer
        .end()
        .map_err(|_| VerifyError::Malformed(what))?;
    Ok(map.0)
}

const DUPLICATE: &str = "duplicate key in JSON object";

struct UniqueKeys(BTreeMap<String, serde_json::Value>);

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> Visitor<'de> for Keys {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<UniqueKeys, A::Error> {
                let mut map = BTreeMap::new();
                while let Some((key, value)) = access.next_entry::<String, serde_json::Value>()? {
                    if map.insert(key, value).is_some() {
                        return Err(de::Error::custom(DUPLICATE));
                    }
                }
                Ok(UniqueKeys(map))
            }
        }
        deserializer.deserialize_map(Keys)
    }
}
