//! HashiCorp Vault / OpenBao transit master keys (spec §9.6) over a small
//! blocking HTTP client, with sops' request shape and error texts:
//! `PUT <addr>/v1/<engine>/encrypt/<key>` `{"plaintext": b64}` →
//! `data.ciphertext`, and `.../decrypt/<key>` `{"ciphertext": enc}` →
//! `data.plaintext`.

use base64::Engine as _;
use std::path::PathBuf;
use std::time::Duration;
use zeroize::Zeroizing;

/// Vault client settings. The CLI fills this from the environment
/// (`VAULT_TOKEN`, `~/.vault-token`, `VAULT_NAMESPACE`, `VAULT_CACERT`,
/// `VAULT_CAPATH`, `VAULT_SKIP_VERIFY`, `VAULT_CLIENT_TIMEOUT`); this module
/// never reads environment variables itself.
#[derive(Clone, Default)]
pub struct VaultConfig {
    /// `VAULT_TOKEN`; when absent, the trimmed content of `token_file`.
    pub token: Option<Zeroizing<String>>,
    /// `~/.vault-token`
    pub token_file: Option<PathBuf>,
    /// `VAULT_NAMESPACE`: sent as `X-Vault-Namespace`.
    pub namespace: Option<String>,
    /// `VAULT_CACERT`: a PEM file of CA certificates to trust instead of
    /// the built-in web roots.
    pub ca_cert: Option<PathBuf>,
    /// `VAULT_CAPATH`: a directory of PEM files of CA certificates.
    pub ca_path: Option<PathBuf>,
    /// `VAULT_SKIP_VERIFY`: do not verify the server's certificate.
    pub skip_verify: bool,
    /// Whole-request timeout (`VAULT_CLIENT_TIMEOUT`); 30 s when unset.
    pub timeout: Option<Duration>,
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A configured client, built once per process on first use.
pub struct VaultClient {
    agent: ureq::Agent,
    token: Option<Zeroizing<String>>,
    namespace: Option<String>,
}

impl VaultClient {
    pub fn new(config: &VaultConfig) -> Result<VaultClient, String> {
        let token = match &config.token {
            Some(t) => Some(t.clone()),
            None => match &config.token_file {
                Some(p) => match std::fs::read_to_string(p) {
                    Ok(s) => Some(Zeroizing::new(Zeroizing::new(s).trim().to_string())),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => return Err(format!("failed to read Vault token file {}: {e}", p.display())),
                },
                None => None,
            },
        }
        .filter(|t| !t.is_empty());
        let mut tls = ureq::tls::TlsConfig::builder().disable_verification(config.skip_verify);
        let mut roots = Vec::new();
        if let Some(p) = &config.ca_cert {
            roots.extend(load_pem_certs(p)?);
        }
        if let Some(dir) = &config.ca_path {
            let entries = std::fs::read_dir(dir)
                .map_err(|e| format!("failed to read Vault CA directory {}: {e}", dir.display()))?;
            let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
            files.sort();
            for f in files {
                roots.extend(load_pem_certs(&f)?);
            }
        }
        if !roots.is_empty() {
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&roots));
        }
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(config.timeout.unwrap_or(DEFAULT_TIMEOUT)))
            .http_status_as_error(false)
            .max_redirects(0)
            .tls_config(tls.build())
            .build()
            .new_agent();
        Ok(VaultClient {
            agent,
            token,
            namespace: config.namespace.clone(),
        })
    }

    /// `PUT <address>/v1/<path>` with a JSON body; the parsed `data` object
    /// of the answer, or Vault's error in the Go client's words.
    fn write(&self, address: &str, path: &str, body: &[u8]) -> Result<serde_json::Value, String> {
        let url = format!("{}/v1/{}", address.trim_end_matches('/'), path);
        let mut req = self
            .agent
            .put(&url)
            .header("Content-Type", "application/json")
            .header("X-Vault-Request", "true");
        if let Some(t) = &self.token {
            req = req.header("X-Vault-Token", t.as_str());
        }
        if let Some(ns) = &self.namespace {
            req = req.header("X-Vault-Namespace", ns.as_str());
        }
        let mut resp = req
            .send(body)
            .map_err(|e| format!("Put \"{url}\": {}", transport_error(&e)))?;
        let status = resp.status().as_u16();
        let text = Zeroizing::new(
            resp.body_mut()
                .with_config()
                .limit(1 << 20)
                .read_to_string()
                .map_err(|e| format!("Put \"{url}\": {}", transport_error(&e)))?,
        );
        if !(200..400).contains(&status) {
            return Err(api_error(&url, status, &text));
        }
        let mut v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("could not parse the response of PUT {url} as JSON: {e}"))?;
        match v.get_mut("data").map(serde_json::Value::take) {
            Some(d @ serde_json::Value::Object(_)) => Ok(d),
            _ => Err(format!("the transit backend {path} is empty")),
        }
    }

    /// Encrypt `secret` with `<engine>/encrypt/<key>`: Vault's `vault:vN:…`
    /// ciphertext.
    pub fn encrypt(&self, address: &str, engine: &str, key: &str, secret: &[u8]) -> Result<String, String> {
        let path = join_path(engine, "encrypt", key);
        let wrap = |e: String| format!("failed to encrypt sops data key to Vault transit backend '{path}': {e}");
        let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(secret));
        let mut body = Zeroizing::new(String::with_capacity(b64.len() + 20));
        body.push_str("{\"plaintext\":\"");
        body.push_str(&b64);
        body.push_str("\"}");
        let data = self.write(address, &path, body.as_bytes()).map_err(wrap)?;
        match data.get("ciphertext") {
            Some(serde_json::Value::String(c)) if !c.is_empty() => Ok(c.clone()),
            Some(_) => Err(wrap("the ciphertext cannot be casted to string".into())),
            None => Err(wrap("there's no encrypted data".into())),
        }
    }

    /// Decrypt a `vault:vN:…` ciphertext with `<engine>/decrypt/<key>`.
    pub fn decrypt(&self, address: &str, engine: &str, key: &str, enc: &str) -> Result<Zeroizing<Vec<u8>>, String> {
        let path = join_path(engine, "decrypt", key);
        let wrap = |e: String| format!("failed to decrypt sops data key from Vault transit backend '{path}': {e}");
        let body = serde_json::json!({ "ciphertext": enc }).to_string();
        let mut data = self.write(address, &path, body.as_bytes()).map_err(wrap)?;
        let plaintext = match data.get_mut("plaintext").map(serde_json::Value::take) {
            Some(serde_json::Value::String(p)) => Zeroizing::new(p),
            Some(_) => return Err(wrap("the plaintext cannot be casted to string".into())),
            None => return Err(wrap("there's no decrypted data".into())),
        };
        base64::engine::general_purpose::STANDARD
            .decode(plaintext.as_bytes())
            .map(Zeroizing::new)
            .map_err(|_| wrap("couldn't decode base64 plaintext".into()))
    }
}

/// Go's `path.Join(engine, op, key)`: empty segments dropped, slashes
/// collapsed.
fn join_path(engine: &str, op: &str, key: &str) -> String {
    [engine, op, key]
        .iter()
        .flat_map(|s| s.split('/'))
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

fn load_pem_certs(path: &std::path::Path) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("failed to read Vault CA certificate {}: {e}", path.display()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&bytes) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(format!("failed to parse Vault CA certificate {}: {e}", path.display())),
        }
    }
    if certs.is_empty() {
        return Err(format!("no PEM certificate found in {}", path.display()));
    }
    Ok(certs)
}

fn transport_error(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        // The Go client's wording for the common cases.
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connect: connection refused".into(),
            std::io::ErrorKind::ConnectionReset => "connection reset by peer".into(),
            std::io::ErrorKind::UnexpectedEof => "EOF".into(),
            _ => io.to_string(),
        },
        other => other.to_string(),
    }
}

/// The Go Vault client's `ResponseError` text.
fn api_error(url: &str, status: u16, body: &str) -> String {
    let errors: Vec<String> = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("errors").and_then(|e| e.as_array()).cloned())
        .map(|a| {
            a.iter()
                .map(|e| e.as_str().map(str::to_string).unwrap_or_else(|| e.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let mut s = format!("Error making API request.\n\nURL: PUT {url}\nCode: {status}.");
    if errors.is_empty() {
        let raw: String = body.trim().chars().take(500).collect();
        s.push_str(" Raw Message:\n\n");
        s.push_str(&raw);
    } else {
        s.push_str(" Errors:\n\n");
        let lines: Vec<String> = errors.iter().map(|e| format!("* {e}")).collect();
        s.push_str(&lines.join("\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_like_go() {
        assert_eq!(join_path("sops", "encrypt", "k"), "sops/encrypt/k");
        assert_eq!(join_path("a/b/", "decrypt", "k"), "a/b/decrypt/k");
    }

    #[test]
    fn api_errors_read_like_the_go_client() {
        let e = api_error("http://h/v1/sops/decrypt/k", 403, r#"{"errors":["permission denied"]}"#);
        assert_eq!(e, "Error making API request.\n\nURL: PUT http://h/v1/sops/decrypt/k\nCode: 403. Errors:\n\n* permission denied");
        let e = api_error("http://h/v1/x", 502, "bad gateway");
        assert!(e.ends_with("Code: 502. Raw Message:\n\nbad gateway"), "{e}");
    }

    #[test]
    fn token_file_is_trimmed_and_missing_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".vault-token");
        std::fs::write(&p, "  s.abc\n").unwrap();
        let c = VaultClient::new(&VaultConfig {
            token_file: Some(p),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.token.as_deref().map(|s| s.as_str()), Some("s.abc"));
        let c = VaultClient::new(&VaultConfig {
            token_file: Some(dir.path().join("missing")),
            ..Default::default()
        })
        .unwrap();
        assert!(c.token.is_none());
    }
}
