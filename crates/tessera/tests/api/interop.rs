//! Third-party libraries, which nobody here wrote, against the real server: PyJWT
//! and Node's `jose` verify our tokens of each asymmetric algorithm through the
//! JWKS, Nimbus (Java) does for RS256 and ES256, and Authlib performs the password
//! and refresh grants and, as an OpenID Connect relying party, the code flow.
//! `scripts/test` installs them; a missing one fails its test with how to install it.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::harness::*;

const INTEROP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop");
const ALGORITHMS: [&str; 3] = ["EdDSA", "ES256", "RS256"];

struct Client {
    id: String,
    secret: String,
}

/// `tessera client add NAME --json EXTRA…` for a confidential client.
fn add_client(server: &TestServer, name: &str, extra: &[&str]) -> Client {
    let mut args = vec!["client", "add", name, "--json"];
    args.extend_from_slice(extra);
    let out = server.cli(&args, "");
    assert!(
        out.status.success(),
        "client add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added: Value = serde_json::from_slice(&out.stdout).unwrap();
    Client {
        id: added["client_id"].as_str().unwrap().to_owned(),
        secret: added["client_secret"].as_str().unwrap().to_owned(),
    }
}

/// A client_credentials access token for `orders`, scope `read`, signed with `alg`.
async fn token_signed_with(server: &TestServer, alg: &str) -> (Client, String) {
    let client = add_client(
        server,
        &format!("interop-{alg}"),
        &[
            "--grant",
            "client_credentials",
            "--alg",
            alg,
            "--audience",
            "orders",
            "--scope",
            "read",
        ],
    );
    let response = server
        .client
        .post(server.url("/oauth2/token"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    (client, token)
}

/// The same token with `scope` widened in its payload and the signature kept.
fn tampered(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).expect("a JSON payload");
    claims["scope"] = "read admin".into();
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

/// Runs `program ARGS` with `stdin`, off the async runtime (the server under test is
/// another process, so blocking here holds nothing up). `install` says how to get
/// `program` when it is missing.
async fn run(program: &str, args: &[&str], stdin: &str, install: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}): {install}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const PYJWT_MISSING: &str = "PyJWT is missing: run scripts/test, or \
     python3 -m pip install 'pyjwt[crypto]>=2.8' (python3 itself: apt-get install python3 python3-pip)";

#[tokio::test]
async fn pyjwt_verifies_our_tokens_through_the_jwks() {
    let server = TestServer::start().await;
    let script = format!("{INTEROP}/pyjwt_verify.py");
    for alg in ALGORITHMS {
        let (client, token) = token_signed_with(&server, alg).await;
        let args = [script.as_str(), server.base.as_str(), "orders", alg];
        let out = run("python3", &args, &token, PYJWT_MISSING).await;
        assert!(!stderr(&out).contains("No module named"), "{PYJWT_MISSING}");
        assert!(
            out.status.success(),
            "PyJWT refused our {alg} token: {}",
            stderr(&out)
        );
        let claims: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(claims["client_id"], client.id.as_str());
        assert_eq!(claims["scope"], "read");

        let out = run("python3", &args, &tampered(&token), PYJWT_MISSING).await;
        assert!(!out.status.success(), "PyJWT took a tampered {alg} token");
        assert!(
            stderr(&out).contains("InvalidSignatureError"),
            "{alg}: {}",
            stderr(&out)
        );
    }
}

#[tokio::test]
async fn node_jose_verifies_our_tokens_through_the_jwks() {
    let dir = format!("{INTEROP}/node");
    assert!(
        Path::new(&dir).join("node_modules/jose").is_dir(),
        "jose is not installed: run scripts/test, or npm ci --prefix {dir}"
    );
    let script = format!("{dir}/jose_verify.mjs");
    let node_missing = "node is missing: apt-get install nodejs npm";
    let server = TestServer::start().await;
    for alg in ALGORITHMS {
        let (client, token) = token_signed_with(&server, alg).await;
        let args = [script.as_str(), server.base.as_str(), "orders", alg];
        let out = run("node", &args, &token, node_missing).await;
        assert!(
            out.status.success(),
            "jose refused our {alg} token: {}",
            stderr(&out)
        );
        let claims: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(claims["client_id"], client.id.as_str());
        assert_eq!(claims["scope"], "read");
        assert_eq!(claims["iss"], server.base.as_str());

        let out = run("node", &args, &tampered(&token), node_missing).await;
        assert_eq!(out.status.code(), Some(1), "{alg}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("ERR_JWS_SIGNATURE_VERIFICATION_FAILED"),
            "{alg}: {}",
            stderr(&out)
        );
        // Another service's token: right signature, wrong audience.
        let args = [script.as_str(), server.base.as_str(), "billing", alg];
        let out = run("node", &args, &token, node_missing).await;
        assert!(
            stderr(&out).contains("ERR_JWT_CLAIM_VALIDATION_FAILED"),
            "{alg}: {}",
            stderr(&out)
        );
    }
}

#[tokio::test]
async fn an_oauth_client_library_performs_the_password_and_refresh_grants() {
    // No grace: the rotated token presented again is a reuse at once.
    let server = TestServer::start_with(&[("TESSERA_TOKENS__REFRESH_REUSE_GRACE", "0s")]).await;
    server.add_user("alice", &[]);
    let app = add_client(
        &server,
        "authlib",
        &["--grant", "password,refresh_token", "--scope", "read write"],
    );
    let missing = "Authlib is missing: run scripts/test, or \
         python3 -m pip install 'authlib>=1.3' requests";
    let out = run(
        "python3",
        &[
            &format!("{INTEROP}/oauth_client.py"),
            server.base.as_str(),
            &app.id,
            "alice",
            "read write",
        ],
        &format!("{}\n{PASSWORD}\n", app.secret),
        missing,
    )
    .await;
    assert!(!stderr(&out).contains("No module named"), "{missing}");
    assert!(out.status.success(), "Authlib: {}", stderr(&out));
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();

    let grants = &seen["metadata"]["grant_types_supported"];
    for grant in ["password", "refresh_token"] {
        assert!(
            grants.as_array().unwrap().iter().any(|g| g == grant),
            "{grants}"
        );
    }
    let (first, second) = (&seen["first"], &seen["second"]);
    for token in [first, second] {
        assert_eq!(token["token_type"], "Bearer");
        assert_eq!(token["scope"], "read write");
        assert_eq!(token["expires_in"], 300);
        assert!(token["refresh_token"].as_str().unwrap().starts_with("trt_"));
    }
    assert_ne!(first["access_token"], second["access_token"]);
    assert_ne!(
        first["refresh_token"], second["refresh_token"],
        "the refresh token rotates"
    );
    // Both access tokens are live, for alice, in one refresh family (the sid).
    let (a, b) = (&seen["first_introspection"], &seen["second_introspection"]);
    for introspection in [a, b] {
        assert_eq!(introspection["active"], true, "{introspection}");
        assert_eq!(introspection["client_id"], app.id.as_str());
    }
    assert_eq!(a["sub"], b["sub"]);
    assert_eq!(a["sid"], b["sid"]);
    // The first refresh token again: a reuse. Refused, and the family with it.
    assert_eq!(seen["reuse"], "invalid_grant");
    assert_eq!(seen["after_reuse"], "invalid_grant");
    let latest = second["access_token"].as_str().unwrap().to_owned();
    eventually("the family's access token is revoked", || async {
        let response = server
            .client
            .post(server.url("/oauth2/introspect"))
            .basic_auth(&app.id, Some(&app.secret))
            .form(&[("token", latest.as_str())])
            .send()
            .await
            .unwrap();
        response.json::<Value>().await.unwrap()["active"] == false
    })
    .await;
}

#[tokio::test]
async fn an_openid_connect_client_library_signs_a_user_in_and_out() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let out = server.cli(
        &[
            "user",
            "set",
            "alice",
            "--name",
            "Alice",
            "--email",
            "alice@example.org",
        ],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (redirect, after) = ("https://rp.example/callback", "https://rp.example/bye");
    let app = add_client(
        &server,
        "authlib-rp",
        &[
            "--grant",
            "authorization_code,refresh_token",
            "--redirect-uri",
            redirect,
            "--post-logout-redirect-uri",
            after,
        ],
    );
    let missing = "Authlib is missing: run scripts/test, or \
         python3 -m pip install 'authlib>=1.3' requests";
    let out = run(
        "python3",
        &[
            &format!("{INTEROP}/oidc_client.py"),
            server.base.as_str(),
            &app.id,
            redirect,
            after,
            "alice",
        ],
        &format!("{}\n{PASSWORD}\n", app.secret),
        missing,
    )
    .await;
    assert!(!stderr(&out).contains("No module named"), "{missing}");
    assert!(out.status.success(), "Authlib: {}", stderr(&out));
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(
        seen["discovery"]["response_types_supported"],
        serde_json::json!(["code"])
    );
    assert_eq!(seen["consent_asked"], true);
    assert_eq!(seen["callback"]["state"], seen["state"]);
    assert_eq!(seen["callback"]["iss"], server.base.as_str());
    let claims = &seen["id_token_claims"];
    assert_eq!(claims["aud"], app.id.as_str());
    assert_eq!(claims["preferred_username"], "alice");
    assert!(claims["at_hash"].is_string() && claims["sid"].is_string());
    assert_eq!(seen["userinfo"]["email"], "alice@example.org");
    assert_eq!(seen["userinfo"]["sub"], claims["sub"]);
    assert!(
        seen["refreshed"]["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("trt_")
    );
    assert_eq!(seen["logout"]["status"], 303);
    assert_eq!(
        seen["logout"]["location"],
        format!("{after}?state=logged-out").as_str()
    );
    // The refresh family was the session's: gone with it.
    assert_eq!(seen["refresh_after_logout"], "invalid_grant");
}

/// Nimbus (Java, under Spring Security's resource server) verifies RS256 and ES256
/// access tokens through the JWKS; our EdDSA tokens it refuses as configured out of
/// the box (no Ed25519 key is selected, and Ed25519 would need Google Tink too).
/// README's "Which algorithm for which resource server" says so; this keeps it true.
#[tokio::test]
async fn a_java_resource_server_verifies_rs256_and_es256_but_not_eddsa_by_default() {
    let java_dir = format!("{INTEROP}/java");
    let deps = format!("{java_dir}/target/deps");
    let missing = "Java or Nimbus is missing: run scripts/test, or apt-get install \
         default-jdk-headless maven && mvn -q -f crates/tessera/tests/interop/java/pom.xml \
         dependency:copy-dependencies -DoutputDirectory=target/deps";
    assert!(
        Path::new(&deps).join("nimbus-jose-jwt-10.10.jar").is_file(),
        "{missing}"
    );
    let server = TestServer::start().await;
    let jwks = server.url("/.well-known/jwks.json");
    let classpath = format!("{deps}/*");
    let source = format!("{java_dir}/NimbusVerify.java");
    for alg in ALGORITHMS {
        let (client, token) = token_signed_with(&server, alg).await;
        let args = [
            "-cp",
            classpath.as_str(),
            source.as_str(),
            jwks.as_str(),
            alg,
            "at+jwt",
            "orders",
            server.base.as_str(),
        ];
        let out = run("java", &args, &token, missing).await;
        if alg == "EdDSA" {
            assert!(
                !out.status.success(),
                "Nimbus verified EdDSA out of the box: update README's algorithm table"
            );
            continue;
        }
        assert!(
            out.status.success(),
            "Nimbus refused our {alg} token: {}",
            stderr(&out)
        );
        let claims = String::from_utf8_lossy(&out.stdout);
        assert!(claims.contains(&client.id), "{claims}");
        // Tampered, or for another audience: refused.
        let out = run("java", &args, &tampered(&token), missing).await;
        assert!(!out.status.success(), "{alg}: a tampered token passed");
        let mut other = args;
        other[6] = "billing";
        let out = run("java", &other, &token, missing).await;
        assert!(
            !out.status.success(),
            "{alg}: another audience's token passed"
        );
    }
}
