//! The `rsops` binary: a drop-in replacement for the `sops` command.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
