fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.contains("linux") {
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
