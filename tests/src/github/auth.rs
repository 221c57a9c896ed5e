//! Credentials: a fixed token, or a GitHub App's installation tokens, issued for a JWT signed
//! with the App's key (`POST /app/installations/{installation_id}/access_tokens`).

use std::time::SystemTime;

use jsonwebtoken::{decode, Algorithm, DecodingKey, TokenData, Validation};
use serde_json::{json, Map, Value};

use super::http::{epoch_of, now_epoch, rfc3339, Answer};
use super::{StandInAuth, State};

/// The longest JWT lifetime GitHub accepts (`exp - iat`), in seconds.
const MAX_JWT_LIFETIME: i64 = 600;
/// The clock drift GitHub tolerates, in seconds.
const LEEWAY: u64 = 60;

fn bad_credentials() -> Answer {
    Answer::message(401, "Bad credentials")
}

/// The `Authorization` header's scheme and credential.
fn credential<'r>(state: &mut State, header: Option<&'r str>) -> Result<(String, &'r str), Answer> {
    let Some(header) = header else {
        state.note("no Authorization header");
        return Err(Answer::message(401, "Requires authentication"));
    };
    match header.trim().split_once(' ') {
        Some((scheme, value)) if !value.trim().is_empty() => {
            Ok((scheme.to_ascii_lowercase(), value.trim()))
        }
        _ => {
            let problem = "Authorization is neither `Bearer <token>` nor `token <token>`";
            state.note(problem);
            Err(bad_credentials())
        }
    }
}

/// Whether a repository request carries a valid credential (`Err`: the answer, 401).
pub(super) fn check_token(state: &mut State, request: &super::http::Request) -> Result<(), Answer> {
    let (scheme, token) = credential(state, request.header("authorization"))?;
    if scheme != "bearer" && scheme != "token" {
        let problem = format!("Authorization scheme {scheme:?}, not Bearer or token");
        state.note(&problem);
        return Err(bad_credentials());
    }
    let valid = match &state.auth {
        StandInAuth::Token(expected) => token == expected.as_str(),
        StandInAuth::App { .. } => {
            let now = SystemTime::now();
            state
                .tokens
                .iter()
                .any(|(issued, expires)| issued.as_str() == token && now < *expires)
        }
    };
    if valid {
        Ok(())
    } else {
        Err(bad_credentials())
    }
}

/// `POST /app/installations/{installation_id}/access_tokens`.
pub(super) fn issue_token(
    state: &mut State,
    request: &super::http::Request,
    installation_id: u64,
    body: &Map<String, Value>,
) -> Answer {
    let StandInAuth::App {
        app_id,
        installation_id: expected_installation,
        public_key_pem,
        token_ttl,
    } = state.auth.clone()
    else {
        return state.reject(
            404,
            "an installation token asked of a stand-in that plays a token, not a GitHub App",
        );
    };
    if let Some(field) = body
        .keys()
        .find(|k| !["repositories", "repository_ids", "permissions"].contains(&k.as_str()))
    {
        return state.invalid(&format!("unknown body field {field:?}"));
    }
    let jwt = match credential(state, request.header("authorization")) {
        Ok((scheme, jwt)) if scheme == "bearer" => jwt,
        Ok((scheme, _)) => {
            let problem = format!("a JWT must come as `Bearer <JWT>`, not {scheme:?}");
            state.note(&problem);
            return bad_credentials();
        }
        Err(answer) => return answer,
    };
    let Ok(key) = DecodingKey::from_rsa_pem(public_key_pem.as_bytes()) else {
        return state.reject(500, "the stand-in's App public key is not an RSA PEM");
    };
    let mut validation = Validation::new(Algorithm::RS256);
    // `iss` is checked below: GitHub takes it as a number, which jsonwebtoken's own check refuses.
    validation.set_required_spec_claims(&["exp"]);
    validation.leeway = LEEWAY;
    validation.validate_exp = true;
    let decoded: Result<TokenData<Value>, _> = decode(jwt, &key, &validation);
    let claims = match decoded {
        Ok(data) => data.claims,
        // A forged, malformed or expired JWT: bad credentials, which the client must handle.
        Err(e) => {
            return Answer::message(401, &format!("A JSON web token could not be decoded: {e}"))
        }
    };
    if let Err(problem) = check_claims(&claims, app_id) {
        state.note(&problem);
        return Answer::message(401, &problem);
    }
    if installation_id != expected_installation {
        return Answer::message(404, "Not Found");
    }
    let token = format!("ghs_stand_in_{}", state.tokens.len() + 1);
    let expires = SystemTime::now() + token_ttl;
    state.tokens.push((token.clone(), expires));
    Answer::json(
        201,
        json!({
            "token": token,
            "expires_at": rfc3339(epoch_of(expires)),
            "permissions": {},
            "repository_selection": "all",
        }),
    )
}

/// The claims GitHub asks of an App's JWT, beyond its signature and expiry: `iss` the App id,
/// `iat` not in the future, and a lifetime of at most ten minutes.
fn check_claims(claims: &Value, app_id: u64) -> Result<(), String> {
    let issuer_ok = match &claims["iss"] {
        Value::Number(n) => n.as_u64() == Some(app_id),
        Value::String(s) => s.trim() == app_id.to_string(),
        _ => false,
    };
    if !issuer_ok {
        return Err(format!(
            "the JWT's iss is {}, not the App id {app_id}",
            claims["iss"]
        ));
    }
    let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
        return Err("the JWT lacks integer iat and exp claims".to_string());
    };
    if iat > (now_epoch() + LEEWAY) as i64 {
        return Err(format!("the JWT's iat {iat} is in the future"));
    }
    if exp - iat > MAX_JWT_LIFETIME {
        return Err(format!(
            "the JWT lives {} s (exp - iat), over GitHub's {MAX_JWT_LIFETIME} s",
            exp - iat
        ));
    }
    Ok(())
}
