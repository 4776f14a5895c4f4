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

/// Random block-structured documents with comments everywhere.
fn gen_structured(rng: &mut Rng, out: &mut String, ind: usize, depth: usize) {
    let n = 1 + rng.below(4);
    let list = depth > 0 && rng.below(3) == 0;
    for i in 0..n {
        for _ in 0..rng.below(3) {
            match rng.below(6) {
                0 => out.push('\n'),
                1 => out.push_str(&format!("{:w$}# c{i}\n", "", w = ind.saturating_sub(2))),
                2 => out.push_str(&format!("{:w$}# d{i}\n", "", w = ind + 2)),
                3 => out.push_str("# top\n"),
                _ => out.push_str(&format!("{:ind$}# h{i}\n", "")),
            }
        }
        let lead = if list {
            format!("{:ind$}- ", "")
        } else {
            format!("{:ind$}k{i}: ", "")
        };
        out.push_str(&lead);
        let sub = if list { ind + 2 } else { ind + 2 + rng.below(2) * 2 };
        match rng.below(if depth < 4 { 9 } else { 5 }) {
            0 => out.push_str("plain value"),
            1 => out.push_str("\"quoted \\t\""),
            2 => out.push_str("42"),
            3 => out.push_str("|\n  line1\n  line2"),
            4 => out.push_str("[a, {b: c}]"),
            5 | 6 => {
                if rng.below(2) == 0 {
                    out.push_str("# on key");
                }
                out.push('\n');
                gen_structured(rng, out, sub, depth + 1);
                continue;
            }
            _ => {
                out.push('\n');
                gen_structured(rng, out, sub, depth + 1);
                continue;
            }
        }
        if rng.below(3) == 0 {
            out.push_str(" # line");
        }
        out.push('\n');
    }
    if rng.below(3) == 0 {
        out.push_str(&format!("{:ind$}# foot\n", ""));
    }
}

/// A generated file: sometimes a document head comment, a second
/// document one time in `second_doc_one_in`, CRLF line ends for every
/// seventh `i`.
pub fn generated_document(rng: &mut Rng, i: usize, second_doc_one_in: usize) -> String {
    let mut s = String::new();
    if rng.below(4) == 0 {
        s.push_str("# doc head\n\n");
    }
    gen_structured(rng, &mut s, 0, 0);
    if rng.below(second_doc_one_in) == 0 {
        s.push_str("---\n");
        gen_structured(rng, &mut s, 0, 0);
    }
    if i.is_multiple_of(7) {
        s = s.replace('\n', "\r\n");
    }
    s
}
