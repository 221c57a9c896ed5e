//! The stand-in over HTTP, as a client sees it.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::http::{now_epoch, rfc3339};
use super::{GitHubFault, GitHubStandIn, StandInAuth, APP_PRIVATE_KEY, APP_PUBLIC_KEY};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// A request with the headers GitHub asks for.
fn request(method: &str, url: &str, auth: &str) -> ureq::Request {
    ureq::request(method, url)
        .timeout(Duration::from_secs(10))
        .set("Accept", "application/vnd.github+json")
        .set("X-GitHub-Api-Version", "2022-11-28")
        .set("Authorization", auth)
}

/// The status and answer of a request (an answer of any status; no transport error).
fn send(method: &str, url: &str, auth: &str, body: Option<Value>) -> (u16, ureq::Response) {
    let request = request(method, url, auth);
    let result = match body {
        Some(body) => request.send_json(body),
        None => request.call(),
    };
    match result {
        Ok(response) => (response.status(), response),
        Err(ureq::Error::Status(status, response)) => (status, response),
        Err(e) => panic!("{method} {url}: {e}"),
    }
}

fn json_of(response: ureq::Response) -> Value {
    response.into_json().expect("a JSON answer")
}

fn token_stand_in() -> GitHubStandIn {
    GitHubStandIn::start(StandInAuth::Token("t0ken".to_string()))
}

#[test]
fn posted_statuses_combine() {
    let github = token_stand_in();
    let url = format!("{}/repos/acme/shop/statuses/{SHA}", github.url);
    let pending =
        json!({"state": "pending", "context": "pushdeploy/build", "description": "Building"});
    let (status, answer) = send("POST", &url, "Bearer t0ken", Some(pending));
    assert_eq!(status, 201);
    assert_eq!(json_of(answer)["context"], "pushdeploy/build");
    let success = json!({"state": "success", "context": "pushdeploy/build"});
    assert_eq!(send("POST", &url, "token t0ken", Some(success)).0, 201);

    let combined_url = format!("{}/repos/acme/shop/commits/{SHA}/status", github.url);
    let (status, answer) = send("GET", &combined_url, "token t0ken", None);
    assert_eq!(status, 200);
    let combined = json_of(answer);
    assert_eq!(combined["state"], "success");
    assert_eq!(combined["total_count"], 1);
    assert_eq!(send("GET", &combined_url, "token wrong", None).0, 401);

    assert_eq!(github.statuses(SHA).len(), 2);
    assert_eq!(github.rejections(), Vec::<String>::new());
}

#[test]
fn a_missing_header_is_a_rejection() {
    let github = token_stand_in();
    let url = format!("{}/repos/acme/shop/commits/{SHA}/status", github.url);
    let result = ureq::get(&url)
        .set("X-GitHub-Api-Version", "2022-11-28")
        .set("Authorization", "token t0ken")
        .call();
    assert!(matches!(result, Err(ureq::Error::Status(400, _))));
    let rejections = github.rejections();
    assert_eq!(rejections.len(), 1);
    assert!(rejections[0].contains("Accept"), "{rejections:?}");
    assert_eq!(github.calls()[0].answered, 400);
}

fn jwt(claims: Value) -> String {
    let key = EncodingKey::from_rsa_pem(APP_PRIVATE_KEY.as_bytes()).expect("the test App key");
    encode(&Header::new(Algorithm::RS256), &claims, &key).expect("a signed JWT")
}

#[test]
fn an_app_jwt_gets_a_token_and_a_bad_one_does_not() {
    let github = GitHubStandIn::start(StandInAuth::App {
        app_id: 42,
        installation_id: 7,
        public_key_pem: APP_PUBLIC_KEY.to_string(),
        token_ttl: Duration::from_secs(3600),
    });
    let url = format!("{}/app/installations/7/access_tokens", github.url);
    let now = now_epoch() as i64;
    let genuine = jwt(json!({"iss": 42, "iat": now - 60, "exp": now + 540}));
    let (status, answer) = send("POST", &url, &format!("Bearer {genuine}"), None);
    assert_eq!(status, 201);
    let token = json_of(answer)["token"]
        .as_str()
        .expect("a token")
        .to_string();
    let combined_url = format!("{}/repos/acme/shop/commits/{SHA}/status", github.url);
    let auth = format!("Bearer {token}");
    assert_eq!(send("GET", &combined_url, &auth, None).0, 200);

    let expired = jwt(json!({"iss": "42", "iat": now - 1000, "exp": now - 400}));
    assert_eq!(
        send("POST", &url, &format!("Bearer {expired}"), None).0,
        401
    );
    // Claims changed after signing.
    let parts: Vec<&str> = genuine.split('.').collect();
    let claims = json!({"iss": 42, "iat": now - 60, "exp": now + 3000}).to_string();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims),
        parts[2]
    );
    assert_eq!(send("POST", &url, &format!("Bearer {forged}"), None).0, 401);

    assert_eq!(github.tokens_issued(), 1);
    assert_eq!(github.rejections(), Vec::<String>::new());
}

#[test]
fn rate_limited_answers_say_when_the_limit_resets() {
    let github = token_stand_in();
    let url = format!("{}/repos/acme/shop/commits/{SHA}/status", github.url);
    let fault = GitHubFault::RateLimited { reset_in_secs: 30 };
    github.inject("GET", "/repos/acme/shop/commits/", fault, Some(1));
    let (status, answer) = send("GET", &url, "token t0ken", None);
    assert_eq!(status, 403);
    assert_eq!(answer.header("x-ratelimit-limit"), Some("5000"));
    assert_eq!(answer.header("x-ratelimit-remaining"), Some("0"));
    let reset: u64 = answer
        .header("x-ratelimit-reset")
        .and_then(|v| v.parse().ok())
        .expect("an x-ratelimit-reset");
    assert!(reset >= now_epoch() + 29, "{reset}");

    let (status, answer) = send("GET", &url, "token t0ken", None);
    assert_eq!(status, 200);
    assert_eq!(answer.header("x-ratelimit-remaining"), Some("4999"));
}

#[test]
fn a_lost_answer_still_applies_the_deployment() {
    let github = token_stand_in();
    let url = format!("{}/repos/acme/shop/deployments", github.url);
    github.inject(
        "POST",
        "/repos/acme/shop/deployments",
        GitHubFault::AppliedAnswerLost,
        Some(1),
    );
    let body =
        json!({"ref": SHA, "environment": "staging", "auto_merge": false, "required_contexts": []});
    let result = request("POST", &url, "token t0ken").send_json(body);
    assert!(matches!(result, Err(ureq::Error::Transport(_))));

    let deployments = github.deployments(SHA);
    assert_eq!(deployments.len(), 1);
    assert_eq!(deployments[0].environment, "staging");
    assert_eq!(deployments[0].required_contexts, Some(vec![]));
    assert_eq!(github.calls()[0].answered, 0);
    assert_eq!(github.rejections(), Vec::<String>::new());
}

#[test]
fn a_success_makes_the_prior_success_inactive() {
    let github = token_stand_in();
    let url = format!("{}/repos/acme/shop/deployments", github.url);
    for _ in 0..2 {
        let body = json!({"ref": SHA, "environment": "staging", "required_contexts": []});
        let (status, answer) = send("POST", &url, "token t0ken", Some(body));
        assert_eq!(status, 201);
        let id = json_of(answer)["id"].as_u64().expect("an id");
        let statuses = format!("{url}/{id}/statuses");
        let success = json!({"state": "success", "description": "Deployed"});
        assert_eq!(send("POST", &statuses, "token t0ken", Some(success)).0, 201);
    }
    let deployments = github.deployments(SHA);
    let states = |i: usize| -> Vec<String> {
        deployments[i]
            .statuses
            .iter()
            .map(|(s, _)| s.clone())
            .collect()
    };
    assert_eq!(states(0), ["success", "inactive"]);
    assert_eq!(states(1), ["success"]);
    assert_eq!(github.rejections(), Vec::<String>::new());
}

#[test]
fn times_are_rfc3339_utc() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_796_338_800), "2026-12-03T23:00:00Z");
}
