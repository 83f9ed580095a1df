//! Strict parsing of a compact JWS: three base64url segments without padding, a
//! header and a payload that are JSON objects with no key given twice.
//!
//! The parts are decoded into one buffer and the JSON is read in place: strings
//! borrow from the decoded bytes unless they hold escapes, members are recognised
//! as they stream past, and nothing is built that the verifier does not keep. What
//! is refused is exactly what a parse into a map of JSON values refused, in the same
//! order (`claims/tests.rs` holds that parse as a reference and compares the two).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::VerifyError;

mod base64url;
pub(crate) mod flat;

pub(crate) use flat::{Flat, strings};

/// The header members a verifier acts on. Anything that would let the token choose
/// its own key (`jwk`, `jku`, `x5u`, `x5c`) or demand extensions we don't know
/// (`crit`) is refused before any key is looked at.
pub(crate) struct Header<'a> {
    pub alg: Cow<'a, str>,
    pub typ: Option<Cow<'a, str>>,
    pub kid: Option<Cow<'a, str>>,
}

/// `K` is the caller's key type: this module parses and knows nothing of keys.
pub(crate) struct Parsed<'a, K> {
    pub header: Header<'a>,
    /// The key the header names, when `known` recognised the header segment as
    /// one of the key's own; otherwise the caller looks it up.
    pub key: Option<&'a K>,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'a [u8],
    pub payload: &'a [u8],
    pub signature: &'a [u8],
}

const THREE_PARTS: VerifyError = VerifyError::Malformed("a JWS has three dot-separated parts");

/// Splits and decodes `token`, and reads its header. The decoded parts live in
/// `scratch` (one allocation for all three). `known` gives the header (and key)
/// that a header segment stands for when it is one the caller wrote itself, so
/// it need not be decoded and parsed again.
pub(crate) fn parse<'a, K>(
    token: &'a str,
    max_bytes: usize,
    scratch: &'a mut Vec<u8>,
    known: impl FnOnce(&str) -> Option<(Header<'a>, &'a K)>,
) -> Result<Parsed<'a, K>, VerifyError> {
    if token.len() > max_bytes {
        return Err(VerifyError::TooLarge);
    }
    // The header ends at the first dot and the signature starts after the last.
    // A dot in between (more than three parts) is found by the payload's base64
    // decoding, which refuses dots; the refusal is then the same as if the parts
    // had been counted first.
    let (Some((header, rest)), Some((_, signature))) =
        (token.split_once('.'), token.rsplit_once('.'))
    else {
        return Err(THREE_PARTS);
    };
    let Some(payload) = rest
        .strip_suffix(signature)
        .and_then(|p| p.strip_suffix('.'))
    else {
        return Err(THREE_PARTS);
    };
    let more_parts = || payload.contains('.');
    let refuse = |error: VerifyError| Err(if more_parts() { THREE_PARTS } else { error });
    if signature.is_empty() {
        return refuse(VerifyError::Malformed("the signature is missing"));
    }
    // Three parts decode to at most three quarters of their length, rounded up.
    scratch.clear();
    scratch.reserve(token.len() + 8);
    let decode = |part: &str, into: &mut Vec<u8>, what: &'static str| {
        base64url::decode(part.as_bytes(), into)
            .map(|()| into.len())
            .map_err(|()| VerifyError::Malformed(what))
    };
    let known = known(header);
    let header_end = match known {
        // Valid base64url, so nothing to refuse; not needed decoded.
        Some(_) => 0,
        None => match decode(header, scratch, "the header is not base64url") {
            Ok(end) => end,
            Err(error) => return refuse(error),
        },
    };
    let payload_end = match decode(payload, scratch, "the payload is not base64url") {
        Ok(end) => end,
        Err(error) => return refuse(error),
    };
    if let Err(error) = decode(signature, scratch, "the signature is not base64url") {
        return refuse(error);
    }
    let decoded: &'a [u8] = scratch.as_slice();
    let (header_bytes, rest) = decoded.split_at(header_end);
    let (payload_bytes, signature_bytes) = rest.split_at(payload_end - header_end);
    let (header, key) = match known {
        Some((header, key)) => (header, Some(key)),
        None => (read_header(header_bytes)?, None),
    };
    Ok(Parsed {
        header,
        key,
        signing_input: token
            .as_bytes()
            .get(..token.len() - signature.len() - 1)
            .unwrap_or_default(),
        payload: payload_bytes,
        signature: signature_bytes,
    })
}

// The header members we know, by their bit in the set of members seen.
const ALG: u16 = 0;
const TYP: u16 = 1;
const KID: u16 = 2;
const JWK: u16 = 3;
const JKU: u16 = 4;
const X5U: u16 = 5;
const X5C: u16 = 6;
const CRIT: u16 = 7;

fn header_member(name: &str) -> Option<u16> {
    Some(match name {
        "alg" => ALG,
        "typ" => TYP,
        "kid" => KID,
        "jwk" => JWK,
        "jku" => JKU,
        "x5u" => X5U,
        "x5c" => X5C,
        "crit" => CRIT,
        _ => return None,
    })
}

#[derive(Default)]
pub(crate) struct HeaderMembers<'de> {
    alg: Option<Text<'de>>,
    typ: Option<Text<'de>>,
    kid: Option<Text<'de>>,
    embedded: bool,
    crit: bool,
}

impl<'de> Members<'de> for HeaderMembers<'de> {
    fn known(name: &str) -> Option<u16> {
        header_member(name)
    }

    fn value<A: MapAccess<'de>>(&mut self, member: u16, map: &mut A) -> Result<(), A::Error> {
        match member {
            ALG => self.alg = Some(map.next_value_seed(TextSeed)?),
            TYP => self.typ = Some(map.next_value_seed(TextSeed)?),
            KID => self.kid = Some(map.next_value_seed(TextSeed)?),
            CRIT => {
                map.next_value_seed(Valid)?;
                self.crit = true;
            }
            _ => {
                map.next_value_seed(Valid)?;
                self.embedded = true;
            }
        }
        Ok(())
    }

    fn flat(&mut self, member: u16, value: Flat<'de>) {
        let text = match value {
            Flat::Str(s) => Text::Str(Cow::Borrowed(s)),
            Flat::Int(_) | Flat::Strings(_) => Text::Other,
        };
        match member {
            ALG => self.alg = Some(text),
            TYP => self.typ = Some(text),
            KID => self.kid = Some(text),
            CRIT => self.crit = true,
            _ => self.embedded = true,
        }
    }
}

pub(crate) fn read_header(bytes: &[u8]) -> Result<Header<'_>, VerifyError> {
    let members: HeaderMembers<'_> = object(bytes, "the header is not a JSON object")?;
    fn text(member: Option<Text<'_>>) -> Result<Option<Cow<'_, str>>, VerifyError> {
        match member {
            None => Ok(None),
            Some(Text::Str(s)) => Ok(Some(s)),
            Some(Text::Other) => Err(VerifyError::Malformed("a header member has the wrong type")),
        }
    }
    if members.embedded {
        return Err(VerifyError::EmbeddedKey);
    }
    if members.crit {
        // We understand no extension, so any critical one must be refused (RFC 7515
        // §4.1.11).
        return Err(VerifyError::UnknownCritical);
    }
    Ok(Header {
        alg: text(members.alg)?.ok_or(VerifyError::Malformed("the header has no alg"))?,
        typ: text(members.typ)?,
        kid: text(members.kid)?,
    })
}

/// The members of one kind of JSON object (header or claims) that we act on, as
/// they stream past. Known members are numbered below 16; anything else is skipped
/// (but must still be valid JSON, and not given twice).
pub(crate) trait Members<'de>: Default {
    fn known(name: &str) -> Option<u16>;
    fn value<A: MapAccess<'de>>(&mut self, member: u16, map: &mut A) -> Result<(), A::Error>;
    /// The same for a value the fast path read.
    fn flat(&mut self, member: u16, value: Flat<'de>);
}

/// Reads a JSON object whose keys are all distinct. serde_json keeps the last of
/// duplicate keys, so two parsers could disagree on what a token says; we refuse.
/// Keys are compared after unescaping (`"\u0061lg"` is `"alg"`).
pub(crate) fn object<'de, M: Members<'de>>(
    bytes: &'de [u8],
    what: &'static str,
) -> Result<M, VerifyError> {
    if let Some(members) = flat::object(bytes) {
        return Ok(members);
    }
    let mut duplicate = false;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let members = deserializer
        .deserialize_map(ObjectVisitor {
            duplicate: &mut duplicate,
            members: PhantomData,
        })
        .map_err(|_| {
            if duplicate {
                VerifyError::DuplicateKey
            } else {
                VerifyError::Malformed(what)
            }
        })?;
    deserializer
        .end()
        .map_err(|_| VerifyError::Malformed(what))?;
    Ok(members)
}

struct ObjectVisitor<'s, M> {
    duplicate: &'s mut bool,
    members: PhantomData<M>,
}

/// Unknown keys seen so far; a list while short, a set past that (a token of 8 KB
/// can hold a thousand keys, and comparing each with all the others would be
/// quadratic).
enum Seen<'de> {
    List(Vec<Cow<'de, str>>),
    Set(std::collections::HashSet<Cow<'de, str>>),
}

impl<'de> Seen<'de> {
    /// Whether `key` was new.
    fn insert(&mut self, key: Cow<'de, str>) -> bool {
        match self {
            Seen::List(list) => {
                if list.contains(&key) {
                    return false;
                }
                if list.len() < 16 {
                    list.push(key);
                } else {
                    let mut set: std::collections::HashSet<_> = list.drain(..).collect();
                    set.insert(key);
                    *self = Seen::Set(set);
                }
                true
            }
            Seen::Set(set) => set.insert(key),
        }
    }
}

impl<'de, M: Members<'de>> Visitor<'de> for ObjectVisitor<'_, M> {
    type Value = M;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<M, A::Error> {
        let mut members = M::default();
        let mut known: u16 = 0;
        let mut unknown = Seen::List(Vec::new());
        while let Some(key) = map.next_key_seed(KeySeed::<M>(PhantomData))? {
            // The value is read before the key is judged a duplicate, as a parse
            // into a map does: a syntax error in it wins.
            let fresh = match key {
                Key::Known(member) => {
                    members.value(member, &mut map)?;
                    let bit = 1 << member;
                    let fresh = known & bit == 0;
                    known |= bit;
                    fresh
                }
                Key::Unknown(name) => {
                    map.next_value_seed(Valid)?;
                    unknown.insert(name)
                }
            };
            if !fresh {
                *self.duplicate = true;
                return Err(de::Error::custom("duplicate key in JSON object"));
            }
        }
        Ok(members)
    }
}

enum Key<'de> {
    Known(u16),
    Unknown(Cow<'de, str>),
}

struct KeySeed<M>(PhantomData<M>);

impl<'de, M: Members<'de>> DeserializeSeed<'de> for KeySeed<M> {
    type Value = Key<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key<'de>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, M: Members<'de>> Visitor<'de> for KeySeed<M> {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Key<'de>, E> {
        Ok(M::known(name).map_or(Key::Unknown(Cow::Borrowed(name)), Key::Known))
    }

    /// A name with escapes, unescaped.
    fn visit_str<E: de::Error>(self, name: &str) -> Result<Key<'de>, E> {
        Ok(M::known(name).map_or_else(|| Key::Unknown(Cow::Owned(name.to_owned())), Key::Known))
    }
}

/// A member that should be a string: the string (borrowed unless it held escapes),
/// or a note that it was something else (read through, so that the rest of the
/// object is still checked before its type is refused).
pub(crate) enum Text<'de> {
    Str(Cow<'de, str>),
    Other,
}

pub(crate) struct TextSeed;

impl<'de> DeserializeSeed<'de> for TextSeed {
    type Value = Text<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Text<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TextSeed {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
        Ok(Text::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
        Ok(Text::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
        Ok(Text::Str(Cow::Owned(v)))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Text<'de>, E> {
        Ok(Text::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Text<'de>, E> {
        Ok(Text::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Text<'de>, E> {
        Ok(Text::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Text<'de>, E> {
        Ok(Text::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Text<'de>, E> {
        Ok(Text::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Text<'de>, A::Error> {
        Valid.visit_seq(seq).map(|()| Text::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Text<'de>, A::Error> {
        Valid.visit_map(map).map(|()| Text::Other)
    }
}

/// Any JSON value, read through and dropped, but checked as strictly as a parse
/// into `serde_json::Value` would (strings valid UTF-8 without lone surrogates,
/// numbers in range, nesting within serde_json's depth limit), which
/// `serde::de::IgnoredAny` does not do. Allocates nothing.
pub(crate) struct Valid;

impl<'de> DeserializeSeed<'de> for Valid {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Valid {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Valid)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Valid)?.is_some() {
            map.next_value_seed(Valid)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
