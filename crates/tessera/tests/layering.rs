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
        &["tessera-core", "tessera-proto"],
        &["tokio", "sqlx", "redis", "reqwest", "hyper", "axum"],
        "the domain types and the wire vocabulary do no I/O",
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

/// Each rule: these crates reach (even through others) no tessera crate but these.
const TESSERA_ONLY: &[(&[&str], &[&str], &str)] = &[
    (
        &["tessera-verify", "tessera-keys"],
        &["tessera-proto"],
        "the verification library and the key crate stand on the wire vocabulary only",
    ),
    (
        &["tessera-gateway"],
        &[
            "tessera-verify",
            "tessera-core",
            "tessera-proto",
            "tessera-listener",
        ],
        "the gateway stands on the verifier, the domain types, the wire vocabulary \
         and the listeners",
    ),
    (
        &["tessera-listener"],
        &[],
        "the listeners are hyper, rustls and files: no tessera crate",
    ),
    (
        &["tessera-proto"],
        &[],
        "the wire vocabulary depends on no tessera crate: every side shares it",
    ),
];

/// Each crate and its only normal dependencies.
const ONLY_DEPENDENCIES: &[(&str, &[&str], &str)] = &[(
    "tessera-proto",
    &["serde"],
    "the wire vocabulary is data: serde and nothing else",
)];

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
    /// The names of `name`'s own normal dependencies.
    fn direct(&self, name: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .normal
            .get(self.id_of(name))
            .into_iter()
            .flatten()
            .map(|id| self.names[id].clone())
            .collect();
        names.sort();
        names
    }

    /// The chain from `from` to each crate it reaches.
    fn reached(&self, from: &str) -> Vec<Vec<String>> {
        let start = self.id_of(from).to_owned();
        let mut came_from: HashMap<String, String> = HashMap::new();
        let mut seen = HashSet::from([start.clone()]);
        let mut queue = VecDeque::from([start.clone()]);
        let mut chains = Vec::new();
        while let Some(id) = queue.pop_front() {
            if id != start {
                let mut chain = vec![self.names[&id].clone()];
                let mut at = id.clone();
                while let Some(previous) = came_from.get(&at) {
                    chain.push(self.names[previous].clone());
                    at = previous.clone();
                }
                chain.reverse();
                chains.push(chain);
            }
            for dep in self.normal.get(&id).into_iter().flatten() {
                if seen.insert(dep.clone()) {
                    came_from.insert(dep.clone(), id.clone());
                    queue.push_back(dep.clone());
                }
            }
        }
        chains
    }

    fn id_of(&self, name: &str) -> &str {
        self.names
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(id, _)| id.as_str())
            .unwrap_or_else(|| panic!("no crate named {name} in the workspace graph"))
    }

    /// The chain of crates from `from` to a crate named `to`, if it reaches one.
    fn path(&self, from: &str, to: &str) -> Option<Vec<String>> {
        self.reached(from)
            .into_iter()
            .find(|chain| chain.last().is_some_and(|name| name == to))
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
    let verify_to_proto = graph
        .path("tessera-verify", "tessera-proto")
        .expect("verify reaches proto");
    assert_eq!(verify_to_proto, ["tessera-verify", "tessera-proto"]);
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
    let is_tessera = |name: &str| name == "tessera" || name.starts_with("tessera-");
    for (crates, allowed, why) in TESSERA_ONLY {
        for krate in *crates {
            for chain in graph.reached(krate) {
                let Some(reached) = chain.last() else {
                    continue;
                };
                if is_tessera(reached) && !allowed.contains(&reached.as_str()) {
                    broken.push(format!("{} ({why})", chain.join(" → ")));
                }
            }
        }
    }
    for (krate, only, why) in ONLY_DEPENDENCIES {
        let direct = graph.direct(krate);
        if direct != *only {
            broken.push(format!("{krate} depends on {} ({why})", direct.join(", ")));
        }
    }
    assert!(
        broken.is_empty(),
        "crate rules broken:\n{}",
        broken.join("\n")
    );
}
