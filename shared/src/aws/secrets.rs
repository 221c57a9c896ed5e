//! The GitHub webhook secret's store: one read of a Secrets Manager secret's string. Caching,
//! rotation and the refusal of an empty key are the caller's (the build stage's delivery check).

use super::{AwsError, AwsErrorKind};

/// A secret in Secrets Manager, by ARN.
#[derive(Clone, Debug)]
pub struct SecretsManagerSecret {
    client: aws_sdk_secretsmanager::Client,
    secret_arn: String,
}

impl SecretsManagerSecret {
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_arn: String) -> Self {
        Self { client, secret_arn }
    }
}

impl SecretsManagerSecret {
    /// The secret's current string, as stored.
    pub async fn read(&self) -> Result<String, AwsError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_arn)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("SecretsManager", "GetSecretValue", e))?;
        output.secret_string().map(str::to_string).ok_or_else(|| {
            AwsError::call(
                "SecretsManager",
                "GetSecretValue",
                AwsErrorKind::Other,
                format!("secret {} has no SecretString", self.secret_arn),
            )
        })
    }
}
