//! `cargo bench -p tessera-core --bench totp`: checking a TOTP code (issue 16's
//! goal: ≤ 10 µs), against one HMAC-SHA-1 code computed by the same crate in the
//! same run (a check computes the three of its window).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_core::{TotpCode, TotpSecret, TotpStep};

fn totp(c: &mut Criterion) {
    let secret = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
    let at = 1_111_111_111;
    let code = TotpCode::parse("050471").unwrap();
    let wrong = TotpCode::parse("000000").unwrap();
    let raw = totp_rs::Builder::new()
        .with_secret(b"12345678901234567890".to_vec())
        .build()
        .unwrap();
    let mut group = c.benchmark_group("totp");
    group.bench_function("one HMAC-SHA-1 code (baseline)", |b| {
        b.iter(|| black_box(raw.generate(black_box(at))));
    });
    group.bench_function("check, right code", |b| {
        b.iter(|| black_box(secret.check(black_box(&code), at, None)));
    });
    group.bench_function("check, wrong code", |b| {
        b.iter(|| black_box(secret.check(black_box(&wrong), at, None)));
    });
    group.bench_function("check, already used", |b| {
        let last = Some(TotpStep::at(at));
        b.iter(|| black_box(secret.check(black_box(&code), at, last)));
    });
    group.finish();
}

criterion_group!(benches, totp);
criterion_main!(benches);
