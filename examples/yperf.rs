//! Self-timing check (not an assertion): `cargo run --release --example yperf`.
//! Builds a ~10 MB YAML file with ~100k values and times load + emit.
use rsops::stores::yaml::YamlStore;
use rsops::stores::Store;
use std::fmt::Write;
use std::time::Instant;

fn main() {
    let mut s = String::new();
    let mut values = 0;
    let mut i = 0;
    while s.len() < 10_000_000 {
        writeln!(s, "# section {i}").expect("write to String");
        writeln!(s, "service_{i}:").expect("write to String");
        writeln!(
            s,
            "    name: service-number-{i}-with-a-fairly-long-descriptive-name-to-pad-the-line"
        )
        .expect("write");
        writeln!(s, "    port: {}", 1000 + i).expect("write");
        writeln!(s, "    ratio: {}.25", i).expect("write");
        writeln!(s, "    enabled: true # inline").expect("write");
        writeln!(s, "    password: \"p@ss:{i} with quotes and \\t escapes\"").expect("write");
        writeln!(s, "    hosts:").expect("write");
        for h in 0..3 {
            writeln!(s, "        - host-{h}.example.com").expect("write");
        }
        writeln!(s, "    cert: |").expect("write");
        for _ in 0..3 {
            writeln!(s, "        MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAuVGg5pQ0xYzB").expect("write");
        }
        values += 9;
        i += 1;
    }
    let ph = rsops::stores::yaml::bench_phases(s.as_bytes());
    println!(
        "phases (ms): scan {:.1} | scan+parse {:.1} | +compose {:.1} | precheck {:.1} | convert {:.1} | drop nodes {:.1} | drop tree {:.1}",
        ph[0], ph[1], ph[2], ph[3], ph[4], ph[5], ph[6]
    );
    let store = YamlStore::default();
    let t0 = Instant::now();
    let branches = store.load(s.as_bytes()).expect("generated YAML loads");
    let t1 = Instant::now();
    let out = store.emit(&branches).expect("emit succeeds");
    let t2 = Instant::now();
    println!(
        "input {:.1} MB, {} values: load {:.1} ms, emit {:.1} ms, total {:.1} ms (output {:.1} MB)",
        s.len() as f64 / 1e6,
        values,
        (t1 - t0).as_secs_f64() * 1e3,
        (t2 - t1).as_secs_f64() * 1e3,
        (t2 - t0).as_secs_f64() * 1e3,
        out.len() as f64 / 1e6
    );
    // Round trip must be stable.
    let again = store.load(&out).expect("output reloads");
    assert!(again == branches, "round trip changed the tree");
}
