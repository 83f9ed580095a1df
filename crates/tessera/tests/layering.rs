//! The crate rules of ARCHITECTURE.md, kept by a test: it reads the resolved
//! dependency graph (`cargo metadata`) and fails, naming the path, when a crate
//! reaches one it must never reach (only normal dependencies count; tests and
//! benches may use anything).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::process::Command;

use serde_json::Value;

/// Each rule: these crates, never (even through others) these.
const RULES: &[(&[&str], &[&str], &str)] = &[
    (
        &["tessera-verify", "tessera-gateway"],
        &[
            "tessera-server",
            "tessera-store",
            "tessera-store-sql",
            "tessera-store-sqlite",
            "tessera-store-postgres",
            "tessera-store-redis",
            "sqlx",
            "redis",
        ],
        "what resource services and the gateway embed talks to tessera over HTTP, \
         never to its stores",
    ),
    (
        &["tessera-verify", "tessera-keys"],
        &[
            "tessera-core",
            "tessera-store",
            "tessera-server",
            "tessera-gateway",
        ],
        "the verification library and the key crate stand on no other tessera crate",
    ),
    (
        &["tessera-core"],
        &["tokio", "sqlx", "redis", "reqwest", "hyper", "axum"],
        "the domain types do no I/O",
    ),
    (
        &[
            "tessera-store",
            "tessera-store-sql",
            "tessera-store-sqlite",
            "tessera-store-postgres",
            "tessera-store-redis",
        ],
        &[
            "axum",
            "hyper",
            "reqwest",
            "tessera-server",
            "tessera-verify",
        ],
        "stores know nothing of HTTP or of the services above them",
    ),
    (
        &["tessera-store-sql"],
        &["redis", "tessera-store-redis"],
        "the SQL the SQLite and PostgreSQL backends share is theirs alone: no Redis",
    ),
];

struct Graph {
    names: HashMap<String, String>,
    normal: HashMap<String, Vec<String>>,
}

fn graph() -> Graph {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                p["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let normal = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| {
            let deps = node["deps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| {
                    d["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|k| k["kind"].is_null())
                })
                .map(|d| d["pkg"].as_str().unwrap().to_owned())
                .collect();
            (node["id"].as_str().unwrap().to_owned(), deps)
        })
        .collect();
    Graph { names, normal }
}

impl Graph {
    fn id_of(&self, name: &str) -> &str {
        self.names
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(id, _)| id.as_str())
            .unwrap_or_else(|| panic!("no crate named {name} in the workspace graph"))
    }

    /// The chain of crates from `from` to a crate named `to`, if it reaches one.
    fn path(&self, from: &str, to: &str) -> Option<Vec<String>> {
        let start = self.id_of(from).to_owned();
        let mut came_from: HashMap<String, String> = HashMap::new();
        let mut seen = HashSet::from([start.clone()]);
        let mut queue = VecDeque::from([start.clone()]);
        while let Some(id) = queue.pop_front() {
            if id != start && self.names[&id] == to {
                let mut chain = vec![self.names[&id].clone()];
                let mut at = id;
                while let Some(previous) = came_from.get(&at) {
                    chain.push(self.names[previous].clone());
                    at = previous.clone();
                }
                chain.reverse();
                return Some(chain);
            }
            for dep in self.normal.get(&id).into_iter().flatten() {
                if seen.insert(dep.clone()) {
                    came_from.insert(dep.clone(), id.clone());
                    queue.push_back(dep.clone());
                }
            }
        }
        None
    }
}

#[test]
fn crates_reach_only_what_the_architecture_allows() {
    let graph = graph();
    // The walk finds what is there: a broken rule would not pass unseen.
    let server_to_sqlx = graph
        .path("tessera-server", "sqlx")
        .expect("server reaches sqlx");
    assert_eq!(
        server_to_sqlx.first().map(String::as_str),
        Some("tessera-server")
    );
    let mut broken = Vec::new();
    for (crates, never, why) in RULES {
        for krate in *crates {
            for forbidden in *never {
                if let Some(path) = graph.path(krate, forbidden) {
                    broken.push(format!("{} ({why})", path.join(" → ")));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "crate rules broken:\n{}",
        broken.join("\n")
    );
}
