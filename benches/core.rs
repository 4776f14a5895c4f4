//! Micro-benchmarks of the hot paths: value cipher, MAC walk, YAML and JSON
//! parse and emit. `cargo bench`; the side-by-side comparison with sops is
//! `scripts/bench/run`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rsops::cipher::{DataKey, ValueCipher};
use rsops::crypt::{decrypt_document, encrypt_document, plaintext_mac};
use rsops::policy::SelectorSpec;
use rsops::stores::json::JsonStore;
use rsops::stores::yaml::YamlStore;
use rsops::stores::Store;
use rsops::tree::{Branch, Document, Item, Value};

/// A document shaped like real secrets files: `n` services with nested maps
/// and lists of maps, ~100 bytes per value.
fn sample(n: usize) -> Document {
    let mut root = Branch::new();
    for i in 0..n {
        let token: String = (0..120).map(|j| char::from(b'a' + ((i * 7 + j) % 26) as u8)).collect();
        root.push(
            format!("service_{i}"),
            Value::Map(Branch(vec![
                Item::new("token", Value::Str(token.clone())),
                Item::new("port", Value::Int(i as i64)),
                Item::new("ratio", Value::Float(i as f64 / 3.0)),
                Item::new("enabled", Value::Bool(i % 2 == 0)),
                Item::new(
                    "replicas",
                    Value::List(vec![Value::Map(Branch(vec![Item::new(
                        "name",
                        Value::Str(format!("r{i}")),
                    )]))]),
                ),
            ])),
        );
    }
    Document::new(vec![root])
}

fn cipher(c: &mut Criterion) {
    let key = DataKey::generate();
    let vc = ValueCipher::new(&key);
    let plaintext = [b'x'; 64];
    let mut g = c.benchmark_group("value");
    g.throughput(Throughput::Bytes(64));
    g.bench_function("encrypt 64 B", |b| {
        b.iter(|| vc.encrypt_bytes(&plaintext, "str", b"a:b:"))
    });
    let enc = vc.encrypt_bytes(&plaintext, "str", b"a:b:");
    let mut dc = ValueCipher::new(&key);
    g.bench_function("decrypt 64 B", |b| {
        b.iter(|| dc.decrypt_raw(&enc, b"a:b:").map(|r| r.0.len()))
    });
    g.finish();
}

fn tree(c: &mut Criterion) {
    let key = DataKey::generate();
    let sel = SelectorSpec::default().compile().expect("default selector");
    let doc = sample(10_000);
    let mut g = c.benchmark_group("tree 50k values");
    g.sample_size(20);
    g.bench_function("mac", |b| {
        b.iter_batched(
            || doc.clone(),
            |mut d| plaintext_mac(&mut d, &sel, false),
            BatchSize::LargeInput,
        )
    });
    let vc = ValueCipher::new(&key);
    g.bench_function("encrypt", |b| {
        b.iter_batched(
            || doc.clone(),
            |mut d| encrypt_document(&mut d, &vc, &sel, false).map(|o| o.mac),
            BatchSize::LargeInput,
        )
    });
    let mut encrypted = doc.clone();
    encrypt_document(&mut encrypted, &vc, &sel, false).expect("encrypt");
    g.bench_function("decrypt", |b| {
        b.iter_batched(
            || (encrypted.clone(), ValueCipher::new(&key)),
            |(mut d, mut c)| decrypt_document(&mut d, &mut c, &sel, false).map(|o| o.mac),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn stores(c: &mut Criterion) {
    let doc = sample(10_000);
    let yaml = YamlStore::new(4).expect("indent 4");
    let json = JsonStore::new(-1).expect("tab indent");
    let yaml_bytes = yaml.emit(&doc.branches).expect("emit yaml");
    let json_bytes = json.emit(&doc.branches).expect("emit json");
    let mut g = c.benchmark_group("stores");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(yaml_bytes.len() as u64));
    g.bench_function("yaml parse", |b| b.iter(|| yaml.load(&yaml_bytes).map(|d| d.len())));
    g.bench_function("yaml emit", |b| b.iter(|| yaml.emit(&doc.branches).map(|o| o.len())));
    g.throughput(Throughput::Bytes(json_bytes.len() as u64));
    g.bench_function("json parse", |b| b.iter(|| json.load(&json_bytes).map(|d| d.len())));
    g.bench_function("json emit", |b| b.iter(|| json.emit(&doc.branches).map(|o| o.len())));
    g.finish();
}

criterion_group!(benches, cipher, tree, stores);
criterion_main!(benches);
