//! The rolling-upgrade rule, checked on the migrations of both SQL backends: a
//! migration only adds (tables, indexes, columns an older tessera can ignore), so
//! that version N goes on working on the schema version N+1 migrated to while the
//! instances are upgraded one at a time. Taking something away (a table, a column,
//! a name) waits for a release after the one that stopped using it, and says so
//! in a `-- contract:` comment naming that release, and raises the schema's
//! `oldest_compatible` so that the versions before it refuse the store instead of
//! failing on it (tests/api/upgrade.rs runs a tessera on a newer schema).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

/// Migrations written before the first release, which no earlier version ran on.
const BEFORE_THE_FIRST_RELEASE: &[&str] =
    &["tessera-store-sqlite/migrations/0004_revocation_log.sql"];

fn migrations() -> Vec<PathBuf> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    for backend in ["tessera-store-sqlite", "tessera-store-postgres"] {
        for entry in std::fs::read_dir(crates.join(backend).join("migrations")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "sql") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The statements' text, without `--` comments, upper-cased, whitespace folded.
fn statements(sql: &str) -> String {
    sql.lines()
        .map(|line| line.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

/// What in `sql` an older tessera could trip on, if anything.
fn contractions(sql: &str) -> Vec<String> {
    let text = statements(sql);
    let mut found = Vec::new();
    for taken_away in [
        "DROP TABLE",
        "DROP COLUMN",
        "RENAME",
        "ALTER COLUMN",
        "DROP VIEW",
    ] {
        if text.contains(taken_away) {
            found.push(taken_away.to_owned());
        }
    }
    // A new column an older INSERT does not name must have a value without it.
    for statement in text.split(';') {
        if let Some((_, column)) = statement.split_once("ADD COLUMN")
            && column.contains("NOT NULL")
            && !column.contains("DEFAULT")
        {
            found.push(format!("ADD COLUMN{column} (NOT NULL without DEFAULT)"));
        }
    }
    found
}

#[test]
fn migrations_only_add_unless_they_name_the_release_that_stopped_using_it() {
    let all = migrations();
    assert!(all.len() >= 20, "the migrations were not found: {all:?}");
    for path in all {
        let sql = std::fs::read_to_string(&path).unwrap();
        let name = path.display().to_string();
        if BEFORE_THE_FIRST_RELEASE.iter().any(|m| name.ends_with(m)) {
            continue;
        }
        let found = contractions(&sql);
        assert!(
            found.is_empty() || sql.contains("-- contract:"),
            "{name} takes away what an older tessera may still use ({found:?}): \
             during a rolling upgrade the previous version runs on this schema. Add \
             instead, and take away in a later release, with a `-- contract:` comment \
             naming the release that stopped using it"
        );
        // The versions before that release must then refuse the store, not trip
        // over it: they run on a newer schema only while it is compatible.
        assert!(
            found.is_empty() || statements(&sql).contains("OLDEST_COMPATIBLE"),
            "{name} takes away what older versions use ({found:?}) but does not raise \
             oldest_compatible to the schema version of the release that stopped using \
             it: those versions would run on it and fail"
        );
    }
}

#[test]
fn the_check_sees_what_it_must() {
    assert!(contractions("DROP TABLE users;").contains(&"DROP TABLE".to_owned()));
    assert!(contractions("alter table t rename to u;").contains(&"RENAME".to_owned()));
    assert_eq!(
        contractions("ALTER TABLE t ADD COLUMN c TEXT NOT NULL;").len(),
        1
    );
    assert!(contractions("ALTER TABLE t ADD COLUMN c TEXT NOT NULL DEFAULT '';").is_empty());
    assert!(contractions("-- DROP TABLE in a comment\nCREATE TABLE x (a TEXT);").is_empty());
}
