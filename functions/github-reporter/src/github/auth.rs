//! Who the reporter is to GitHub: a fine-grained token, or a GitHub App's installation (a JWT
//! signed RS256 with the App's key, exchanged for an installation token that is cached until
//! shortly before it expires). Neither the token nor the JWT is ever logged or put in an error.

use std::fmt;

use aws_smithy_types::date_time::{DateTime, Format};
use hyper::{Method, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pushdeploy::aws::secrets::SecretsManagerSecret;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::{now, GitHub, GitHubError};

/// An installation token is renewed this long before GitHub says it expires.
const RENEW_BEFORE_SECONDS: u64 = 300;

/// What the credentials secret holds.
pub enum Credentials {
    Token(String),
    App {
        app_id: String,
        installation_id: u64,
        key: EncodingKey,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Token(_) => f.write_str("Token(<redacted>)"),
            Credentials::App {
                app_id,
                installation_id,
                ..
            } => write!(
                f,
                "App {{ app_id: {app_id}, installation_id: {installation_id} }}"
            ),
        }
    }
}

#[derive(Deserialize)]
struct SecretJson {
    token: Option<String>,
    app_id: Option<serde_json::Value>,
    installation_id: Option<u64>,
    private_key: Option<String>,
}

impl Credentials {
    /// Reads the secret's JSON: `{"token"}` or `{"app_id", "installation_id", "private_key"}`.
    pub fn parse(secret: &str) -> Result<Self, GitHubError> {
        let bad = |reason: &str| GitHubError::Credentials(reason.to_string());
        let json: SecretJson = serde_json::from_str(secret)
            .map_err(|_| bad("the secret is not JSON with `token`, or `app_id`, `installation_id` and `private_key`"))?;
        if let Some(token) = json.token.filter(|t| !t.trim().is_empty()) {
            return Ok(Credentials::Token(token.trim().to_string()));
        }
        let app_id = match json.app_id {
            Some(serde_json::Value::Number(n)) => n.to_string(),
            Some(serde_json::Value::String(s)) if !s.is_empty() => s,
            _ => return Err(bad("neither `token` nor `app_id` is set")),
        };
        let installation_id = json
            .installation_id
            .ok_or_else(|| bad("`installation_id` is not set"))?;
        let pem = json
            .private_key
            .ok_or_else(|| bad("`private_key` is not set"))?;
        let key = EncodingKey::from_rsa_pem(pem.as_bytes())
            .map_err(|_| bad("`private_key` is not an RSA private key in PEM"))?;
        Ok(Credentials::App {
            app_id,
            installation_id,
            key,
        })
    }
}

#[derive(Serialize)]
struct AppClaims<'a> {
    iat: u64,
    exp: u64,
    iss: &'a str,
}

/// The App's JWT: issued a minute in the past (clock drift), valid for nine minutes (GitHub allows
/// ten).
pub fn app_jwt(app_id: &str, key: &EncodingKey, now: u64) -> Result<String, GitHubError> {
    let claims = AppClaims {
        iat: now.saturating_sub(60),
        exp: now + 540,
        iss: app_id,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, key)
        .map_err(|e| GitHubError::Credentials(format!("the App's JWT could not be signed: {e}")))
}

/// The credentials, read from the secret on first use, and the installation token in use.
pub struct Auth {
    secret: SecretsManagerSecret,
    state: Mutex<AuthState>,
}

#[derive(Default)]
struct AuthState {
    credentials: Option<Credentials>,
    /// An installation token and when GitHub said it expires.
    installation: Option<(String, u64)>,
}

impl Auth {
    pub fn new(secret: SecretsManagerSecret) -> Self {
        Self {
            secret,
            state: Mutex::new(AuthState::default()),
        }
    }

    /// The bearer token of the next request.
    pub(super) async fn bearer(&self, github: &GitHub) -> Result<String, GitHubError> {
        let mut state = self.state.lock().await;
        if state.credentials.is_none() {
            let secret = self.secret.read().await.map_err(|e| {
                GitHubError::Credentials(format!("the secret could not be read: {e}"))
            })?;
            state.credentials = Some(Credentials::parse(&secret)?);
        }
        let (app_id, installation_id, key) = match state.credentials.as_ref() {
            Some(Credentials::Token(token)) => return Ok(token.clone()),
            Some(Credentials::App {
                app_id,
                installation_id,
                key,
            }) => (app_id.clone(), *installation_id, key.clone()),
            None => return Err(GitHubError::Credentials("no credentials".into())),
        };
        let now = now();
        if let Some((token, expires_at)) = &state.installation {
            if now + RENEW_BEFORE_SECONDS < *expires_at {
                return Ok(token.clone());
            }
        }
        let jwt = app_jwt(&app_id, &key, now)?;
        let (token, expires_at) = installation_token(github, installation_id, &jwt).await?;
        tracing::info!(installation_id, expires_at, "installation token renewed");
        state.installation = Some((token.clone(), expires_at));
        Ok(token)
    }

    /// Forgets the installation token and the credentials (GitHub said 401): the next request
    /// reads the secret again and asks for a new token.
    pub(super) async fn forget(&self) {
        *self.state.lock().await = AuthState::default();
    }
}

/// `POST /app/installations/{id}/access_tokens`, as the App.
async fn installation_token(
    github: &GitHub,
    installation_id: u64,
    jwt: &str,
) -> Result<(String, u64), GitHubError> {
    let path = format!("/app/installations/{installation_id}/access_tokens");
    let answer = github.send(Method::POST, &path, None, jwt).await?;
    if answer.status == StatusCode::UNAUTHORIZED {
        return Err(GitHubError::Unauthorized(
            "the App's JWT was refused: check app_id and private_key".into(),
        ));
    }
    let body = github.judge(&Method::POST, &path, answer)?;
    let token = body["token"].as_str().ok_or_else(|| {
        GitHubError::Unavailable("an installation token answer without `token`".into())
    })?;
    let expires_at = body["expires_at"]
        .as_str()
        .and_then(|at| DateTime::from_str(at, Format::DateTime).ok())
        .and_then(|at| u64::try_from(at.secs()).ok())
        .ok_or_else(|| {
            GitHubError::Unavailable("an installation token answer without `expires_at`".into())
        })?;
    Ok((token.to_string(), expires_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_holds_a_token_or_an_app() {
        assert!(matches!(
            Credentials::parse(r#"{"token": " github_pat_x "}"#),
            Ok(Credentials::Token(t)) if t == "github_pat_x"
        ));
        for (secret, says) in [
            ("not json", "not JSON"),
            ("{}", "neither"),
            (r#"{"app_id": 1}"#, "installation_id"),
            (r#"{"app_id": "1", "installation_id": 2}"#, "private_key"),
            (
                r#"{"app_id": 1, "installation_id": 2, "private_key": "nope"}"#,
                "PEM",
            ),
        ] {
            let error = Credentials::parse(secret).unwrap_err().to_string();
            assert!(error.contains(says), "{secret}: {error}");
        }
    }

    #[test]
    fn credentials_never_show_in_debug() {
        let token = Credentials::parse(r#"{"token": "github_pat_secret"}"#).unwrap();
        assert!(!format!("{token:?}").contains("secret"));
    }
}
