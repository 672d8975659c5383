//! The modules of `runtime/src` and of `macros/src` are layers: each imports only from its own
//! layer or from the layers below, never from a layer above (no import loop). `RUNTIME` and
//! `MACROS` are the maps, here in one place; the tables in `runtime/src/lib.rs` and
//! `macros/src/lib.rs` document them, and `*_lib_rs_documents_the_same_map` keeps them equal.
//! A module missing from its map, or a map entry with no module, fails too.
//!
//! [`check_layers`] knows nothing of either crate: it reads a crate's `src` with a map.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

#[path = "layers/lex.rs"]
mod lex;
use lex::{Tok, lex};

/// The layer of each module of `runtime/src` (DESIGN.md's architecture). `lib` is the crate
/// root, which declares the modules and re-exports the public API.
const RUNTIME: &[(&str, u8)] = &[
    // 1. plain types
    ("types", 1),
    // 2. the journal; the store contract and its implementations; the event channel
    ("journal", 2),
    ("store", 2),
    ("bus", 2),
    ("metrics", 2),
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
    ("check", 7),
    ("__private", 7),
    ("lib", 8),
];

/// The layer of each module of `macros/src`: parse, model, check, generate.
const MACROS: &[(&str, u8)] = &[
    ("ctxt", 1),
    ("names", 1),
    ("attr", 2),
    ("event_decl", 2),
    ("ast", 3),
    ("check", 4),
    ("expand", 5),
    ("fallback", 6),
    ("lib", 7),
];

fn src(krate: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(krate)
        .join("src")
}

#[test]
fn runtime_modules_import_only_from_layers_below() {
    let problems = check_layers(&src("runtime"), RUNTIME);
    assert!(
        problems.is_empty(),
        "the modules of runtime/src are layers (see RUNTIME in tests/layers.rs):\n{}",
        problems.join("\n")
    );
}

#[test]
fn macros_modules_import_only_from_layers_below() {
    let problems = check_layers(&src("macros"), MACROS);
    assert!(
        problems.is_empty(),
        "the modules of macros/src are layers (see MACROS in tests/layers.rs):\n{}",
        problems.join("\n")
    );
}

#[test]
fn runtime_lib_rs_documents_the_same_map() {
    assert_documented("runtime", RUNTIME);
}

#[test]
fn macros_lib_rs_documents_the_same_map() {
    assert_documented("macros", MACROS);
}

/// The layer table in `<krate>/src/lib.rs` (rows `//! | N | `module`, ... | ...`) lists the
/// same modules at the same layers as `map`.
fn assert_documented(krate: &str, map: &[(&str, u8)]) {
    let lib = fs::read_to_string(src(krate).join("lib.rs")).expect("lib.rs");
    let mut documented = Vec::new();
    for line in lib.lines() {
        let Some(row) = line.strip_prefix("//! |") else {
            continue;
        };
        let cells: Vec<&str> = row.split('|').collect();
        let Some(Ok(layer)) = cells.first().map(|c| c.trim().parse::<u8>()) else {
            continue;
        };
        let modules = cells.get(1).copied().unwrap_or_default();
        for name in modules.split('`').skip(1).step_by(2) {
            documented.push((name.to_owned(), layer));
        }
    }
    let mut expected: Vec<(String, u8)> = map.iter().map(|(m, l)| (m.to_string(), *l)).collect();
    documented.sort();
    expected.sort();
    assert_eq!(
        documented, expected,
        "the layer table in {krate}/src/lib.rs and the map in tests/layers.rs differ"
    );
}

/// The problems with the modules under `root` (a crate's `src`) and the layer `map`: a module
/// that imports from a layer above its own, a module missing from the map, a map entry with no
/// module. Empty when all is well.
///
/// A file's module is its top-level one: `attr.rs` is `attr`, `expand/step.rs` is `expand`,
/// `lib.rs` is `lib`. Imports are the paths `crate::x` (with `use crate::{x, y}`), `super::x`
/// that leave the top-level module, `self::x` and `x::` at the crate root; comments, strings,
/// `pub(in ...)` and the bodies of `quote!`-like macros (generated code) are not read. An item
/// of the crate root (`crate::helper`, `super::*` from a top-level module) counts as an import
/// from the root's module.
fn check_layers(root: &Path, map: &[(&str, u8)]) -> Vec<String> {
    let mut problems = Vec::new();
    let shown_root = root
        .strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(root);
    let mut files = Vec::new();
    rust_files(root, &mut files);
    files.sort();
    let rel: Vec<PathBuf> = files
        .iter()
        .map(|f| f.strip_prefix(root).expect("under root").to_owned())
        .collect();
    let root_module = if rel.iter().any(|r| r == Path::new("main.rs")) {
        "main"
    } else {
        "lib"
    };
    let paths: Vec<Vec<String>> = rel.iter().map(|r| module_path(r)).collect();
    let modules: BTreeSet<String> = paths
        .iter()
        .map(|p| p.first().cloned().unwrap_or_else(|| root_module.to_owned()))
        .collect();
    let layer_of = |module: &str| map.iter().find(|(m, _)| *m == module).map(|(_, l)| *l);

    for (i, (module, _)) in map.iter().enumerate() {
        if map[..i].iter().any(|(m, _)| m == module) {
            problems.push(format!("the layer map lists `{module}` twice"));
        }
        if !modules.contains(*module) {
            problems.push(format!(
                "the layer map lists `{module}`, but {} has no module `{module}`",
                shown_root.display()
            ));
        }
    }
    for ((file, rel), path) in files.iter().zip(&rel).zip(&paths) {
        let shown = shown_root.join(rel);
        let shown = shown.display();
        let module = path.first().map_or(root_module, String::as_str);
        let Some(layer) = layer_of(module) else {
            problems.push(format!(
                "{shown}: module `{module}` is not in the layer map; give it a layer"
            ));
            continue;
        };
        let source = fs::read_to_string(file).unwrap_or_else(|e| panic!("{shown}: {e}"));
        for import in imports(&lex(&source), path, &modules) {
            let target = import.module.as_deref().unwrap_or(root_module);
            match layer_of(target) {
                Some(target_layer) if target_layer > layer => problems.push(format!(
                    "{shown}:{} (layer {layer}, {module}) imports `{}` (layer {target_layer}, {target})",
                    import.line, import.text
                )),
                // Below, the same layer, or a module already reported as missing from the map.
                _ => {}
            }
        }
    }
    problems
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `attr.rs` -> `[attr]`, `expand/step.rs` -> `[expand, step]`, `expand/mod.rs` ->
/// `[expand]`, `lib.rs` -> `[]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut path: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if path.len() == 1 && (path[0] == "lib" || path[0] == "main") {
        path.clear();
    } else if path.last().is_some_and(|last| last == "mod") {
        path.pop();
    }
    path
}

/// Macros whose input is generated code, not this crate's paths.
const QUOTE_MACROS: &[&str] = &[
    "quote",
    "quote_spanned",
    "parse_quote",
    "parse_quote_spanned",
];

/// An import of a file: where, as written, and the top-level module it reaches (`None`: an
/// item of the crate root).
#[derive(Debug)]
struct Import {
    line: usize,
    text: String,
    module: Option<String>,
}

/// The paths of a file (whose module path is `file_path`) that reach a top-level module
/// (`modules`) or the crate root.
fn imports(
    tokens: &[(Tok, usize)],
    file_path: &[String],
    modules: &BTreeSet<String>,
) -> Vec<Import> {
    let tok = |i: usize| tokens.get(i).map(|(t, _)| t);
    let ident = |i: usize| match tok(i) {
        Some(Tok::Ident(s)) => Some(s.as_str()),
        _ => None,
    };
    let punct = |i: usize, c: char| tok(i) == Some(&Tok::Punct(c));
    let path_sep = |i: usize| tok(i) == Some(&Tok::PathSep);
    let mut found = Vec::new();
    // Inline modules (`mod tests { .. }`): their names and the brace depth they opened at.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let line = tokens[i].1;
        let starts_path = i == 0 || !path_sep(i - 1);
        // The module path at this token.
        let here = || -> Vec<String> {
            let inline = inline.iter().map(|(m, _)| m.clone());
            file_path.iter().cloned().chain(inline).collect()
        };
        match tok(i).expect("in bounds") {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            Tok::Ident(kw) if kw == "mod" && punct(i + 2, '{') => {
                if let Some(name) = ident(i + 1) {
                    inline.push((name.to_owned(), depth));
                }
            }
            // Generated code: skip the macro's input.
            Tok::Ident(name)
                if QUOTE_MACROS.contains(&name.as_str())
                    && punct(i + 1, '!')
                    && (punct(i + 2, '(') || punct(i + 2, '{') || punct(i + 2, '[')) =>
            {
                let mut nesting = 0usize;
                let mut j = i + 2;
                while let Some(t) = tok(j) {
                    match t {
                        Tok::Punct('(' | '{' | '[') => nesting += 1,
                        Tok::Punct(')' | '}' | ']') => {
                            nesting -= 1;
                            if nesting == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                i = j + 1;
                continue;
            }
            // `pub(in crate::x)` is a visibility, not an import.
            Tok::Ident(kw) if kw == "in" && punct(i.wrapping_sub(1), '(') => {
                while tok(i).is_some() && !punct(i, ')') {
                    i += 1;
                }
                continue;
            }
            // `$crate::x` in a `macro_rules!` is what the macro's expansion names, in the
            // user's crate: generated code, not an import.
            Tok::Ident(kw) if kw == "crate" && punct(i.wrapping_sub(1), '$') => {}
            Tok::Ident(kw) if starts_path && kw == "crate" && path_sep(i + 1) => {
                found.extend(reach(&[], "crate", i + 2, tokens, modules, line));
            }
            Tok::Ident(kw) if starts_path && kw == "self" && path_sep(i + 1) => {
                found.extend(reach(&here(), "self", i + 2, tokens, modules, line));
            }
            Tok::Ident(kw) if starts_path && kw == "super" && path_sep(i + 1) => {
                let mut base = here();
                let mut text = String::new();
                let mut j = i;
                while ident(j) == Some("super") && path_sep(j + 1) {
                    base.pop();
                    text.push_str(if text.is_empty() { "super" } else { "::super" });
                    j += 2;
                }
                found.extend(reach(&base, &text, j, tokens, modules, line));
                i = j;
                continue;
            }
            // At the crate root, `attr::X` names the module `attr`.
            Tok::Ident(name)
                if starts_path
                    && file_path.is_empty()
                    && inline.is_empty()
                    && path_sep(i + 1)
                    && modules.contains(name)
                    && !punct(i + 2, '<') =>
            {
                found.push(Import {
                    line,
                    text: name.clone(),
                    module: Some(name.clone()),
                });
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// What `prefix::<the tokens from i>` reaches from the module path `base`: the top-level
/// module `base` is in, or, from the crate root, the module (or modules, for `{a, b}`) named
/// next, or an item of the root.
fn reach(
    base: &[String],
    prefix: &str,
    i: usize,
    tokens: &[(Tok, usize)],
    modules: &BTreeSet<String>,
    line: usize,
) -> Vec<Import> {
    // `name` is `None` for `self` in a group: the module `base` itself.
    let named = |name: Option<&str>| Import {
        line,
        text: name.map_or_else(|| prefix.to_owned(), |name| format!("{prefix}::{name}")),
        module: match (base.first(), name) {
            (Some(top), _) => Some(top.clone()),
            (None, Some(name)) => modules.get(name).cloned(),
            (None, None) => None,
        },
    };
    match tokens.get(i).map(|(t, _)| t) {
        Some(Tok::Ident(name)) => vec![named(Some(name))],
        Some(Tok::Punct('*')) => vec![Import {
            line,
            text: format!("{prefix}::*"),
            module: base.first().cloned(),
        }],
        // `crate::{a::X, b}`: the first name of each item of the group.
        Some(Tok::Punct('{')) => {
            let mut found = Vec::new();
            let mut nesting = 0usize;
            let mut item_start = true;
            for (t, _) in &tokens[i..] {
                match t {
                    Tok::Punct('{') => {
                        nesting += 1;
                        continue;
                    }
                    Tok::Punct('}') => {
                        nesting -= 1;
                        if nesting == 0 {
                            break;
                        }
                    }
                    Tok::Punct(',') if nesting == 1 => {
                        item_start = true;
                        continue;
                    }
                    Tok::Ident(name) if nesting == 1 && item_start => {
                        found.push(named(Some(name.as_str()).filter(|n| *n != "self")));
                    }
                    _ => {}
                }
                item_start = false;
            }
            found
        }
        _ => Vec::new(),
    }
}

/// `check_layers` on a made-up crate: it reports what it should and nothing else.
#[test]
fn check_layers_reports_upward_imports_and_unmapped_modules() {
    let root = std::env::temp_dir().join(format!("hookflow-layers-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    let files = [
        (
            "lib.rs",
            "mod low;\nmod high;\nmod sub;\nmod stray;\nuse crate::high::H;\nfn helper() {}\n",
        ),
        (
            "low.rs",
            concat!(
                "//! Names crate::high in a comment, which is no import.\n",
                "use crate::high;\n",
                "const S: &str = \"crate::high::S\";\n",
                "fn f() { let _ = quote::quote!(crate::high::Q); let _ = r#\"crate::high\"#; }\n",
                "use super::helper;\n",
                "pub(in crate::low) fn g<'a>(_: &'a str) -> char { 'x' }\n",
                "mod tests {\n    use super::*;\n    use crate::{sub::deep, high::H, low};\n}\n",
            ),
        ),
        ("high.rs", "use crate::low;\n"),
        ("sub/mod.rs", "pub mod deep;\n"),
        (
            "sub/deep.rs",
            "use super::super::low::L;\nfn f() { super::super::high::h(); super::other(); }\n",
        ),
        ("stray.rs", ""),
    ];
    for (path, text) in files {
        let path = root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    let map = [("lib", 9), ("low", 1), ("sub", 2), ("high", 3), ("gone", 4)];
    let mut problems = check_layers(&root, &map);
    for problem in &mut problems {
        *problem = problem.replace(&format!("{}/", root.display()), "");
    }
    fs::remove_dir_all(&root).unwrap();
    assert_eq!(
        problems,
        [
            format!(
                "the layer map lists `gone`, but {} has no module `gone`",
                root.display()
            ),
            "low.rs:2 (layer 1, low) imports `crate::high` (layer 3, high)".to_owned(),
            "low.rs:5 (layer 1, low) imports `super::helper` (layer 9, lib)".to_owned(),
            "low.rs:9 (layer 1, low) imports `crate::sub` (layer 2, sub)".to_owned(),
            "low.rs:9 (layer 1, low) imports `crate::high` (layer 3, high)".to_owned(),
            "stray.rs: module `stray` is not in the layer map; give it a layer".to_owned(),
            "sub/deep.rs:2 (layer 2, sub) imports `super::super::high` (layer 3, high)".to_owned(),
        ]
    );
}
