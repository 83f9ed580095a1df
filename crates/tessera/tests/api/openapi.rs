//! The API contract: `/openapi.json` names every JSON route of the router and
//! nothing else, and a property-based fuzzer (schemathesis, from PyPI) run from
//! it against a live server finds no server error and no answer the document
//! does not describe.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::harness::*;

/// The routes of `app::router`, read from its source: (path, method) pairs.
fn router_routes() -> BTreeSet<(String, String)> {
    let source = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tessera-server/src/app.rs"),
    )
    .unwrap();
    let start = source.find("pub fn router(").expect("router() in app.rs");
    let body = &source[start..];
    let body = &body[..body
        .find(".with_state(state)")
        .expect("the end of the routes")];
    let mut routes = BTreeSet::new();
    for (at, _) in body.match_indices(".route(") {
        let call = call_arguments(&body[at + ".route(".len()..]);
        let path = call.split('"').nth(1).expect("a path literal").to_owned();
        for method in ["get", "post", "put", "patch", "delete"] {
            let called = format!("{method}(");
            let found = call.match_indices(&called).any(|(i, _)| {
                i == 0
                    || !call.as_bytes()[i - 1].is_ascii_alphanumeric()
                        && call.as_bytes()[i - 1] != b'_'
            });
            if found {
                routes.insert((path.clone(), method.to_owned()));
            }
        }
    }
    routes
}

/// Pages for people: HTML, not part of the JSON API's document.
fn is_page(path: &str) -> bool {
    (path.starts_with("/admin") && !path.starts_with("/admin/v1/"))
        || path.starts_with("/account")
        || [
            "/login",
            "/login/second-factor",
            "/register",
            "/reset",
            "/oauth2/authorize",
            "/oauth2/consent",
            "/oauth2/logout",
        ]
        .contains(&path)
}

async fn document(server: &TestServer) -> Value {
    let answer = server
        .client
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    answer.json().await.unwrap()
}

#[tokio::test]
async fn every_json_route_is_in_the_document_and_nothing_else() {
    let server = TestServer::start().await;
    let document = document(&server).await;
    assert_eq!(document["openapi"], "3.1.0");
    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (path.clone(), method.clone()))
        })
        .collect();
    let routed = router_routes();
    assert!(
        routed.len() > 50,
        "the router's routes were not read: {routed:?}"
    );
    let json_routes: BTreeSet<_> = routed
        .iter()
        .filter(|(path, _)| !is_page(path))
        .cloned()
        .collect();
    let missing: Vec<_> = json_routes.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes not in /openapi.json: {missing:?}"
    );
    let unrouted: Vec<_> = documented.difference(&json_routes).collect();
    assert!(
        unrouted.is_empty(),
        "operations no route serves: {unrouted:?}"
    );
    // Every operation says what it answers, and errors have their one shape.
    for (path, method) in &documented {
        let operation = &document["paths"][path][method];
        assert!(
            operation["summary"].is_string(),
            "{method} {path} has no summary"
        );
        assert!(
            operation["responses"]
                .as_object()
                .is_some_and(|r| !r.is_empty()),
            "{method} {path} documents no answer"
        );
    }
}

fn schemathesis() -> &'static str {
    let found = std::process::Command::new("schemathesis")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "schemathesis is missing: python3 -m pip install schemathesis, or run scripts/test"
    );
    "schemathesis"
}

#[tokio::test]
async fn a_fuzzer_from_the_document_finds_no_server_error_and_nothing_undocumented() {
    let binary = schemathesis();
    let server = TestServer::start_with(REGISTRATION_OPEN).await;
    server.add_user("alice", &[]);
    // An admin's token, so that the admin API is fuzzed past its door.
    let out = server.cli(
        &[
            "client",
            "add",
            "fuzzer",
            "--grant",
            "client_credentials",
            "--scope",
            "admin",
            "--json",
        ],
        "",
    );
    let client: Value = serde_json::from_slice(&out.stdout).unwrap();
    let token: Value = server
        .client
        .post(server.url("/oauth2/token"))
        .basic_auth(
            client["client_id"].as_str().unwrap(),
            client["client_secret"].as_str(),
        )
        .form(&[("grant_type", "client_credentials"), ("scope", "admin")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = format!(
        "Authorization: Bearer {}",
        token["access_token"].as_str().unwrap()
    );
    let reports = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/schemathesis");
    let url = server.url("/openapi.json");
    // Its cache and reports go under target/, not into the source tree.
    std::fs::create_dir_all(&reports).unwrap();
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new(binary)
            .current_dir(&reports)
            .args([
                "run",
                &url,
                "--checks",
                "not_a_server_error,response_schema_conformance,content_type_conformance",
                "--max-examples",
                "10",
                "--seed",
                "20261204",
                // A stream that stays open is not a request a fuzzer can finish.
                "--exclude-path",
                "/v1/revocations",
                "--header",
                &bearer,
                // The examples of the document (none) and the stateful phase (links
                // between operations, slow and for another kind of bug) are not run.
                "--phases",
                "coverage,fuzzing",
                "--request-timeout",
                "10",
                "--no-color",
                "--report",
                "junit",
                "--report-dir",
            ])
            .arg(&reports)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "schemathesis found failures:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // It did run: the operations were tested.
    assert!(stdout.contains("Tested:"), "{stdout}");
}
