//! The house rules the layout section of the README states, checked on the tree itself.

use std::path::{Path, PathBuf};

use pushdeploy_tests::workspace_root;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source folder") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources(folders: &[&str]) -> Vec<(String, String)> {
    let root = workspace_root();
    let mut files = Vec::new();
    for folder in folders {
        rust_files(&root.join(folder), &mut files);
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("a source file");
            let name = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .display()
                .to_string();
            (name, text)
        })
        .collect()
}

#[test]
fn only_the_aws_adapters_import_the_sdk() {
    let offenders: Vec<String> = sources(&["shared/src", "functions"])
        .into_iter()
        .filter(|(name, _)| !name.starts_with("shared/src/aws/"))
        .filter(|(_, text)| {
            text.lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .any(|line| line.contains("aws_sdk_") || line.contains("aws_config::"))
        })
        .map(|(name, _)| name)
        .collect();
    assert!(
        offenders.is_empty(),
        "SDK crates used outside shared/src/aws/: {offenders:?}"
    );
}

#[test]
fn no_source_file_is_over_about_400_lines() {
    const LIMIT: usize = 420;
    let long: Vec<String> = sources(&["shared/src", "functions", "tests/src", "bench/src"])
        .into_iter()
        // Unit-test modules in their own files are tests, not source.
        .filter(|(name, _)| !name.ends_with("/tests.rs"))
        .filter(|(_, text)| text.lines().count() > LIMIT)
        .map(|(name, text)| format!("{name} ({} lines)", text.lines().count()))
        .collect();
    assert!(long.is_empty(), "over {LIMIT} lines: {long:?}");
}

#[test]
fn no_answer_is_ever_null() {
    let offenders: Vec<String> = sources(&["shared/src", "functions"])
        .into_iter()
        .filter(|(_, text)| {
            text.contains("unwrap_or(Value::Null)")
                || text.contains("unwrap_or(serde_json::Value::Null)")
        })
        .map(|(name, _)| name)
        .collect();
    assert!(offenders.is_empty(), "{offenders:?}");
}
