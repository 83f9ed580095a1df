//! tessera behind nginx, with `examples/nginx/tessera.conf` as it is shipped (only
//! its two ports changed): requests pass, and the client address tessera records
//! is the one nginx saw, never one a client wrote into `X-Forwarded-For`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::header;
use serde_json::{Value, json};

use crate::harness::*;

/// nginx with the example's server block, stopped on drop.
struct Nginx {
    child: Child,
    base: String,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx_binary() -> &'static str {
    for candidate in ["/usr/sbin/nginx", "/usr/bin/nginx"] {
        if Path::new(candidate).exists() {
            return candidate;
        }
    }
    panic!("nginx is missing: apt-get install nginx-light, or run scripts/test")
}

impl Nginx {
    async fn start(dir: &Path, port: u16, tessera: &str) -> Self {
        let example = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/nginx/tessera.conf"),
        )
        .unwrap();
        let tessera_authority = tessera.trim_start_matches("http://");
        let site = example
            .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
            .replace(
                "server 127.0.0.1:7480",
                &format!("server {tessera_authority}"),
            );
        assert_ne!(site, example, "the example's ports moved: update this test");
        std::fs::write(dir.join("tessera.conf"), site).unwrap();
        let d = dir.display();
        let main = format!(
            "worker_processes 1;\n{user}pid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  \
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
             uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
             include {d}/tessera.conf;\n}}\n",
            // Workers run as the user who starts nginx (root in CI), so that they
            // can use the temporary folders above.
            user = if tessera_testkit::running_as_root() {
                "user root;\n"
            } else {
                ""
            },
        );
        std::fs::write(dir.join("nginx.conf"), main).unwrap();
        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let nginx = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..100 {
            if reqwest::get(format!("{}/healthz", nginx.base))
                .await
                .is_ok()
            {
                return nginx;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "nginx did not start: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        )
    }
}

/// The client address of the session `browser` holds, as tessera recorded it.
async fn recorded_address(client: &reqwest::Client, base: &str, browser: &Browser) -> String {
    let sessions: Value = client
        .get(format!("{base}/v1/sessions"))
        .header(header::COOKIE, &browser.cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == browser.session_id)
        .and_then(|s| s["client_address"].as_str())
        .unwrap_or_else(|| panic!("{sessions}"))
        .to_owned()
}

#[tokio::test]
async fn behind_the_example_nginx_the_client_address_is_never_what_the_client_claims() {
    let dir = tempfile::tempdir().unwrap();
    let port = tessera_testkit::free_port();
    let public = format!("http://127.0.0.1:{port}");
    let server = TestServer::start_with(&[
        ("TESSERA_PUBLIC_URL", public.as_str()),
        // The example's proxy_bind: nginx, and only nginx, connects from here.
        ("TESSERA_TRUSTED_PROXIES", r#"["127.0.0.2"]"#),
    ])
    .await;
    server.add_user("alice", &[]);
    let nginx = Nginx::start(dir.path(), port, &server.base).await;
    let http = reqwest::Client::new();
    let forged = "203.0.113.9";

    // Through nginx, with a forged X-Forwarded-For: nginx appends what it saw.
    let login = http
        .post(format!("{}/v1/login", nginx.base))
        .header(header::ORIGIN, &public)
        .header("x-forwarded-for", forged)
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let proxied = browser_from(login).await;
    assert_eq!(
        recorded_address(&http, &nginx.base, &proxied).await,
        "127.0.0.1"
    );

    // Straight at tessera (not from a trusted proxy): the header is not read at all.
    let login = http
        .post(server.url("/v1/login"))
        .header(header::ORIGIN, &public)
        .header("x-forwarded-for", forged)
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let direct = browser_from(login).await;
    assert_eq!(
        recorded_address(&http, &server.base, &direct).await,
        "127.0.0.1"
    );

    // The discovery document names nginx's URL; the metrics are not behind it.
    let metadata: Value = http
        .get(format!("{}/.well-known/openid-configuration", nginx.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], public);
    let metrics = http
        .get(format!("{}/metrics", nginx.base))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 404);
}
