//! The `rsops` binary: a drop-in replacement for the `sops` command.

mod cli;

fn main() {
    cli::heap::grow_in_large_steps();
    std::process::exit(cli::main());
}
