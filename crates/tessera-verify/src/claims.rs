//! Reading the claims of a verified token's payload straight into [`AccessClaims`]:
//! one pass over the JSON, each kept string copied once, everything else checked
//! and dropped. The refusals, and their order, are those of a parse into a map of
//! JSON values followed by taking each claim out of it (`claims/tests.rs` keeps
//! that parse as a reference and compares the two on generated payloads).

use std::fmt;

use serde::Serialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use tessera_proto::Confirmation;

use crate::error::VerifyError;
use crate::jws::{Flat, Members, Text, TextSeed, Valid, object, strings};

/// The verified claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// How strongly its user proved who they are (`"1"`, `"2"`: see
    /// `tessera_proto::acr`), when a sign-in is behind the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// How its user proved who they are (RFC 8176: `pwd`, `otp`, `mfa`, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The key a DPoP-bound token is bound to (RFC 9449 §6): such a token is
    /// good only with a proof signed by that key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// The key that signed it (from the header); `None` for HS256.
    #[serde(skip)]
    pub kid: Option<String>,
}

impl AccessClaims {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    /// The thumbprint of the key the token is bound to, if it is bound.
    pub fn jkt(&self) -> Option<&str> {
        self.cnf.as_ref().map(|cnf| cnf.jkt.as_str())
    }
}

const ISS: u16 = 0;
const SUB: u16 = 1;
const AUD: u16 = 2;
const EXP: u16 = 3;
const IAT: u16 = 4;
const NBF: u16 = 5;
const JTI: u16 = 6;
const CLIENT_ID: u16 = 7;
const SCOPE: u16 = 8;
const SID: u16 = 9;
const ROLES: u16 = 10;
const ACR: u16 = 11;
const AMR: u16 = 12;
const CNF: u16 = 13;

fn claim(name: &str) -> Option<u16> {
    Some(match name {
        "iss" => ISS,
        "sub" => SUB,
        "aud" => AUD,
        "exp" => EXP,
        "iat" => IAT,
        "nbf" => NBF,
        "jti" => JTI,
        "client_id" => CLIENT_ID,
        "scope" => SCOPE,
        "sid" => SID,
        "roles" => ROLES,
        "acr" => ACR,
        "amr" => AMR,
        "cnf" => CNF,
        _ => return None,
    })
}

/// A string claim as read: absent (`None`), a string, or of another type (refused
/// only once the whole payload has been read, as the reference does).
type TextClaim = Option<Result<String, ()>>;

#[derive(Default)]
pub(super) struct Claims {
    iss: TextClaim,
    sub: TextClaim,
    jti: TextClaim,
    client_id: TextClaim,
    scope: TextClaim,
    sid: TextClaim,
    exp: Option<Time>,
    iat: Option<Time>,
    nbf: Option<Time>,
    aud: Option<List>,
    roles: Option<List>,
    acr: TextClaim,
    amr: Option<List>,
    cnf: Option<Cnf>,
}

fn text<'de, A: MapAccess<'de>>(map: &mut A) -> Result<TextClaim, A::Error> {
    Ok(Some(match map.next_value_seed(TextSeed)? {
        Text::Str(s) => Ok(s.into_owned()),
        Text::Other => Err(()),
    }))
}

impl<'de> Members<'de> for Claims {
    fn known(name: &str) -> Option<u16> {
        claim(name)
    }

    fn value<A: MapAccess<'de>>(&mut self, member: u16, map: &mut A) -> Result<(), A::Error> {
        match member {
            ISS => self.iss = text(map)?,
            SUB => self.sub = text(map)?,
            JTI => self.jti = text(map)?,
            CLIENT_ID => self.client_id = text(map)?,
            SCOPE => self.scope = text(map)?,
            SID => self.sid = text(map)?,
            EXP => self.exp = Some(map.next_value_seed(TimeSeed)?),
            IAT => self.iat = Some(map.next_value_seed(TimeSeed)?),
            NBF => self.nbf = Some(map.next_value_seed(TimeSeed)?),
            AUD => self.aud = Some(map.next_value_seed(ListSeed)?),
            ACR => self.acr = text(map)?,
            AMR => self.amr = Some(map.next_value_seed(ListSeed)?),
            CNF => self.cnf = Some(map.next_value_seed(CnfSeed)?),
            _ => self.roles = Some(map.next_value_seed(ListSeed)?),
        }
        Ok(())
    }

    fn flat(&mut self, member: u16, value: Flat<'de>) {
        let text = |value: Flat<'_>| {
            Some(match value {
                Flat::Str(s) => Ok(s.to_owned()),
                Flat::Int(_) | Flat::Strings(_) => Err(()),
            })
        };
        let time = |value: Flat<'_>| {
            Some(match value {
                Flat::Int(i) => Time::Seconds(i),
                Flat::Str(_) | Flat::Strings(_) => Time::NotNumber,
            })
        };
        let list = |value: Flat<'_>| {
            Some(match value {
                Flat::Str(s) => List::Strings(vec![s.to_owned()]),
                Flat::Strings(inner) => List::Strings(strings(inner).map(str::to_owned).collect()),
                Flat::Int(_) => List::WrongType,
            })
        };
        match member {
            ISS => self.iss = text(value),
            SUB => self.sub = text(value),
            JTI => self.jti = text(value),
            CLIENT_ID => self.client_id = text(value),
            SCOPE => self.scope = text(value),
            SID => self.sid = text(value),
            EXP => self.exp = time(value),
            IAT => self.iat = time(value),
            NBF => self.nbf = time(value),
            AUD => self.aud = list(value),
            ACR => self.acr = text(value),
            AMR => self.amr = list(value),
            // An object is never flat, so a flat value is of the wrong type.
            CNF => self.cnf = Some(Cnf::Other),
            _ => self.roles = list(value),
        }
    }
}

/// The claims of `payload`, a JSON object, with `kid` from the header.
pub(crate) fn parse(payload: &[u8], kid: Option<String>) -> Result<AccessClaims, VerifyError> {
    let claims: Claims = object(payload, "the payload is not a JSON object")?;
    let text = |claim: TextClaim| {
        claim
            .transpose()
            .map_err(|()| VerifyError::Malformed("a claim has the wrong type"))
    };
    let iss = text(claims.iss)?.ok_or(VerifyError::MissingClaim("iss"))?;
    let sub = text(claims.sub)?.ok_or(VerifyError::MissingClaim("sub"))?;
    let jti = text(claims.jti)?;
    let client_id = text(claims.client_id)?;
    let scope = text(claims.scope)?;
    let sid = text(claims.sid)?;
    let acr = text(claims.acr)?;
    let time = |claim: Option<Time>| match claim {
        None => Ok(None),
        Some(Time::Seconds(s)) => Ok(Some(s)),
        Some(Time::NotSeconds) => Err(VerifyError::Malformed(
            "a time claim is not a number of seconds",
        )),
        Some(Time::NotNumber) => Err(VerifyError::Malformed("a time claim is not a number")),
    };
    let exp = time(claims.exp)?.ok_or(VerifyError::MissingClaim("exp"))?;
    let iat = time(claims.iat)?;
    let nbf = time(claims.nbf)?;
    let list = |claim: List| match claim {
        List::Strings(items) => Ok(items),
        List::NonString => Err(VerifyError::Malformed("a list claim holds a non-string")),
        List::WrongType => Err(VerifyError::Malformed("a list claim has the wrong type")),
    };
    let aud = list(claims.aud.ok_or(VerifyError::MissingClaim("aud"))?)?;
    let roles = claims.roles.map(list).transpose()?.unwrap_or_default();
    let amr = claims.amr.map(list).transpose()?.unwrap_or_default();
    let cnf = match claims.cnf {
        None => None,
        Some(Cnf::Jkt(jkt)) => Some(Confirmation { jkt }),
        Some(Cnf::Repeated) => return Err(VerifyError::DuplicateKey),
        Some(Cnf::Other) => {
            return Err(VerifyError::Malformed(
                "the cnf claim is not {\"jkt\": <thumbprint>}",
            ));
        }
    };
    Ok(AccessClaims {
        iss,
        sub,
        aud,
        exp,
        iat,
        nbf,
        jti,
        client_id,
        scope,
        sid,
        roles,
        acr,
        amr,
        cnf,
        kid,
    })
}

/// A NumericDate (RFC 7519 §2): a JSON number of seconds; fractions are cut.
pub(crate) enum Time {
    Seconds(i64),
    /// A number that is not finite.
    NotSeconds,
    NotNumber,
}

pub(crate) struct TimeSeed;

impl<'de> DeserializeSeed<'de> for TimeSeed {
    type Value = Time;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Time, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TimeSeed {
    type Value = Time;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Time, E> {
        Ok(Time::Seconds(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Time, E> {
        // Past i64::MAX: the float conversion saturates, as the reference's does.
        Ok(Time::Seconds(i64::try_from(v).unwrap_or(i64::MAX)))
    }
    #[allow(clippy::cast_possible_truncation)]
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Time, E> {
        Ok(if v.is_finite() {
            Time::Seconds(v as i64)
        } else {
            Time::NotSeconds
        })
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Time, E> {
        Ok(Time::NotNumber)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Time, E> {
        Ok(Time::NotNumber)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Time, E> {
        Ok(Time::NotNumber)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Time, A::Error> {
        Valid.visit_seq(seq).map(|()| Time::NotNumber)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Time, A::Error> {
        Valid.visit_map(map).map(|()| Time::NotNumber)
    }
}

/// A claim that is one string or a list of strings (`aud`, `roles`).
enum List {
    Strings(Vec<String>),
    NonString,
    WrongType,
}

struct ListSeed;

impl<'de> DeserializeSeed<'de> for ListSeed {
    type Value = List;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<List, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ListSeed {
    type Value = List;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<List, E> {
        Ok(List::Strings(vec![v.to_owned()]))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<List, E> {
        Ok(List::WrongType)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<List, E> {
        Ok(List::WrongType)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<List, E> {
        Ok(List::WrongType)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<List, E> {
        Ok(List::WrongType)
    }
    fn visit_unit<E: de::Error>(self) -> Result<List, E> {
        Ok(List::WrongType)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(16));
        let mut all_strings = true;
        while let Some(item) = seq.next_element_seed(TextSeed)? {
            match item {
                Text::Str(s) if all_strings => items.push(s.into_owned()),
                Text::Str(_) => {}
                Text::Other => all_strings = false,
            }
        }
        Ok(if all_strings {
            List::Strings(items)
        } else {
            List::NonString
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<List, A::Error> {
        Valid.visit_map(map).map(|()| List::WrongType)
    }
}

/// The `cnf` claim as read. Only `{"jkt": "<thumbprint>"}` is understood: a
/// token bound by another confirmation method (a certificate's `x5t#S256`, say)
/// or by more than one is refused, since accepting it would drop a binding this
/// verifier cannot check. Unlike other nested objects (which are only read
/// through), a `jkt` given twice is refused, as at the top level: two readers
/// could otherwise bind the token to different keys.
enum Cnf {
    Jkt(String),
    Repeated,
    Other,
}

struct CnfSeed;

impl<'de> DeserializeSeed<'de> for CnfSeed {
    type Value = Cnf;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Cnf, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CnfSeed {
    type Value = Cnf;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Cnf, A::Error> {
        let mut jkt: Option<Text<'de>> = None;
        let (mut repeated, mut other) = (false, false);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "jkt" {
                repeated |= jkt.is_some();
                jkt = Some(map.next_value_seed(TextSeed)?);
            } else {
                map.next_value_seed(Valid)?;
                other = true;
            }
        }
        Ok(match jkt {
            _ if repeated => Cnf::Repeated,
            Some(Text::Str(jkt)) if !other => Cnf::Jkt(jkt.into_owned()),
            _ => Cnf::Other,
        })
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Cnf, E> {
        Ok(Cnf::Other)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Cnf, E> {
        Ok(Cnf::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Cnf, E> {
        Ok(Cnf::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Cnf, E> {
        Ok(Cnf::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Cnf, E> {
        Ok(Cnf::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Cnf, E> {
        Ok(Cnf::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Cnf, A::Error> {
        Valid.visit_seq(seq).map(|()| Cnf::Other)
    }
}

#[cfg(test)]
mod tests;
