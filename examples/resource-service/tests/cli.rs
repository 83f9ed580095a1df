//! The binary as the README runs it (`cargo run -p resource-service -- …`). Having
//! a test here also makes cargo build the binary for every test run, which is how
//! `crates/tessera/tests/api/readme.rs` finds it beside `tessera`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_resource-service"))
        .args(args)
        .env_remove("RESOURCE_CLIENT_ID")
        .env_remove("RESOURCE_CLIENT_SECRET")
        .output()
        .unwrap()
}

#[test]
fn help_names_every_setting() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--issuer",
        "--audience",
        "--client-id",
        "--client-secret",
        "--max-staleness",
        "--fail-open",
        "--listen",
    ] {
        assert!(help.contains(flag), "--help does not name {flag}:\n{help}");
    }
}

#[test]
fn without_its_client_it_says_what_is_missing_and_does_not_start() {
    let out = run(&["--issuer", "http://127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(2));
    let error = String::from_utf8(out.stderr).unwrap();
    assert!(error.contains("--client-id"), "{error}");
}
