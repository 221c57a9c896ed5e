use super::*;

const SHA: &str = "F8AFE6A7C3D1B2E4F5A6B7C8D9E0F1A2B3C4D5E6";

fn pushed(reference: &str, after: &str, deleted: bool) -> PushedRef {
    PushedRef {
        source: Source::GitHub,
        repository: "acme/shop".into(),
        git_ref: GitRef::parse(reference),
        after: Some(CommitSha::parse(after).unwrap()),
        before: None,
        pushed_at: 1_763_893_423,
        deleted,
        pushed_by: None,
    }
}

fn main_only() -> BranchFilter {
    BranchFilter::parse_list("main").unwrap()
}

#[test]
fn commit_sha_is_normalised_to_lowercase_and_validated() {
    assert_eq!(
        CommitSha::parse(SHA).unwrap().as_str(),
        "f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6"
    );
    assert!(CommitSha::parse(&"a".repeat(64)).is_ok());
    for bad in [
        "",
        "f8afe6a7",
        &"g".repeat(40),
        &"a".repeat(41),
        "../../etc/passwd",
    ] {
        assert!(CommitSha::parse(bad).is_err(), "{bad} accepted");
    }
}

#[test]
fn image_tag_is_the_lowercase_sha_prefix() {
    let sha = CommitSha::parse(SHA).unwrap();
    assert_eq!(sha.image_tag(TagLength::DEFAULT), "f8afe6a7");
    assert_eq!(sha.image_tag(TagLength::new(12).unwrap()), "f8afe6a7c3d1");
    assert_eq!(sha.image_tag(TagLength::new(40).unwrap()), sha.as_str());
}

#[test]
fn tag_length_bounds() {
    assert!(TagLength::new(6).is_none());
    assert!(TagLength::new(41).is_none());
    assert_eq!(TagLength::new(7).unwrap().get(), 7);
}

#[test]
fn sha_tag_form() {
    let len = TagLength::DEFAULT;
    assert!(len.is_sha_tag("f8afe6a7"));
    assert!(!len.is_sha_tag("latest"));
    assert!(!len.is_sha_tag("F8AFE6A7"));
    assert!(!len.is_sha_tag("f8afe6a"));
}

#[test]
fn branch_filter_exact_and_prefix() {
    let filter = BranchFilter::parse_list(" main , release/* ,").unwrap();
    assert!(filter.matches("main"));
    assert!(filter.matches("release/1.2"));
    assert!(!filter.matches("mainline"));
    assert!(!filter.matches("feature/x"));
    assert!(BranchFilter::parse_list(" , ").is_none());
    assert!(filter.covers("main"));
    assert!(filter.covers("release/1.2"));
    assert!(filter.covers("release/*"));
    assert!(filter.covers("release/v2/*"));
    assert!(!filter.covers("hotfix/*"));
    assert!(!filter.covers("rel*"));
    assert!(!filter.covers("feature"));
}

#[test]
fn a_push_to_main_builds_its_commit() {
    let request = decide_build(
        &pushed("refs/heads/main", SHA, false),
        "acme/shop",
        &main_only(),
    )
    .unwrap();
    assert_eq!(request.branch, "main");
    assert_eq!(request.sha.as_str(), SHA.to_ascii_lowercase());
}

#[test]
fn repository_names_compare_case_insensitively() {
    assert!(decide_build(
        &pushed("refs/heads/main", SHA, false),
        "ACME/Shop",
        &main_only()
    )
    .is_ok());
}

#[test]
fn ignored_pushes_say_why() {
    let zero = "0".repeat(40);
    let cases: Vec<(PushedRef, &str, IgnoreReason)> = vec![
        (
            pushed("refs/heads/main", SHA, false),
            "acme/other",
            IgnoreReason::OtherRepository {
                got: "acme/shop".into(),
                expected: "acme/other".into(),
            },
        ),
        (
            pushed("refs/heads/main", &zero, true),
            "acme/shop",
            IgnoreReason::BranchDeleted {
                branch: "main".into(),
            },
        ),
        (
            // `after` all zeros is a deletion even without the flag.
            pushed("refs/heads/main", &zero, false),
            "acme/shop",
            IgnoreReason::BranchDeleted {
                branch: "main".into(),
            },
        ),
        (
            pushed("refs/tags/v1.0.0", SHA, false),
            "acme/shop",
            IgnoreReason::TagPush {
                tag: "v1.0.0".into(),
            },
        ),
        (
            pushed("refs/heads/feature/x", SHA, false),
            "acme/shop",
            IgnoreReason::OtherBranch {
                branch: "feature/x".into(),
                patterns: "main".into(),
            },
        ),
        (
            pushed("refs/notes/commits", SHA, false),
            "acme/shop",
            IgnoreReason::NotABranch {
                reference: "refs/notes/commits".into(),
            },
        ),
    ];
    for (push, repository, expected) in cases {
        assert_eq!(
            decide_build(&push, repository, &main_only()),
            Err(expected),
            "{push:?}"
        );
    }
}

#[test]
fn a_branch_push_without_a_commit_is_ignored() {
    let mut push = pushed("refs/heads/main", SHA, false);
    push.after = None;
    assert_eq!(
        decide_build(&push, "acme/shop", &main_only()),
        Err(IgnoreReason::NoCommit {
            branch: "main".into()
        })
    );
}
