//! The `proxy` example of the core crate in front of `ringport echo`, driven by the project's
//! own load generator (`ringport bench echo`): every echoed byte is verified by the load
//! generator, at 1 and at 500 connections, with no error.
// Linux only: drives the proxy with `ringport bench`, which exists only on Linux.
#![cfg(target_os = "linux")]

mod util;

use std::path::PathBuf;
use std::process::Command;

use util::ChildServer;

/// The proxy example's binary, built if the workspace's tests did not build it already.
fn proxy_binary() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_ringport"));
    let path = bin.parent().unwrap().join("examples").join("proxy");
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "ringport", "--example", "proxy"])
            .status()
            .expect("running cargo");
        assert!(status.success(), "building the proxy example");
    }
    path
}

#[test]
fn bench_echo_through_the_proxy() {
    let proxy_bin = proxy_binary();
    util::each_backend(|backend| {
        let echo = util::echo(backend);
        let mut cmd = Command::new(&proxy_bin);
        cmd.args(["--listen", "127.0.0.1:0", "--threads", "2"])
            .args([
                "--to",
                &echo.addr.to_string(),
                "--backend",
                &backend.to_string(),
            ])
            .env_remove("RUST_LOG");
        let proxy = ChildServer::start(&mut cmd, "proxy");
        for conns in ["1", "500"] {
            let addr = proxy.addr.to_string();
            let args = [
                "bench", "echo", "--addr", &addr, "--conns", conns, "--size", "64",
            ];
            let out = util::ringport(&args)
                .args(["--duration", "1s", "--warmup", "200ms", "--json"])
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{backend}, {conns} conns: {stdout}");
            let report: serde_json::Value = serde_json::from_str(
                stdout
                    .lines()
                    .rev()
                    .find(|l| l.starts_with('{'))
                    .expect("a JSON line"),
            )
            .unwrap();
            eprintln!("{backend}, {conns} conns: {report}");
            assert_eq!(report["errors"], 0, "{backend}, {conns} conns: {report}");
            assert_eq!(report["verify_errors"], 0, "{backend}, {conns} conns");
            assert!(
                report["round_trips"].as_u64().unwrap() > 0,
                "{backend}, {conns} conns"
            );
        }
    });
}
