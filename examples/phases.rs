//! Where the time goes: times each phase of encrypting and decrypting one
//! file in-process. `cargo run --release --example phases -- FILE`
//! (format from the extension; the data key is random, no key service).

use rsops::cipher::{DataKey, ValueCipher};
use rsops::crypt::{decrypt_document, encrypt_document};
use rsops::metadata::{MasterKey, Metadata, EMULATED_SOPS_VERSION};
use rsops::policy::SelectorSpec;
use rsops::sopsfile::{self, StoreSettings};
use rsops::stores::Format;
use std::time::{Duration, Instant};

/// CPU time of the whole process so far (all threads).
fn cpu() -> Duration {
    // SAFETY: getrusage only writes the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Times one phase: wall and CPU (CPU above wall means several cores).
fn timed<T>(log: &mut Vec<String>, name: &str, f: impl FnOnce() -> T) -> T {
    let (t, c) = (Instant::now(), cpu());
    let r = f();
    let (now, peak) = rss();
    log.push(format!(
        "{name} {:.1} ms (cpu {:.1}, rss {now}/{peak} MiB)",
        ms(t.elapsed()),
        ms(cpu() - c)
    ));
    r
}

/// Resident and peak resident memory in MiB (Linux `/proc/self/status`).
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            >> 10
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: phases FILE");
    let format = Format::from_path(&path);
    let settings = StoreSettings::default();
    let mut enc_log = Vec::new();
    let input = timed(&mut enc_log, "read", || std::fs::read(&path).expect("read"));
    let mut doc = timed(&mut enc_log, "parse", || {
        sopsfile::load_plain(format, &settings, &input).expect("parse")
    });
    let key = DataKey::generate();
    let sel = SelectorSpec::default().compile().expect("selector");
    let outcome = timed(&mut enc_log, "encrypt+MAC", || {
        encrypt_document(&mut doc, &ValueCipher::new(&key), &sel, false).expect("encrypt")
    });
    let metadata = Metadata {
        key_groups: vec![vec![MasterKey::Age {
            recipient: "age1x".into(),
            enc: "x".into(),
        }]],
        shamir_threshold: 0,
        last_modified: "2026-01-01T00:00:00Z".into(),
        mac: outcome.mac,
        selectors: SelectorSpec {
            unencrypted_suffix: "_unencrypted".into(),
            ..Default::default()
        },
        mac_only_encrypted: false,
        version: EMULATED_SOPS_VERSION.into(),
    };
    let out = timed(&mut enc_log, "emit", || {
        sopsfile::emit_encrypted(format, &settings, &mut doc, &metadata).expect("emit")
    });
    let mut dec_log = Vec::new();
    let (mut doc2, _) = timed(&mut dec_log, "parse", || {
        sopsfile::load_encrypted(format, &settings, &out).expect("parse encrypted")
    });
    timed(&mut dec_log, "decrypt+MAC", || {
        decrypt_document(&mut doc2, &mut ValueCipher::new(&key), &sel, false).expect("decrypt")
    });
    let plain = timed(&mut dec_log, "emit", || {
        sopsfile::emit_plain(format, &settings, &doc2).expect("emit plain")
    });
    println!(
        "{path}: {} MiB in, {} MiB encrypted\nencrypt: {}\ndecrypt: {}",
        input.len() >> 20,
        out.len() >> 20,
        enc_log.join(", "),
        dec_log.join(", ")
    );
    println!("plaintext out: {} bytes", plain.len());
}
