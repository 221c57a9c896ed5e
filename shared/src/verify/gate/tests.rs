use super::*;

fn policy(block: &str, ignore: &str) -> GatePolicy {
    GatePolicy {
        scan: ScanGate::Basic,
        block_severities: parse_severities(block).unwrap(),
        ignore: parse_vulnerability_ids(ignore).unwrap(),
        wait_seconds: 600,
        require_signature: false,
    }
}

fn finding(id: &str, severity: &str) -> Finding {
    Finding {
        id: id.into(),
        severity: severity.into(),
    }
}

fn complete(findings: &[(&str, &str)]) -> ScanState {
    ScanState::Complete {
        findings: findings.iter().map(|(i, s)| finding(i, s)).collect(),
    }
}

fn name(verdict: &GateVerdict) -> &'static str {
    match verdict {
        GateVerdict::Pass => "pass",
        GateVerdict::Pending { .. } => "scan_pending",
        GateVerdict::Vulnerable { .. } => "vulnerable",
        GateVerdict::ScanFailed { .. } => "scan_failed",
        GateVerdict::ScanTimeout { .. } => "scan_timeout",
        GateVerdict::Unsigned { .. } => "unsigned",
    }
}

#[test]
fn the_scan_decides_by_blocking_severity_ignored_ids_and_time() {
    let critical = [("CVE-2024-0001", "CRITICAL"), ("CVE-2024-0002", "LOW")];
    let high = [("CVE-2024-0003", "HIGH")];
    let failed = ScanState::Failed {
        status: "UNSUPPORTED_IMAGE".into(),
        reason: "unsupported OS".into(),
    };
    let cases = [
        (
            "a critical finding",
            policy("CRITICAL", ""),
            complete(&critical),
            0,
            "vulnerable",
        ),
        (
            "high only, default",
            policy("CRITICAL", ""),
            complete(&high),
            0,
            "pass",
        ),
        (
            "high, blocked",
            policy("CRITICAL,high", ""),
            complete(&high),
            0,
            "vulnerable",
        ),
        (
            "accepted id",
            policy("CRITICAL", "cve-2024-0001"),
            complete(&critical),
            0,
            "pass",
        ),
        ("clean", policy("CRITICAL", ""), complete(&[]), 0, "pass"),
        (
            "not scanned yet",
            policy("CRITICAL", ""),
            ScanState::NotDone,
            599,
            "scan_pending",
        ),
        (
            "never scanned",
            policy("CRITICAL", ""),
            ScanState::NotDone,
            600,
            "scan_timeout",
        ),
        (
            "failed scan",
            policy("CRITICAL", ""),
            failed,
            0,
            "scan_failed",
        ),
    ];
    for (case, policy, scan, waited, expected) in cases {
        let verdict = judge_gate(&policy, &scan, &SignatureState::None, waited);
        assert_eq!(name(&verdict), expected, "{case}: {verdict:?}");
    }
    let off = GatePolicy {
        scan: ScanGate::Off,
        ..policy("CRITICAL", "")
    };
    let verdict = judge_gate(&off, &ScanState::NotDone, &SignatureState::None, 9_999);
    assert_eq!(verdict, GateVerdict::Pass, "SCAN_GATE=off reads no scan");
}

#[test]
fn a_vulnerable_image_is_reported_with_counts_and_each_blocking_id_once() {
    let scan = complete(&[
        ("CVE-2024-0002", "CRITICAL"),
        ("CVE-2024-0001", "CRITICAL"),
        ("CVE-2024-0002", "CRITICAL"),
        ("GHSA-xxxx-yyyy-zzzz", "HIGH"),
        ("CVE-2024-0009", "LOW"),
    ]);
    let verdict = judge_gate(
        &policy("CRITICAL", "ghsa-xxxx-yyyy-zzzz"),
        &scan,
        &SignatureState::None,
        0,
    );
    let GateVerdict::Vulnerable { counts, blocking } = verdict else {
        panic!("{verdict:?}");
    };
    assert_eq!(blocking, vec!["CVE-2024-0001", "CVE-2024-0002"]);
    assert_eq!(counts.get("CRITICAL"), Some(&3));
    assert_eq!(counts.get("HIGH"), Some(&1));
    assert_eq!(counts.get("LOW"), Some(&1));
}

#[test]
fn a_required_signature_must_be_complete() {
    let signed = GatePolicy {
        require_signature: true,
        ..policy("CRITICAL", "")
    };
    let clean = complete(&[]);
    let failed = SignatureState::Failed {
        reason: "KMS key disabled".into(),
    };
    let cases = [
        (SignatureState::Complete, 0, "pass"),
        (SignatureState::InProgress, 10, "scan_pending"),
        (SignatureState::InProgress, 600, "unsigned"),
        (SignatureState::None, 0, "scan_pending"),
        (SignatureState::None, 600, "unsigned"),
        (failed, 0, "unsigned"),
    ];
    for (signature, waited, expected) in cases {
        let verdict = judge_gate(&signed, &clean, &signature, waited);
        assert_eq!(name(&verdict), expected, "{signature:?}: {verdict:?}");
    }
    // The scan is judged first: a vulnerable image is vulnerable, signed or not.
    let critical = complete(&[("CVE-2024-0001", "CRITICAL")]);
    let verdict = judge_gate(&signed, &critical, &SignatureState::Complete, 0);
    assert_eq!(name(&verdict), "vulnerable");
}

#[test]
fn the_settings_parse_or_name_what_is_wrong() {
    assert_eq!(ScanGate::parse("enhanced"), Ok(ScanGate::Enhanced));
    assert_eq!(ScanGate::parse(""), Ok(ScanGate::Basic));
    assert!(ScanGate::parse("strict").unwrap_err().contains("strict"));
    assert_eq!(
        parse_severities(" critical , HIGH ").unwrap(),
        BTreeSet::from(["CRITICAL".to_string(), "HIGH".to_string()])
    );
    assert!(parse_severities("SEVERE").unwrap_err().contains("SEVERE"));
    assert!(parse_severities(" , ").is_err());
    assert_eq!(
        parse_vulnerability_ids("CVE-2024-1, ghsa-aaaa-bbbb-cccc").unwrap(),
        HashSet::from(["CVE-2024-1".to_string(), "GHSA-AAAA-BBBB-CCCC".to_string()])
    );
    assert!(parse_vulnerability_ids("OSV-1")
        .unwrap_err()
        .contains("OSV-1"));
    assert!(parse_vulnerability_ids("").unwrap().is_empty());
}

#[test]
fn scan_statuses() {
    for (status, progress) in [
        ("COMPLETE", ScanProgress::Complete),
        ("ACTIVE", ScanProgress::Complete),
        ("IN_PROGRESS", ScanProgress::NotDone),
        ("PENDING", ScanProgress::NotDone),
        ("FAILED", ScanProgress::Failed),
        ("UNSUPPORTED_IMAGE", ScanProgress::Failed),
        ("SCAN_ELIGIBILITY_EXPIRED", ScanProgress::Failed),
        ("FINDINGS_UNAVAILABLE", ScanProgress::Failed),
        ("LIMIT_EXCEEDED", ScanProgress::Failed),
        ("IMAGE_ARCHIVED", ScanProgress::Failed),
        ("A_STATUS_FROM_THE_FUTURE", ScanProgress::Failed),
        ("", ScanProgress::Failed),
    ] {
        assert_eq!(scan_progress(status), progress, "{status}");
    }
}

#[test]
fn signing_statuses() {
    let statuses = |list: &[(&str, Option<&str>)]| {
        list.iter()
            .map(|(s, r)| (s.to_string(), r.map(str::to_string)))
            .collect::<Vec<_>>()
    };
    assert_eq!(signature_state(&[]), SignatureState::None);
    assert_eq!(
        signature_state(&statuses(&[
            ("FAILED", Some("key disabled")),
            ("COMPLETE", None)
        ])),
        SignatureState::Complete
    );
    assert_eq!(
        signature_state(&statuses(&[("FAILED", None), ("IN_PROGRESS", None)])),
        SignatureState::InProgress
    );
    assert_eq!(
        signature_state(&statuses(&[("FAILED", Some("key disabled"))])),
        SignatureState::Failed {
            reason: "key disabled".into()
        }
    );
}

#[test]
fn each_verdict_is_its_verification_outcome() {
    use crate::verify::tag_pair::VerificationOutcome as O;
    let cases = [
        (GateVerdict::Pass, O::Verified),
        (GateVerdict::Pending { waited_seconds: 5 }, O::ScanPending),
        (
            GateVerdict::Vulnerable {
                counts: [("CRITICAL".to_string(), 2)].into(),
                blocking: vec!["CVE-2026-1".into()],
            },
            O::Vulnerable,
        ),
        (
            GateVerdict::ScanFailed { reason: "r".into() },
            O::ScanFailed,
        ),
        (
            GateVerdict::ScanTimeout {
                waited_seconds: 601,
            },
            O::ScanTimeout,
        ),
        (GateVerdict::Unsigned { reason: "r".into() }, O::Unsigned),
    ];
    for (verdict, outcome) in cases {
        let verification = verdict.verification("f8afe6a7", "sha256:aa");
        assert_eq!(verification.outcome(), outcome);
        assert_eq!(verification.tag(), Some("f8afe6a7"));
        assert_eq!(verification.digest(), Some("sha256:aa"));
        // Every outcome but a pass is a failure, except a pending scan.
        assert_eq!(
            verification.is_failure(),
            !matches!(outcome, O::Verified | O::ScanPending)
        );
        assert_eq!(verification.reason().is_some(), outcome != O::Verified);
    }
    let vulnerable = GateVerdict::Vulnerable {
        counts: [("CRITICAL".to_string(), 12), ("LOW".to_string(), 3)].into(),
        blocking: (1..=12).map(|n| format!("CVE-2026-{n}")).collect(),
    }
    .verification("f8afe6a7", "sha256:aa");
    let reason = vulnerable.reason().unwrap();
    assert!(reason.contains("CVE-2026-1, CVE-2026-2"), "{reason}");
    assert!(reason.contains("and 2 more"), "{reason}");
    assert!(reason.contains("CRITICAL 12, LOW 3"), "{reason}");
}
