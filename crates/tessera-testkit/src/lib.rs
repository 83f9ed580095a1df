//! Throwaway PostgreSQL and Redis servers for tests: each in its own temporary
//! directory, on a free loopback port, stopped when its handle is dropped. The
//! binaries come from Debian's packages (`scripts/test` installs them); a missing
//! one fails the test with the command that installs it, never skips it.
#![allow(clippy::expect_used, clippy::panic)]

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (another process could take it before we bind again; the
/// servers then fail to start, loudly).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn wait_for_port(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "{what} did not listen on 127.0.0.1:{port} within 30 s; its log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Finds a PostgreSQL server binary: on PATH, else in Debian's versioned folder.
fn postgres_binary(name: &str) -> PathBuf {
    if let Some(found) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
    {
        return found;
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.is_file())
        .collect();
    versions.sort();
    versions.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL's {name} is not installed: run scripts/test, or \
             `apt-get install postgresql`"
        )
    })
}

/// The uid and gid to run PostgreSQL as: it refuses to run as root, so when we
/// are root, the `postgres` user (or `nobody`).
/// Whether the tests run as root (as in CI's containers).
pub fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn unprivileged() -> Option<(u32, u32)> {
    if !running_as_root() {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let entry = |user: &str| {
        passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&user))
                .then(|| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
                .flatten()
        })
    };
    Some(
        entry("postgres")
            .or_else(|| entry("nobody"))
            .unwrap_or((65534, 65534)),
    )
}

/// A running PostgreSQL server with a `tessera` superuser and database, no password
/// (trust on loopback), fsync off (the tests are not about disks).
pub struct Postgres {
    dir: tempfile::TempDir,
    port: u16,
    user: Option<(u32, u32)>,
}

impl Postgres {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let user = unprivileged();
        let data = dir.path().join("data");
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown");
        }
        let run = |binary: &str| {
            let mut command = Command::new(postgres_binary(binary));
            if let Some((uid, gid)) = user {
                command.uid(uid).gid(gid);
            }
            command.stdin(Stdio::null());
            command
        };
        let out = run("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "tessera", "--no-sync", "-E", "UTF8"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let server = Self { dir, port, user };
        server.pg_ctl_start();
        let created = run("createdb")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "tessera",
                "tessera",
            ])
            .output()
            .expect("run createdb");
        assert!(
            created.status.success(),
            "createdb failed: {}",
            String::from_utf8_lossy(&created.stderr)
        );
        server
    }

    fn pg_ctl_start(&self) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("postgres.log");
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let mut command = Command::new(postgres_binary("pg_ctl"));
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid);
        }
        let out = command
            .stdin(Stdio::null())
            .arg("-D")
            .arg(&data)
            .args(["-o", &options, "-l"])
            .arg(&log)
            .args(["-w", "-t", "30", "start"])
            .output()
            .expect("run pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        wait_for_port(self.port, "PostgreSQL", &log);
    }

    /// Starts the server again after [`Self::stop`], on the same port with its data.
    pub fn start_again(&self) {
        self.pg_ctl_start();
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://tessera@127.0.0.1:PORT/tessera`
    pub fn url(&self) -> String {
        format!("postgres://tessera@127.0.0.1:{}/tessera", self.port)
    }

    /// Stops the server at once (like a crash), keeping its data.
    pub fn stop(&self) {
        let mut command = Command::new(postgres_binary("pg_ctl"));
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid);
        }
        let _ = command
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running Redis server without persistence unless asked for.
pub struct Redis {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    append_only: bool,
}

impl Redis {
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// With `append_only`, writes survive a restart (AOF, fsync every write).
    pub fn start_with(append_only: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut redis = Self {
            dir,
            port: free_port(),
            child: None,
            append_only,
        };
        redis.spawn();
        redis
    }

    fn spawn(&mut self) {
        let log = self.dir.path().join("redis.log");
        let binary = if Path::new("/usr/bin/redis-server").is_file() {
            PathBuf::from("/usr/bin/redis-server")
        } else {
            PathBuf::from("redis-server")
        };
        let child = Command::new(&binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--save", ""])
            .args([
                "--appendonly",
                if self.append_only { "yes" } else { "no" },
                "--appendfsync",
                "always",
            ])
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): run scripts/test, or \
                     `apt-get install redis-server`"
                )
            });
        self.child = Some(child);
        wait_for_port(self.port, "Redis", &log);
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (SIGKILL), keeping its directory.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
