//! rsops: a fast, SOPS-compatible secrets file encryption tool.
//!
//! The format core (tree, cipher, MAC, metadata, policy, Shamir, stores) is
//! synchronous and free of I/O; key sources live in [`keys`], the command
//! line in the binary.

pub mod b64;
pub mod bigbuf;
pub mod cipher;
pub mod config;
pub mod cpu;
pub mod cpus;
pub mod crypt;
pub mod find;
mod gcm;
pub mod gofmt;
pub mod keys;
#[cfg(target_arch = "x86_64")]
pub mod memfns;
pub mod metadata;
pub mod pipeline;
pub mod policy;
pub mod sha512;
pub mod shamir;
pub mod sopsfile;
pub mod stores;
mod swar;
pub mod timefmt;
pub mod tree;
pub mod treepath;

#[cfg(test)]
mod testutil;
