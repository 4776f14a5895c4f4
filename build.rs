fn main() {
    println!("cargo:rerun-if-env-changed=RSOPS_PLAIN_LINK");
    let target = std::env::var("TARGET").unwrap_or_default();
    // RSOPS_PLAIN_LINK=1 keeps the toolchain's default link (for linkers
    // other than lld, which lack --symbol-ordering-file).
    if target.contains("linux") && std::env::var_os("RSOPS_PLAIN_LINK").is_none() {
        // Link the executable without PIE (as Go links sops): the loader then
        // has no 38k relative relocations to apply at each start, which saves
        // about 1.5 MiB of resident memory and the time to touch those pages.
        println!("cargo:rustc-link-arg-bins=-no-pie");
        // Put the functions a small encrypt/decrypt runs next to each other
        // (list made by scripts/bench/hot-symbols), so a start maps fewer
        // 64 KiB fault-around windows of the 10 MiB text.
        if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64") {
            let list = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
                .join("build/hot-symbols.txt");
            println!(
                "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
                list_named_by_content(&list).display()
            );
            println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
            println!("cargo:rerun-if-changed=build/hot-symbols.txt");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// A copy of `list` in OUT_DIR whose name carries a hash of its content.
/// Cargo relinks the executable when its link arguments change, not when a
/// file they name does: with the same path each time, a regenerated list
/// took effect only at the next change to the code.
fn list_named_by_content(list: &std::path::Path) -> std::path::PathBuf {
    let text = std::fs::read(list).unwrap_or_default();
    // FNV-1a: a name that changes with the content, nothing more.
    let hash = text.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let copy = out.join(format!("hot-symbols-{hash:016x}.txt"));
    std::fs::write(&copy, &text).expect("OUT_DIR is writable");
    copy
}
