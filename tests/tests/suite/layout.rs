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
    let offenders: Vec<String> = sources(&["shared/src", "functions", "cli/src"])
        .into_iter()
        .filter(|(name, _)| !name.starts_with("shared/src/aws/") && name != "shared/src/aws.rs")
        .filter(|(name, _)| !name.starts_with("cli/src/aws/") && name != "cli/src/aws.rs")
        .filter(|(_, text)| {
            text.lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .any(|line| line.contains("aws_sdk_") || line.contains("aws_config::"))
        })
        .map(|(name, _)| name)
        .collect();
    assert!(
        offenders.is_empty(),
        "SDK crates used outside shared/src/aws/ and cli/src/aws/: {offenders:?}"
    );
}

/// The CLI's crates (aws-config's SSO and credential-process providers, the CloudFormation,
/// Lambda, SQS, CloudWatch and STS clients, clap, comfy-table) never reach the Lambda functions:
/// the CLI is a workspace of its own, so the functions' workspace (what `sam build` and `cargo
/// lambda` build, features unified across its members) resolves without them.
#[test]
fn the_cli_s_crates_never_reach_the_functions() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "tree",
            "--workspace",
            "--edges",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p} [{f}]", "--offline"])
        .output()
        .expect("cargo tree");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    for leak in [
        "aws-sdk-sso ",
        "aws-sdk-ssooidc ",
        "aws-sdk-cloudformation ",
        "aws-sdk-lambda ",
        "aws-sdk-sqs ",
        "aws-sdk-cloudwatch ",
        "clap ",
        "comfy-table ",
        "pushdeploy-cli ",
    ] {
        assert!(
            !tree.contains(leak),
            "the functions' workspace resolves {leak}"
        );
    }
    let config = tree
        .lines()
        .find(|l| l.starts_with("aws-config "))
        .expect("aws-config is in the functions' tree");
    assert!(
        !config.contains("sso") && !config.contains("credentials-process"),
        "{config}"
    );
}

#[test]
fn no_source_file_is_over_about_400_lines() {
    const LIMIT: usize = 420;
    let long: Vec<String> = sources(&[
        "shared/src",
        "functions",
        "tests/src",
        "bench/src",
        "cli/src",
    ])
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

/// Source files of `folders` without their test modules (a `tests.rs` or `scenarios.rs` file, or
/// what follows a file's `#[cfg(test)]`).
fn without_tests(folders: &[&str]) -> Vec<(String, String)> {
    sources(folders)
        .into_iter()
        .filter(|(name, _)| !name.ends_with("/tests.rs") && !name.ends_with("/scenarios.rs"))
        .map(|(name, text)| {
            let product = match text.find("\n#[cfg(test)]") {
                Some(at) => text[..at].to_string(),
                None => text,
            };
            (name, product)
        })
        .collect()
}

/// Product code: the shared library and the functions.
fn product_code() -> Vec<(String, String)> {
    without_tests(&["shared/src", "functions", "cli/src"])
}

/// A line with its string and character literals and its comment blanked, for brace counting.
fn code_of(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        match (in_string, c) {
            (true, '\\') => {
                chars.next();
            }
            (true, '"') => in_string = false,
            (true, _) => {}
            (false, '"') => in_string = true,
            (false, '/') if chars.peek() == Some(&'/') => break,
            (false, '\'') => {
                // A char literal ('{', '\'') or a lifetime ('a): skip the literal only.
                let rest: String = chars.clone().take(3).collect();
                if rest.starts_with('\\') {
                    chars.nth(2);
                } else if rest.chars().nth(1) == Some('\'') {
                    chars.nth(1);
                }
            }
            (false, c) => out.push(c),
        }
    }
    out
}

/// Each function's name and length in lines, from its signature to its closing brace.
fn function_lengths(text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let code = code_of(line);
        let Some(at) = code.find("fn ") else {
            continue;
        };
        let before = code[..at].trim();
        let is_item = before
            .split_whitespace()
            .all(|w| ["pub", "async", "const", "unsafe"].contains(&w) || w.starts_with("pub("));
        let name: String = code[at + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !is_item || name.is_empty() {
            continue;
        }
        let mut depth = 0i32;
        let mut opened = false;
        for (end, line) in lines.iter().enumerate().skip(start) {
            let code = code_of(line);
            if !opened && code.trim_end().ends_with(';') && !code.contains('{') {
                break;
            }
            for c in code.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if opened && depth == 0 {
                found.push((name.clone(), end - start + 1));
                break;
            }
        }
    }
    found
}

#[test]
fn no_product_function_is_over_about_60_lines() {
    const LIMIT: usize = 60;
    let long: Vec<String> = product_code()
        .into_iter()
        .flat_map(|(file, text)| {
            function_lengths(&text)
                .into_iter()
                .filter(|(_, lines)| *lines > LIMIT)
                .map(move |(name, lines)| format!("{file}: {name} ({lines} lines)"))
        })
        .collect();
    assert!(long.is_empty(), "over {LIMIT} lines: {long:#?}");
    // The measure itself: a function is counted from its signature to its closing brace.
    let sample = "pub async fn f(\n    a: u8,\n) -> u8 {\n    let s = \"}\";\n    a\n}\nfn g();";
    assert_eq!(function_lengths(sample), vec![("f".to_string(), 6)]);
}

#[test]
fn imports_are_explicit_outside_test_modules() {
    let globbed: Vec<String> =
        without_tests(&["shared/src", "functions", "tests/src", "bench/src"])
            .into_iter()
            .filter(|(_, text)| text.lines().any(|l| l.trim() == "use super::*;"))
            .map(|(name, _)| name)
            .collect();
    assert!(globbed.is_empty(), "`use super::*` in {globbed:?}");
}

#[test]
fn no_function_takes_too_many_arguments() {
    let allowed: Vec<String> = sources(&["shared/src", "functions", "tests/src", "bench/src"])
        .into_iter()
        .filter(|(_, text)| text.contains("too_many_arguments"))
        .map(|(name, _)| name)
        .collect();
    assert!(allowed.is_empty(), "{allowed:?}");
}
