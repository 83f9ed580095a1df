use serde_json::Value;

use crate::harness::*;

#[tokio::test]
async fn user_add_list_and_disable_with_json() {
    let server = TestServer::start().await;
    let out = server.cli(
        &[
            "user",
            "add",
            "Alice",
            "--role",
            "admin",
            "--password-stdin",
            "--json",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(added["user"]["username"], "alice");
    assert_eq!(added["user"]["roles"], serde_json::json!(["admin"]));

    let out = server.cli(&["user", "list", "--json"], "");
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["users"][0]["user"]["username"], "alice");
    assert_eq!(listed["users"][0]["disabled"], false);

    let out = server.cli(&["user", "disable", "alice", "--json"], "");
    assert!(out.status.success());
    let disabled: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(disabled["disabled"], true);

    let out = server.cli(&["user", "list"], "");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("alice") && text.contains("disabled"),
        "{text}"
    );
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions_in_the_running_server() {
    let server = TestServer::start().await;
    server.add_user("bob", &[]);
    server.add_user("carol", &[]);
    let bob = [server.login("bob").await, server.login("bob").await];
    let carol = server.login("carol").await;
    // warm the server's session cache, so the CLI's change must reach into it
    for b in &bob {
        assert_eq!(server.session_status(b).await, 200);
    }
    let out = server.cli(&["user", "disable", "bob", "--json"], "");
    assert!(out.status.success());
    let disabled: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(disabled["ended_sessions"], 2);
    for b in &bob {
        eventually("the disabled user's session is refused", || async {
            server.session_status(b).await == 401
        })
        .await;
    }
    assert_eq!(server.session_status(&carol).await, 200);
}

#[tokio::test]
async fn cli_refusals_are_clear() {
    let server = TestServer::start().await;
    server.add_user("dave", &[]);
    let cases: [(&[&str], &str, &str); 5] = [
        (
            &["user", "add", "DAVE", "--password-stdin"],
            "pw long enough\n",
            "already exists",
        ),
        (
            &["user", "add", "bad name", "--password-stdin"],
            "pw long enough\n",
            "invalid username",
        ),
        (
            &["user", "add", "erin", "--password-stdin"],
            "short\n",
            "invalid password",
        ),
        (
            &["user", "add", "erin", "--role", "root", "--password-stdin"],
            "pw long enough\n",
            "unknown role",
        ),
        (&["user", "disable", "nobody"], "", "no user named"),
    ];
    for (args, stdin, expected) in cases {
        let out = server.cli(args, stdin);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn help_and_version() {
    let out = std::process::Command::new(binary())
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("tessera "));
    let out = std::process::Command::new(binary())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--data-dir",
        "--public-url",
        "--config",
        "TESSERA_LISTEN",
    ] {
        assert!(help.contains(flag), "{flag} missing from\n{help}");
    }
}

#[tokio::test]
async fn flags_beat_environment_beat_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tessera.toml");
    std::fs::write(
        &config,
        "public_url = \"https://from-file.example\"\nregistration = false\n",
    )
    .unwrap();
    let run = |extra_env: &[(&str, &str)], args: &[&str]| {
        let mut cmd = std::process::Command::new(binary());
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("TESSERA_LOG", "warn")
            // The public URLs here are not on loopback, and no master key is set.
            .env("TESSERA_KEYS__ALLOW_UNSEALED", "true")
            .stdout(std::process::Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut banner = String::new();
        let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
        for _ in 0..2 {
            std::io::BufRead::read_line(&mut reader, &mut banner).unwrap();
        }
        child.kill().unwrap();
        child.wait().unwrap();
        banner
    };
    assert!(run(&[], &[]).contains("https://from-file.example"));
    let env = [("TESSERA_PUBLIC_URL", "https://from-env.example")];
    assert!(run(&env, &[]).contains("https://from-env.example"));
    assert!(
        run(&env, &["--public-url", "https://from-flag.example"])
            .contains("https://from-flag.example")
    );
}

#[tokio::test]
async fn a_typo_in_the_config_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tessera.toml");
    std::fs::write(&config, "[session]\nidle_timout = \"1h\"\n").unwrap();
    let out = std::process::Command::new(binary())
        .args(["user", "list", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("idle_timout"));
}

#[tokio::test]
async fn user_add_refuses_look_alikes_and_mixed_scripts() {
    let server = TestServer::start().await;
    server.add_user("admin", &["admin"]);
    let cases = [
        ("\u{430}dmin", "different scripts"),
        ("adm\u{131}n", "looks like"),
        ("adrnin", "looks like"),
    ];
    for (name, expected) in cases {
        let out = server.cli(
            &["user", "add", name, "--role", "admin", "--password-stdin"],
            &format!("{PASSWORD}\n"),
        );
        assert!(!out.status.success(), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{name}: {stderr}");
    }
    let browser = server.login("admin").await;
    assert_eq!(browser.login["user"]["roles"], serde_json::json!(["admin"]));
    let out = server.cli(&["user", "list", "--json"], "");
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["users"].as_array().unwrap().len(), 1, "{listed}");
}
