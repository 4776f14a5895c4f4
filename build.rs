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
                list.display()
            );
            println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
            println!("cargo:rerun-if-changed=build/hot-symbols.txt");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
