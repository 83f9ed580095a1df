//! DPoP at the token endpoint through the real binary (issue 17): a proof binds
//! the access token to the client's key (`cnf.jkt`, `token_type: DPoP`), and the
//! proofs an attacker would send are refused with `invalid_dpop_proof`: replayed,
//! for another URL or method, stale, signed by another key, carrying a private
//! key, more than one, and a bound opaque token (not available yet).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Response;
use serde_json::{Value, json};
use tessera_keys::{Algorithm, SigningKey, generate};

use crate::harness::*;
use crate::tokens::{Registered, add_client, token_request};

struct ClientKey {
    key: SigningKey,
}

impl ClientKey {
    fn new(algorithm: Algorithm) -> Self {
        Self {
            key: SigningKey::from_pkcs8(algorithm, &generate(algorithm).unwrap()).unwrap(),
        }
    }

    /// The public key as a proof carries it: key type members only.
    fn jwk(&self) -> Value {
        let full = serde_json::to_value(self.key.public_jwk()).unwrap();
        let mut jwk = serde_json::Map::new();
        for member in ["kty", "crv", "x", "y", "n", "e"] {
            if let Some(value) = full.get(member) {
                jwk.insert(member.to_owned(), value.clone());
            }
        }
        Value::Object(jwk)
    }

    fn proof_with(&self, header: Value, claims: Value) -> String {
        self.key
            .sign_jws(header.to_string().as_bytes(), claims.to_string().as_bytes())
            .unwrap()
    }

    fn proof(&self, url: &str, jti: &str) -> String {
        self.proof_with(self.header(), claims(url, jti))
    }

    fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": self.key.algorithm().as_str(), "jwk": self.jwk()})
    }
}

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn claims(url: &str, jti: &str) -> Value {
    json!({"jti": jti, "htm": "POST", "htu": url, "iat": now()})
}

async fn with_proofs(server: &TestServer, client: &Registered, proofs: &[&str]) -> Response {
    let mut request = token_request(server)
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("grant_type", "client_credentials")]);
    for proof in proofs {
        request = request.header("DPoP", *proof);
    }
    request.send().await.unwrap()
}

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test]
async fn a_dpop_proof_binds_the_access_token_to_the_clients_key() {
    let server = TestServer::start().await;
    let app = add_client(&server, "app", &["--grant", "client_credentials"]);
    let url = server.url("/oauth2/token");

    for algorithm in [Algorithm::ES256, Algorithm::EdDSA] {
        let key = ClientKey::new(algorithm);
        let jti = format!("first-{}", algorithm.as_str());
        let bound = with_proofs(&server, &app, &[&key.proof(&url, &jti)]).await;
        assert_eq!(bound.status(), 200);
        let body: Value = bound.json().await.unwrap();
        assert_eq!(body["token_type"], "DPoP");
        let claims = payload(body["access_token"].as_str().unwrap());
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk()).unwrap();
        assert_eq!(
            claims["cnf"]["jkt"].as_str().unwrap(),
            jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
                .unwrap(),
            "cnf.jkt is the key's RFC 7638 thumbprint (computed by jsonwebtoken)"
        );
    }

    // Without a proof, a bearer token as before.
    let bearer = with_proofs(&server, &app, &[]).await;
    let body: Value = bearer.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(
        payload(body["access_token"].as_str().unwrap())
            .get("cnf")
            .is_none()
    );

    let metadata: Value = server
        .client
        .get(server.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "RS256"])
    );
}

#[tokio::test]
async fn the_token_endpoint_refuses_the_proofs_an_attacker_would_send() {
    let server = TestServer::start().await;
    let app = add_client(&server, "app", &["--grant", "client_credentials"]);
    let url = server.url("/oauth2/token");
    let key = ClientKey::new(Algorithm::ES256);
    let refused = |response: Response| async move {
        assert_eq!(
            error_of(response).await,
            (400, "invalid_dpop_proof".to_owned())
        );
    };

    // The same proof twice: a replay.
    let proof = key.proof(&url, "once");
    assert_eq!(with_proofs(&server, &app, &[&proof]).await.status(), 200);
    refused(with_proofs(&server, &app, &[&proof]).await).await;
    // For another endpoint, host or method.
    refused(
        with_proofs(
            &server,
            &app,
            &[&key.proof(&server.url("/oauth2/introspect"), "a")],
        )
        .await,
    )
    .await;
    refused(
        with_proofs(
            &server,
            &app,
            &[&key.proof("https://evil.example/oauth2/token", "b")],
        )
        .await,
    )
    .await;
    let mut get = claims(&url, "c");
    get["htm"] = json!("GET");
    refused(with_proofs(&server, &app, &[&key.proof_with(key.header(), get)]).await).await;
    // Made long ago, or kept for later.
    let mut old = claims(&url, "d");
    old["iat"] = json!(now() - 3600);
    refused(with_proofs(&server, &app, &[&key.proof_with(key.header(), old)]).await).await;
    // Signed by a thief's key under the victim's public key.
    let thief = ClientKey::new(Algorithm::ES256);
    refused(
        with_proofs(
            &server,
            &app,
            &[&thief.proof_with(key.header(), claims(&url, "e"))],
        )
        .await,
    )
    .await;
    // Carrying a private key, or of type JWT, or unsigned.
    let mut private = key.header();
    private["jwk"]["d"] = json!("AAAA");
    refused(
        with_proofs(
            &server,
            &app,
            &[&key.proof_with(private, claims(&url, "f"))],
        )
        .await,
    )
    .await;
    let mut jwt = key.header();
    jwt["typ"] = json!("JWT");
    refused(with_proofs(&server, &app, &[&key.proof_with(jwt, claims(&url, "g"))]).await).await;
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD
            .encode(json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk()}).to_string()),
        URL_SAFE_NO_PAD.encode(claims(&url, "h").to_string())
    );
    refused(with_proofs(&server, &app, &[&unsigned]).await).await;
    // Two proofs in one request.
    refused(
        with_proofs(
            &server,
            &app,
            &[&key.proof(&url, "i"), &key.proof(&url, "j")],
        )
        .await,
    )
    .await;
    // A refused proof spends nothing: the client still gets tokens.
    assert_eq!(
        with_proofs(&server, &app, &[&key.proof(&url, "k")])
            .await
            .status(),
        200
    );

    // Opaque tokens cannot be bound yet: refused, never issued unbound.
    let opaque = add_client(
        &server,
        "opaque",
        &["--grant", "client_credentials", "--token-format", "opaque"],
    );
    refused(with_proofs(&server, &opaque, &[&key.proof(&url, "l")]).await).await;
}
