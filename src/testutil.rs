//! Helpers shared by the unit tests.

/// xorshift64*: deterministic, dependency-free randomness for the fuzz and
/// differential tests.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The contents of every file with extension `ext` in the test corpora.
pub fn corpus_files(ext: &str) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for dir in [
        "testdata/stores/yaml",
        "testdata/stores/json",
        "testdata/corpus",
        "tests/oracle",
    ] {
        let Ok(rd) = std::fs::read_dir(dir) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) != Some(ext) {
                continue;
            }
            if let Ok(data) = std::fs::read(&p) {
                files.push((p, data));
            }
        }
    }
    files.sort();
    files
}
