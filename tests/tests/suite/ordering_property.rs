//! The ordering rule as a property: N pushes whose deliveries (and build, ECR and reconcile
//! events) are duplicated, delayed and reordered at random, and each verifier's `PutImage` of
//! `latest` and its rollout land whenever they land (after another verifier moved the release on). Every decision is the production rule
//! ([`place_push`], [`claim_decision`], [`standing`]/[`may_release`], [`decide_rollout`] and
//! [`follow_last_rolled`]); the ledger's conditional writes are modelled in memory, with the same
//! conditions the DynamoDB adapter writes. After everything settles, `latest` and the running image
//! are the newest push's, and no service ever ran an older push after a newer one.
//!
//! 300 cases from a fixed seed; `ORDERING_CASES` and `ORDERING_SEED` change them.

use std::collections::HashMap;
use std::time::Duration;

use pushdeploy::build::order::{place_push, PlacedPush, PushFacts, PushOrder};
use pushdeploy::build::push::CommitSha;
use pushdeploy::ledger::{claim_decision, ClaimDecision, CommitRecord, CommitStatus};
use pushdeploy::rollout::rules::{
    decide_rollout, follow_last_rolled, forward_gate, LastRolled, RolloutDecision, RolloutGate,
    Running, VerifiedImage,
};
use pushdeploy::verify::release::{may_release, standing, CommitFacts, Release, Standing};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

#[derive(Debug, Clone)]
struct Push {
    sha: CommitSha,
    before: CommitSha,
    pushed_at: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    /// A delivery of push `n`; `fails`: its StartBuild fails (the claim is released).
    Delivery {
        push: usize,
        fails: bool,
    },
    BuildSucceeded {
        commit: usize,
    },
    EcrSha {
        commit: usize,
    },
    EcrLatest,
    Repushed {
        commit: usize,
    },
    Reconcile,
    /// A verifier's second half, after its decision: it moves `latest` onto the release it
    /// decided on (`decided[n]`), whenever that `PutImage` lands (a stale one included), and rolls.
    Converge {
        decided: usize,
    },
}

#[derive(Default)]
struct Sim {
    commits: Vec<CommitSha>,
    pushes: Vec<Push>,
    /// Push records by second (one branch).
    placed: HashMap<u64, Vec<PlacedPush>>,
    /// The ledger's commit items, by commit index.
    ledger: HashMap<usize, CommitRecord>,
    built: HashMap<usize, bool>,
    release: Option<Release>,
    latest: Option<String>,
    running: Option<String>,
    running_order: Option<PushOrder>,
    last: LastRolled,
    /// The push order of every image rolled to the service, in order.
    history: Vec<PushOrder>,
    queue: Vec<Event>,
    /// The release each verifier decided on, by [`Event::Converge`].
    decided: Vec<Release>,
    /// A roll of an image that was not the release when it rolled (a stale verifier's).
    stale_rolls: Vec<String>,
}

impl Sim {
    fn tag(&self, commit: usize) -> String {
        self.commits[commit].as_str()[..8].to_string()
    }

    fn commit_of(&self, sha: &CommitSha) -> usize {
        self.commits.iter().position(|c| c == sha).unwrap()
    }

    /// Puts `event` somewhere in what is still to come (delayed and reordered at random).
    fn schedule(&mut self, rng: &mut Rng, event: Event) {
        let at = rng.below(self.queue.len() + 1);
        self.queue.insert(at, event);
    }

    fn deliver(&mut self, rng: &mut Rng, n: usize, fails: bool) {
        let push = self.pushes[n].clone();
        let commit = self.commit_of(&push.sha);
        // The place: the trigger's `place` (Query the second, record the push if new).
        let same_second = self.placed.entry(push.pushed_at).or_default();
        let facts = PushFacts {
            pushed_at: push.pushed_at,
            before: Some(push.before.as_str()),
            after: &push.sha,
        };
        let order = place_push(&facts, same_second);
        if !same_second.iter().any(|p| p.after == push.sha.as_str()) {
            same_second.push(PlacedPush {
                before: Some(push.before.as_str().to_string()),
                after: push.sha.as_str().to_string(),
                order,
            });
        }
        // The claim (conditional put), or the raise of a known commit's order.
        let existing = self.ledger.get(&commit).cloned();
        match claim_decision(
            existing.as_ref(),
            push.sha.as_str(),
            "this-delivery",
            0,
            Duration::from_secs(300),
            false,
        ) {
            ClaimDecision::Claim { .. } | ClaimDecision::Ours => {
                let kept = existing.as_ref().and_then(|r| r.order);
                let record = CommitRecord {
                    sha: push.sha.as_str().to_string(),
                    status: if fails {
                        CommitStatus::StartFailed
                    } else {
                        CommitStatus::Building
                    },
                    build_id: None,
                    order: Some(order).max(kept),
                    claimed_at: 0,
                    claim_version: existing.map_or(1, |r| r.claim_version + 1),
                    claim_id: None,
                    build_token: None,
                };
                self.ledger.insert(commit, record);
                if !fails {
                    for _ in 0..=rng.below(2) {
                        self.schedule(rng, Event::BuildSucceeded { commit });
                        self.schedule(rng, Event::EcrSha { commit });
                    }
                }
            }
            ClaimDecision::Duplicate => {
                let record = self.ledger.get_mut(&commit).unwrap();
                if record.order.is_none_or(|known| known < order) {
                    record.order = Some(order);
                    if record.status == CommitStatus::Built {
                        self.schedule(rng, Event::Repushed { commit });
                    }
                }
            }
            ClaimDecision::TagCollision { .. } => unreachable!("distinct commits"),
        }
    }

    /// The verifier's first half: the subject's standing and the release moved forward. Its
    /// second half ([`Sim::converge`]) runs later, between any other events: what it decided is
    /// stale by then if another verifier moved the release on.
    fn verify(&mut self, rng: &mut Rng, subject: Option<usize>) {
        if let Some(commit) = subject {
            let facts = self.ledger.get(&commit).map(|r| CommitFacts {
                status: r.status,
                order: r.order,
            });
            let tag = self.tag(commit);
            if let Standing::Candidate(order) =
                standing(&tag, facts.as_ref(), self.release.as_ref())
            {
                // The release's conditional write.
                if may_release(self.release.as_ref(), order).is_ok() {
                    self.release = Some(Release {
                        image_tag: tag.clone(),
                        sha: None,
                        digest: format!("sha256:{tag}"),
                        order: Some(order),
                        held_until: self.release.as_ref().and_then(|r| r.held_until),
                        recent: Vec::new(),
                    });
                }
            }
        }
        let Some(release) = self.release.clone() else {
            return;
        };
        self.decided.push(release);
        let decided = self.decided.len() - 1;
        self.schedule(rng, Event::Converge { decided });
    }

    /// A verifier's second half: its `PutImage` of `latest` (onto what it decided, perhaps no
    /// longer the release), the release read again and followed (`converge_latest`), and the
    /// rollout, whose lock and gate (`forward_gate`) see the ledger as it is now.
    fn converge(&mut self, decided: usize) {
        let decided = self.decided[decided].clone();
        self.latest = Some(decided.image_tag.clone());
        let release = match &self.release {
            Some(now) if now.image_tag != decided.image_tag => {
                self.latest = Some(now.image_tag.clone());
                now.clone()
            }
            _ => decided,
        };
        let order = release.order;
        let running = Running {
            image: Some(self.running.clone().unwrap_or_else(|| "nginx".into())),
            order: self.running_order,
        };
        if decide_rollout(&running, &release.digest, order, false) != RolloutDecision::Deploy {
            return;
        }
        // The lock's condition, then the gate under the lock.
        if follow_last_rolled(&self.last, &release.digest, order, false).is_some() {
            return;
        }
        let image = VerifiedImage {
            image_tag: release.image_tag.clone(),
            sha: None,
            digest: release.digest.clone(),
            order,
        };
        let gate = RolloutGate {
            frozen: false,
            release: self.release.clone(),
        };
        if forward_gate(&gate, &image).is_err() {
            return;
        }
        if self.release.as_ref().map(|r| &r.image_tag) != Some(&release.image_tag) {
            self.stale_rolls.push(release.image_tag.clone());
        }
        self.running = Some(release.digest.clone());
        self.running_order = order;
        self.last = LastRolled {
            digest: Some(release.digest),
            order,
            held_until: None,
        };
        self.history.push(order.unwrap());
    }

    fn newest_built(&self) -> Option<usize> {
        self.ledger
            .iter()
            .filter(|(c, r)| r.status == CommitStatus::Built && self.built.contains_key(c))
            .max_by_key(|(_, r)| r.order)
            .map(|(c, _)| *c)
    }

    fn step(&mut self, rng: &mut Rng, event: Event) {
        match event {
            Event::Delivery { push, fails } => self.deliver(rng, push, fails),
            Event::BuildSucceeded { commit } => {
                self.built.insert(commit, true);
                if let Some(record) = self.ledger.get_mut(&commit) {
                    if record.status == CommitStatus::Building {
                        record.status = CommitStatus::Built;
                    }
                }
                self.verify(rng, Some(commit));
            }
            Event::EcrSha { commit } | Event::Repushed { commit } => self.verify(rng, Some(commit)),
            Event::EcrLatest => self.verify(rng, None),
            Event::Reconcile => {
                let newest = self.newest_built();
                self.verify(rng, newest);
            }
            Event::Converge { decided } => self.converge(decided),
        }
    }
}

fn sha(rng: &mut Rng) -> CommitSha {
    CommitSha::parse(&format!(
        "{:016x}{:016x}{:08x}",
        rng.next(),
        rng.next(),
        rng.next() as u32
    ))
    .unwrap()
}

/// One case: its pushes, a shuffled queue of their deliveries, and the events they cause.
fn run_case(seed: u64) -> Result<(), String> {
    let mut rng = Rng(seed | 1);
    let mut sim = Sim::default();
    let base = sha(&mut rng);
    let mut head = base.clone();
    let mut at = 1_795_429_423u64;
    let mut previous_gap = 1;
    let pushes = 2 + rng.below(7);
    for n in 0..pushes {
        // Pushes a second or more apart, or two in one second (a chain of two).
        let gap = match rng.below(10) {
            0..=2 if previous_gap != 0 && n > 0 => 0,
            3..=5 => 1,
            6..=7 => 2,
            _ => 7,
        };
        at += gap;
        previous_gap = gap;
        // Now and then a force push back to an earlier commit (not one pushed this second).
        let earlier: Vec<usize> = sim
            .pushes
            .iter()
            .filter(|p| p.pushed_at < at && p.sha != head)
            .map(|p| sim.commit_of(&p.sha))
            .collect();
        let commit = if !earlier.is_empty() && gap > 0 && rng.chance(15) {
            earlier[rng.below(earlier.len())]
        } else {
            sim.commits.push(sha(&mut rng));
            sim.commits.len() - 1
        };
        let after = sim.commits[commit].clone();
        sim.pushes.push(Push {
            sha: after.clone(),
            before: head.clone(),
            pushed_at: at,
        });
        head = after;
    }
    for n in 0..pushes {
        let deliveries = 1 + rng.below(3);
        for d in 0..deliveries {
            // Every push has a last delivery that starts its build; earlier ones may fail.
            let fails = d + 1 < deliveries && rng.chance(30);
            let at = rng.below(sim.queue.len() + 1);
            sim.queue.insert(at, Event::Delivery { push: n, fails });
        }
    }
    for _ in 0..rng.below(4) {
        let at = rng.below(sim.queue.len() + 1);
        let event = if rng.chance(50) {
            Event::Reconcile
        } else {
            Event::EcrLatest
        };
        sim.queue.insert(at, event);
    }
    let mut steps = 0;
    while !sim.queue.is_empty() {
        let event = sim.queue.remove(0);
        sim.step(&mut rng, event);
        steps += 1;
        if let [.., older, newer] = sim.history[..] {
            if newer <= older {
                return Err(format!(
                    "step {steps} ({event:?}): rolled order {newer} after {older}"
                ));
            }
        }
    }
    // The scheduled reconcile, run to its end.
    sim.step(&mut rng, Event::Reconcile);
    while !sim.queue.is_empty() {
        let event = sim.queue.remove(0);
        sim.step(&mut rng, event);
    }
    if !sim.stale_rolls.is_empty() {
        return Err(format!(
            "rolled {:?} when it was no longer the release",
            sim.stale_rolls
        ));
    }

    let newest = sim.commit_of(&sim.pushes.last().unwrap().sha);
    let expected = sim.tag(newest);
    if sim.latest.as_deref() != Some(expected.as_str()) {
        return Err(format!(
            "latest is {:?}, not the newest push's {expected}",
            sim.latest
        ));
    }
    if sim.running.as_deref() != Some(format!("sha256:{expected}").as_str()) {
        return Err(format!(
            "the service runs {:?}, not the newest push's {expected}",
            sim.running
        ));
    }
    Ok(())
}

#[test]
fn the_newest_push_wins_whatever_the_deliveries() {
    let cases: u64 = std::env::var("ORDERING_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let seed: u64 = std::env::var("ORDERING_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let mut failures = Vec::new();
    for case in 0..cases {
        let case_seed = seed.wrapping_add(case.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        if let Err(reason) = run_case(case_seed) {
            failures.push(format!("case {case} (seed {case_seed}): {reason}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

const DEFAULT_SEED: u64 = 0x005e_ed0f_0de5;
