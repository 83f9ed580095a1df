//! `cargo bench -p tessera-server --bench passkey`: checking a passkey's
//! assertion (issue 16's goal: ≤ 1.2× the raw ECDSA P-256 verify of the same
//! bytes), against that verify alone in the same run: the same P-256
//! implementation webauthn-rs uses, over authenticatorData ‖ SHA-256(clientDataJSON)
//! with the credential's public key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{DerSignature, VerifyingKey};
use sha2::{Digest, Sha256};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{COSEKeyType, Credential, Url, Uuid, WebauthnBuilder};

fn passkey(c: &mut Criterion) {
    let origin = Url::parse("http://localhost:8080").unwrap();
    let webauthn = WebauthnBuilder::new("localhost", &origin)
        .unwrap()
        .build()
        .unwrap();
    let mut key = SoftPasskey::new(true);
    let (options, registering) = webauthn
        .start_passkey_registration(Uuid::new_v4(), "alice", "alice", None)
        .unwrap();
    let registered = key.do_registration(origin.clone(), options).unwrap();
    let passkey = webauthn
        .finish_passkey_registration(&registered, &registering)
        .unwrap();
    let (options, state) = webauthn
        .start_passkey_authentication(std::slice::from_ref(&passkey))
        .unwrap();
    let answer = key.do_authentication(origin, options).unwrap();

    // The raw check of the same bytes.
    let COSEKeyType::EC_EC2(point) = Credential::from(passkey.clone()).cred.key else {
        panic!("a P-256 passkey");
    };
    let sec1 = [&[4u8][..], &point.x, &point.y].concat();
    let public = VerifyingKey::from_sec1_bytes(&sec1).unwrap();
    let authenticator_data: &[u8] = answer.response.authenticator_data.as_ref();
    let client_data: &[u8] = answer.response.client_data_json.as_ref();
    let signature = DerSignature::from_bytes(answer.response.signature.as_ref()).unwrap();
    let raw = || {
        let signed = [authenticator_data, &Sha256::digest(client_data)].concat();
        public.verify(&signed, &signature)
    };
    raw().expect("the raw check accepts the assertion");
    webauthn
        .finish_passkey_authentication(&answer, &state)
        .expect("webauthn-rs accepts the assertion");

    let mut group = c.benchmark_group("passkey");
    group.bench_function("raw P-256 verify of the same bytes (baseline)", |b| {
        b.iter(|| black_box(raw()));
    });
    group.bench_function("assertion check (webauthn-rs)", |b| {
        b.iter(|| black_box(webauthn.finish_passkey_authentication(black_box(&answer), &state)));
    });
    group.finish();
}

criterion_group!(benches, passkey);
criterion_main!(benches);
