//! Where the time goes: times each phase of encrypting and decrypting one
//! file in-process. `cargo run --release --example phases -- FILE`
//! (format from the extension; the data key is random, no key service).

use rsops::cipher::{DataKey, ValueCipher};
use rsops::crypt::{decrypt_document, encrypt_document};
use rsops::metadata::{MasterKey, Metadata, EMULATED_SOPS_VERSION};
use rsops::policy::SelectorSpec;
use rsops::sopsfile::{self, StoreSettings};
use rsops::stores::Format;
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("usage: phases FILE");
    let format = Format::from_path(&path);
    let settings = StoreSettings::default();
    let t = Instant::now();
    let input = std::fs::read(&path).expect("read");
    let read = t.elapsed();
    let t = Instant::now();
    let mut doc = sopsfile::load_plain(format, &settings, &input).expect("parse");
    let parse = t.elapsed();
    let key = DataKey::generate();
    let sel = SelectorSpec::default().compile().expect("selector");
    let t = Instant::now();
    let outcome = encrypt_document(&mut doc, &ValueCipher::new(&key), &sel, false).expect("encrypt");
    let encrypt = t.elapsed();
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
    let t = Instant::now();
    let out = sopsfile::emit_encrypted(format, &settings, &mut doc, &metadata).expect("emit");
    let emit = t.elapsed();
    let t = Instant::now();
    let (mut doc2, _) = sopsfile::load_encrypted(format, &settings, &out).expect("parse encrypted");
    let parse2 = t.elapsed();
    let t = Instant::now();
    decrypt_document(&mut doc2, &mut ValueCipher::new(&key), &sel, false).expect("decrypt");
    let decrypt = t.elapsed();
    let t = Instant::now();
    let plain = sopsfile::emit_plain(format, &settings, &doc2).expect("emit plain");
    let emit2 = t.elapsed();
    println!(
        "{path}: {} MiB in, {} MiB encrypted\nencrypt: read {read:?}, parse {parse:?}, encrypt+MAC {encrypt:?}, emit {emit:?}\n\
         decrypt: parse {parse2:?}, decrypt+MAC {decrypt:?}, emit {emit2:?}",
        input.len() >> 20,
        out.len() >> 20
    );
    println!("plaintext out: {} bytes", plain.len());
}
