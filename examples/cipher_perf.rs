//! Times the value cipher on many short values (a dotenv-like load):
//! `cargo run --release --example cipher_perf`.
use rsops::cipher::{DataKey, ValueCipher};
use std::time::Instant;

fn main() {
    let cipher = ValueCipher::new(&DataKey::generate());
    let values: Vec<Vec<u8>> = (0..10_000)
        .map(|i| vec![b'a' + (i % 26) as u8; 20 + (i * 37) % 180])
        .collect();
    let aad = b"VAR_1234:";
    for round in 0..5 {
        let mut out = Vec::with_capacity(4 << 20);
        let t = Instant::now();
        for v in &values {
            cipher.encrypt_into(v, "str", aad, &mut out);
            out.push(b'\n');
        }
        let enc = t.elapsed();
        let text = String::from_utf8(out).expect("ascii");
        let mut plain = Vec::with_capacity(4 << 20);
        let t = Instant::now();
        for line in text.lines() {
            cipher.open_line_into(line, aad, &mut plain).expect("decrypts");
        }
        let dec = t.elapsed();
        println!(
            "round {round}: encrypt {:.0} ns/value, decrypt {:.0} ns/value",
            enc.as_nanos() as f64 / 1e4,
            dec.as_nanos() as f64 / 1e4
        );
    }
}
