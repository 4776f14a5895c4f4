//! The `rsops` binary: a drop-in replacement for the `sops` command.

mod cli;

#[global_allocator]
static ALLOCATOR: rsops::bigbuf::Allocator = rsops::bigbuf::Allocator;

fn main() {
    cli::heap::grow_in_large_steps();
    std::process::exit(cli::main());
}
