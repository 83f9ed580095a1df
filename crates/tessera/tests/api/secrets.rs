//! Secrets at rest: what `serve` says and does about unsealed signing keys, and the
//! modes of the data dir and the database files.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;

const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const UNSEALED_WARNING: &str = "TESSERA_MASTER_KEY is not set";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

async fn readyz(server: &TestServer) -> Value {
    let ready = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    ready.json().await.unwrap()
}

/// `tessera serve` on a fresh data dir, expected to refuse to start: its output,
/// once it exits (killed, and the test failed, if it is still up after 20 s).
fn refused_serve(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .env("TESSERA_LOG", "warn")
        .env_remove("TESSERA_MASTER_KEY")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "serve started instead of refusing: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn an_unsealed_start_warns_every_time_and_says_so_in_metrics_and_readyz() {
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("server.log");
    let mut server = TestServer::start_logging_to(&[], Some(log.clone())).await;
    assert!(
        server
            .metrics()
            .await
            .lines()
            .any(|l| l == "tessera_keys_sealed 0"),
        "{}",
        server.metrics().await
    );
    assert_eq!(readyz(&server).await["keys"]["sealed"], false);
    server.kill_and_restart();
    let written = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        written.matches(UNSEALED_WARNING).count(),
        2,
        "a warning at each start:\n{written}"
    );
    assert!(written.contains("unsealed"), "{written}");
}

#[tokio::test]
async fn a_sealed_start_says_so_and_does_not_warn() {
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("server.log");
    // Off loopback too: with a master key nothing needs allowing.
    let server = TestServer::start_logging_to(
        &[
            ("TESSERA_MASTER_KEY", MASTER_KEY),
            ("TESSERA_PUBLIC_URL", "https://id.example.com"),
        ],
        Some(log.clone()),
    )
    .await;
    assert!(
        server
            .metrics()
            .await
            .lines()
            .any(|l| l == "tessera_keys_sealed 1")
    );
    assert_eq!(readyz(&server).await["keys"]["sealed"], true);
    let written = std::fs::read_to_string(&log).unwrap();
    assert!(!written.contains(UNSEALED_WARNING), "{written}");
}

#[tokio::test]
async fn off_loopback_without_a_master_key_the_start_is_refused_clearly() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);
    let cases: [Case; 3] = [
        (&["--public-url", "https://id.example.com"], &[]),
        (
            &[],
            &[("TESSERA_TOKENS__ISSUER", "https://issuer.example.com")],
        ),
        // allow_unsealed said otherwise on purpose
        (
            &["--public-url", "http://10.1.2.3:7480"],
            &[("TESSERA_KEYS__ALLOW_UNSEALED", "false")],
        ),
    ];
    for (args, env) in cases {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let out = refused_serve(&data_dir, args, env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} {env:?}: {stderr}");
        for needed in [
            "TESSERA_MASTER_KEY",
            "keys.allow_unsealed",
            "not on loopback",
        ] {
            assert!(stderr.contains(needed), "{needed} missing: {stderr}");
        }
        // Refused before anything was made: no unsealed key left behind.
        assert!(!data_dir.join("tessera.sqlite3").exists(), "{args:?}");
    }
}

#[tokio::test]
async fn allow_unsealed_in_the_config_lets_it_start_off_loopback_with_the_warning() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tessera.toml");
    std::fs::write(
        &config,
        "public_url = \"https://id.example.com\"\n[keys]\nallow_unsealed = true\n",
    )
    .unwrap();
    let log = dir.path().join("server.log");
    let server = TestServer::start_logging_to(
        &[("TESSERA_CONFIG", config.to_str().unwrap())],
        Some(log.clone()),
    )
    .await;
    assert_eq!(readyz(&server).await["keys"]["sealed"], false);
    let written = std::fs::read_to_string(&log).unwrap();
    assert!(written.contains(UNSEALED_WARNING), "{written}");
}

/// `serve` under a permissive umask, with `data_dir` not yet there.
fn serve_with_umask(data_dir: &Path, umask: &str) -> Child {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("TESSERA_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    assert!(banner.contains("listening on"), "{banner:?}");
    child
}

#[tokio::test]
async fn the_data_dir_is_0700_and_the_database_files_0600_whatever_the_umask() {
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("fresh").join("data");
    let mut child = serve_with_umask(&data_dir, "000");
    let database = data_dir.join("tessera.sqlite3");
    let wal = data_dir.join("tessera.sqlite3-wal");
    let shm = data_dir.join("tessera.sqlite3-shm");
    assert_eq!(mode(&data_dir), 0o700);
    for file in [&database, &wal, &shm] {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn wider_database_files_are_narrowed_and_a_wider_dir_is_left_with_a_warning() {
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("server.log");
    let mut server = TestServer::start_logging_to(&[], Some(log.clone())).await;
    server.add_user("alice", &[]);
    let dir = server.data_dir().to_owned();
    // As an older tessera (or a copy, or a restore) may have left them.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for name in [
        "tessera.sqlite3",
        "tessera.sqlite3-wal",
        "tessera.sqlite3-shm",
    ] {
        let file = dir.join(name);
        if file.exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    server.kill_and_restart();
    server.login("alice").await;
    for name in [
        "tessera.sqlite3",
        "tessera.sqlite3-wal",
        "tessera.sqlite3-shm",
    ] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    // Not ours to narrow (it may be shared on purpose), but said at every start.
    assert_eq!(mode(&dir), 0o755);
    let written = std::fs::read_to_string(&log).unwrap();
    assert!(written.contains("chmod 700"), "{written}");
}
