use super::*;

const DIGEST: &str = "sha256:6ccc2ae1df9d155ba83c597051611c42d60e09c6329dcb14a312cecc0a8e3900";

fn build(project: &str, status: &str, exported: &[(&str, &str)]) -> BuildReport {
    BuildReport {
        id: "shop-image:1".into(),
        project: project.into(),
        status: BuildStatus::parse(status),
        exported: exported
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        source_version: Some("f8afe6a7c3d1b2e4f5a6b7c8d9e0f1a2b3c4d5e6".into()),
    }
}

#[test]
fn a_build_vouches_only_for_the_digest_it_exported() {
    let pushed = BuildProvenance::Pushed {
        digest: DIGEST.into(),
    };
    let cases: Vec<(&str, Option<BuildReport>, Option<BuildProvenance>)> = vec![
        (
            "succeeded, exported",
            Some(build(
                "shop-image",
                "SUCCEEDED",
                &[("IMAGE_DIGEST", DIGEST)],
            )),
            Some(pushed.clone()),
        ),
        (
            "whitespace around the export",
            Some(build(
                "shop-image",
                "SUCCEEDED",
                &[("OTHER", "x"), ("IMAGE_DIGEST", &format!(" {DIGEST}\n"))],
            )),
            Some(pushed),
        ),
        (
            "still running",
            Some(build("shop-image", "IN_PROGRESS", &[])),
            Some(BuildProvenance::NotFinished),
        ),
        ("not reported yet", None, Some(BuildProvenance::NotFinished)),
        (
            "another project",
            Some(build("other", "SUCCEEDED", &[("IMAGE_DIGEST", DIGEST)])),
            None,
        ),
        (
            "failed",
            Some(build("shop-image", "FAILED", &[("IMAGE_DIGEST", DIGEST)])),
            None,
        ),
        (
            "no export",
            Some(build("shop-image", "SUCCEEDED", &[])),
            None,
        ),
        (
            "not a digest",
            Some(build(
                "shop-image",
                "SUCCEEDED",
                &[("IMAGE_DIGEST", "latest")],
            )),
            None,
        ),
        (
            "another commit (a fork's ref, any other version)",
            Some(BuildReport {
                source_version: Some("refs/pull/7/head".into()),
                ..build("shop-image", "SUCCEEDED", &[("IMAGE_DIGEST", DIGEST)])
            }),
            None,
        ),
        (
            "no source version reported",
            Some(BuildReport {
                source_version: None,
                ..build("shop-image", "SUCCEEDED", &[("IMAGE_DIGEST", DIGEST)])
            }),
            None,
        ),
        (
            "short digest",
            Some(build(
                "shop-image",
                "SUCCEEDED",
                &[("IMAGE_DIGEST", "sha256:abc")],
            )),
            None,
        ),
    ];
    for (name, report, expected) in cases {
        let got = build_provenance("shop-image:1", report.as_ref(), "shop-image", "f8afe6a7");
        match expected {
            Some(expected) => assert_eq!(got, expected, "{name}"),
            None => assert!(
                matches!(got, BuildProvenance::Refused { ref reason } if reason.contains("shop-image:1")),
                "{name}: {got:?}"
            ),
        }
    }
}

#[test]
fn an_image_is_trusted_only_at_the_recorded_digest() {
    assert!(check_image("f8afe6a7", Some(DIGEST), DIGEST).is_ok());
    let other = check_image("f8afe6a7", Some(DIGEST), "sha256:bb").unwrap_err();
    assert!(
        other.contains("sha256:bb") && other.contains(DIGEST),
        "{other}"
    );
    let legacy = check_image("f8afe6a7", None, DIGEST).unwrap_err();
    assert!(legacy.contains("no image digest was recorded"), "{legacy}");
}

/// The reconcile's report of pushes without a build.
mod stalled {
    use super::*;
    use crate::build::order::PushOrder;

    fn push(tag: &str, status: CommitStatus, order: u64, claimed_at: u64) -> UnbuiltPush {
        UnbuiltPush {
            image_tag: tag.into(),
            status,
            order: PushOrder::from_u64(order),
            claimed_at,
        }
    }

    #[test]
    fn only_long_stalled_pushes_newer_than_the_newest_build_are_reported() {
        let now = 10_000;
        let old = now - UNBUILT_PUSH_AFTER_SECONDS;
        let cases: Vec<(&str, Option<u64>, UnbuiltPush, bool)> = vec![
            (
                "claimed, start never recorded",
                Some(5),
                push("a", CommitStatus::Claimed, 6, old),
                true,
            ),
            (
                "start failed",
                Some(5),
                push("a", CommitStatus::StartFailed, 6, old - 1),
                true,
            ),
            (
                "nothing built yet",
                None,
                push("a", CommitStatus::Claimed, 1, old),
                true,
            ),
            (
                "still within the window (a redelivery may come)",
                Some(5),
                push("a", CommitStatus::Claimed, 6, old + 1),
                false,
            ),
            (
                "image tag already in ECR, no build vouches for it",
                Some(5),
                push("a", CommitStatus::ImageExists, 6, old),
                true,
            ),
            (
                "superseded by a newer build (running, built or failed)",
                Some(7),
                push("a", CommitStatus::StartFailed, 6, 0),
                false,
            ),
            (
                "the build's own order",
                Some(6),
                push("a", CommitStatus::Claimed, 6, 0),
                false,
            ),
        ];
        for (name, newest_build_order, unbuilt, reported) in cases {
            let view = ReconcileView {
                newest_build_order: newest_build_order.map(PushOrder::from_u64),
                unbuilt: vec![unbuilt.clone()],
                ..ReconcileView::default()
            };
            let got = stalled_pushes(&view, now);
            assert_eq!(got.len(), usize::from(reported), "{name}");
            if reported {
                assert_eq!(got[0], unbuilt, "{name}");
            }
        }
    }
}
