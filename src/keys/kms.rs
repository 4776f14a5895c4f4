//! AWS KMS master keys (spec §9.3) through the official AWS SDK.
//!
//! The SDK is async; a current-thread tokio runtime is created lazily, inside
//! this module only, the first time a KMS key is actually used. A run
//! without KMS keys never starts a runtime. Built only with the `aws-kms`
//! cargo feature (on by default); without it KMS keys fail with a clear
//! message.

use zeroize::Zeroizing;

/// KMS settings gathered by the CLI. Credentials, profiles and endpoint
/// overrides (`AWS_ENDPOINT_URL_KMS`, `AWS_ENDPOINT_URL_STS`, …) are read by
/// the AWS SDK's own default chain, as in sops.
#[derive(Clone, Default)]
pub struct KmsConfig {
    /// Looks up the machine's host name, for the AssumeRole session name
    /// (only then: a run that needs no role reads nothing).
    pub hostname: Option<fn() -> Option<String>>,
}

/// One KMS master key entry, borrowed from the metadata.
pub struct KmsKey<'a> {
    pub arn: &'a str,
    pub role: &'a str,
    pub context: &'a [(String, String)],
    pub aws_profile: &'a str,
}

/// The region in a KMS key ARN (`^arn:aws[\w-]*:kms:(.+):[0-9]+:(key|alias)/.+$`).
pub fn arn_region(arn: &str) -> Result<String, String> {
    let re = regex::Regex::new(r"^arn:aws[\w-]*:kms:(.+):[0-9]+:(key|alias)/.+$").expect("static regex");
    re.captures(arn)
        .map(|c| c[1].to_string())
        .ok_or_else(|| format!("no valid ARN found in '{arn}'"))
}

/// sops' STS session name: `sops@<hostname>` with every character outside
/// Go's class `[a-zA-Z0-9=,.@-_]` removed (`@-_` is a range there, so `-`
/// itself is dropped), cut to 64 characters.
pub fn sts_session_name(hostname: Option<&str>) -> Result<String, String> {
    let host = hostname.ok_or_else(|| "failed to construct STS session name: unknown hostname".to_string())?;
    let clean: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '=' | ',' | '.') || ('@'..='_').contains(c))
        .collect();
    let mut name = format!("sops@{clean}");
    name.truncate(64);
    Ok(name)
}

#[cfg(feature = "aws-kms")]
pub use sdk::KmsClient;

#[cfg(feature = "aws-kms")]
mod sdk {
    use super::*;
    use aws_config::BehaviorVersion;
    use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
    use aws_sdk_kms::primitives::Blob;
    use base64::Engine as _;
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::time::Duration;

    const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

    /// The runtime, one HTTP client, and one SDK config per
    /// (region, profile, role), built on first use.
    pub struct KmsClient {
        runtime: tokio::runtime::Runtime,
        http: aws_sdk_kms::config::SharedHttpClient,
        hostname: Option<fn() -> Option<String>>,
        configs: RefCell<HashMap<(String, String, String), aws_config::SdkConfig>>,
    }

    impl KmsClient {
        pub fn new(config: &KmsConfig) -> Result<KmsClient, String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("could not start the AWS SDK runtime: {e}"))?;
            let http = aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https();
            Ok(KmsClient {
                runtime,
                http,
                hostname: config.hostname,
                configs: RefCell::new(HashMap::new()),
            })
        }

        /// The SDK config for a key: the default chain (optionally with the
        /// key's profile) in the ARN's region, then AssumeRole if the key has
        /// a role, exactly once per process.
        fn sdk_config(&self, key: &KmsKey<'_>) -> Result<aws_config::SdkConfig, String> {
            let region = arn_region(key.arn)?;
            let cache_key = (region.clone(), key.aws_profile.to_string(), key.role.to_string());
            if let Some(c) = self.configs.borrow().get(&cache_key) {
                return Ok(c.clone());
            }
            let timeouts = aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build();
            let mut loader = aws_config::defaults(BehaviorVersion::latest())
                .region(aws_config::Region::new(region))
                .http_client(self.http.clone())
                .timeout_config(timeouts);
            if !key.aws_profile.is_empty() {
                loader = loader.profile_name(key.aws_profile);
            }
            let mut config = self.runtime.block_on(loader.load());
            if !key.role.is_empty() {
                let hostname = self.hostname.and_then(|lookup| lookup());
                let name = sts_session_name(hostname.as_deref())?;
                let creds = self.runtime.block_on(async {
                    let provider = aws_config::sts::AssumeRoleProvider::builder(key.role)
                        .session_name(name)
                        .configure(&config)
                        .build()
                        .await;
                    aws_credential_types::provider::ProvideCredentials::provide_credentials(&provider).await
                });
                let creds = creds.map_err(|e| format!("failed to assume role '{}': {}", key.role, cause_chain(&e)))?;
                config = config
                    .into_builder()
                    .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(creds))
                    .build();
            }
            self.configs.borrow_mut().insert(cache_key, config.clone());
            Ok(config)
        }

        pub fn encrypt(&self, key: &KmsKey<'_>, secret: &[u8]) -> Result<String, String> {
            let config = self.sdk_config(key)?;
            let client = aws_sdk_kms::Client::new(&config);
            let mut req = client.encrypt().key_id(key.arn).plaintext(Blob::new(secret.to_vec()));
            for (k, v) in key.context {
                req = req.encryption_context(k, v);
            }
            let out = self.runtime.block_on(req.send()).map_err(|e| {
                format!(
                    "failed to encrypt sops data key with AWS KMS: {}",
                    sdk_error("Encrypt", &e)
                )
            })?;
            let blob = out
                .ciphertext_blob()
                .ok_or("failed to encrypt sops data key with AWS KMS: the response has no ciphertext")?;
            Ok(base64::engine::general_purpose::STANDARD.encode(blob.as_ref()))
        }

        pub fn decrypt(&self, key: &KmsKey<'_>, enc: &str) -> Result<Zeroizing<Vec<u8>>, String> {
            let blob = base64::engine::general_purpose::STANDARD
                .decode(enc.as_bytes())
                .map_err(|e| format!("error base64-decoding encrypted data key: {e}"))?;
            let config = self.sdk_config(key)?;
            let client = aws_sdk_kms::Client::new(&config);
            let mut req = client.decrypt().key_id(key.arn).ciphertext_blob(Blob::new(blob));
            for (k, v) in key.context {
                req = req.encryption_context(k, v);
            }
            let out = self.runtime.block_on(req.send()).map_err(|e| {
                format!(
                    "failed to decrypt sops data key with AWS KMS: {}",
                    sdk_error("Decrypt", &e)
                )
            })?;
            let plain = out
                .plaintext
                .ok_or("failed to decrypt sops data key with AWS KMS: the response has no plaintext")?;
            Ok(Zeroizing::new(plain.into_inner()))
        }
    }

    /// The Go SDK's wording: `operation error KMS: <op>, https response error
    /// StatusCode: N, RequestID: R, <Code>: <message>` for service errors,
    /// the cause chain (`dispatch failure: io error: …`) for the others.
    fn sdk_error<E>(op: &str, e: &SdkError<E>) -> String
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match e {
            SdkError::ServiceError(se) => {
                let err = se.err();
                format!(
                    "operation error KMS: {op}, https response error StatusCode: {}, RequestID: {}, {}: {}",
                    se.raw().status().as_u16(),
                    se.raw().headers().get("x-amzn-requestid").unwrap_or(""),
                    err.code().unwrap_or("UnknownError"),
                    err.message().unwrap_or("")
                )
            }
            other => format!("operation error KMS: {op}, {}", cause_chain(other)),
        }
    }

    /// Every message in an error's source chain, joined with `: `, skipping
    /// a message that merely repeats the one before it.
    fn cause_chain(e: &(dyn std::error::Error + 'static)) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut cur = Some(e);
        while let Some(err) = cur {
            let msg = err.to_string();
            if parts.last().is_none_or(|p| !p.contains(&msg)) {
                parts.push(msg);
            }
            cur = err.source();
        }
        parts.join(": ")
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn a_cause_chain_reads_as_one_line() {
            let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
            let outer = std::io::Error::other(io);
            assert_eq!(super::cause_chain(&outer), "Connection refused");
        }
    }
}

#[cfg(not(feature = "aws-kms"))]
pub struct KmsClient {}

#[cfg(not(feature = "aws-kms"))]
impl KmsClient {
    const DISABLED: &'static str = "this rsops was built without AWS KMS support (cargo feature `aws-kms`)";

    pub fn new(_config: &KmsConfig) -> Result<KmsClient, String> {
        Err(Self::DISABLED.into())
    }

    pub fn encrypt(&self, _key: &KmsKey<'_>, _secret: &[u8]) -> Result<String, String> {
        Err(Self::DISABLED.into())
    }

    pub fn decrypt(&self, _key: &KmsKey<'_>, _enc: &str) -> Result<Zeroizing<Vec<u8>>, String> {
        Err(Self::DISABLED.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_match_sops() {
        assert_eq!(sts_session_name(Some("some-hostname")).unwrap(), "sops@somehostname");
        assert_eq!(
            sts_session_name(Some("host_1.example.com")).unwrap(),
            "sops@host_1.example.com"
        );
        let long = "a".repeat(90);
        assert_eq!(sts_session_name(Some(&long)).unwrap().len(), 64);
        assert!(sts_session_name(None)
            .unwrap_err()
            .contains("failed to construct STS session name"));
    }

    #[test]
    fn arn_region_is_taken_from_the_arn() {
        assert_eq!(
            arn_region("arn:aws:kms:eu-west-3:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab").unwrap(),
            "eu-west-3"
        );
        assert_eq!(
            arn_region("arn:aws-us-gov:kms:us-gov-west-1:1:alias/x").unwrap(),
            "us-gov-west-1"
        );
        assert_eq!(
            arn_region("not-an-arn").unwrap_err(),
            "no valid ARN found in 'not-an-arn'"
        );
    }
}
