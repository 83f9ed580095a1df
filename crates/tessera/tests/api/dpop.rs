//! DPoP through the real binary (issue 17). At the token endpoint a proof binds
//! the access token to the client's key (`cnf.jkt`, `token_type: DPoP`), and the
//! proofs an attacker would send are refused with `invalid_dpop_proof`: replayed,
//! for another URL or method, stale, signed by another key, a key member given
//! twice, carrying a private key, more than one. Where the
//! token is used (userinfo, tessera's own API, a resource service running
//! `tessera-verify`), a bound token is good only with a fresh proof of its key
//! for that very request, and introspection reports the binding.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Response;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tessera_keys::{Algorithm, SigningKey, generate};

use crate::harness::*;
use crate::tokens::{Registered, add_client, token_request, token_request_to};

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

    /// A proof for using `token` in a request of `method` to `url`.
    fn proof_for(&self, method: &str, url: &str, token: &str, jti: &str) -> String {
        self.proof_with(self.header(), use_claims(method, url, token, jti))
    }

    fn thumbprint(&self) -> String {
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(self.jwk()).unwrap();
        jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
            .unwrap()
    }
}

/// The claims of a proof that comes with an access token: `ath` is its hash.
fn use_claims(method: &str, url: &str, token: &str, jti: &str) -> Value {
    json!({
        "jti": jti,
        "htm": method,
        "htu": url,
        "iat": now(),
        "ath": URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes())),
    })
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
    // A key member given twice, the thief's `x` before the victim's: whichever a
    // parser keeps, the proof names no key.
    let jwk = key.jwk();
    let header = format!(
        r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{{"kty":"EC","crv":"P-256","x":{},"x":{},"y":{}}}}}"#,
        thief.jwk()["x"],
        jwk["x"],
        jwk["y"]
    );
    let twice = key
        .key
        .sign_jws(header.as_bytes(), claims(&url, "x2").to_string().as_bytes())
        .unwrap();
    refused(with_proofs(&server, &app, &[&twice]).await).await;
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
    // Made for later (past the 5 s allowed for clocks), an HMAC, an algorithm
    // named in another case or of another curve, an Ed25519 key claimed as ES256.
    let mut later = claims(&url, "later");
    later["iat"] = json!(now() + 60);
    refused(with_proofs(&server, &app, &[&key.proof_with(key.header(), later)]).await).await;
    for alg in ["HS256", "es256", "ES384"] {
        let mut header = key.header();
        header["alg"] = json!(alg);
        refused(with_proofs(&server, &app, &[&key.proof_with(header, claims(&url, alg))]).await)
            .await;
    }
    let ed = ClientKey::new(Algorithm::EdDSA);
    let mut claimed = ed.header();
    claimed["alg"] = json!("ES256");
    refused(
        with_proofs(
            &server,
            &app,
            &[&ed.proof_with(claimed, claims(&url, "ed"))],
        )
        .await,
    )
    .await;
    // Without a jti, with one of 300 bytes, or a proof over 8 KB.
    let mut no_jti = claims(&url, "none");
    no_jti.as_object_mut().unwrap().remove("jti");
    refused(with_proofs(&server, &app, &[&key.proof_with(key.header(), no_jti)]).await).await;
    let long_jti = claims(&url, &"j".repeat(300));
    refused(with_proofs(&server, &app, &[&key.proof_with(key.header(), long_jti)]).await).await;
    let mut large = claims(&url, "large");
    large["padding"] = json!("p".repeat(9000));
    refused(with_proofs(&server, &app, &[&key.proof_with(key.header(), large)]).await).await;
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
}

/// A client of the orders service (client credentials, audience `orders`, scope
/// `orders:read`), with `extra` options.
fn orders_app(server: &TestServer, name: &str, extra: &[&str]) -> Registered {
    let mut args = vec![
        "--grant",
        "client_credentials",
        "--audience",
        "orders",
        "--scope",
        "orders:read",
    ];
    args.extend_from_slice(extra);
    add_client(server, name, &args)
}

/// What introspection says of `token`, asked by a client with the `introspect`
/// scope.
async fn introspected(server: &TestServer, token: &str) -> Value {
    static READERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = READERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let reader = add_client(
        server,
        &format!("reader-{n}"),
        &["--grant", "client_credentials", "--scope", "introspect"],
    );
    crate::tokens::introspect(server, &reader, token).await
}

/// A request that presents `token` in `scheme`, with `proof` when given.
fn presenting(
    request: reqwest::RequestBuilder,
    scheme: &str,
    token: &str,
    proof: Option<&str>,
) -> reqwest::RequestBuilder {
    let request = request.header(reqwest::header::AUTHORIZATION, format!("{scheme} {token}"));
    match proof {
        Some(proof) => request.header("DPoP", proof),
        None => request,
    }
}

/// The status, the error code and the `WWW-Authenticate` challenge of a refusal.
async fn refusal(response: Response) -> (u16, String, String) {
    let challenge = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let (status, code) = error_of(response).await;
    (status, code, challenge)
}

/// `code` exchanged by `app` (PKCE `verifier`), with `proof` in `DPoP` when given.
async fn exchange_code(
    server: &TestServer,
    app: &Registered,
    code: &str,
    verifier: &str,
    proof: Option<String>,
) -> Response {
    let request = crate::code_flow::exchange_request(
        server,
        app,
        code,
        Some(verifier),
        crate::code_flow::REDIRECT,
    );
    match proof {
        Some(proof) => request.header("DPoP", proof),
        None => request,
    }
    .send()
    .await
    .unwrap()
}

/// A bound token for `client` (client credentials, `scope`), made with a proof
/// of `key`.
async fn bound_token(
    server: &TestServer,
    client: &Registered,
    scope: &str,
    key: &ClientKey,
    jti: &str,
) -> String {
    let response = token_request(server)
        .basic_auth(&client.id, client.secret.as_deref())
        .header("DPoP", key.proof(&server.url("/oauth2/token"), jti))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_bound_token_is_good_at_userinfo_only_with_a_fresh_proof_of_its_key() {
    use crate::code_flow::{Request, code_for};

    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let portal = crate::code_flow::app(&server, "portal", &["--first-party", "--public"]);
    let browser = server.login("alice").await;
    let request = Request::new(&portal);
    let code = code_for(&server, &browser, &request).await;
    let key = ClientKey::new(Algorithm::ES256);
    let proof = key.proof(&server.url("/oauth2/token"), "exchange");
    let exchanged = exchange_code(&server, &portal, &code, &request.verifier, Some(proof)).await;
    assert_eq!(exchanged.status(), 200);
    let body: Value = exchanged.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(payload(&token)["cnf"]["jkt"], key.thumbprint());

    let url = server.url("/oauth2/userinfo");
    let userinfo = |scheme: &'static str, proof: Option<String>| {
        let request = presenting(server.client.get(&url), scheme, &token, proof.as_deref());
        async move { request.send().await.unwrap() }
    };
    // The client, with its key: a proof for this request, carrying the token's hash.
    let good = userinfo("DPoP", Some(key.proof_for("GET", &url, &token, "u1"))).await;
    assert_eq!(good.status(), 200);
    let info: Value = good.json().await.unwrap();
    assert_eq!(info["sub"], server.user_id("alice"));

    // A thief with the token alone, as a bearer token: refused, and told the
    // scheme it would need.
    let (status, code, challenge) = refusal(userinfo("Bearer", None).await).await;
    assert_eq!((status, code.as_str()), (401, "invalid_token"));
    assert!(challenge.starts_with("DPoP algs="), "{challenge}");
    // Two Authorization headers, or two proofs: which one would count is not
    // for the client to choose.
    let twice = server
        .client
        .get(&url)
        .header(reqwest::header::AUTHORIZATION, format!("DPoP {token}"))
        .header(reqwest::header::AUTHORIZATION, format!("Bearer {token}"))
        .header("DPoP", key.proof_for("GET", &url, &token, "twice"))
        .send()
        .await
        .unwrap();
    // (Two `Authorization` headers are refused on every route, before routing.)
    assert_eq!(error_of(twice).await, (400, "invalid_request".to_owned()));
    let two_proofs = presenting(
        server.client.get(&url),
        "DPoP",
        &token,
        Some(&key.proof_for("GET", &url, &token, "one")),
    )
    .header("DPoP", key.proof_for("GET", &url, &token, "two"))
    .send()
    .await
    .unwrap();
    assert_eq!(
        refusal(two_proofs).await,
        (
            400,
            "invalid_request".to_owned(),
            r#"Bearer realm="tessera", error="invalid_request""#.to_owned()
        )
    );
    // The right scheme, but no proof, or the thief's own key.
    let (status, code, challenge) = refusal(userinfo("DPoP", None).await).await;
    assert_eq!((status, code.as_str()), (401, "invalid_dpop_proof"));
    assert!(
        challenge.contains(r#"error="invalid_dpop_proof""#),
        "{challenge}"
    );
    let thief = ClientKey::new(Algorithm::ES256);
    let stolen = thief.proof_for("GET", &url, &token, "t1");
    assert_eq!(
        refusal(userinfo("DPoP", Some(stolen)).await).await.1,
        "invalid_dpop_proof"
    );
    // A proof seen before: lifted from a log, or replayed by a man in the middle.
    let once = key.proof_for("GET", &url, &token, "u2");
    assert_eq!(userinfo("DPoP", Some(once.clone())).await.status(), 200);
    assert_eq!(
        refusal(userinfo("DPoP", Some(once)).await).await.1,
        "invalid_dpop_proof"
    );
    // The key's proof, but for another method, another URL, without the token's
    // hash, or with another token's.
    for (jti, proof) in [
        ("m", key.proof_for("POST", &url, &token, "m")),
        (
            "u",
            key.proof_for("GET", &server.url("/oauth2/introspect"), &token, "u"),
        ),
        ("h", {
            let mut claims = use_claims("GET", &url, &token, "h");
            claims.as_object_mut().unwrap().remove("ath");
            key.proof_with(key.header(), claims)
        }),
        ("o", key.proof_for("GET", &url, "another token", "o")),
    ] {
        assert_eq!(
            refusal(userinfo("DPoP", Some(proof)).await).await.1,
            "invalid_dpop_proof",
            "{jti}"
        );
    }

    // Introspection reports the binding, for the resource server to check.
    let described = introspected(&server, &token).await;
    assert_eq!(described["active"], true);
    assert_eq!(described["token_type"], "DPoP");
    assert_eq!(described["cnf"]["jkt"], key.thumbprint());
}

/// A resource service told its public URL checks proofs against it, not against
/// the `Host` a request names: a proof made for the URL clients call passes, one
/// made for the address it listens on (or for another host that serves the same
/// paths, sent with that `Host`) is refused.
#[tokio::test]
async fn a_resource_service_with_a_public_url_takes_proofs_for_it_and_not_for_the_host_sent() {
    let server = TestServer::start().await;
    let resource =
        crate::verifier::Resource::start(&server, |b| b.public_url("https://orders.example/"))
            .await;
    let app = orders_app(&server, "orders-app", &[]);
    let key = ClientKey::new(Algorithm::ES256);
    let token = bound_token(&server, &app, "orders:read", &key, "orders").await;
    let listening = format!("{}/orders", resource.base);
    let orders = |proof: String, host: Option<&'static str>| {
        let mut request = presenting(resource.http.get(&listening), "DPoP", &token, Some(&proof));
        if let Some(host) = host {
            request = request.header(reqwest::header::HOST, host);
        }
        async move { request.send().await.unwrap() }
    };
    let public = "https://orders.example/orders";
    assert_eq!(
        orders(key.proof_for("GET", public, &token, "1"), None)
            .await
            .status(),
        200
    );
    for (proof, host, why) in [
        (
            key.proof_for("GET", &listening, &token, "2"),
            None,
            "the listening address",
        ),
        (
            key.proof_for("GET", "http://billing.example/orders", &token, "3"),
            Some("billing.example"),
            "another host, named in Host",
        ),
    ] {
        assert_eq!(
            refusal(orders(proof, host).await).await.1,
            "invalid_dpop_proof",
            "{why}"
        );
    }
}

#[tokio::test]
async fn a_bound_token_is_good_at_a_resource_service_and_at_tessera_only_with_its_key() {
    let server = TestServer::start().await;
    let resource = crate::verifier::Resource::start(&server, |b| b).await;
    let app = orders_app(&server, "orders-app", &[]);
    let key = ClientKey::new(Algorithm::EdDSA);
    let token = bound_token(&server, &app, "orders:read", &key, "orders").await;
    let url = format!("{}/orders", resource.base);
    let orders = |scheme: &'static str, proof: Option<String>| {
        let request = presenting(resource.http.get(&url), scheme, &token, proof.as_deref());
        async move { request.send().await.unwrap() }
    };

    assert_eq!(
        orders("DPoP", Some(key.proof_for("GET", &url, &token, "1")))
            .await
            .status(),
        200
    );
    let (status, code, challenge) = refusal(orders("Bearer", None).await).await;
    assert_eq!((status, code.as_str()), (401, "invalid_token"));
    assert!(
        challenge.starts_with("DPoP algs=\"ES256 EdDSA RS256\""),
        "{challenge}"
    );
    let replayed = key.proof_for("GET", &url, &token, "2");
    assert_eq!(orders("DPoP", Some(replayed.clone())).await.status(), 200);
    let (status, code, _) = refusal(orders("DPoP", Some(replayed)).await).await;
    assert_eq!((status, code.as_str()), (401, "invalid_dpop_proof"));
    let thief = ClientKey::new(Algorithm::EdDSA);
    for proof in [
        thief.proof_for("GET", &url, &token, "3"),
        key.proof_for("POST", &url, &token, "4"),
        key.proof_for("GET", &format!("{}/me", resource.base), &token, "5"),
        key.proof_for("GET", "http://evil.example/orders", &token, "6"),
    ] {
        assert_eq!(
            refusal(orders("DPoP", Some(proof)).await).await.1,
            "invalid_dpop_proof"
        );
    }
    // A route the token is not enough for answers in the scheme it came in.
    let report = format!("{}/admin/report", resource.base);
    let proof = key.proof_for("GET", &report, &token, "report");
    let (status, code, challenge) = refusal(
        presenting(resource.http.get(&report), "DPoP", &token, Some(&proof))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "insufficient_scope"));
    assert!(challenge.starts_with("DPoP algs="), "{challenge}");
    // An unbound token presented as DPoP is refused, so a client that asked for
    // binding learns it did not get it.
    let unbound: Value = with_proofs(&server, &app, &[]).await.json().await.unwrap();
    let unbound = unbound["access_token"].as_str().unwrap();
    let proof = key.proof_for("GET", &url, unbound, "7");
    let response = presenting(resource.http.get(&url), "DPoP", unbound, Some(&proof))
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(response).await.1, "invalid_token");
    // The library's own entry point for a bare token treats it as a bearer token.
    assert_eq!(
        resource.verifier.verify(&token).await,
        Err(tessera_verify::VerifyError::BoundToKey)
    );

    // tessera's own API (the revocation feed) follows the same rule.
    let feed = add_client(
        &server,
        "feed-reader",
        &["--grant", "client_credentials", "--scope", "revocations"],
    );
    let feed_key = ClientKey::new(Algorithm::ES256);
    let feed_token = bound_token(&server, &feed, "revocations", &feed_key, "feed").await;
    let feed_url = server.url("/v1/revocations");
    let bearer = presenting(server.client.get(&feed_url), "Bearer", &feed_token, None)
        .send()
        .await
        .unwrap();
    let (status, code, challenge) = refusal(bearer).await;
    assert_eq!((status, code.as_str()), (401, "invalid_token"));
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    let proof = feed_key.proof_for("GET", &feed_url, &feed_token, "f1");
    let with_key = presenting(
        server.client.get(&feed_url),
        "DPoP",
        &feed_token,
        Some(&proof),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(with_key.status(), 200);
    drop(with_key);
    let stolen = thief.proof_for("GET", &feed_url, &feed_token, "f2");
    let response = presenting(
        server.client.get(&feed_url),
        "DPoP",
        &feed_token,
        Some(&stolen),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(refusal(response).await.1, "invalid_dpop_proof");
}

#[tokio::test]
async fn a_proof_used_on_one_instance_is_refused_on_another() {
    // One public URL for both, as behind one load balancer: what proofs name.
    let public = "http://localhost:7998";
    let cluster = crate::cluster::Cluster::start_with(2, &[("TESSERA_PUBLIC_URL", public)]).await;
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let feed = add_client(
        a,
        "feed-reader",
        &["--grant", "client_credentials", "--scope", "revocations"],
    );
    let key = ClientKey::new(Algorithm::ES256);
    let token_url = format!("{public}/oauth2/token");
    let ask = |node: &TestServer, proof: &str| {
        token_request(node)
            .basic_auth(&feed.id, feed.secret.as_deref())
            .header("DPoP", proof)
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "revocations"),
            ])
            .send()
    };

    // At the token endpoint: a proof taken by one instance, replayed to the other.
    let proof = key.proof(&token_url, "token-once");
    let granted = ask(a, &proof).await.unwrap();
    assert_eq!(granted.status(), 200);
    let token = granted.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        error_of(ask(b, &proof).await.unwrap()).await,
        (400, "invalid_dpop_proof".to_owned())
    );

    // Where the token is used: the same.
    let feed_url = format!("{public}/v1/revocations");
    let proof = key.proof_for("GET", &feed_url, &token, "use-once");
    let read = |node: &TestServer| {
        presenting(
            node.client.get(node.url("/v1/revocations")),
            "DPoP",
            &token,
            Some(&proof),
        )
        .send()
    };
    let first = read(b).await.unwrap();
    assert_eq!(first.status(), 200);
    drop(first);
    let (status, code, _) = refusal(read(a).await.unwrap()).await;
    assert_eq!((status, code.as_str()), (401, "invalid_dpop_proof"));
}

#[tokio::test]
async fn a_client_registered_with_dpop_required_gets_no_bearer_token() {
    let server = TestServer::start().await;
    let out = server.cli(
        &[
            "client",
            "add",
            "strict",
            "--grant",
            "client_credentials",
            "--dpop",
            "required",
            "--json",
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(added["dpop_bound_access_tokens"], true);
    let strict = Registered {
        id: added["client_id"].as_str().unwrap().to_owned(),
        secret: added["client_secret"].as_str().map(str::to_owned),
    };

    // Without a proof: refused, before anything is issued.
    let (status, code) = error_of(with_proofs(&server, &strict, &[]).await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_dpop_proof"));
    // With one: bound.
    let key = ClientKey::new(Algorithm::ES256);
    let bound = with_proofs(
        &server,
        &strict,
        &[&key.proof(&server.url("/oauth2/token"), "s")],
    )
    .await;
    assert_eq!(bound.status(), 200);
    assert_eq!(bound.json::<Value>().await.unwrap()["token_type"], "DPoP");

    // The CLI's list shows it.
    let listed = server.cli(&["client", "list", "--json"], "");
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert!(
        listed["clients"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "strict" && c["dpop_bound_access_tokens"] == true)
    );
}

#[tokio::test]
async fn an_opaque_token_is_bound_too_and_its_binding_comes_from_introspection() {
    let server = TestServer::start().await;
    let resource = crate::verifier::Resource::start(&server, |b| b).await;
    let app = orders_app(&server, "opaque-app", &["--token-format", "opaque"]);
    let key = ClientKey::new(Algorithm::EdDSA);
    let token = bound_token(&server, &app, "orders:read", &key, "opaque").await;
    assert!(token.starts_with("tat_"), "{token}");

    // Introspection says what it is bound to.
    let described = introspected(&server, &token).await;
    assert_eq!(described["token_type"], "DPoP");
    assert_eq!(described["cnf"]["jkt"], key.thumbprint());

    // The resource service introspects it and holds it to the same rule.
    let url = format!("{}/orders", resource.base);
    let orders = |scheme: &'static str, proof: Option<String>| {
        presenting(resource.http.get(&url), scheme, &token, proof.as_deref()).send()
    };
    assert_eq!(
        orders("DPoP", Some(key.proof_for("GET", &url, &token, "1")))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        refusal(orders("Bearer", None).await.unwrap()).await.1,
        "invalid_token"
    );
    let thief = ClientKey::new(Algorithm::EdDSA);
    assert_eq!(
        refusal(
            orders("DPoP", Some(thief.proof_for("GET", &url, &token, "2")))
                .await
                .unwrap()
        )
        .await
        .1,
        "invalid_dpop_proof"
    );
}

#[tokio::test]
async fn with_server_nonces_a_proof_must_carry_the_nonce_given() {
    let server = TestServer::start_with(&[("TESSERA_TOKENS__DPOP_NONCE", "true")]).await;
    let app = add_client(&server, "app", &["--grant", "client_credentials"]);
    let url = server.url("/oauth2/token");
    let key = ClientKey::new(Algorithm::ES256);
    let with_nonce = |jti: &str, nonce: Option<&str>| {
        let mut claims = claims(&url, jti);
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        key.proof_with(key.header(), claims)
    };
    let nonce_of = |response: &Response| {
        response
            .headers()
            .get("DPoP-Nonce")
            .map(|v| v.to_str().unwrap().to_owned())
    };

    // A proof made without one: refused, with the nonce to use (RFC 9449 §8).
    let first = with_proofs(&server, &app, &[&with_nonce("a", None)]).await;
    let nonce = nonce_of(&first).expect("a DPoP-Nonce header");
    assert_eq!(error_of(first).await, (400, "use_dpop_nonce".to_owned()));
    // The client tries again with it, and every answer carries a nonce.
    let second = with_proofs(&server, &app, &[&with_nonce("b", Some(&nonce))]).await;
    assert_eq!(second.status(), 200);
    assert!(nonce_of(&second).is_some());
    assert_eq!(second.json::<Value>().await.unwrap()["token_type"], "DPoP");
    // A nonce made up, or taken from another server, is no nonce of this one.
    for forged in [
        "abc",
        "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let response = with_proofs(&server, &app, &[&with_nonce(forged, Some(forged))]).await;
        assert_eq!(
            error_of(response).await,
            (400, "use_dpop_nonce".to_owned()),
            "{forged}"
        );
    }
    let elsewhere = TestServer::start_with(&[("TESSERA_TOKENS__DPOP_NONCE", "true")]).await;
    // (The client is not registered there: even a refusal carries a nonce.)
    let foreign = with_proofs(&elsewhere, &app, &[]).await;
    let foreign = nonce_of(&foreign).expect("every answer carries a nonce");
    let response = with_proofs(&server, &app, &[&with_nonce("c", Some(&foreign))]).await;
    assert_eq!(error_of(response).await, (400, "use_dpop_nonce".to_owned()));
    // Bearer token requests, with no proof, need no nonce.
    assert_eq!(with_proofs(&server, &app, &[]).await.status(), 200);
}

#[tokio::test]
async fn a_proof_pushed_out_of_a_full_replay_set_is_still_refused() {
    // An attacker who captured a proof floods the token endpoint with proofs of
    // their own until the captured one is forgotten, then replays it. Two
    // entries stand for the default 100,000.
    let server = TestServer::start_with(&[("TESSERA_TOKENS__DPOP_REPLAY_ENTRIES", "2")]).await;
    let app = add_client(&server, "app", &["--grant", "client_credentials"]);
    let url = server.url("/oauth2/token");
    let key = ClientKey::new(Algorithm::ES256);
    let captured = key.proof(&url, "captured");
    assert_eq!(with_proofs(&server, &app, &[&captured]).await.status(), 200);
    for jti in ["flood-1", "flood-2"] {
        let response = with_proofs(&server, &app, &[&key.proof(&url, jti)]).await;
        assert_eq!(response.status(), 200, "{jti}");
    }
    let replayed = with_proofs(&server, &app, &[&captured]).await;
    assert_eq!(
        error_of(replayed).await,
        (400, "invalid_dpop_proof".to_owned()),
        "a proof forgotten early is refused all the same"
    );
    // A client making its proofs now is not refused (its iat is later than any
    // proof forgotten; a second ahead stands for the next second).
    let mut claims = claims(&url, "next");
    claims["iat"] = json!(now() + 2);
    let next = with_proofs(&server, &app, &[&key.proof_with(key.header(), claims)]).await;
    assert_eq!(next.status(), 200);
}

/// A public app's code exchanged with a proof of `key`: its token answer.
async fn bound_code_flow(server: &TestServer, app: &Registered, key: &ClientKey) -> Value {
    use crate::code_flow::{Request, code_for};
    let browser = server.login("alice").await;
    let request = Request::new(app);
    let code = code_for(server, &browser, &request).await;
    let proof = key.proof(&server.url("/oauth2/token"), "exchange");
    let exchanged = exchange_code(server, app, &code, &request.verifier, Some(proof)).await;
    assert_eq!(exchanged.status(), 200);
    exchanged.json().await.unwrap()
}

#[tokio::test]
async fn a_public_apps_refresh_token_is_bound_to_its_key_too() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let app = crate::code_flow::app(&server, "spa", &["--first-party", "--public"]);
    let key = ClientKey::new(Algorithm::ES256);
    let tokens = bound_code_flow(&server, &app, &key).await;
    assert_eq!(tokens["token_type"], "DPoP");
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let url = server.url("/oauth2/token");
    let refresh = |proof: Option<String>| {
        let mut request = token_request(&server).form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
            ("client_id", app.id.as_str()),
        ]);
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        async move { request.send().await.unwrap() }
    };

    // A thief with the refresh token alone, or with a key of their own: refused,
    // and the token is not spent by it.
    assert_eq!(
        error_of(refresh(None).await).await,
        (400, "invalid_dpop_proof".to_owned())
    );
    let thief = ClientKey::new(Algorithm::ES256);
    assert_eq!(
        error_of(refresh(Some(thief.proof(&url, "thief"))).await).await,
        (400, "invalid_dpop_proof".to_owned())
    );
    // Nor under another app's name (a public app of the thief's own): the token
    // is bound to a key they do not hold, so nothing ends, as a leaked unbound
    // token's family would.
    let thiefs_app = crate::code_flow::app(&server, "thiefs-spa", &["--first-party", "--public"]);
    for proof in [None, Some(thief.proof(&url, "thief-app"))] {
        let mut request = token_request(&server).form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
            ("client_id", thiefs_app.id.as_str()),
        ]);
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        assert_eq!(
            error_of(request.send().await.unwrap()).await,
            (400, "invalid_dpop_proof".to_owned())
        );
    }
    // The app, with its key: new tokens, bound to it again.
    let renewed = refresh(Some(key.proof(&url, "renew"))).await;
    assert_eq!(renewed.status(), 200);
    let renewed: Value = renewed.json().await.unwrap();
    assert_eq!(renewed["token_type"], "DPoP");
    assert_eq!(
        payload(renewed["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.thumbprint()
    );
}

#[tokio::test]
async fn a_third_party_dpop_client_gets_and_uses_bound_tokens_at_the_resource_service() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/node");
    assert!(
        std::path::Path::new(dir)
            .join("node_modules/oauth4webapi")
            .is_dir(),
        "oauth4webapi is not installed: run scripts/test, or npm ci --prefix {dir}"
    );
    // With server nonces on, so the library's nonce handling is exercised too.
    let server = TestServer::start_with(&[("TESSERA_TOKENS__DPOP_NONCE", "true")]).await;
    let resource = crate::verifier::Resource::start(&server, |b| b).await;
    let app = orders_app(&server, "node-app", &["--dpop", "required"]);
    let orders = format!("{}/orders", resource.base);
    let out = tokio::process::Command::new("node")
        .arg(format!("{dir}/dpop_client.mjs"))
        .args([
            server.base.as_str(),
            app.id.as_str(),
            app.secret.as_deref().unwrap(),
            "orders:read",
            orders.as_str(),
        ])
        .output()
        .await
        .expect("node is missing: apt-get install nodejs npm");
    assert!(
        out.status.success(),
        "the DPoP client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["token_type"], "dpop", "{report}");
    assert_eq!(report["nonce_retried"], true, "{report}");
    let token = report["access_token"].as_str().unwrap();
    assert_eq!(payload(token)["cnf"]["jkt"], report["jkt"]);
    // Two calls, each with a fresh proof the library signed: both served.
    for call in ["first", "second"] {
        assert_eq!(report[call]["status"], 200, "{call}: {report}");
    }
    // The token the library holds, lifted and sent as a bearer token: refused.
    let stolen = presenting(resource.http.get(&orders), "Bearer", token, None)
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(stolen).await.1, "invalid_token");
}

#[tokio::test]
async fn a_code_bound_by_dpop_jkt_is_exchanged_only_with_a_proof_of_that_key() {
    use crate::code_flow::{REDIRECT, Request, code_for};

    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let app = crate::code_flow::app(&server, "native", &["--first-party", "--public"]);
    let browser = server.login("alice").await;
    let key = ClientKey::new(Algorithm::ES256);
    let url = server.url("/oauth2/token");

    // A code intercepted on its way back, exchanged without the key or with the
    // interceptor's own: refused.
    let thief = ClientKey::new(Algorithm::ES256);
    for (jti, proof) in [("none", None), ("thief", Some(thief.proof(&url, "thief")))] {
        let request = Request::new(&app).set("dpop_jkt", &key.thumbprint());
        let code = code_for(&server, &browser, &request).await;
        assert_eq!(
            error_of(exchange_code(&server, &app, &code, &request.verifier, proof).await).await,
            (400, "invalid_dpop_proof".to_owned()),
            "{jti}"
        );
    }
    // The app that asked, with its key: bound tokens.
    let request = Request::new(&app).set("dpop_jkt", &key.thumbprint());
    let code = code_for(&server, &browser, &request).await;
    let response = exchange_code(
        &server,
        &app,
        &code,
        &request.verifier,
        Some(key.proof(&url, "app")),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        payload(body["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.thumbprint()
    );

    // A dpop_jkt that is no thumbprint is refused back to the app.
    let request = Request::new(&app).set("dpop_jkt", "not a thumbprint");
    let authorize = server
        .client
        .get(request.url(&server))
        .header(reqwest::header::COOKIE, &browser.cookie)
        .send()
        .await
        .unwrap();
    let to = authorize.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to.starts_with(REDIRECT) && to.contains("error=invalid_request"),
        "{to}"
    );
}

/// A gateway with a client of its own that binds the tokens it sends on its
/// `/orders` route (to `resource`) and on the `extra_routes` given (TOML).
fn bound_gateway(
    server: &TestServer,
    resource: &crate::verifier::Resource,
    extra_routes: &str,
) -> crate::gateway::GatewayProcess {
    let client = add_client(
        server,
        "gateway",
        &[
            "--grant",
            "token_exchange,client_credentials",
            "--scope",
            "revocations orders:read",
            "--audience",
            "orders",
            "--access-ttl",
            "60s",
        ],
    );
    let config = format!(
        r#"
listen = "127.0.0.1:0"
tessera_url = "{issuer}"
client_id = "{id}"
login_url = "{issuer}/login"

[[route]]
prefix = "/orders"
upstream = "{upstream}"
audience = "orders"
scopes = ["orders:read"]
dpop = true
{extra_routes}"#,
        issuer = server.base,
        id = client.id,
        upstream = resource.base,
    );
    crate::gateway::GatewayProcess::start(&config, client.secret.as_deref().unwrap(), &[])
}

#[tokio::test]
async fn the_gateways_bound_tokens_reach_an_upstream_that_verifies_them_and_are_useless_lifted() {
    use std::sync::{Arc, Mutex};

    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let resource = crate::verifier::Resource::start(&server, |b| b).await;
    // An upstream that keeps what it was sent: a service whose logs leak.
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let leak = seen.clone();
    let echo = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let header = |name: &str| {
            headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        leak.lock()
            .unwrap()
            .push((header("authorization"), header("dpop")));
        async { "logged" }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, echo).await });
    let gateway = bound_gateway(
        &server,
        &resource,
        &format!(
            r#"
[[route]]
prefix = "/logged/"
upstream = "{echo_base}"
audience = "orders"
scopes = ["orders:read"]
dpop = true
"#
        ),
    );
    let alice = server.login("alice").await;
    let through = |path: &str| {
        resource
            .http
            .get(format!("{}{path}", gateway.base))
            .header(reqwest::header::COOKIE, &alice.cookie)
            .send()
    };

    // The resource service verifies the bound token and the gateway's proof,
    // request after request (a fresh proof each time, the token cached).
    for _ in 0..3 {
        let response = through("/orders").await.unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }

    // What the other upstream received, lifted from its logs.
    assert_eq!(through("/logged/x").await.unwrap().status(), 200);
    let (authorization, proof) = seen.lock().unwrap()[0].clone();
    let token = authorization
        .strip_prefix("DPoP ")
        .expect("a bound token goes as DPoP")
        .to_owned();
    assert!(payload(&token)["cnf"]["jkt"].is_string());
    assert!(!proof.is_empty(), "with a proof");
    let orders = format!("{}/orders", resource.base);
    // As a bearer token, with the proof that came with it (for another URL), with
    // that proof again, or with a key of the thief's own: refused every time.
    let attempt = |scheme: &'static str, proof: Option<String>| {
        presenting(resource.http.get(&orders), scheme, &token, proof.as_deref()).send()
    };
    assert_eq!(
        refusal(attempt("Bearer", None).await.unwrap()).await.1,
        "invalid_token"
    );
    assert_eq!(
        refusal(attempt("DPoP", Some(proof.clone())).await.unwrap())
            .await
            .1,
        "invalid_dpop_proof"
    );
    let thief = ClientKey::new(Algorithm::ES256);
    let own = thief.proof_for("GET", &orders, &token, "lifted");
    assert_eq!(
        refusal(attempt("DPoP", Some(own)).await.unwrap()).await.1,
        "invalid_dpop_proof"
    );
}

/// With `tokens.dpop_nonce` on, tessera answers the gateway's first token
/// exchange `use_dpop_nonce`: the gateway signs again with the nonce it was given
/// and goes on (it answered 503 on every bound route before).
#[tokio::test]
async fn the_gateway_gets_bound_tokens_from_a_server_that_asks_for_nonces() {
    let server = TestServer::start_with(&[("TESSERA_TOKENS__DPOP_NONCE", "true")]).await;
    server.add_user("alice", &[]);
    let resource = crate::verifier::Resource::start(&server, |b| b).await;
    let gateway = bound_gateway(&server, &resource, "");
    // Two people: each a token exchange of its own, the second with the nonce
    // the first was given.
    for name in ["alice", "bob"] {
        if name != "alice" {
            server.add_user(name, &[]);
        }
        let person = server.login(name).await;
        let response = resource
            .http
            .get(format!("{}/orders", gateway.base))
            .header(reqwest::header::COOKIE, &person.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "{name}: {}",
            response.text().await.unwrap()
        );
    }
}

#[tokio::test]
async fn a_dpop_proof_on_a_pushed_request_binds_its_code() {
    use crate::code_flow::REDIRECT;

    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let app = crate::code_flow::app(&server, "pushing", &["--first-party"]);
    let browser = server.login("alice").await;
    let key = ClientKey::new(Algorithm::ES256);
    let par_url = server.url("/oauth2/par");
    let token_url = server.url("/oauth2/token");
    let verifier = "pushed-verifier-0123456789-0123456789-0123456789";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let push = |proof: String, dpop_jkt: Option<String>| {
        let mut form = vec![
            ("response_type", "code".to_owned()),
            ("redirect_uri", REDIRECT.to_owned()),
            ("scope", "openid".to_owned()),
            ("state", "s".to_owned()),
            ("code_challenge", challenge.clone()),
            ("code_challenge_method", "S256".to_owned()),
        ];
        form.extend(dpop_jkt.map(|jkt| ("dpop_jkt", jkt)));
        token_request_to(&server, "/oauth2/par")
            .basic_auth(&app.id, app.secret.as_deref())
            .header("DPoP", proof)
            .form(&form)
            .send()
    };
    let code_of = |request_uri: String| {
        let url = format!(
            "{}?client_id={}&request_uri={}",
            server.url("/oauth2/authorize"),
            app.id,
            url::form_urlencoded::byte_serialize(request_uri.as_bytes()).collect::<String>()
        );
        let request = server
            .client
            .get(url)
            .header(reqwest::header::COOKIE, &browser.cookie)
            .send();
        async move {
            let response = request.await.unwrap();
            let to = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
            to.query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_else(|| panic!("no code in {to}"))
        }
    };

    // Pushed with a proof: the code is bound to its key.
    for (attempt, proof) in [
        ("without the key", None),
        (
            "with another",
            Some(ClientKey::new(Algorithm::ES256).proof(&token_url, "x")),
        ),
    ] {
        let pushed = push(key.proof(&par_url, &format!("push-{attempt}")), None)
            .await
            .unwrap();
        assert_eq!(pushed.status(), 201);
        let request_uri = pushed.json::<Value>().await.unwrap()["request_uri"]
            .as_str()
            .unwrap()
            .to_owned();
        let code = code_of(request_uri).await;
        assert_eq!(
            error_of(exchange_code(&server, &app, &code, verifier, proof).await).await,
            (400, "invalid_dpop_proof".to_owned()),
            "{attempt}"
        );
    }
    let pushed = push(key.proof(&par_url, "push-ok"), None).await.unwrap();
    let request_uri = pushed.json::<Value>().await.unwrap()["request_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = code_of(request_uri).await;
    let exchanged = exchange_code(
        &server,
        &app,
        &code,
        verifier,
        Some(key.proof(&token_url, "exchange")),
    )
    .await;
    assert_eq!(exchanged.status(), 200);
    let body: Value = exchanged.json().await.unwrap();
    assert_eq!(
        payload(body["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.thumbprint()
    );

    // A dpop_jkt naming another key than the proof's, or a proof for another URL.
    let other = ClientKey::new(Algorithm::ES256).thumbprint();
    let (status, code) = error_of(
        push(key.proof(&par_url, "mismatch"), Some(other))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "invalid_dpop_proof"));
    let (status, code) = error_of(
        push(key.proof(&token_url, "wrong-url"), None)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "invalid_dpop_proof"));
}
