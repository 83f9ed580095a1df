//! The README, followed as a reader would: the command blocks of the sections
//! below run in order in one shell, in an empty folder, against a `tessera serve`
//! on the README's own address (127.0.0.1:7480), with `tessera` on the PATH (the
//! README's `cargo run --release --` is the same binary, built). Each command's
//! output must show what the README says it shows.
//!
//! How the README writes it, so that this test can read it:
//! - a command is a line of a ```sh block that is not a comment (with its
//!   continuation lines, ending in `\`);
//! - the `# ` lines right after it (before a blank line) are what it prints
//!   (stdout), in order, each matching one line of the output; `…` stands for any
//!   text (ids, times, secrets), and lines of the output the README leaves out are
//!   allowed; a comment after a blank line is a remark;
//! - a ```text block right after a ```sh block is what the block's last command
//!   prints, the same way;
//! - every command must succeed (exit 0).
//!
//! The server runs with registration open (the tour asks the reader to open it
//! before its registration example) and cheap password hashing (which changes no
//! output).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::binary;

/// The sections that run, in the README's order: from their heading to the next
/// heading of any level.
const SECTIONS: &[&str] = &[
    "## A two-minute curl tour",
    "## Tokens for clients that are not browsers",
];

struct Step {
    command: String,
    expected: Vec<String>,
    /// Where it is in the README, for the failure message.
    line: usize,
}

fn steps(readme: &str) -> Vec<Step> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut steps: Vec<Step> = Vec::new();
    for heading in SECTIONS {
        let start = lines
            .iter()
            .position(|l| l.trim_end() == *heading)
            .unwrap_or_else(|| panic!("the README has no section {heading:?}"));
        let end = lines[start + 1..]
            .iter()
            .position(|l| l.starts_with("## ") || l.starts_with("### "))
            .map_or(lines.len(), |i| start + 1 + i);
        let mut i = start + 1;
        let mut last_block_end_step: Option<usize> = None;
        while i < end {
            let fence = lines[i].trim_end();
            if fence == "```sh" {
                i += 1;
                // Whether `# ` lines are still the last command's output: until a
                // blank line, the next command, or the block's end.
                let mut collecting = false;
                while i < end && lines[i].trim_end() != "```" {
                    let line = lines[i];
                    if let Some(expected) = line.strip_prefix("# ")
                        && collecting
                    {
                        if let Some(step) = steps.last_mut() {
                            step.expected.push(expected.to_owned());
                        }
                        i += 1;
                        continue;
                    }
                    if line.trim().is_empty() || line.starts_with('#') {
                        collecting &= !line.trim().is_empty();
                        i += 1;
                        continue;
                    }
                    collecting = true;
                    let at = i + 1;
                    let mut command = line.to_owned();
                    while command.ends_with('\\') && i + 1 < end {
                        i += 1;
                        command.push('\n');
                        command.push_str(lines[i]);
                    }
                    steps.push(Step {
                        command,
                        expected: Vec::new(),
                        line: at,
                    });
                    i += 1;
                }
                last_block_end_step = Some(steps.len());
                i += 1;
                // Its output, in a text block right after it.
                let mut next = i;
                while next < end && lines[next].trim().is_empty() {
                    next += 1;
                }
                if next < end && lines[next].trim_end() == "```text" {
                    let mut j = next + 1;
                    while j < end && lines[j].trim_end() != "```" {
                        if !lines[j].trim().is_empty()
                            && let Some(step) = steps.last_mut()
                        {
                            step.expected.push(lines[j].to_owned());
                        }
                        j += 1;
                    }
                    i = j + 1;
                }
            } else {
                i += 1;
            }
        }
        assert!(
            last_block_end_step.is_some(),
            "{heading} has no command block"
        );
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

/// A `tessera serve` on 127.0.0.1:7480 in `dir`, stopped on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_readme_shows_what_its_commands_print() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let steps = steps(&readme);
    assert!(steps.len() > 10, "too few commands found: {}", steps.len());

    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(binary(), bin.join("tessera")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let env = [
        ("PATH", path.as_str()),
        ("TESSERA_REGISTRATION", "true"),
        ("TESSERA_PASSWORD__MEMORY_KIB", "256"),
        ("TESSERA_PASSWORD__ITERATIONS", "1"),
        ("TESSERA_LOG", "warn"),
    ];
    assert!(
        std::net::TcpListener::bind("127.0.0.1:7480").is_ok()
            && std::net::TcpListener::bind("127.0.0.1:7490").is_ok(),
        "the README's ports 7480 and 7490 are taken: stop what listens there (a tessera?)"
    );
    let _server = Server(
        Command::new(binary())
            .arg("serve")
            .current_dir(&work)
            .envs(env)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for _ in 0..100 {
        if reqwest::get("http://127.0.0.1:7480/healthz").await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut shell = Command::new("bash")
        .arg("--noprofile")
        .arg("--norc")
        .current_dir(&work)
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = shell.stdin.take().unwrap();
    let mut output = BufReader::new(shell.stdout.take().unwrap());
    for (n, step) in steps.iter().enumerate() {
        let command = step.command.replace("cargo run --release -- ", "tessera ");
        let marker = format!("__readme_step_{n}__");
        writeln!(input, "{command}\nprintf '\\n{marker} %d\\n' $?").unwrap();
        input.flush().unwrap();
        let mut printed = Vec::new();
        let status = loop {
            let mut line = String::new();
            if output.read_line(&mut line).unwrap() == 0 {
                panic!("README line {}: the shell ended at {command:?}", step.line);
            }
            let line = line.trim_end_matches(['\n', '\r']);
            if let Some(status) = line.strip_prefix(&format!("{marker} ")) {
                break status.to_owned();
            }
            printed.push(line.to_owned());
        };
        assert_eq!(
            status,
            "0",
            "README line {}: {command:?} failed:\n{}",
            step.line,
            printed.join("\n")
        );
        let mut from = 0;
        for expected in &step.expected {
            match printed[from..].iter().position(|p| matches(expected, p)) {
                Some(at) => from += at + 1,
                None => panic!(
                    "README line {}: {command:?} should print\n  {expected}\nbut printed\n{}",
                    step.line,
                    printed.join("\n")
                ),
            }
        }
    }
    drop(input);
    let _ = shell.wait();
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
