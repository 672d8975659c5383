//! The layers of the runtime and of the macros: each module imports only from its own layer
//! or the layers below (DESIGN.md's architecture). The maps are here, in one place; a module
//! missing from its map fails the test too, so a new module must be placed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// `runtime/src`: module -> layer. `lib.rs` assembles them all and is not checked.
const RUNTIME: &[(&str, u8)] = &[
    // 1. plain types
    ("types", 1),
    // 2. the journal, the store contract and its implementations, the event channel
    ("journal", 2),
    ("store", 2),
    ("bus", 2),
    // 3. hook registration; the contexts handlers receive and the run state behind them
    ("hook", 3),
    ("context", 3),
    ("workflow", 3),
    // 4. run execution
    ("run", 4),
    // 5. the engine and the worker
    ("engine", 5),
    ("worker", 5),
    // 6. views, and the test tools built on the engine
    ("view", 6),
    ("testing", 6),
    // 7. what generated code names
    ("__private", 7),
];

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The source without comments, string and char literals (so that neither a doc link nor a
/// message counts as an import).
fn code_only(source: &str) -> String {
    let bytes = source.as_bytes();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &source[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            let mut depth = 0;
            let mut j = 0;
            while j < rest.len() {
                if rest[j..].starts_with("/*") {
                    depth += 1;
                    j += 2;
                } else if rest[j..].starts_with("*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += rest[j..].chars().next().map_or(1, char::len_utf8);
                }
            }
            i += j;
        } else if let Some(len) = raw_string_len(rest) {
            out.push_str("\"\"");
            i += len;
        } else if rest.starts_with('"') {
            let mut j = 1;
            while j < rest.len() {
                match rest.as_bytes()[j] {
                    b'\\' => j += 2,
                    b'"' => {
                        j += 1;
                        break;
                    }
                    _ => j += 1,
                }
            }
            out.push_str("\"\"");
            i += j;
        } else if rest.starts_with("'") && char_literal_len(rest).is_some() {
            out.push_str("' '");
            i += char_literal_len(rest).unwrap_or(1);
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The length of a raw string literal (`r"..."`, `r#"..."#`) at the start of `s`.
fn raw_string_len(s: &str) -> Option<usize> {
    let rest = s.strip_prefix('r').or_else(|| s.strip_prefix("br"))?;
    let prefix = s.len() - rest.len();
    let hashes = rest.len() - rest.trim_start_matches('#').len();
    let body = rest[hashes..].strip_prefix('"')?;
    let end = format!("\"{}", "#".repeat(hashes));
    let close = body.find(&end)?;
    Some(prefix + hashes + 1 + close + end.len())
}

/// The length of a char literal (`'a'`, `'\n'`, `'\''`) at the start of `s`, `None` for a
/// lifetime.
fn char_literal_len(s: &str) -> Option<usize> {
    let body = &s[1..];
    if let Some(escaped) = body.strip_prefix('\\') {
        let close = escaped.find('\'')?;
        return Some(1 + 1 + close + 1);
    }
    let c = body.chars().next()?;
    body[c.len_utf8()..]
        .starts_with('\'')
        .then(|| 1 + c.len_utf8() + 1)
}

/// The top-level modules a file's code names through `crate::` (groups included) or through
/// `super::` chains that reach the crate root. `depth` is how deep the file's module is (1
/// for `x.rs` or `x/mod.rs`, 2 for `x/y.rs`, ...).
fn referenced_modules(code: &str, depth: usize) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let chars: Vec<char> = code.chars().collect();
    let text: String = chars.iter().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts_word = i == 0 || !(is_ident(chars[i - 1]) || chars[i - 1] == '$');
        let rest: String = chars[i..chars.len().min(i + 8)].iter().collect();
        if starts_word && rest.starts_with("crate") && text_at(&chars, i + 5, "::") {
            collect_after(&chars, i + 7, &mut found);
            i += 7;
            continue;
        }
        if starts_word && rest.starts_with("super") && text_at(&chars, i + 5, "::") {
            // Count the chain.
            let mut j = i;
            let mut ups = 0;
            while text_at(&chars, j, "super::") {
                ups += 1;
                j += 7;
            }
            if ups >= depth {
                collect_after(&chars, j, &mut found);
            }
            i = j;
            continue;
        }
        i += 1;
    }
    let _ = text;
    found
}

fn text_at(chars: &[char], at: usize, s: &str) -> bool {
    let s: Vec<char> = s.chars().collect();
    chars.len() >= at + s.len() && chars[at..at + s.len()] == s[..]
}

/// After `crate::`: one path's first segment, or each first segment of a `{...}` group.
fn collect_after(chars: &[char], at: usize, found: &mut BTreeSet<String>) {
    let ident = |from: usize| -> String {
        chars[from..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
            .collect()
    };
    let mut at = at;
    while at < chars.len() && chars[at].is_whitespace() {
        at += 1;
    }
    if chars.get(at) != Some(&'{') {
        let name = ident(at);
        if !name.is_empty() {
            found.insert(name);
        }
        return;
    }
    // A group: the first segment of each item at nesting level 1.
    let mut level = 0;
    let mut expect = true;
    let mut i = at;
    while i < chars.len() {
        match chars[i] {
            '{' => {
                level += 1;
                expect = level == 1;
            }
            '}' => {
                level -= 1;
                if level == 0 {
                    break;
                }
            }
            ',' if level == 1 => expect = true,
            c if c.is_whitespace() => {}
            _ if expect && level == 1 => {
                let name = ident(i);
                if !name.is_empty() {
                    found.insert(name.clone());
                    i += name.len();
                    expect = false;
                    continue;
                }
                expect = false;
            }
            _ => {}
        }
        i += 1;
    }
}

/// The module a file of `root` belongs to (its first path component, without `.rs`), and
/// how deep its module is; `None` for the crate root.
fn module_of(root: &Path, file: &Path) -> Option<(String, usize)> {
    let relative = file.strip_prefix(root).ok()?;
    let parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.len() == 1 && (parts[0] == "lib.rs" || parts[0] == "main.rs") {
        return None;
    }
    let top = parts[0].trim_end_matches(".rs").to_owned();
    let depth = if parts.last().is_some_and(|p| p == "mod.rs") {
        parts.len() - 1
    } else {
        parts.len()
    };
    Some((top, depth))
}

/// Every import from a layer above its importer's, and every module missing from `map`.
fn check_layers(root: &Path, map: &[(&str, u8)]) -> Vec<String> {
    let layer = |module: &str| map.iter().find(|(m, _)| *m == module).map(|(_, l)| *l);
    let mut problems = Vec::new();
    for file in rust_files(root) {
        let Some((module, depth)) = module_of(root, &file) else {
            continue;
        };
        let shown = file
            .strip_prefix(root.parent().unwrap_or(root))
            .unwrap_or(&file);
        let Some(own) = layer(&module) else {
            problems.push(format!(
                "{}: module `{module}` is not in the layer map",
                shown.display()
            ));
            continue;
        };
        let source = std::fs::read_to_string(&file).unwrap();
        for used in referenced_modules(&code_only(&source), depth) {
            if used == module {
                continue;
            }
            match layer(&used) {
                Some(theirs) if theirs > own => problems.push(format!(
                    "{} (layer {own}, `{module}`) imports `crate::{used}` (layer {theirs})",
                    shown.display()
                )),
                Some(_) => {}
                None => problems.push(format!(
                    "{} (layer {own}, `{module}`) names `crate::{used}`, which is not in the layer map",
                    shown.display()
                )),
            }
        }
    }
    problems
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_runtime_imports_only_from_lower_layers() {
    let problems = check_layers(&workspace().join("runtime/src"), RUNTIME);
    assert!(
        problems.is_empty(),
        "layer violations:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_checker_finds_an_upward_import_and_an_unmapped_module() {
    let dir = std::env::temp_dir().join(format!("hookflow-layers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("low")).unwrap();
    std::fs::write(dir.join("lib.rs"), "mod low; mod high; mod stray;").unwrap();
    std::fs::write(
        dir.join("low/mod.rs"),
        "// crate::high in a comment is fine\nuse super::high::Thing;\nconst S: &str = \"crate::high\";",
    )
    .unwrap();
    std::fs::write(
        dir.join("low/inner.rs"),
        "use crate::{high::{A, B}, low::C};",
    )
    .unwrap();
    std::fs::write(
        dir.join("high.rs"),
        "use crate::low::Thing; fn f<'a>(x: &'a str) {}",
    )
    .unwrap();
    std::fs::write(dir.join("stray.rs"), "").unwrap();
    let problems = check_layers(&dir, &[("low", 1), ("high", 2)]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        problems[0].contains("low/inner.rs (layer 1, `low`) imports `crate::high` (layer 2)"),
        "{problems:#?}"
    );
    assert!(
        problems[1].contains("low/mod.rs (layer 1, `low`) imports `crate::high` (layer 2)"),
        "{problems:#?}"
    );
    assert!(
        problems[2].contains("stray.rs: module `stray` is not in the layer map"),
        "{problems:#?}"
    );
}
