//! Real key servers for the `keys_*` tests: a throwaway GnuPG home, an
//! OpenBao dev server and a moto (AWS KMS + STS) server, each started on a
//! free 127.0.0.1 port and stopped when its guard drops. A missing server
//! binary fails the test with the tool's name; nothing is skipped.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A program from the repo's `.venv` (installed by `scripts/install-test-deps`).
pub fn venv_tool(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin").join(name);
    assert!(
        p.is_file(),
        "the tool `{name}` is required by this test but {} does not exist; run scripts/install-test-deps",
        p.display()
    );
    p
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// Kills and reaps the child process when dropped (also on test panics).
pub struct ChildGuard {
    pub child: Option<Child>,
    pub name: &'static str,
    log: PathBuf,
}

impl ChildGuard {
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(name: &'static str, mut cmd: Command, log: PathBuf) -> ChildGuard {
    let f = std::fs::File::create(&log).expect("server log file");
    let f2 = f.try_clone().expect("clone log file");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(f))
        .stderr(Stdio::from(f2))
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {name}: {e}"));
    ChildGuard {
        child: Some(child),
        name,
        log,
    }
}

/// A minimal HTTP/1.1 request to 127.0.0.1 (test plumbing only).
pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status: u16 = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

fn wait_until(what: &str, guard: &mut ChildGuard, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if ready() {
            return;
        }
        if let Some(c) = guard.child.as_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                panic!("{what} exited early with {st}: {}", guard.log());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not become ready within 60 s: {}", guard.log());
}

// ---------------------------------------------------------------- GnuPG

/// A throwaway GnuPG home (mode 0700) with one passphrase-less key.
pub struct GpgHome {
    pub dir: tempfile::TempDir,
    pub fp: String,
}

impl GpgHome {
    pub fn new(uid: &str) -> GpgHome {
        let gpg = crate::common::require_tool("gpg");
        let dir = tempfile::Builder::new()
            .prefix("gh")
            .tempdir_in("/tmp")
            .expect("gnupg home");
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).expect("chmod");
        let out = Command::new(&gpg)
            .env("GNUPGHOME", dir.path())
            .args([
                "--batch",
                "--passphrase",
                "",
                "--quick-gen-key",
                uid,
                "default",
                "default",
                "never",
            ])
            .output()
            .expect("run gpg");
        assert!(
            out.status.success(),
            "gpg key generation failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new(&gpg)
            .env("GNUPGHOME", dir.path())
            .args(["--list-keys", "--with-colons"])
            .output()
            .expect("run gpg");
        let list = String::from_utf8_lossy(&out.stdout).into_owned();
        let fp = list
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .expect("fingerprint in gpg --list-keys")
            .to_string();
        GpgHome { dir, fp }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for GpgHome {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.dir.path())
            .args(["--kill", "all"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

// ---------------------------------------------------------------- OpenBao

pub const BAO_TOKEN: &str = "root";

pub struct Bao {
    pub guard: ChildGuard,
    pub port: u16,
    _home: tempfile::TempDir,
}

impl Bao {
    /// `bao server -dev` on a free port; HOME is a temp dir so the dev
    /// server's `~/.vault-token` goes nowhere near the user's.
    pub fn start() -> Bao {
        let bao = venv_tool("bao");
        let home = tempfile::tempdir().expect("bao home");
        let port = free_port();
        let mut cmd = Command::new(bao);
        cmd.env_clear()
            .env("HOME", home.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .arg("server")
            .arg("-dev")
            .arg(format!("-dev-root-token-id={BAO_TOKEN}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"));
        let mut guard = spawn("bao", cmd, home.path().join("bao.log"));
        wait_until(
            "bao server -dev",
            &mut guard,
            || matches!(http(port, "GET", "/v1/sys/health", &[], ""), Some((200, b)) if b.contains("\"initialized\":true")),
        );
        Bao {
            guard,
            port,
            _home: home,
        }
    }

    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn api(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        http(self.port, method, path, &[("X-Vault-Token", BAO_TOKEN)], body)
            .unwrap_or_else(|| panic!("bao API {method} {path} failed"))
    }

    /// Mount transit at `engine` and create `key`.
    pub fn transit_key(&self, engine: &str, key: &str) {
        let (st, b) = self.api("POST", &format!("/v1/sys/mounts/{engine}"), r#"{"type":"transit"}"#);
        assert!(
            st == 204 || st == 200 || b.contains("path is already in use"),
            "mount {engine}: {st} {b}"
        );
        let (st, b) = self.api("POST", &format!("/v1/{engine}/keys/{key}"), "{}");
        assert!(st == 200 || st == 204, "create key {engine}/{key}: {st} {b}");
    }

    pub fn rotate(&self, engine: &str, key: &str) {
        let (st, b) = self.api("POST", &format!("/v1/{engine}/keys/{key}/rotate"), "{}");
        assert!(st == 200 || st == 204, "rotate {engine}/{key}: {st} {b}");
    }

    pub fn uri(&self, engine: &str, key: &str) -> String {
        format!("{}/v1/{engine}/keys/{key}", self.addr())
    }
}

// ---------------------------------------------------------------- moto

pub struct Moto {
    pub guard: ChildGuard,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Moto {
    pub fn start() -> Moto {
        let moto = venv_tool("moto_server");
        let dir = tempfile::tempdir().expect("moto dir");
        let port = free_port();
        let mut cmd = Command::new(moto);
        cmd.env_clear()
            .env("HOME", dir.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let mut guard = spawn("moto_server", cmd, dir.path().join("moto.log"));
        wait_until("moto_server", &mut guard, || {
            matches!(http(port, "GET", "/moto-api/", &[], ""), Some((200, _)))
        });
        Moto { guard, port, _dir: dir }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Run a boto3 snippet against this server with the venv's python;
    /// `kms` and `sts` clients are predefined. Returns stdout, trimmed.
    pub fn boto(&self, code: &str) -> String {
        let py = venv_tool("python");
        let script = format!(
            "import boto3, json, sys\n\
             kw = dict(endpoint_url='{ep}', region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\n\
             kms = boto3.client('kms', **kw)\n\
             sts = boto3.client('sts', **kw)\n\
             iam = boto3.client('iam', **kw)\n{code}\n",
            ep = self.endpoint()
        );
        let out = Command::new(py)
            .env_clear()
            .env("HOME", self._dir.path())
            .arg("-c")
            .arg(script)
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "boto3 snippet failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Create a symmetric key; returns its ARN.
    pub fn create_key(&self) -> String {
        self.boto("print(kms.create_key()['KeyMetadata']['Arn'])")
    }
}

/// Both tools with the same environment additions.
pub fn run(s: &crate::common::Scratch, program: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = s.cmd(program);
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(args).output().expect("run command")
}

pub fn sops(s: &crate::common::Scratch, env: &[(&str, &str)], args: &[&str]) -> Output {
    run(s, &crate::common::sops_ref(), env, args)
}

pub fn rsops(s: &crate::common::Scratch, env: &[(&str, &str)], args: &[&str]) -> Output {
    run(s, &crate::common::rsops(), env, args)
}

pub const PLAIN_JSON: &str = "{\n\t\"password\": \"TOPSECRETVALUE\",\n\t\"port\": 5432,\n\t\"nested\": {\n\t\t\"list\": [\n\t\t\t\"a\",\n\t\t\t1.5,\n\t\t\ttrue\n\t\t]\n\t}\n}\n";

/// Every key service at once: a GnuPG home, an OpenBao server with the
/// transit key `sops/k1`, a moto KMS key, and the environment that points
/// both tools at them.
pub struct AllKinds {
    pub gpg: GpgHome,
    pub bao: Bao,
    pub moto: Moto,
    pub arn: String,
    pub uri: String,
    pub endpoint: String,
    home: String,
}

impl AllKinds {
    pub fn start() -> AllKinds {
        let gpg = GpgHome::new("Test <t@example.com>");
        let bao = Bao::start();
        bao.transit_key("sops", "k1");
        let moto = Moto::start();
        let arn = moto.create_key();
        let endpoint = moto.endpoint();
        let home = gpg.path().to_str().expect("utf8 temp path").to_string();
        let uri = bao.uri("sops", "k1");
        AllKinds {
            gpg,
            bao,
            moto,
            arn,
            uri,
            endpoint,
            home,
        }
    }

    pub fn env(&self) -> [(&str, &str); 7] {
        [
            ("GNUPGHOME", self.home.as_str()),
            ("VAULT_TOKEN", BAO_TOKEN),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL_KMS", self.endpoint.as_str()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
    }
}
