//! Helpers of the core's behaviour tests: the shared ones of `ringport-testutil` (the backend
//! matrix, bounded waits, descriptor counting, verifiable payloads, loopback clients), and a
//! port listening on loopback.
#![allow(dead_code)] // each test file uses a different part of this module

pub use ringport_testutil::*;

use ringport::{Backend, Port, PortBuilder};

/// A port of `workers` workers on `backend`, listening on a free loopback port: to be
/// started with the test's handler.
pub fn loopback_port(backend: Backend, workers: usize) -> PortBuilder {
    Port::builder()
        .workers(workers)
        .backend(backend)
        .listen("127.0.0.1:0".parse().unwrap())
}

/// The binary of this crate's example `name`, built by `cargo test` beside the tests (but not
/// by `cargo test --test NAME`, which builds only that test: build the examples first then).
///
/// # Panics
/// If it is not there.
pub fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/PROFILE/deps");
    let path = dir
        .join("examples")
        .join(name)
        .with_extension(std::env::consts::EXE_EXTENSION);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p ringport --example {name}`",
        path.display()
    );
    path
}
