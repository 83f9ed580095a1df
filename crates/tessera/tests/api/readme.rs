//! The README, followed as a reader would: every command block from "A two-minute
//! curl tour" to the end runs in order in one shell, in an empty folder, against a
//! `tessera serve` on the README's own address (127.0.0.1:7480), with `tessera` on
//! the PATH (the README's `cargo run --release --` is the same binary, built). Each
//! command's output must show what the README says it shows.
//!
//! How the README writes it, so that this test can read it:
//! - a command is a line of a ```sh block (indented or not) that is not a comment,
//!   with its continuation lines (ending in `\`) and its here-document (`<<EOF` up
//!   to `EOF`);
//! - the `# ` lines right after it (before a blank line) are what it prints
//!   (stdout), in order, each matching one line of the output; `…` stands for any
//!   text (ids, times, secrets), and lines of the output the README leaves out are
//!   allowed; a comment after a blank line is a remark;
//! - a ```text block right after a ```sh block is what the block's last command
//!   prints, the same way;
//! - a command may start something in the background (`&`), as the reader's
//!   would: what that prints is awaited (a server's banner says it listens);
//! - every command must succeed (exit 0);
//! - a block preceded by `<!-- not run by tests/api/readme.rs: WHY -->` is not run.
//!
//! What the test does in the reader's place, and nothing else:
//! - it starts the server, as the tour asks the reader to in another terminal,
//!   with registration open (the tour has the reader open it before its
//!   registration example) and cheap password hashing (which changes no output);
//!   when the README starts `tessera serve` on the default address itself, the
//!   test stops its own first, as the README tells the reader to;
//! - `cargo run -p resource-service --` is the binary cargo built for that
//!   package's own tests (`examples/resource-service/tests/cli.rs`);
//! - the PostgreSQL and Redis that the README has the reader set up with root (a
//!   block not run) are the test's own, at their own ports in place of 5432 and
//!   6379;
//! - `examples/` is the repository's, linked into the empty folder;
//! - commands read no input but what the README gives them (`< /dev/null`);
//! - at the end, everything the shell started is stopped.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tessera_testkit::{Postgres, Redis};

use crate::harness::binary;

/// Where the reader starts following the README.
const FIRST_SECTION: &str = "## A two-minute curl tour";
/// The mark of a block the test leaves to the reader.
const NOT_RUN: &str = "<!-- not run by tests/api/readme.rs:";
/// Every address the README's commands listen on: the server and its management
/// listener, the gateway and its, the resource service, the example app, and the
/// three instances of "Running several instances" with theirs.
const README_PORTS: &[u16] = &[
    7480, 7490, 7481, 7491, 9000, 8000, 7581, 7582, 7583, 7591, 7592, 7593,
];
/// How long a command, or a background one's awaited output, may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Step {
    command: String,
    expected: Vec<String>,
    /// Where it is in the README, for the failure message.
    line: usize,
}

/// The delimiter of the here-document `command` opens, if any (`<<EOF`,
/// `<<'EOF'`, `<<-"EOF"`), never a here-string (`<<<`).
fn here_document(command: &str) -> Option<String> {
    let (_, after) = command.split_once("<<")?;
    if after.starts_with('<') {
        return None;
    }
    let word: String = after
        .trim_start_matches('-')
        .trim_start()
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != ';' && *c != '&' && *c != '|')
        .filter(|c| *c != '\'' && *c != '"')
        .collect();
    (!word.is_empty()).then_some(word)
}

/// A line of a block indented by `indent` (one in a list item), as if it were not.
fn unindent<'a>(line: &'a str, indent: &str) -> &'a str {
    line.strip_prefix(indent).unwrap_or(line)
}

fn steps(readme: &str) -> Vec<Step> {
    let lines: Vec<&str> = readme.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim_end() == FIRST_SECTION)
        .unwrap_or_else(|| panic!("the README has no section {FIRST_SECTION:?}"));
    let mut steps: Vec<Step> = Vec::new();
    let mut skip_next_block = false;
    let mut i = start + 1;
    while i < lines.len() {
        if lines[i].trim_start().starts_with(NOT_RUN) {
            skip_next_block = true;
        }
        if lines[i].trim() != "```sh" {
            i += 1;
            continue;
        }
        let indent = &lines[i][..lines[i].len() - lines[i].trim_start().len()];
        let skip = std::mem::take(&mut skip_next_block);
        i += 1;
        // Whether `# ` lines are still the last command's output: until a blank
        // line, the next command, or the block's end.
        let mut collecting = false;
        while i < lines.len() && lines[i].trim() != "```" {
            let line = unindent(lines[i], indent);
            i += 1;
            if skip {
                continue;
            }
            if let Some(expected) = line.strip_prefix("# ")
                && collecting
            {
                if let Some(step) = steps.last_mut() {
                    step.expected.push(expected.to_owned());
                }
                continue;
            }
            if line.trim().is_empty() || line.starts_with('#') {
                collecting &= !line.trim().is_empty();
                continue;
            }
            collecting = true;
            let at = i;
            let mut command = line.to_owned();
            while command.ends_with('\\') && i < lines.len() {
                command.push('\n');
                command.push_str(unindent(lines[i], indent));
                i += 1;
            }
            if let Some(delimiter) = here_document(&command) {
                while i < lines.len() {
                    let body = unindent(lines[i], indent);
                    i += 1;
                    command.push('\n');
                    command.push_str(body);
                    if body.trim() == delimiter {
                        break;
                    }
                }
            }
            steps.push(Step {
                command,
                expected: Vec::new(),
                line: at,
            });
        }
        i += 1;
        // Its output, in a text block right after it.
        let mut next = i;
        while next < lines.len() && lines[next].trim().is_empty() {
            next += 1;
        }
        if !skip && next < lines.len() && lines[next].trim() == "```text" {
            let mut j = next + 1;
            while j < lines.len() && lines[j].trim() != "```" {
                if !lines[j].trim().is_empty()
                    && let Some(step) = steps.last_mut()
                {
                    step.expected.push(unindent(lines[j], indent).to_owned());
                }
                j += 1;
            }
            i = j + 1;
        }
    }
    steps
}

/// Whether `actual` is `expected` with each `…` standing for any text.
fn matches(expected: &str, actual: &str) -> bool {
    let pieces: Vec<&str> = expected.split('…').collect();
    let (first, rest) = pieces.split_first().unwrap_or((&"", &[]));
    let Some(mut left) = actual.strip_prefix(first) else {
        return false;
    };
    for (n, piece) in rest.iter().enumerate() {
        if n == rest.len() - 1 {
            return left.ends_with(piece);
        }
        match left.find(piece) {
            Some(at) => left = &left[at + piece.len()..],
            None => return false,
        }
    }
    left.is_empty()
}

/// Whether every expected line matches a printed one, in order.
fn shows(expected: &[String], printed: &[String]) -> Result<(), String> {
    let mut from = 0;
    for line in expected {
        match printed[from..].iter().position(|p| matches(line, p)) {
            Some(at) => from += at + 1,
            None => return Err(line.clone()),
        }
    }
    Ok(())
}

fn terminate(pid: &str) {
    let _ = Command::new("kill").args(["-TERM", "--", pid]).status();
}

/// The `tessera serve` the reader starts in another terminal, stopped on drop.
struct Server(Option<Child>);

impl Server {
    fn stop(&mut self) {
        if let Some(mut child) = self.0.take() {
            terminate(&child.id().to_string());
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The reader's shell and everything it started in the background (one process
/// group), stopped on drop.
struct Shell {
    child: Child,
    input: std::process::ChildStdin,
    lines: mpsc::Receiver<String>,
    stderr: PathBuf,
}

impl Drop for Shell {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        terminate(&group);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            let alive = Command::new("kill")
                .args(["-0", "--", &group])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !alive {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

impl Shell {
    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

/// `command` as the test runs it: the reader's tools where the test has its own.
fn substitute(command: &str, postgres: &Postgres, redis: &Redis) -> String {
    command
        .replace("cargo run --release -- ", "tessera ")
        .replace("cargo run -p resource-service -- ", "resource-service ")
        .replace("127.0.0.1:5432", &format!("127.0.0.1:{}", postgres.port()))
        .replace("127.0.0.1:6379", &format!("127.0.0.1:{}", redis.port()))
}

#[tokio::test]
async fn the_readme_shows_what_its_commands_print() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let steps = steps(&readme);
    assert!(steps.len() > 40, "too few commands found: {}", steps.len());

    for port in README_PORTS {
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok(),
            "the README's port {port} is taken: stop what listens there (a tessera?)"
        );
    }
    let resource_service = Path::new(binary()).with_file_name("resource-service");
    assert!(
        resource_service.is_file(),
        "{} is missing: cargo builds it for examples/resource-service's tests \
         (cargo nextest run --workspace, or cargo build -p resource-service)",
        resource_service.display()
    );
    let postgres = Postgres::start();
    let redis = Redis::start_with(true);

    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(binary(), bin.join("tessera")).unwrap();
    std::os::unix::fs::symlink(&resource_service, bin.join("resource-service")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    std::os::unix::fs::symlink(root.join("examples"), work.join("examples")).unwrap();
    let env = [
        ("PATH", path.as_str()),
        ("TESSERA_REGISTRATION", "true"),
        ("TESSERA_PASSWORD__MEMORY_KIB", "256"),
        ("TESSERA_PASSWORD__ITERATIONS", "1"),
        ("TESSERA_LOG", "warn"),
    ];
    // The reader's environment holds no tessera settings of the developer's.
    let inherited: Vec<String> = std::env::vars()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("TESSERA_"))
        .collect();
    let command = |program: &Path| {
        let mut command = Command::new(program);
        command.current_dir(&work).envs(env);
        for name in &inherited {
            command.env_remove(name);
        }
        command
    };

    let mut server = Server(Some(
        command(Path::new(binary()))
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    for _ in 0..100 {
        if reqwest::get("http://127.0.0.1:7480/healthz").await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let stderr = dir.path().join("shell.stderr");
    let mut child = command(Path::new("bash"))
        .args(["--noprofile", "--norc"])
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let input = child.stdin.take().unwrap();
    let output = BufReader::new(child.stdout.take().unwrap());
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in output.lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut shell = Shell {
        child,
        input,
        lines,
        stderr,
    };

    for (n, step) in steps.iter().enumerate() {
        let command = substitute(&step.command, &postgres, &redis);
        let own_server = command.starts_with("tessera serve") && !command.contains("--listen");
        if own_server {
            server.stop();
        }
        let marker = format!("__readme_step_{n}__");
        writeln!(
            shell.input,
            "{{ {command}\n}} < /dev/null\nprintf '\\n{marker} %d\\n' $?"
        )
        .unwrap();
        shell.input.flush().unwrap();
        let deadline = Instant::now() + STEP_TIMEOUT;
        let mut printed = Vec::new();
        let mut status = None;
        let failure = |printed: &[String], why: &str, shell: &Shell| -> ! {
            panic!(
                "README line {}: {command:?} {why}\nit printed:\n{}\nthe shell's stderr ends with:\n{}",
                step.line,
                printed.join("\n"),
                shell.stderr_tail()
            )
        };
        // After the command returned, what it started in the background may
        // still be printing what the README shows.
        while status.is_none()
            || (status.as_deref() == Some("0") && shows(&step.expected, &printed).is_err())
        {
            let wait = deadline.saturating_duration_since(Instant::now());
            match shell.lines.recv_timeout(wait) {
                Ok(line) => match line.strip_prefix(&format!("{marker} ")) {
                    Some(code) => status = Some(code.to_owned()),
                    None => printed.push(line),
                },
                Err(_) => failure(
                    &printed,
                    "did not finish, or not show what it should",
                    &shell,
                ),
            }
        }
        if status.as_deref() != Some("0") {
            failure(&printed, &format!("failed (exit {status:?})"), &shell);
        }
        if let Err(missing) = shows(&step.expected, &printed) {
            failure(&printed, &format!("should print\n  {missing}"), &shell);
        }
    }
}

#[test]
fn the_wildcard_stands_for_any_text_and_nothing_else() {
    assert!(matches("a…c", "abbbc"));
    assert!(matches("a…", "abc"));
    assert!(matches("…c", "abc"));
    assert!(matches("abc", "abc"));
    assert!(!matches("abc", "abcd"));
    assert!(!matches("a…c", "abcd"));
    assert!(matches("{\"id\":\"…\",\"n\":1}", "{\"id\":\"x\",\"n\":1}"));
}

#[test]
fn commands_take_their_continuations_and_here_documents() {
    let readme = "## A two-minute curl tour\n\n```sh\necho a \\\n  b\n# a b\ncat > f <<'EOF'\nx = 1\nEOF\nserver &\n# up\n```\n\n<!-- not run by tests/api/readme.rs: root -->\n```sh\nsudo x\n```\n\n  ```sh\n  echo c\n  # c\n  ```\n";
    let steps = steps(readme);
    let commands: Vec<(&str, &[String])> = steps
        .iter()
        .map(|s| (s.command.as_str(), s.expected.as_slice()))
        .collect();
    assert_eq!(
        commands,
        [
            ("echo a \\\n  b", &["a b".to_owned()][..]),
            ("cat > f <<'EOF'\nx = 1\nEOF", &[][..]),
            ("server &", &["up".to_owned()][..]),
            ("echo c", &["c".to_owned()][..]),
        ]
    );
    assert_eq!(here_document("tessera user add a <<< 'pw'"), None);
    assert_eq!(here_document("cat > g.toml <<EOF"), Some("EOF".to_owned()));
}
