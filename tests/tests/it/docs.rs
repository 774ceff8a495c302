//! The design lives in the repository: every file a source comment names
//! exists here, and `docs/architecture.md` names every module of
//! `shared/src`.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every file below `dir`, but build output, dependencies and Git's own.
fn files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !matches!(name.as_str(), "target" | ".git" | "node_modules" | ".ferry" | ".ferry-demo") {
                files(&path, found);
            }
        } else {
            found.push(path);
        }
    }
}

/// The file names a comment line mentions: paths (with a `/`) and
/// Markdown documents. A bare name such as `.ferry.toml` is a file people
/// write, not one of the repository's.
fn named_files(comment: &str) -> Vec<String> {
    let without_urls: Vec<&str> = comment.split_whitespace().filter(|word| !word.contains("://")).collect();
    without_urls
        .join(" ")
        .split(|c: char| !(c.is_ascii_alphanumeric() || "._/-".contains(c)))
        .map(|word| word.trim_matches(|c| c == '.' || c == '/'))
        .filter(|word| {
            let extension = word.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
            let known = matches!(extension, "md" | "rs" | "toml" | "yaml" | "json" | "lua" | "py");
            known && (word.contains('/') || extension == "md")
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_file_a_source_comment_names_is_in_the_repository() {
    let root = root();
    let mut all = Vec::new();
    files(&root, &mut all);
    let tracked: Vec<String> =
        all.iter().map(|p| p.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/")).collect();
    let mut missing = Vec::new();
    for (path, relative) in all.iter().zip(&tracked) {
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        for (number, line) in text.lines().enumerate() {
            // A comment starts at `//`, but not at a URL's `://`.
            let Some(start) =
                line.match_indices("//").map(|(i, _)| i).find(|&i| i == 0 || line.as_bytes()[i - 1] != b':')
            else {
                continue;
            };
            let comment = &line[start + 2..];
            for name in named_files(comment) {
                // A path from the root, or the tail of one (`usecase/poll.rs`).
                let exists = tracked.iter().any(|t| t == &name || t.ends_with(&format!("/{name}")));
                if !exists {
                    missing.push(format!("{relative}:{}: {name}", number + 1));
                }
            }
        }
    }
    assert_eq!(missing, Vec::<String>::new(), "comments name files the repository does not have");
}

#[test]
fn no_source_comment_cites_an_issue_number() {
    let root = root();
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut citing = Vec::new();
    for path in all.iter().filter(|p| p.extension().is_some_and(|e| e == "rs")) {
        let text = std::fs::read_to_string(path).unwrap();
        for (number, line) in text.lines().enumerate() {
            let comment = line.trim_start();
            if comment.starts_with("//") && comment.to_ascii_lowercase().contains("issue #") {
                citing.push(format!("{}:{}", path.strip_prefix(&root).unwrap().display(), number + 1));
            }
        }
    }
    assert_eq!(citing, Vec::<String>::new(), "cite docs/ or the README, which stay true; issues close");
}

#[test]
fn the_architecture_names_every_module_of_the_crate() {
    let root = root();
    let architecture = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let mut all = Vec::new();
    files(&root.join("shared/src"), &mut all);
    let mut unnamed = Vec::new();
    for path in all.iter().filter(|p| p.extension().is_some_and(|e| e == "rs")) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // A folder's mod.rs is its folder.
        let named = if name == "mod.rs" {
            format!("{}/", path.parent().unwrap().file_name().unwrap().to_string_lossy())
        } else {
            name
        };
        if !architecture.contains(&format!("`{named}")) {
            unnamed.push(path.strip_prefix(&root).unwrap().display().to_string());
        }
    }
    assert_eq!(unnamed, Vec::<String>::new(), "docs/architecture.md, \"Modules of shared/src\"");
}

#[test]
fn file_names_are_read_from_comments_as_meant() {
    assert_eq!(
        named_files(" see README.md, \"State\", and docs/architecture.md."),
        ["README.md", "docs/architecture.md"]
    );
    assert_eq!(named_files(" a `.ferry.toml` at the commit; usecase/poll.rs"), ["usecase/poll.rs"]);
    assert_eq!(named_files(" https://docs.gitlab.com/api/commits.md"), Vec::<String>::new());
}

/// Use cases and decisions take time from the `Clock` port, so a test can
/// set it: the system's clock is read by adapters only.
#[test]
fn use_cases_and_decisions_read_time_from_the_clock_port() {
    let mut all = Vec::new();
    files(&root().join("shared/src/usecase"), &mut all);
    files(&root().join("shared/src/domain"), &mut all);
    let mut offenders = Vec::new();
    for path in all.iter().filter(|p| p.extension().is_some_and(|e| e == "rs")) {
        let text = std::fs::read_to_string(path).unwrap();
        // Test modules come last in a file; they may use the real clock.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (number, line) in code.lines().enumerate() {
            let reads_it = line.contains("Timestamp::now") || line.contains("SystemTime::now");
            // The one adapter of the port.
            let the_port = path.ends_with("domain/time.rs");
            if reads_it && !the_port && !line.trim_start().starts_with("//") {
                offenders.push(format!("{}:{}: {}", path.display(), number + 1, line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "read the Clock port instead:\n{}", offenders.join("\n"));
}
