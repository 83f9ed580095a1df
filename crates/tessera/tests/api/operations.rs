use serde_json::Value;

use crate::harness::*;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let server = TestServer::start().await;
    let health = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");
    let ready = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    server.add_user("alice", &[]);
    server.login("alice").await;
    let _ = server.try_login("alice", "wrong password!").await;
    let metrics = server.metrics().await;
    for expected in [
        r#"tessera_login_attempts_total{outcome="success"} 1"#,
        r#"tessera_login_attempts_total{outcome="invalid_credentials"} 1"#,
        r#"tessera_http_requests_total{route="/v1/login",method="POST",status="200"} 1"#,
        "tessera_password_hash_seconds_bucket",
        "tessera_http_request_duration_seconds_bucket",
        "tessera_active_sessions",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in\n{metrics}"
        );
    }
}

/// The metrics say who signs in how often and what fails: only operators read
/// them, on the management listener. The public port keeps the health checks for
/// load balancers and answers nothing else about the process.
#[tokio::test]
async fn metrics_are_only_on_the_management_listener() {
    let server = TestServer::start().await;
    assert_ne!(server.base, server.management);
    for path in [
        "/metrics",
        "/metrics/",
        "/%6detrics",
        "/METRICS",
        "//metrics",
    ] {
        let public = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(public.status(), 404, "{path} on the public port");
        assert!(!public.text().await.unwrap().contains("tessera_"));
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        let management = server
            .client
            .get(format!("{}{path}", server.management))
            .send()
            .await
            .unwrap();
        assert_eq!(management.status(), 200, "{path} on the management port");
        assert_eq!(management.headers()["cache-control"], "no-store");
    }
    // Nothing of the public API on the management listener.
    for path in [
        "/v1/login",
        "/.well-known/jwks.json",
        "/admin",
        "/oauth2/token",
    ] {
        let management = server
            .client
            .get(format!("{}{path}", server.management))
            .send()
            .await
            .unwrap();
        assert_eq!(management.status(), 404, "{path} on the management port");
    }
}

/// `tessera serve --listen 127.0.0.1:P` puts the management listener on P + 10;
/// `--management-listen` moves it; a taken port stops the start before any store
/// is created.
#[tokio::test]
async fn the_management_port_defaults_to_ten_above_and_a_taken_port_creates_nothing() {
    let data = tempfile::tempdir().unwrap();
    // A free pair of ports, P and P + 10.
    let (port, holder) = loop {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        if port > 65000 {
            continue;
        }
        if let Ok(holder) = std::net::TcpListener::bind(("127.0.0.1", port + 10)) {
            drop(probe);
            break (port, holder);
        }
    };
    // P + 10 is held: the start fails, naming the setting, and leaves no database.
    let out = std::process::Command::new(binary())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data.path())
        .env("TESSERA_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{}", port + 10)),
        "{stderr}"
    );
    assert!(stderr.contains("--management-listen"), "{stderr}");
    assert!(
        !data.path().join("tessera.sqlite3").exists(),
        "a refused start created the store"
    );
    drop(holder);
    let mut child = std::process::Command::new(binary())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data.path())
        .env("TESSERA_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (base, management) = read_banner(child.stdout.take().unwrap());
    assert_eq!(base, format!("http://127.0.0.1:{port}"));
    assert_eq!(management, format!("http://127.0.0.1:{}", port + 10));
    let metrics = reqwest::get(format!("{management}/metrics")).await.unwrap();
    assert_eq!(metrics.status(), 200);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let server = TestServer::start().await;
    let (status, code) =
        error_of(server.client.get(server.url("/nope")).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    let (status, code) = error_of(
        server
            .client
            .put(server.url("/v1/login"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (405, "method_not_allowed"));
}

#[tokio::test]
async fn every_answer_carries_no_store_and_a_request_id() {
    let server = TestServer::start().await;
    let response = server
        .client
        .get(server.url("/v1/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert!(response.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let server = TestServer::start().await;
    let response = server
        .client
        .get(server.url("/healthz"))
        .header("x-filler", "a".repeat(20 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly() {
    let mut server = TestServer::start().await;
    assert_eq!(
        server
            .client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(server.terminate().success());
}

/// One line per request at INFO: method, route template, status, latency,
/// request id and who; never the path as sent (its query can carry a reset
/// link), a cookie or a credential.
#[tokio::test]
async fn every_request_gets_one_log_line_with_who_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server = TestServer::start_logging_to(
        &[("TESSERA_LOG", "info"), ("TESSERA_LOG_FORMAT", "json")],
        Some(log.clone()),
    )
    .await;
    server.add_user("alice", &[]);
    let browser = server.login("alice").await;
    let checked = server
        .client
        .get(server.url("/v1/session"))
        .header(reqwest::header::COOKIE, &browser.cookie)
        .header("x-request-id", "trace-me-0001")
        .send()
        .await
        .unwrap();
    assert_eq!(checked.status(), 200);
    let secret_in_query = "tpr_this-looks-like-a-reset-link-secret";
    let page = server
        .client
        .get(server.url(&format!("/reset?token={secret_in_query}")))
        .send()
        .await
        .unwrap();
    assert!(page.status().is_client_error() || page.status().is_success());
    let out = server.cli(
        &[
            "client",
            "add",
            "svc",
            "--grant",
            "client_credentials",
            "--json",
        ],
        "",
    );
    let client: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id, secret) = (
        client["client_id"].as_str().unwrap(),
        client["client_secret"].as_str().unwrap(),
    );
    let token = server
        .client
        .post(server.url("/oauth2/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);
    drop(server);

    let written = std::fs::read_to_string(&log).unwrap();
    let requests: Vec<Value> = written
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["target"] == "tessera::request")
        .collect();
    let session_line = requests
        .iter()
        .find(|l| l["fields"]["request_id"] == "trace-me-0001")
        .unwrap_or_else(|| panic!("no line for the session check in\n{written}"));
    assert_eq!(session_line["level"], "INFO");
    let fields = &session_line["fields"];
    assert_eq!(fields["method"], "GET");
    assert_eq!(fields["route"], "/v1/session");
    assert_eq!(fields["status"], 200);
    assert!(fields["latency_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        fields["who"],
        format!("user:{}", browser.login["user"]["id"].as_str().unwrap())
    );
    let token_line = requests
        .iter()
        .find(|l| l["fields"]["route"] == "/oauth2/token")
        .unwrap();
    assert_eq!(token_line["fields"]["who"], format!("client:{id}"));
    assert_eq!(token_line["fields"]["status"], 200);
    assert!(
        requests.iter().any(|l| l["fields"]["route"] == "/reset"),
        "{written}"
    );
    // The login: its request line, and the audit event's own line.
    assert!(requests.iter().any(|l| l["fields"]["route"] == "/v1/login"));
    assert!(written.contains("tessera::audit"), "{written}");
    let session_secret = browser.cookie.split_once('=').unwrap().1;
    for secret in [session_secret, secret, secret_in_query, PASSWORD] {
        assert!(!written.contains(secret), "a secret reached the log");
    }
}

/// DEBUG is for reading what happens, not for a statement every 100 ms: an idle
/// server writes nothing periodic there (sqlx's statements are at TRACE).
#[tokio::test]
async fn an_idle_server_is_quiet_at_debug() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server = TestServer::start_logging_to(&[("TESSERA_LOG", "debug")], Some(log.clone())).await;
    let started = std::fs::read_to_string(&log).unwrap().lines().count();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    drop(server);
    let written = std::fs::read_to_string(&log).unwrap();
    let idle: Vec<&str> = written
        .lines()
        .skip(started)
        .filter(|l| !l.contains("shutting down") && !l.contains("stopped"))
        .collect();
    assert!(
        idle.len() < 5,
        "an idle server wrote {} lines at DEBUG in 1.5 s:\n{}",
        idle.len(),
        idle.join("\n")
    );
}

#[tokio::test]
async fn no_secret_reaches_the_log_even_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server = TestServer::start_logging_to(
        &[("TESSERA_LOG", "trace"), ("TESSERA_LOG_FORMAT", "json")],
        Some(log.clone()),
    )
    .await;
    server.add_user("alice", &[]);
    let browser = server.login("alice").await;
    assert_eq!(server.session_status(&browser).await, 200);
    let _ = server.try_login("alice", "a wrong password").await;
    let logout = server
        .unsafe_as(reqwest::Method::POST, "/v1/logout", &browser)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    // A reset link, opened and used: its secret travels in a URL and a form.
    let issued = server.cli(&["user", "reset-link", "alice", "--json"], "");
    let issued: Value = serde_json::from_slice(&issued.stdout).unwrap();
    let reset_token = issued["url"]
        .as_str()
        .unwrap()
        .split_once("?token=")
        .unwrap()
        .1
        .to_owned();
    let opened = server
        .client
        .get(server.url(&format!("/reset?token={reset_token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 200);
    let new_password = "the new secret passphrase";
    let used = server
        .client
        .post(server.url("/reset"))
        .header(reqwest::header::ORIGIN, &server.base)
        .form(&[
            ("token", reset_token.as_str()),
            ("password", new_password),
            ("confirm", new_password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(used.status(), 200);
    drop(server);
    let written = std::fs::read_to_string(&log).unwrap();
    assert!(written.lines().count() > 10, "expected a chatty trace log");
    assert!(
        written
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "--log-format json writes one JSON object per line"
    );
    let secret = browser.cookie.split_once('=').unwrap().1;
    for needle in [
        secret,
        &secret[4..],
        &browser.csrf,
        PASSWORD,
        "a wrong password",
        &reset_token,
        &reset_token[4..],
        new_password,
    ] {
        assert!(!written.contains(needle), "a secret reached the log");
    }
}

#[tokio::test]
async fn slow_requests_time_out_with_408() {
    let server = TestServer::start_with(&[("TESSERA_LIMITS__REQUEST_TIMEOUT", "1s")]).await;
    // a body promised but never sent
    let answer = raw_request(
        &server.base,
        b"POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"username\":",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
}

#[tokio::test]
async fn http2_clients_are_served_too() {
    let server = TestServer::start().await;
    server.add_user("alice", &[]);
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let login = h2
        .post(server.url("/v1/login"))
        .json(&serde_json::json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.version(), reqwest::Version::HTTP_2);
    assert_eq!(login.status(), 200);
    let browser = browser_from(login).await;
    let session = h2
        .get(server.url("/v1/session"))
        .header("cookie", &browser.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(session.version(), reqwest::Version::HTTP_2);
    assert_eq!(session.status(), 200);
}

/// A self-signed certificate for 127.0.0.1: its PEM chain, PEM key and DER.
fn self_signed() -> (String, String, Vec<u8>) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    (
        certified.cert.pem(),
        certified.signing_key.serialize_pem(),
        certified.cert.der().to_vec(),
    )
}

/// The certificate a new HTTPS connection to `url` is shown, trusting `trusted`.
async fn presented_certificate(url: &str, trusted: &[u8]) -> Option<Vec<u8>> {
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_info(true)
        .add_root_certificate(reqwest::Certificate::from_der(trusted).unwrap())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let response = client.get(url).send().await.ok()?;
    assert_eq!(response.status(), 200);
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()?
        .peer_certificate()
        .map(<[u8]>::to_vec)
}

/// `serve --tls-cert --tls-key`: HTTPS on the public port, and a certificate
/// replaced on disk (as a renewal does) is served from the next connection,
/// without a restart; a broken replacement is refused and the one in use kept.
#[tokio::test]
async fn tls_with_a_live_certificate_swap() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let (cert, key, first) = self_signed();
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let mut child = std::process::Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--tls-cert")
        .arg(&cert_path)
        .arg("--tls-key")
        .arg(&key_path)
        .env("TESSERA_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut banner = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first_line = String::new();
    std::io::BufRead::read_line(&mut banner, &mut first_line).unwrap();
    let base = first_line
        .trim()
        .rsplit("listening on ")
        .next()
        .filter(|b| b.starts_with("https://"))
        .unwrap_or_else(|| panic!("{first_line:?}"))
        .to_owned();
    let health = format!("{base}/healthz");
    assert_eq!(
        presented_certificate(&health, &first).await.as_deref(),
        Some(first.as_slice())
    );
    // The discovery document names the https URL as the issuer.
    let metadata: Value = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_der(&first).unwrap())
        .build()
        .unwrap()
        .get(format!("{base}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], base);
    // Plain HTTP on the TLS port gets no answer.
    let plain = reqwest::get(base.replace("https://", "http://") + "/healthz").await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);

    // A renewal replaces both files: the next connection gets the new one.
    let (cert, key, second) = self_signed();
    std::fs::write(dir.path().join("new-cert.pem"), cert).unwrap();
    std::fs::write(dir.path().join("new-key.pem"), key).unwrap();
    std::fs::rename(dir.path().join("new-key.pem"), &key_path).unwrap();
    std::fs::rename(dir.path().join("new-cert.pem"), &cert_path).unwrap();
    let mut served = None;
    for _ in 0..50 {
        served = presented_certificate(&health, &second).await;
        if served.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(served.as_deref(), Some(second.as_slice()), "not reloaded");

    // A botched renewal (a cut-off file) is not loaded: the service goes on.
    std::fs::write(&cert_path, "-----BEGIN CERTIFICATE-----\nMIIB").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(
        presented_certificate(&health, &second).await.as_deref(),
        Some(second.as_slice())
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
