//! What the README promises about the code, checked against the code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn rust_sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// Every metric the sources record (`counter!`, `gauge!`, `histogram!` with a
/// literal name), with the label names used with it anywhere.
fn recorded_metrics() -> BTreeMap<String, Vec<String>> {
    let mut files = Vec::new();
    for krate in std::fs::read_dir(workspace_root().join("crates"))
        .unwrap()
        .flatten()
    {
        rust_sources(&krate.path().join("src"), &mut files);
    }
    let mut metrics: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for macro_name in ["counter!(", "gauge!(", "histogram!("] {
            for (at, _) in text.match_indices(macro_name) {
                let rest = text[at + macro_name.len()..].trim_start();
                let Some(rest) = rest.strip_prefix('"') else {
                    continue;
                };
                let Some(name) = rest.split('"').next() else {
                    continue;
                };
                let call = crate::harness::call_arguments(rest);
                let labels = metrics.entry(name.to_owned()).or_default();
                for part in call.split("=>").collect::<Vec<_>>().iter().rev().skip(1) {
                    if let Some(label) = part.trim_end().strip_suffix('"')
                        && let Some(label) = label.rsplit('"').next()
                        && !labels.iter().any(|l| l == label)
                    {
                        labels.push(label.to_owned());
                    }
                }
            }
        }
    }
    metrics
}

#[test]
fn every_metric_is_listed_in_the_readme_with_its_labels() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let metrics = recorded_metrics();
    assert!(
        metrics.len() > 20,
        "the scan found too few metrics: {metrics:?}"
    );
    for (name, labels) in &metrics {
        let row = readme
            .lines()
            .find(|line| line.starts_with(&format!("| `{name}` |")))
            .unwrap_or_else(|| panic!("{name} is not in the README's metrics tables"));
        let label_cell = row.split('|').nth(3).unwrap_or_default();
        for label in labels {
            assert!(
                label_cell.contains(&format!("`{label}`")),
                "the README's row for {name} does not name its label {label}: {row}"
            );
        }
        let listed = label_cell.matches('`').count() / 2;
        assert_eq!(
            listed,
            labels.len(),
            "the README's row for {name} names labels the code does not use ({labels:?}): {row}"
        );
    }
}
