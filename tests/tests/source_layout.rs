//! The shape of the source tree, as rules a reviewer would otherwise check
//! by hand (STYLE.md): no file of the three main crates holds more than 500
//! lines of logic, and `unsafe` lives only in the relay's platform modules
//! (`relay/src/io/`, `relay/src/sys/`).
//!
//! "Logic lines" leave out blank lines, comments and `#[cfg(test)]` items,
//! so a file's own tests and its docs never count against it.
//!
//! `cargo test -p shoal-tests --test source_layout -- --nocapture` prints
//! the largest files.

use std::fs;
use std::path::{Path, PathBuf};

/// The most logic lines one source file may hold.
const MAX_LOGIC_LINES: usize = 500;
/// The crates the rule covers.
const CRATES: [&str; 3] = ["proto/src", "relay/src", "bench/src"];
/// Where `unsafe` may stand.
const UNSAFE_HOMES: [&str; 2] = ["relay/src/io/", "relay/src/sys/"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Lines of logic in `text`: not blank, not a comment, not inside an item
/// marked `#[cfg(test)]`.
fn logic_lines(text: &str) -> usize {
    let mut count = 0;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let t = line.trim();
        if t.is_empty() || t.starts_with("//") {
            continue;
        }
        if t == "#[cfg(test)]" {
            skip_item(&mut lines);
            continue;
        }
        count += 1;
    }
    count
}

/// Skips the item after a `#[cfg(test)]`: one line (`mod tests;`) or a
/// block up to its closing brace.
fn skip_item<'a>(lines: &mut impl Iterator<Item = &'a str>) {
    let mut depth = 0i64;
    for line in lines.by_ref() {
        let t = line.trim();
        if t.starts_with("#[") && depth == 0 {
            continue;
        }
        depth += brace_balance(t);
        if depth <= 0 && (t.ends_with(';') || t.ends_with('}')) {
            return;
        }
    }
}

/// `{` minus `}` on a line, outside string and char literals and comments.
fn brace_balance(line: &str) -> i64 {
    let mut balance = 0;
    let mut in_str = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if in_str => {
                chars.next();
            }
            '"' => in_str = !in_str,
            '\'' if !in_str => {
                // A char literal such as '{' or '\''; a lifetime has no
                // closing quote within three characters.
                let ahead: String = chars.clone().take(3).collect();
                if ahead.starts_with("\\") && ahead.len() >= 3 {
                    chars.nth(2);
                } else if ahead.chars().nth(1) == Some('\'') {
                    chars.nth(1);
                }
            }
            '/' if !in_str && chars.peek() == Some(&'/') => break,
            '{' if !in_str => balance += 1,
            '}' if !in_str => balance -= 1,
            _ => {}
        }
    }
    balance
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Every source file of the three crates, with the files that are
/// themselves `#[cfg(test)]` modules (`#[cfg(test)] mod tests;`) left out.
fn all_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for krate in CRATES {
        rust_files(&root().join(krate), &mut files);
    }
    let test_modules: Vec<PathBuf> = files.iter().flat_map(|f| test_children(f)).collect();
    files.retain(|f| {
        !test_modules
            .iter()
            .any(|t| f.starts_with(t) || *f == t.with_extension("rs"))
    });
    files.sort();
    files
}

/// The paths of the modules that `file` declares under `#[cfg(test)]`:
/// `dir/name` (the caller matches `dir/name.rs` and `dir/name/...`).
fn test_children(file: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string(file).expect("source is UTF-8");
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let parent = file.parent().expect("a file has a directory");
    let dir = if matches!(stem, "mod" | "lib" | "main") {
        parent.to_path_buf()
    } else {
        parent.join(stem)
    };
    let mut children = Vec::new();
    let mut after_cfg_test = false;
    for line in text.lines() {
        let t = line.trim();
        if t == "#[cfg(test)]" {
            after_cfg_test = true;
            continue;
        }
        if after_cfg_test && !t.starts_with("#[") {
            let name = t
                .strip_prefix("pub(crate) ")
                .or_else(|| t.strip_prefix("pub(super) "))
                .or_else(|| t.strip_prefix("pub "))
                .unwrap_or(t);
            if let Some(name) = name.strip_prefix("mod ").and_then(|n| n.strip_suffix(';')) {
                children.push(dir.join(name));
            }
            after_cfg_test = false;
        }
    }
    children
}

#[test]
fn no_source_file_holds_more_than_500_logic_lines() {
    let mut sized: Vec<(usize, String)> = all_files()
        .iter()
        .map(|p| {
            let text = fs::read_to_string(p).expect("source is UTF-8");
            (logic_lines(&text), relative(p))
        })
        .collect();
    sized.sort_by(|a, b| b.cmp(a));
    for (n, name) in sized.iter().take(10) {
        println!("{n:5} {name}");
    }
    let over: Vec<_> = sized.iter().filter(|(n, _)| *n > MAX_LOGIC_LINES).collect();
    assert!(
        over.is_empty(),
        "files over {MAX_LOGIC_LINES} logic lines (split them by concept): {over:?}"
    );
}

#[test]
fn unsafe_only_in_platform_modules() {
    let mut strays = Vec::new();
    for path in all_files() {
        let name = relative(&path);
        if UNSAFE_HOMES.iter().any(|home| name.starts_with(home)) {
            continue;
        }
        let text = fs::read_to_string(&path).expect("source is UTF-8");
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let has_unsafe = code
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|word| word == "unsafe");
            // `forbid(unsafe_code)` names the lint, not an unsafe block.
            if has_unsafe && !code.contains("unsafe_code") {
                strays.push(format!("{name}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(
        strays.is_empty(),
        "unsafe outside {UNSAFE_HOMES:?} (move it behind a safe function in relay/src/sys/):\n{}",
        strays.join("\n")
    );
}

#[test]
fn the_counter_leaves_out_tests_comments_and_blanks() {
    let text = "//! doc\nfn a() {\n    1\n}\n\n// note\n#[cfg(test)]\nmod tests {\n    fn b() { let s = \"}\"; }\n}\n#[cfg(test)]\nmod more;\nfn c() {}\n";
    assert_eq!(logic_lines(text), 4);
}
