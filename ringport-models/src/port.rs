//! Model (5): ringport's completion port, that is `ringport echo` and `ringport serve`
//! themselves, on io_uring or on the epoll backend.

use std::io;
use std::time::Duration;

use ringport::{Backend, Port};
use ringport_servers::{echo, files, PortSettings};

use crate::{Model, ModelConfig, Service};

/// How long stopping lets clients finish.
const SHUTDOWN: Duration = Duration::from_secs(1);

/// Starts ringport's server of `service` as `model` asks: io_uring or epoll, one worker per
/// CPU or 2 × CPUs + 2.
pub(crate) fn start(model: Model, service: &Service, cfg: &ModelConfig) -> io::Result<Port> {
    let backend = match model {
        Model::PortEpoll => Backend::Epoll,
        _ => Backend::Uring,
    };
    let workers = model.serving_threads(cfg).unwrap_or(cfg.cpus);
    let mut port = PortSettings::new(cfg.listen);
    port.workers = workers;
    port.backend = backend;
    port.shutdown_timeout = SHUTDOWN;
    match service {
        Service::Echo => echo::start(&echo::EchoConfig { port }),
        Service::Files(root) => {
            let mut files_cfg = files::FilesConfig::new(root, cfg.listen);
            files_cfg.port = port;
            files_cfg.max_name = cfg.max_name;
            files_cfg.idle_timeout = Some(cfg.idle_timeout);
            files_cfg.max_connections = cfg.max_connections;
            files::start(&files_cfg)
        }
    }
}
