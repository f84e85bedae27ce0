//! The download benchmark: every connection fetches the same file again and again over one
//! connection (request, whole body, next request), in the file server's nc protocol or in
//! HTTP/1.1 keep-alive, so that the same client can measure `ringport serve` and nginx.
//!
//! Every download's length is checked, and with a local copy of the file every byte too.

mod client;
mod expected;
mod report;
mod sink;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use ringport::Backend;

use crate::error::LoadError;
use crate::http;
use crate::run::{drive, Plan};
use crate::stats::LiveCounter;
use client::{FilesClient, Shared};
use expected::Expected;
use report::Inputs;

pub use report::FilesReport;

/// Provided receive buffers of each generator worker: fewer, larger chunks than the port's
/// default 16 KiB mean fewer completions per megabyte, and 256 × 64 KiB stays small enough to
/// live in the CPU's caches.
const BUFFERS: (u16, u32) = (256, 64 * 1024);

/// How the client asks for the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// `ringport serve`'s protocol: the name and a LF; the reply is the file's bytes alone,
    /// or one line `error: REASON: NAME`.
    #[default]
    Nc,
    /// HTTP/1.1 keep-alive: `GET /NAME`; the reply must be `200` with a Content-Length of
    /// the file's size.
    Http,
}

impl FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "nc" => Ok(Protocol::Nc),
            "http" => Ok(Protocol::Http),
            _ => Err(format!("unknown protocol {s:?} (expected nc or http)")),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Nc => "nc",
            Protocol::Http => "http",
        })
    }
}

/// What every download must be.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expect {
    /// The bytes of this local copy of the file: read into memory once, every byte received
    /// is compared with it.
    File(PathBuf),
    /// Only this many bytes.
    Size(u64),
}

/// Settings of a download run.
#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// The file server.
    pub addr: SocketAddr,
    /// The file asked for (relative to the served folder).
    pub name: String,
    /// What each download must be.
    pub expect: Expect,
    /// How to ask.
    pub protocol: Protocol,
    /// Connections, each with one download in flight.
    pub conns: usize,
    /// Unmeasured time before the window.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// Worker threads of the generator's port (at most `conns` are used).
    pub threads: usize,
    /// Backend of the generator's port.
    pub backend: Backend,
    /// The server's process, to measure its CPU time in the window.
    pub server_pid: Option<u32>,
    /// A download that gets no byte for this long is an error (a server that sends fewer
    /// bytes than expected looks like this).
    pub stall_timeout: Duration,
    /// Show a progress line on stderr.
    pub progress: bool,
    /// Do not look at the bytes: splice each body into `/dev/null` and count lengths only
    /// (one thread per connection), to measure the server rather than the client. Needs
    /// [`Expect::Size`].
    pub discard: bool,
}

impl FilesConfig {
    /// 16 connections fetching `name` from `addr` over nc, 1 s warmup, 5 s measured, one
    /// thread.
    pub fn new(addr: SocketAddr, name: impl Into<String>, expect: Expect) -> Self {
        FilesConfig {
            addr,
            name: name.into(),
            expect,
            protocol: Protocol::Nc,
            conns: 16,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(5),
            threads: 1,
            backend: Backend::Auto,
            server_pid: None,
            stall_timeout: Duration::from_secs(2),
            progress: false,
            discard: false,
        }
    }

    fn validate(&self) -> Result<(), LoadError> {
        let bad = |why: &str| Err(LoadError::Config(why.to_owned()));
        if self.name.is_empty() || self.name.bytes().any(|b| b == b'\n' || b == b'\r') {
            return bad("the file name must be non-empty and hold no line break");
        }
        if self.expect == Expect::Size(0) {
            return bad("an empty download cannot be timed: the size must be at least 1 byte");
        }
        if self.conns == 0 {
            return bad("at least one connection is needed");
        }
        if self.threads == 0 {
            return bad("at least one thread is needed");
        }
        if self.duration.is_zero() {
            return bad("the measured duration must not be zero");
        }
        if self.stall_timeout < Duration::from_millis(10) {
            return bad("the stall timeout must be at least 10 ms");
        }
        if self.discard && !matches!(self.expect, Expect::Size(_)) {
            return bad("discarding the bytes needs the size only, not a local copy");
        }
        Ok(())
    }
}

/// Runs downloads as `cfg` says and reports what it measured.
///
/// Each connection sends the request, receives and checks the whole body, records the time
/// from request to last byte, and sends the next request. After the window the generator stops
/// by itself, within a short grace even if the server no longer answers.
///
/// # Errors
/// Bad settings, an unreadable local copy or server pid, a port that does not start, or a
/// worker that fails. Downloads that fail are counted in the report instead.
pub fn run_files(cfg: &FilesConfig) -> Result<FilesReport, LoadError> {
    cfg.validate()?;
    let expected = Expected::load(&cfg.expect)?;
    let plan = Plan {
        conns: cfg.conns,
        threads: cfg.threads.min(cfg.conns),
        warmup: cfg.warmup,
        duration: cfg.duration,
        backend: cfg.backend,
        server_pid: cfg.server_pid,
        progress: cfg.progress,
        unit: "downloads",
        buffers: Some(BUFFERS),
    };
    let request: Vec<u8> = match cfg.protocol {
        Protocol::Nc => [cfg.name.as_bytes(), b"\n"].concat(),
        Protocol::Http => http::request(&cfg.name),
    };
    if let (true, Expect::Size(size)) = (cfg.discard, &cfg.expect) {
        return sink::run(cfg, request.into(), *size);
    }
    let shared = Arc::new(Shared {
        addr: cfg.addr,
        conns: cfg.conns,
        threads: plan.threads,
        protocol: cfg.protocol,
        name: cfg.name.clone(),
        request: request.into(),
        expected: expected.clone(),
        tick: cfg.stall_timeout / client::STALL_TICKS,
        downloads: (0..plan.threads).map(|_| LiveCounter::default()).collect(),
    });
    let live = shared.clone();
    let measured = drive(&plan, &move || live.downloads(), move |worker, results| {
        FilesClient::new(worker, shared.clone(), results)
    })?;
    let inputs = Inputs {
        backend: measured.backend,
        protocol: cfg.protocol,
        name: cfg.name.clone(),
        size: expected.size(),
        verified: expected.verifies(),
        conns: cfg.conns,
        threads: plan.threads,
        warmup: cfg.warmup,
        window: measured.window,
        server_cpu: measured.server_cpu,
        client_cpu: measured.client_cpu,
        server: measured.server,
    };
    Ok(FilesReport::new(inputs, &measured.stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names() {
        assert_eq!("nc".parse(), Ok(Protocol::Nc));
        assert_eq!("HTTP".parse(), Ok(Protocol::Http));
        assert!("ftp".parse::<Protocol>().is_err());
        assert_eq!(Protocol::Http.to_string(), "http");
    }

    #[test]
    fn refuses_bad_settings() {
        let addr = "127.0.0.1:1".parse().unwrap();
        let ok = FilesConfig::new(addr, "a.bin", Expect::Size(10));
        assert!(ok.validate().is_ok());
        for bad in [
            FilesConfig::new(addr, "", Expect::Size(10)),
            FilesConfig::new(addr, "a\nb", Expect::Size(10)),
            FilesConfig::new(addr, "a.bin", Expect::Size(0)),
            FilesConfig {
                conns: 0,
                ..ok.clone()
            },
            FilesConfig {
                duration: Duration::ZERO,
                ..ok.clone()
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(LoadError::Config(_))),
                "{bad:?}"
            );
        }
    }
}
