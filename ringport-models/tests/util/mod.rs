//! Helpers of the models' tests: the shared ones of `ringport-testutil`, and every model
//! started in turn.
#![allow(dead_code)] // each test file uses a different part of this module

pub use ringport_testutil::*;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ringport_models::{start, Model, ModelConfig, Server, Service};

/// How long stopping a model may take before the test calls it a hang.
pub const STOP_BOUND: Duration = Duration::from_secs(30);

/// The settings the tests start models with: a free loopback port, two CPUs' worth of
/// reactor threads and port workers.
pub fn config() -> ModelConfig {
    let mut cfg = ModelConfig::new("127.0.0.1:0".parse().unwrap());
    cfg.cpus = 2;
    cfg
}

/// Starts `model` with `cfg`, or `None` (with a note) where its backend is unavailable here.
pub fn start_model(model: Model, service: &Service, cfg: &ModelConfig) -> Option<Server> {
    match start(model, service, cfg) {
        Ok(server) => Some(server),
        Err(e) if e.kind() == ErrorKind::Unsupported => {
            eprintln!("skipping {model}: {e}");
            None
        }
        Err(e) => panic!("starting {model}: {e}"),
    }
}

/// Runs `test` against every model serving `service` (with `cfg`), each stopped afterwards.
pub fn each_model_with(service: &Service, cfg: &ModelConfig, test: impl Fn(Model, SocketAddr)) {
    raise_fd_limit();
    for model in Model::ALL {
        let Some(server) = start_model(model, service, cfg) else {
            continue;
        };
        eprintln!("model {model}");
        test(model, server.local_addr());
        within(STOP_BOUND, "stopping the model", move || server.stop())
            .unwrap_or_else(|e| panic!("{model} stops cleanly: {e}"));
    }
}

/// Runs `test` against every model's echo service.
pub fn each_echo(test: impl Fn(Model, SocketAddr)) {
    each_model_with(&Service::Echo, &config(), test);
}

/// Runs `test` against every model's file service for `root`.
pub fn each_files(root: &Path, test: impl Fn(Model, SocketAddr)) {
    each_model_with(&Service::Files(root.to_owned()), &config(), test);
}
