//! Self-timing check (not an assertion): `cargo run --release --example yperf`.
//!
//! Generates two ~10 MB YAML files with ~100k+ values (a realistic plaintext
//! one: nested maps, lists of maps, comments, block scalars, long random
//! strings; and an "encrypted-looking" one where every value is an
//! `ENC[AES256_GCM,...]` string and every comment `#ENC[...]`), then times
//! load and emit (best and median of several runs).
//!
//! Environment: `YPERF_RUNS=n` (default 7), `YPERF_MB=n` (default 10),
//! `YPERF_ONLY=load|emit` (for profilers), `YPERF_WRITE=dir` (dump inputs).
use rsops::stores::yaml::YamlStore;
use rsops::stores::Store;
use std::fmt::Write;
use std::time::Instant;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn alnum(&mut self, n: usize) -> String {
        const A: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..n).map(|_| A[self.below(A.len())] as char).collect()
    }
    fn b64(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s: String = (0..n).map(|_| A[self.below(A.len())] as char).collect();
        while !s.len().is_multiple_of(4) {
            s.push('=');
        }
        s
    }
}

/// Writes values either as they are or as sops-encrypted-looking strings.
struct Gen {
    rng: Rng,
    enc: bool,
    s: String,
    values: usize,
}

impl Gen {
    fn enc(&mut self, len: usize, typ: &str) -> String {
        let data = self.rng.b64(len.max(1) * 4 / 3 + 1);
        let iv = self.rng.b64(43);
        let tag = self.rng.b64(22);
        format!("ENC[AES256_GCM,data:{data},iv:{iv},tag:{tag},type:{typ}]")
    }
    /// `key: value` where `plain` is the plaintext form as it would be written.
    fn kv(&mut self, ind: usize, key: &str, plain: &str, typ: &str) {
        self.values += 1;
        let v = if self.enc {
            self.enc(plain.len(), typ)
        } else {
            plain.to_string()
        };
        writeln!(self.s, "{:ind$}{key}: {v}", "").expect("write");
    }
    fn item(&mut self, ind: usize, plain: &str) {
        self.values += 1;
        let v = if self.enc {
            self.enc(plain.len(), "str")
        } else {
            plain.to_string()
        };
        writeln!(self.s, "{:ind$}- {v}", "").expect("write");
    }
    fn comment(&mut self, ind: usize, text: &str) {
        if self.enc {
            let c = self.enc(text.len(), "comment");
            writeln!(self.s, "{:ind$}#{c}", "").expect("write");
        } else {
            writeln!(self.s, "{:ind$}# {text}", "").expect("write");
        }
    }
    fn block(&mut self, ind: usize, key: &str, lines: usize) {
        self.values += 1;
        if self.enc {
            let v = self.enc(lines * 65, "str");
            writeln!(self.s, "{:ind$}{key}: {v}", "").expect("write");
        } else {
            writeln!(self.s, "{:ind$}{key}: |", "").expect("write");
            for _ in 0..lines {
                let l = self.rng.b64(64);
                writeln!(self.s, "{:w$}{l}", "", w = ind + 4).expect("write");
            }
        }
    }
}

fn generate(target: usize, enc: bool) -> (String, usize) {
    let mut g = Gen {
        rng: Rng(0x1234_5678_9ABC_DEF1),
        enc,
        s: String::with_capacity(target + 4096),
        values: 0,
    };
    g.comment(0, "Generated configuration for the performance check");
    g.s.push_str("global:\n");
    g.kv(4, "region", "eu-west-1", "str");
    g.kv(4, "replicas", "3", "int");
    g.s.push_str("services:\n");
    let mut i = 0;
    while g.s.len() < target {
        if i % 3 == 0 {
            g.s.push('\n');
            let t = format!("service number {i}");
            g.comment(4, &t);
        }
        writeln!(g.s, "    svc-{i:06}:").expect("write");
        let name = format!("service-{i}-{}", g.rng.alnum(12));
        g.kv(8, "name", &name, "str");
        let img = format!("registry.example.com/team/app-{}:v1.{}.{}", i % 17, i % 5, i % 11);
        g.kv(8, "image", &img, "str");
        let port = format!("{}", 1024 + i % 60000);
        g.kv(8, "port", &port, "int");
        g.kv(8, "enabled", if i % 2 == 0 { "true" } else { "false" }, "bool");
        let ratio = format!("{}.{}", i % 10, i % 97);
        g.kv(8, "ratio", &ratio, "float");
        if i % 4 == 1 {
            g.comment(8, "rotate quarterly");
        }
        let pw = format!("\"p@ss:{}\\t{}\"", g.rng.alnum(10), g.rng.alnum(6));
        g.kv(8, "password", &pw, "str");
        let key = g.rng.alnum(48);
        g.kv(8, "api_key", &key, "str");
        g.s.push_str("        env:\n");
        for e in 0..2 {
            let n = format!("VAR_{e}");
            g.s.push_str("            - ");
            g.values += 1;
            if enc {
                let v = g.enc(5, "str");
                writeln!(g.s, "name: {v}").expect("write");
            } else {
                writeln!(g.s, "name: {n}").expect("write");
            }
            let v = format!("value {} with spaces", g.rng.alnum(20));
            g.kv(14, "value", &v, "str");
        }
        g.s.push_str("        hosts:\n");
        for h in 0..2 {
            let host = format!("host-{h}.svc-{i}.example.com");
            g.item(12, &host);
        }
        if i % 2 == 0 {
            g.block(8, "cert", 3);
        }
        let note = format!("the {i}th service # not a comment");
        g.kv(8, "note", &note, "str");
        i += 1;
    }
    if enc {
        g.s.push_str("sops:\n    age:\n");
        for _ in 0..2 {
            writeln!(g.s, "        - recipient: age1{}", g.rng.alnum(58)).expect("write");
            g.s.push_str("          enc: |\n            -----BEGIN AGE ENCRYPTED FILE-----\n");
            for _ in 0..4 {
                writeln!(g.s, "            {}", g.rng.b64(64)).expect("write");
            }
            g.s.push_str("            -----END AGE ENCRYPTED FILE-----\n");
        }
        g.s.push_str("    lastmodified: \"2024-05-01T10:00:00Z\"\n");
        let mac = g.enc(32, "str");
        writeln!(g.s, "    mac: {mac}").expect("write");
        g.s.push_str("    unencrypted_suffix: _unencrypted\n    version: 3.11.0\n");
    }
    let v = g.values;
    (g.s, v)
}

/// CPU time of this thread in ms: steadier than wall time on a shared machine.
fn cpu_ms() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[0], v[v.len() / 2])
}

fn main() {
    let runs: usize = std::env::var("YPERF_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let mb: usize = std::env::var("YPERF_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let only = std::env::var("YPERF_ONLY").unwrap_or_default();
    let store = YamlStore::default();
    for (label, enc) in [("plain", false), ("encrypted", true)] {
        let (s, values) = generate(mb * 1_000_000, enc);
        if let Ok(dir) = std::env::var("YPERF_WRITE") {
            std::fs::write(format!("{dir}/yperf_{label}.yaml"), &s).expect("write input");
        }
        let branches = store.load(s.as_bytes()).expect("generated YAML loads");
        let out = store.emit(&branches).expect("emit succeeds");
        let mut load = Vec::new();
        let mut emit = Vec::new();
        let mut load_cpu = Vec::new();
        let mut emit_cpu = Vec::new();
        for _ in 0..runs {
            if only != "emit" {
                let (t0, c0) = (Instant::now(), cpu_ms());
                let b = store.load(s.as_bytes()).expect("loads");
                load.push((t0.elapsed()).as_secs_f64() * 1e3);
                load_cpu.push(cpu_ms() - c0);
                assert!(b == branches, "load not deterministic");
            }
            if only != "load" {
                let (t0, c0) = (Instant::now(), cpu_ms());
                let o = store.emit(&branches).expect("emits");
                emit.push((t0.elapsed()).as_secs_f64() * 1e3);
                emit_cpu.push(cpu_ms() - c0);
                assert!(o == out, "emit not deterministic");
            }
        }
        let (lmin, lmed) = if load.is_empty() { (0.0, 0.0) } else { stats(load) };
        let (emin, emed) = if emit.is_empty() { (0.0, 0.0) } else { stats(emit) };
        let lcpu = if load_cpu.is_empty() { 0.0 } else { stats(load_cpu).0 };
        let ecpu = if emit_cpu.is_empty() { 0.0 } else { stats(emit_cpu).0 };
        println!(
            "{label:9} input {:.1} MB, {values} values: load {lmin:.1} ms (median {lmed:.1}, cpu {lcpu:.1}), emit {emin:.1} ms (median {emed:.1}, cpu {ecpu:.1}), output {:.1} MB",
            s.len() as f64 / 1e6,
            out.len() as f64 / 1e6
        );
        // (No round-trip assertion: go-yaml's comment placement is not
        // idempotent, a foot comment can move into the preceding block.)
        store.load(&out).expect("output reloads");
    }
}
