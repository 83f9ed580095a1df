//! The streaming parsers of `jws.rs` and `claims.rs` against the parse they
//! replaced (kept here as the reference): a map of `serde_json::Value`s with
//! duplicate keys refused, from which each member is then taken. Both must give the
//! same answer, refusal for refusal, on any input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fmt;

use proptest::prelude::*;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::{AccessClaims, VerifyError};

const DUPLICATE: &str = "duplicate key in JSON object";

struct UniqueKeys(BTreeMap<String, Value>);

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
                while let Some((key, value)) = access.next_entry::<String, Value>()? {
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

fn reference_object(
    bytes: &[u8],
    what: &'static str,
) -> Result<BTreeMap<String, Value>, VerifyError> {
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

type HeaderFields = (String, Option<String>, Option<String>);

fn reference_header(bytes: &[u8]) -> Result<HeaderFields, VerifyError> {
    let members = reference_object(bytes, "the header is not a JSON object")?;
    for embedded in ["jwk", "jku", "x5u", "x5c"] {
        if members.contains_key(embedded) {
            return Err(VerifyError::EmbeddedKey);
        }
    }
    if members.contains_key("crit") {
        return Err(VerifyError::UnknownCritical);
    }
    let text = |name: &str| -> Result<Option<String>, VerifyError> {
        match members.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(VerifyError::Malformed("a header member has the wrong type")),
        }
    };
    Ok((
        text("alg")?.ok_or(VerifyError::Malformed("the header has no alg"))?,
        text("typ")?,
        text("kid")?,
    ))
}

fn reference_claims(bytes: &[u8], kid: Option<String>) -> Result<AccessClaims, VerifyError> {
    let mut members = reference_object(bytes, "the payload is not a JSON object")?;
    let wrong = VerifyError::Malformed("a claim has the wrong type");
    let mut text = |name: &'static str| -> Result<Option<String>, VerifyError> {
        match members.remove(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(wrong.clone()),
        }
    };
    let iss = text("iss")?.ok_or(VerifyError::MissingClaim("iss"))?;
    let sub = text("sub")?.ok_or(VerifyError::MissingClaim("sub"))?;
    let jti = text("jti")?;
    let client_id = text("client_id")?;
    let scope = text("scope")?;
    let sid = text("sid")?;
    let acr = text("acr")?;
    let mut time = |name: &'static str| -> Result<Option<i64>, VerifyError> {
        match members.remove(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
                .map(Some)
                .ok_or(VerifyError::Malformed(
                    "a time claim is not a number of seconds",
                )),
            Some(_) => Err(VerifyError::Malformed("a time claim is not a number")),
        }
    };
    let exp = time("exp")?.ok_or(VerifyError::MissingClaim("exp"))?;
    let iat = time("iat")?;
    let nbf = time("nbf")?;
    let strings = |value: Value| -> Result<Vec<String>, VerifyError> {
        match value {
            Value::String(s) => Ok(vec![s]),
            Value::Array(items) => items
                .into_iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s),
                    _ => Err(VerifyError::Malformed("a list claim holds a non-string")),
                })
                .collect(),
            _ => Err(VerifyError::Malformed("a list claim has the wrong type")),
        }
    };
    let aud = strings(
        members
            .remove("aud")
            .ok_or(VerifyError::MissingClaim("aud"))?,
    )?;
    let roles = members
        .remove("roles")
        .map(strings)
        .transpose()?
        .unwrap_or_default();
    let amr = members
        .remove("amr")
        .map(strings)
        .transpose()?
        .unwrap_or_default();
    // Repeats inside `cnf` are refused by the parser and lost by this reference
    // (a map of values keeps the last); `a_jkt_given_twice_is_refused` covers them.
    let cnf = match members.remove("cnf") {
        None => None,
        Some(Value::Object(cnf))
            if cnf.len() == 1 && cnf.get("jkt").is_some_and(Value::is_string) =>
        {
            cnf.get("jkt")
                .and_then(Value::as_str)
                .map(|jkt| tessera_proto::Confirmation {
                    jkt: jkt.to_owned(),
                })
        }
        Some(_) => {
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

fn header(bytes: &[u8]) -> Result<HeaderFields, VerifyError> {
    crate::jws::read_header(bytes).map(|h| {
        (
            h.alg.into_owned(),
            h.typ.map(|t| t.into_owned()),
            h.kid.map(|k| k.into_owned()),
        )
    })
}

fn claims(bytes: &[u8]) -> Result<AccessClaims, VerifyError> {
    super::parse(bytes, Some("k".into()))
}

#[track_caller]
fn same(input: &[u8]) {
    assert_eq!(
        header(input),
        reference_header(input),
        "header {:?}",
        String::from_utf8_lossy(input)
    );
    assert_eq!(
        claims(input),
        reference_claims(input, Some("k".into())),
        "claims {:?}",
        String::from_utf8_lossy(input)
    );
}

const VALID: &str = r#"{"iss":"i","sub":"s","aud":"a","exp":5,"alg":"EdDSA"}"#;

#[test]
fn duplicates_are_refused_whatever_the_spelling_of_the_key() {
    for input in [
        // known members, spelt the same or with escapes
        r#"{"alg":"EdDSA","alg":"none"}"#,
        r#"{"alg":"EdDSA","\u0061lg":"none"}"#,
        r#"{"\u0061\u006c\u0067":"EdDSA","alg":"none"}"#,
        r#"{"sub":"a","iss":"i","aud":"a","exp":5,"s\u0075b":"b"}"#,
        r#"{"aud":"a","iss":"i","sub":"s","exp":5,"aud":["a"]}"#,
        // unknown members, in the header and the payload
        r#"{"alg":"EdDSA","x":1,"x":2}"#,
        r#"{"alg":"EdDSA","x":1,"\u0078":2}"#,
        r#"{"iss":"i","sub":"s","aud":"a","exp":5,"email":"a","email":"b"}"#,
        r#"{"iss":"i","sub":"s","aud":"a","exp":5,"em\u0061il":"a","email":"b"}"#,
        // a member that is refused anyway, twice
        r#"{"alg":"EdDSA","jwk":{},"jwk":{}}"#,
        r#"{"alg":"EdDSA","crit":[],"crit":[]}"#,
    ] {
        assert_eq!(
            header(input.as_bytes()),
            Err(VerifyError::DuplicateKey),
            "{input}"
        );
        assert_eq!(
            claims(input.as_bytes()),
            Err(VerifyError::DuplicateKey),
            "{input}"
        );
        same(input.as_bytes());
    }
    // past the short list of unknown keys: the set must still catch a repeat
    let mut many: String = (0..40).map(|i| format!(r#""k{i}":{i},"#)).collect();
    many.insert(0, '{');
    let unique = format!("{many}{}", &VALID[1..]);
    assert!(claims(unique.as_bytes()).is_ok());
    let repeated = format!(r#"{many}"k7":0,{}"#, &VALID[1..]);
    assert_eq!(claims(repeated.as_bytes()), Err(VerifyError::DuplicateKey));
    same(unique.as_bytes());
    same(repeated.as_bytes());
    // the same name in a nested object is no duplicate of the outer one, and
    // repeats inside a nested object were never refused
    same(br#"{"alg":"EdDSA","x":{"alg":1,"alg":2}}"#);
}

#[test]
fn a_jkt_given_twice_is_refused() {
    for input in [
        r#"{"iss":"i","sub":"s","aud":"a","exp":5,"cnf":{"jkt":"a","jkt":"b"}}"#,
        r#"{"iss":"i","sub":"s","aud":"a","exp":5,"cnf":{"jkt":"a","\u006akt":"b"}}"#,
        r#"{"iss":"i","sub":"s","aud":"a","exp":5,"cnf":{"jkt":1,"jkt":"b"}}"#,
    ] {
        assert_eq!(
            claims(input.as_bytes()),
            Err(VerifyError::DuplicateKey),
            "{input}"
        );
    }
}

#[test]
fn cnf_is_one_jkt_or_refused() {
    let with = |cnf: &str| {
        let input = format!(r#"{{"iss":"i","sub":"s","aud":"a","exp":5,"cnf":{cnf}}}"#);
        same(input.as_bytes());
        claims(input.as_bytes())
    };
    assert_eq!(with(r#"{"jkt":"t"}"#).unwrap().jkt(), Some("t"));
    assert_eq!(with(r#"{"\u006akt":"t"}"#).unwrap().jkt(), Some("t"));
    for refused in [
        "{}",
        r#"{"jkt":1}"#,
        r#"{"jkt":null}"#,
        r#"{"jkt":"t","x5t#S256":"c"}"#,
        r#"{"x5t#S256":"c"}"#,
        r#""t""#,
        "[]",
        "null",
        "5",
    ] {
        assert!(
            matches!(with(refused), Err(VerifyError::Malformed(_))),
            "{refused}"
        );
    }
}

#[test]
fn unknown_members_are_checked_as_strictly_as_known_ones() {
    let strict = |member: &[u8]| {
        let mut input = br#"{"iss":"i","sub":"s","aud":"a","exp":5,"alg":"EdDSA","x":"#.to_vec();
        input.extend_from_slice(member);
        input.push(b'}');
        same(&input);
        header(&input)
    };
    // what serde's IgnoredAny lets through and a parse into values does not
    for bad in [
        &b"\"\xff\""[..],
        b"\"\\ud800\"",
        b"\"\\udc00x\"",
        b"1e400",
        b"-1e400",
        b"[\"\xc3\"]",
        b"{\"\xff\":1}",
        b"{\"a\":\"\\ud83d\"}",
    ] {
        assert!(
            matches!(strict(bad), Err(VerifyError::Malformed(_))),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    assert!(matches!(
        strict(deep.as_bytes()),
        Err(VerifyError::Malformed(_))
    ));
    for good in [
        &b"\"\\ud83d\\ude00\""[..],
        b"1e300",
        b"18446744073709551616",
        b"null",
        b"{\"a\":[1,{}]}",
    ] {
        assert!(strict(good).is_ok(), "{:?}", String::from_utf8_lossy(good));
    }
}

#[test]
fn refusals_come_in_the_reference_order() {
    for input in [
        // several faults at once: which one is reported must not change
        r#"{"alg":5,"jwk":{}}"#,
        r#"{"alg":5,"crit":[]}"#,
        r#"{"crit":[],"jwk":1}"#,
        r#"{"typ":1,"alg":2}"#,
        r#"{"kid":1}"#,
        r#"{"typ":"x"}"#,
        r#"{"alg":1,"alg":2"#,
        r#"{"alg":1,"alg":[}"#,
        r#"{"alg":"a"} x"#,
        r#"{"iss":1,"sub":2,"aud":3,"exp":"4"}"#,
        r#"{"sub":2,"aud":3,"exp":"4"}"#,
        r#"{"iss":"i","sub":"s","sid":null,"exp":"4"}"#,
        r#"{"iss":"i","sub":"s","exp":"4","aud":7}"#,
        r#"{"iss":"i","sub":"s","exp":1e999}"#,
        r#"{"iss":"i","sub":"s","exp":4,"iat":[],"aud":7}"#,
        r#"{"iss":"i","sub":"s","exp":4,"roles":7}"#,
        r#"{"iss":"i","sub":"s","exp":4,"aud":["a",1],"roles":7}"#,
        r#"{"iss":"i","sub":"s","exp":4,"aud":"a","roles":["r",{}]}"#,
        r#"{"iss":"i","sub":"s","exp":-4.9,"aud":[],"nbf":18446744073709551616}"#,
        r#"{"iss":"i","sub":"s","exp":9223372036854775807,"aud":"a","iat":-0}"#,
        r#"[1]"#,
        r#""x""#,
        "",
        " { } ",
    ] {
        same(input.as_bytes());
    }
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "alg", "typ", "kid", "jwk", "crit", "iss", "sub", "aud", "exp", "iat", "nbf",
            "jti", "client_id", "scope", "sid", "roles", "acr", "amr", "cnf",
        ])
        .prop_map(str::to_owned),
        // the same names with one character escaped
        1 => prop::sample::select(vec!["alg", "kid", "iss", "aud", "exp", "roles", "x"])
            .prop_map(|k| format!("\\u{:04x}{}", u32::from(k.as_bytes()[0]), &k[1..])),
        2 => "[a-z]{1,3}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        "\"[a-zA-Z0-9 ]{0,6}\"",
        Just("\"a\\u00e9\\n\"".to_owned()),
        Just("\"\\ud800\"".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:e}")),
        Just("1e400".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((key(), inner), 0..3).prop_map(|m| {
                let members: Vec<String> = m.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
}

fn object_text() -> impl Strategy<Value = String> {
    prop::collection::vec((key(), value()), 0..10).prop_map(|members| {
        let members: Vec<String> = members
            .iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        format!("{{{}}}", members.join(","))
    })
}

/// Whitespace, mostly JSON's own, sometimes a character JSON does not allow.
fn space() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => Just(String::new()),
        4 => "[ \t\n\r]{1,2}",
        1 => Just("\u{c}".to_owned()),
    ]
}

/// What the fast path reads: ASCII strings without escapes, integers, lists of
/// strings, with the edges of each.
fn flat_value() -> impl Strategy<Value = String> {
    let text = prop::collection::vec(0x20_u8..=0x7f, 0..8).prop_map(|bytes| {
        let s: String = bytes
            .into_iter()
            .map(char::from)
            .filter(|c| !matches!(c, '"' | '\\'))
            .collect();
        format!("\"{s}\"")
    });
    prop_oneof![
        4 => text.clone(),
        3 => any::<i64>().prop_map(|n| n.to_string()),
        1 => prop::sample::select(vec![
            "0", "-0", "00", "-", "01", "1.5", "1e3", "999999999999999999",
            "-999999999999999999", "1000000000000000000", "9223372036854775808", "\"\"",
            "[]", "[ ]", "[\"a\" , \"b\"]", "[\"a\",]", "[1]", "[\"a\"", "true", "{}",
        ])
        .prop_map(str::to_owned),
        2 => (prop::collection::vec(text, 0..3), space()).prop_map(|(items, s)| {
            format!("[{s}{}{s}]", items.join(&format!("{s},{s}")))
        }),
    ]
}

fn flat_object() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((key(), flat_value(), space()), 0..8),
        space(),
    )
        .prop_map(|(members, s)| {
            let members: Vec<String> = members
                .iter()
                .map(|(k, v, t)| format!("{t}\"{k}\"{t}:{t}{v}{t}"))
                .collect();
            format!("{s}{{{}}}{s}", members.join(","))
        })
}

#[test]
fn the_fast_path_reads_tessera_tokens() {
    let header =
        br#"{"alg":"EdDSA","kid":"NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs","typ":"at+jwt"}"#;
    let payload = br#"{"iss":"http://127.0.0.1:7677","sub":"019a8f3c-6a1e-7b52-9c1d-3f4e5a6b7c8d","aud":"orders","exp":1800000300,"iat":1800000000,"jti":"q3Vx0m9rT2yLkP8aZc4NfA","client_id":"019a8f3b-1d2c-7e3f-8a4b-5c6d7e8f9a0b","scope":"orders:read orders:write","sid":"Jd8Kq2LmN4pR6sT8vX0zBw","roles":["admin","ops"]}"#;
    assert!(crate::jws::flat::object::<crate::jws::HeaderMembers<'_>>(header).is_some());
    assert!(crate::jws::flat::object::<super::Claims>(payload).is_some());
    same(header);
    same(payload);
    assert_eq!(claims(payload).unwrap().roles, ["admin", "ops"]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn flat_objects_get_the_reference_answer(text in flat_object()) {
        same(text.as_bytes());
    }

    #[test]
    fn damaged_flat_objects_get_the_reference_answer(
        text in flat_object(),
        at in any::<prop::sample::Index>(),
        byte in prop_oneof![Just(b'"'), Just(b','), Just(b'}'), Just(b']'), Just(b'\\'), Just(b'.'), Just(0xff_u8), any::<u8>()],
    ) {
        let mut bytes = text.into_bytes();
        if !bytes.is_empty() {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        same(&bytes);
    }

    #[test]
    fn generated_objects_get_the_reference_answer(text in object_text()) {
        same(text.as_bytes());
    }

    #[test]
    fn damaged_objects_get_the_reference_answer(
        text in object_text(),
        at in any::<prop::sample::Index>(),
        byte in prop_oneof![Just(b'"'), Just(b','), Just(b'}'), Just(b'\\'), Just(0xff_u8), any::<u8>()],
    ) {
        let mut bytes = text.into_bytes();
        if !bytes.is_empty() {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        same(&bytes);
    }

    #[test]
    fn tessera_like_claims_get_the_reference_answer(
        extra in prop::collection::vec((key(), prop_oneof![flat_value(), value()]), 0..4),
        cnf in prop_oneof![
            Just(None),
            "[a-zA-Z0-9_-]{0,43}".prop_map(|jkt| Some(format!(r#"{{"jkt":"{jkt}"}}"#))),
            (flat_value(), key().prop_filter("a second jkt", |k| k != "jkt")).prop_map(|(v, k)| Some(format!(r#"{{"jkt":{v},"{k}":1}}"#))),
            value().prop_map(Some),
        ],
        exp in prop_oneof![Just("4".to_owned()), flat_value(), value()],
        aud in prop_oneof![Just("\"a\"".to_owned()), Just("[\"a\",\"b\"]".to_owned()), flat_value(), value()],
    ) {
        let mut members = vec![
            r#""iss":"i""#.to_owned(),
            r#""sub":"s""#.to_owned(),
            format!(r#""exp":{exp}"#),
            format!(r#""aud":{aud}"#),
        ];
        members.extend(extra.iter().map(|(k, v)| format!("\"{k}\":{v}")));
        members.extend(cnf.map(|cnf| format!(r#""cnf":{cnf}"#)));
        same(format!("{{{}}}", members.join(",")).as_bytes());
    }
}
