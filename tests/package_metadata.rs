//! What crates.io and docs.rs need of each published crate, checked where `cargo package` does
//! not check it (crates.io does only when the crate is published): a description, a license,
//! a README that exists, at most five valid keywords, known categories, docs.rs building every
//! feature; `rust-version` naming the toolchain CI runs (the only one it checks); and the test
//! fixture that must never be published marked `publish = false`.
//!
//! It reads `cargo metadata --no-deps` (no network, no build).

use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The packages of the workspace that are published, in the order a reader meets them.
const PUBLISHED: &[&str] = &[
    "hookflow",
    "hookflow-macros",
    "hookflow-runtime",
    "hookflow-cli",
];

/// The workspace's packages that are never published.
const UNPUBLISHED: &[&str] = &["hookflow-panic-abort-app"];

/// Category slugs of crates.io (a subset of `src/boot/categories.toml` in the crates.io
/// repository: the ones a workflow library could use). crates.io refuses an unknown slug
/// only at publish time; a typo here fails this test first.
const CATEGORIES: &[&str] = &[
    "algorithms",
    "asynchronous",
    "command-line-utilities",
    "concurrency",
    "database",
    "development-tools",
    "development-tools::procedural-macro-helpers",
    "development-tools::testing",
    "network-programming",
    "rust-patterns",
    "web-programming",
    "web-programming::http-server",
];

fn cargo_metadata() -> Value {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON")
}

fn package<'m>(metadata: &'m Value, name: &str) -> &'m Value {
    metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|package| package["name"] == name)
        .unwrap_or_else(|| panic!("no package `{name}` in the workspace"))
}

/// crates.io's rule for a keyword: at most 20 characters, ASCII letters, digits, `_`, `-` or
/// `+`, starting with a letter.
fn keyword_problem(keyword: &str) -> Option<&'static str> {
    if keyword.is_empty() || keyword.len() > 20 {
        return Some("must have 1 to 20 characters");
    }
    if !keyword.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Some("must start with a letter");
    }
    if !keyword
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
    {
        return Some("may hold only ASCII letters, digits, `_`, `-` and `+`");
    }
    None
}

/// What is wrong with one published package's metadata (empty: nothing).
fn problems(package: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let name = package["name"].as_str().unwrap_or("?");
    for field in ["description", "license", "documentation"] {
        if package[field]
            .as_str()
            .is_none_or(|text| text.trim().is_empty())
        {
            problems.push(format!("{name}: no `{field}`"));
        }
    }
    match package["readme"].as_str() {
        None => problems.push(format!("{name}: no `readme`")),
        Some(readme) => {
            let manifest = Path::new(package["manifest_path"].as_str().unwrap_or_default());
            let path = manifest.parent().unwrap_or(Path::new(".")).join(readme);
            if !path.is_file() {
                problems.push(format!("{name}: readme {} does not exist", path.display()));
            }
        }
    }
    let keywords = package["keywords"].as_array().cloned().unwrap_or_default();
    if keywords.is_empty() || keywords.len() > 5 {
        problems.push(format!(
            "{name}: {} keywords (crates.io takes 1 to 5)",
            keywords.len()
        ));
    }
    for keyword in keywords.iter().filter_map(Value::as_str) {
        if let Some(problem) = keyword_problem(keyword) {
            problems.push(format!("{name}: keyword `{keyword}` {problem}"));
        }
    }
    let categories = package["categories"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if categories.is_empty() || categories.len() > 5 {
        problems.push(format!(
            "{name}: {} categories (crates.io takes 1 to 5)",
            categories.len()
        ));
    }
    for category in categories.iter().filter_map(Value::as_str) {
        if !CATEGORIES.contains(&category) {
            problems.push(format!("{name}: `{category}` is not a crates.io category"));
        }
    }
    if package["metadata"]["docs"]["rs"]["all-features"] != Value::Bool(true) {
        problems.push(format!(
            "{name}: no `[package.metadata.docs.rs] all-features = true`"
        ));
    }
    problems
}

#[test]
fn published_crates_have_what_crates_io_and_docs_rs_need() {
    let metadata = cargo_metadata();
    let problems: Vec<String> = PUBLISHED
        .iter()
        .flat_map(|name| problems(package(&metadata, name)))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_workspace_package_is_published_or_marked_not_to_be() {
    let metadata = cargo_metadata();
    for package in metadata["packages"].as_array().expect("packages") {
        let name = package["name"].as_str().expect("a package name");
        // `publish = false` is an empty list of registries; no `publish` is null.
        let unpublished = package["publish"].as_array().is_some_and(Vec::is_empty);
        match (PUBLISHED.contains(&name), UNPUBLISHED.contains(&name)) {
            (true, _) => assert!(!unpublished, "{name} is to be published"),
            (false, true) => assert!(unpublished, "{name} needs `publish = false`"),
            (false, false) => panic!(
                "{name} is new: add it to PUBLISHED (and to the package step of .ci/run) \
                 or give it `publish = false` and add it to UNPUBLISHED"
            ),
        }
    }
}

#[test]
fn rust_version_is_the_toolchain_ci_runs() {
    // CI runs `cargo` from the machine's one toolchain: `cargo 1.95.0 (...)`.
    let output = Command::new(env!("CARGO"))
        .arg("--version")
        .output()
        .expect("cargo --version runs");
    let version = String::from_utf8_lossy(&output.stdout);
    let running: Vec<&str> = version
        .split_whitespace()
        .nth(1)
        .expect("cargo --version prints `cargo X.Y.Z ...`")
        .split('.')
        .take(2)
        .collect();
    let running = running.join(".");
    let metadata = cargo_metadata();
    for name in PUBLISHED {
        let stated = package(&metadata, name)["rust_version"].as_str();
        assert_eq!(
            stated,
            Some(running.as_str()),
            "{name}: `rust-version` must be the toolchain the tests run on ({running}), the \
             only one CI checks (workspace.package.rust-version in Cargo.toml)"
        );
    }
}

#[test]
fn keyword_rules_refuse_what_crates_io_refuses() {
    assert_eq!(keyword_problem("saga"), None);
    assert_eq!(keyword_problem("no-std+alloc_1"), None);
    assert!(keyword_problem("1password").is_some());
    assert!(keyword_problem("workflow engine").is_some());
    assert!(keyword_problem("a-keyword-longer-than-twenty").is_some());
    assert!(keyword_problem("").is_some());
}
