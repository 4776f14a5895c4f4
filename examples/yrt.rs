//! Round-trips a YAML file through the store: `cargo run --example yrt -- file [indent]`.
use rsops::stores::yaml::YamlStore;
use rsops::stores::Store;
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let data = std::fs::read(&args[1]).expect("readable input file");
    let indent: i64 = args.get(2).map(|s| s.parse().expect("numeric indent")).unwrap_or(0);
    let store = YamlStore::new(indent).expect("valid indent");
    match store.load(&data) {
        Ok(b) => {
            if std::env::var("DUMP").is_ok() {
                eprintln!("{b:#?}");
            }
            let out = store.emit(&b).expect("emit succeeds");
            std::io::stdout().write_all(&out).expect("stdout writable");
        }
        Err(e) => {
            println!("ENCRYPT FAILED\nError unmarshalling file: {e}");
        }
    }
}
