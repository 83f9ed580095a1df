//! Starts the real `tessera` binary on a random loopback port with a fresh data dir,
//! and speaks HTTP to it.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use reqwest::{Client, Response, header};
use serde_json::Value;

pub const PASSWORD: &str = "correct horse battery staple";

/// For tests of self-registration, which is closed by default.
pub const REGISTRATION_OPEN: &[(&str, &str)] = &[("TESSERA_REGISTRATION", "true")];

/// Settings every test server gets unless a test overrides them: cheap hashing (the
/// parameters' effect is not what these tests check) and generous throttles.
const TEST_ENV: &[(&str, &str)] = &[
    ("TESSERA_PASSWORD__MEMORY_KIB", "256"),
    ("TESSERA_PASSWORD__ITERATIONS", "1"),
    ("TESSERA_THROTTLE__ACCOUNT_BURST", "1000"),
    ("TESSERA_THROTTLE__ACCOUNT_PER_MINUTE", "1000"),
    ("TESSERA_THROTTLE__ADDRESS_BURST", "1000"),
    ("TESSERA_THROTTLE__ADDRESS_PER_MINUTE", "1000"),
    ("TESSERA_LOG", "warn"),
];

pub struct TestServer {
    child: Option<Child>,
    pub base: String,
    /// The management listener's URL (metrics, health).
    pub management: String,
    data_dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    log: Option<PathBuf>,
    listen: String,
    pub client: Client,
}

/// A logged-in browser: its cookie header value and the session's CSRF token.
#[derive(Clone, Debug)]
pub struct Browser {
    pub cookie: String,
    pub csrf: String,
    pub session_id: String,
    pub login: Value,
}

/// The public and the management URL from a `tessera serve` banner: its first line
/// ends "listening on URL", a later one is "  management  URL (…)".
pub fn read_banner(stdout: std::process::ChildStdout) -> (String, String) {
    let mut lines = BufReader::new(stdout).lines();
    let mut line = || lines.next().and_then(Result::ok).unwrap_or_default();
    let first = line();
    let base = first
        .trim()
        .rsplit("listening on ")
        .next()
        .filter(|a| a.starts_with("http://"))
        .unwrap_or_else(|| panic!("unexpected banner {first:?}"))
        .to_owned();
    for _ in 0..4 {
        let next = line();
        if let Some(url) = next.trim().strip_prefix("management") {
            let url = url.split_whitespace().next().unwrap_or_default().to_owned();
            return (base, url);
        }
    }
    panic!("the banner has no management line")
}

/// The text of a call in Rust source, from just after its opening `(` up to its
/// closing `)`, for tests that read the sources (`text` starts inside the call).
pub fn call_arguments(text: &str) -> String {
    let mut depth = 1;
    text.chars()
        .take_while(|c| {
            depth += match c {
                '(' => 1,
                ')' => -1,
                _ => 0,
            };
            depth > 0
        })
        .collect()
}

/// The tests' HTTP client: redirects are answers to check, not to follow.
fn http_client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_tessera")
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    pub async fn start_with(env: &[(&str, &str)]) -> Self {
        Self::start_logging_to(env, None).await
    }

    /// Starts with `http://localhost:PORT` as its public URL (on a port chosen
    /// here), as WebAuthn needs: an IP address cannot be a relying party id.
    pub async fn start_on_localhost(env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let public_url = format!("http://localhost:{port}");
        let mut env: Vec<(&str, &str)> = env.to_vec();
        env.push(("TESSERA_PUBLIC_URL", &public_url));
        Self::start_listening(&env, None, format!("127.0.0.1:{port}")).await
    }

    /// Starts with the server's stderr (its log) going to `log`.
    pub async fn start_logging_to(env: &[(&str, &str)], log: Option<PathBuf>) -> Self {
        Self::start_listening(env, log, "127.0.0.1:0".to_owned()).await
    }

    async fn start_listening(env: &[(&str, &str)], log: Option<PathBuf>, listen: String) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let env = TEST_ENV
            .iter()
            .chain(env.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut server = Self {
            child: None,
            base: String::new(),
            management: String::new(),
            data_dir,
            env,
            log,
            listen,
            client: http_client(),
        };
        server.spawn();
        server
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// `tessera serve` on a free port, this server's data dir and settings.
    fn serve_command(&self) -> Command {
        let mut command = Command::new(binary());
        command
            .args(["serve", "--listen", &self.listen, "--data-dir"])
            .arg(self.data_dir.path())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    }

    fn spawn(&mut self) {
        let mut child = self
            .serve_command()
            .stdout(Stdio::piped())
            .stderr(match &self.log {
                Some(path) => Stdio::from(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .expect("log file"),
                ),
                None => Stdio::inherit(),
            })
            .spawn()
            .expect("start tessera");
        let stdout = child.stdout.take().expect("stdout");
        let (base, management) = read_banner(stdout);
        self.base = base;
        self.management = management;
        self.child = Some(child);
    }

    /// The server's process id (to stop and continue it, say).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// `kill -9`, then start again on the same data dir (on a new port).
    pub fn kill_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            child.wait().expect("reap");
        }
        self.spawn();
    }

    /// SIGTERM, then start again on the same data dir and settings (on a new port,
    /// unless it listens on a fixed one: `start_on_localhost`).
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.terminate();
        }
        // Pooled connections to the old process would be reused on a fixed port.
        self.client = http_client();
        self.spawn();
    }

    /// [`Self::restart`] with these settings added (a policy turned on, say).
    pub fn restart_with(&mut self, env: &[(&str, &str)]) {
        self.env
            .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.restart();
    }

    /// `tessera serve` on this server's data dir and settings, expected to refuse
    /// to start: its exit status and stderr. Stopped and failed if it runs 30 s.
    pub fn refused_start(&self) -> (std::process::ExitStatus, String) {
        let mut child = self
            .serve_command()
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tessera");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if child.try_wait().expect("wait").is_some() {
                let out = child.wait_with_output().expect("output");
                return (
                    out.status,
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("tessera serve started where it should have refused");
    }

    /// SIGTERM and wait: the graceful path.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        child.wait().expect("wait")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Runs `tessera ARGS --data-dir <this server's>` with `stdin` as its input.
    pub fn cli(&self, args: &[&str], stdin: &str) -> Output {
        cli_in(self.data_dir.path(), &self.env, args, stdin)
    }

    pub fn add_user(&self, name: &str, roles: &[&str]) {
        let mut args = vec!["user", "add", name, "--password-stdin"];
        for role in roles {
            args.extend(["--role", role]);
        }
        let out = self.cli(&args, &format!("{PASSWORD}\n"));
        assert!(
            out.status.success(),
            "user add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The id of the account named `name` (from `tessera user list --json`).
    pub fn user_id(&self, name: &str) -> String {
        let out = self.cli(&["user", "list", "--json"], "");
        let listed: Value = serde_json::from_slice(&out.stdout).expect("user list --json");
        listed["users"]
            .as_array()
            .and_then(|users| users.iter().find(|u| u["user"]["username"] == name))
            .and_then(|u| u["user"]["id"].as_str())
            .unwrap_or_else(|| panic!("no user named {name}"))
            .to_owned()
    }

    pub async fn post_json(&self, path: &str, body: Value) -> Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn try_login(&self, name: &str, password: &str) -> Response {
        self.post_json(
            "/v1/login",
            serde_json::json!({"username": name, "password": password}),
        )
        .await
    }

    pub async fn login(&self, name: &str) -> Browser {
        let response = self.try_login(name, PASSWORD).await;
        assert_eq!(response.status(), 200, "login of {name}");
        browser_from(response).await
    }

    pub async fn get_as(&self, path: &str, browser: &Browser) -> Response {
        self.client
            .get(self.url(path))
            .header(header::COOKIE, &browser.cookie)
            .send()
            .await
            .expect("request")
    }

    /// An unsafe request the way a browser page of ours sends it: cookie + CSRF token.
    pub fn unsafe_as(
        &self,
        method: reqwest::Method,
        path: &str,
        browser: &Browser,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header(header::COOKIE, &browser.cookie)
            .header("x-csrf-token", &browser.csrf)
    }

    pub async fn session_status(&self, browser: &Browser) -> u16 {
        self.get_as("/v1/session", browser).await.status().as_u16()
    }

    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.management))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body")
    }
}

impl Drop for TestServer {
    /// SIGTERM first: the server stops in milliseconds and writes out its last log
    /// lines (a thread of its own writes them, which a kill -9 would cut short);
    /// only a server that does not stop within 3 s (one a test paused) is killed.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = std::time::Instant::now() + Duration::from_secs(3);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn cli_in(data_dir: &Path, env: &[(String, String)], args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(binary())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tessera cli");
    // A command may exit before reading its input (a refusal): a broken pipe here
    // is its answer, not a test failure.
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes());
    child.wait_with_output().expect("cli output")
}

/// The `Set-Cookie` header that sets (or clears) the session cookie.
pub fn session_set_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-tessera-session="))
        .map(str::to_owned)
}

pub async fn browser_from(response: Response) -> Browser {
    let set_cookie = session_set_cookie(&response).expect("a session cookie");
    let cookie = set_cookie.split(';').next().expect("name=value").to_owned();
    let login: Value = response.json().await.expect("json");
    Browser {
        cookie,
        csrf: login["csrf_token"].as_str().expect("csrf_token").to_owned(),
        session_id: login["session"]["id"]
            .as_str()
            .expect("session id")
            .to_owned(),
        login,
    }
}

pub async fn error_of(response: Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON error body");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "error without a description: {body}"
    );
    (
        status,
        body["error"].as_str().expect("error code").to_owned(),
    )
}

/// Polls until `check` holds or five seconds pass; for effects that cross processes.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: still not true after 5 s");
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Sends raw bytes to the server and returns everything it answers until it closes.
pub async fn raw_request(base: &str, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    // The server may answer and close before reading everything; that is fine.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}
