use super::*;

fn image(digest: &str, tags: &[&str]) -> ImageInfo {
    ImageInfo {
        digest: format!("sha256:{digest}"),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        pushed_at: None,
    }
}

#[test]
fn the_gate() {
    let ours = image("bb", &["bbbbbbb2", LATEST]);
    let cases = [
        (
            "both tags on the recorded digest",
            "sha256:bb",
            Some(image("bb", &["bbbbbbb2", LATEST])),
            "verified",
            "",
        ),
        (
            "latest on another image",
            "sha256:bb",
            Some(image("aa", &["aaaaaaa1", LATEST])),
            "mismatch",
            "`latest` names sha256:aa",
        ),
        ("no latest", "sha256:bb", None, "mismatch", "does not exist"),
        (
            "the SHA tag names another digest than its build pushed",
            "sha256:cc",
            Some(image("bb", &["bbbbbbb2", LATEST])),
            "mismatch",
            "not the digest sha256:cc",
        ),
    ];
    for (name, recorded, latest, outcome, reason) in cases {
        let verification = check_pair("bbbbbbb2", recorded, &ours, latest.as_ref());
        assert_eq!(verification.name(), outcome, "{name}");
        assert!(
            verification.reason().unwrap_or_default().contains(reason),
            "{name}: {verification:?}"
        );
    }
}

#[test]
fn failures_are_the_outcomes_that_are_published() {
    let failures: Vec<&str> = [
        Verification::Verified {
            tag: "t".into(),
            digest: "d".into(),
        },
        Verification::Pending {
            tag: None,
            digest: None,
        },
        Verification::Superseded {
            tag: "t".into(),
            digest: None,
            newer_tag: "n".into(),
        },
        Verification::Held {
            tag: "t".into(),
            digest: None,
            held_until: PushOrder::from_u64(1),
        },
        Verification::BuildOnly {
            tag: "t".into(),
            digest: None,
        },
        Verification::Untrusted {
            tag: "t".into(),
            digest: None,
            reason: "r".into(),
        },
        Verification::Missing { tag: "t".into() },
        Verification::NothingToVerify,
    ]
    .iter()
    .filter(|v| v.is_failure())
    .map(Verification::name)
    .collect();
    assert_eq!(failures, ["untrusted", "missing"]);
}
