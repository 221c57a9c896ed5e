//! Every sample in `events/` is a real-shaped event that some test feeds to its function.

use pushdeploy_tests::workspace_root;

#[test]
fn every_sample_event_is_valid_json_and_used_by_a_test() {
    let root = workspace_root();
    let mut sources = String::new();
    for dir in ["tests/tests/suite", "tests/src"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                sources.push_str(&std::fs::read_to_string(path).unwrap());
            }
        }
    }
    let mut count = 0;
    for function in std::fs::read_dir(root.join("events")).unwrap() {
        let function = function.unwrap().path();
        let function_name = function.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            root.join("functions").join(&function_name).exists(),
            "events/{function_name} names no function"
        );
        for sample in std::fs::read_dir(&function).unwrap() {
            let sample = sample.unwrap().path();
            let name = sample.file_name().unwrap().to_string_lossy().to_string();
            let text = std::fs::read_to_string(&sample).unwrap();
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap_or_else(|e| panic!("events/{function_name}/{name}: {e}"));
            assert!(
                sources.contains(&format!("{function_name}/{name}"))
                    || sources.contains(&format!("\"{name}\"")),
                "events/{function_name}/{name} is used by no test"
            );
            count += 1;
        }
    }
    assert!(count >= 18, "{count} samples");
}
