//! `ringport serve` (also what `ringport` does with no subcommand).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use ringport_servers::files::{self, FilesConfig};
use ringport_servers::http::{log::Target, HttpConfig};

use crate::port_args::{timeout, PortArgs, Timeout};

/// Flags of `ringport serve`.
///
/// One port speaks both protocols, told apart by the first request line: `METHOD SP target
/// SP HTTP/x.y` is HTTP/1.1 (GET and HEAD of the files, for browsers, curl and wget), anything
/// else is a file name of the nc protocol.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The folder to serve (default: the current folder).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8182")]
    listen: SocketAddr,
    /// Longest file name accepted, in bytes.
    #[arg(long, default_value_t = 4096)]
    max_name: usize,
    /// Seconds an nc connection may stay idle (no request in progress, no transfer) before it
    /// is closed (0: never; HTTP connections: --keepalive-timeout).
    #[arg(long, default_value = "300", value_name = "SECS", value_parser = timeout)]
    idle_timeout: Timeout,
    /// Seconds within which a file name must arrive whole once its first byte has (0: no
    /// limit); a client that trickles bytes is told so and closed.
    #[arg(long, default_value = "60", value_name = "SECS", value_parser = timeout)]
    request_timeout: Timeout,
    /// Connections served at once, nc and HTTP together; more get the nc line "error: server
    /// busy, try again" and are closed.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    #[command(flatten)]
    port: PortArgs,
    #[command(flatten)]
    http: HttpArgs,
}

/// The HTTP side's flags.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "HTTP")]
struct HttpArgs {
    /// A folder without index.html gets an HTML listing of its entries (else 404).
    #[arg(long)]
    list: bool,
    /// Serve and list names starting with a dot (else they are 404).
    #[arg(long)]
    hidden: bool,
    /// Never send precompressed side files (NAME.br, NAME.zst, NAME.gz beside NAME, sent to
    /// clients whose Accept-Encoding takes that coding).
    #[arg(long)]
    no_precompressed: bool,
    /// The Cache-Control value sent with files, e.g. "max-age=3600" (none by default).
    #[arg(long, value_name = "VALUE")]
    cache_control: Option<String>,
    /// Write an access log in the combined format to FILE (appended), or to standard output
    /// with "-".
    #[arg(long, value_name = "FILE|-")]
    access_log: Option<Target>,
    /// Longest request head (request line and headers) in bytes: longer gets 414 or 431.
    #[arg(long, default_value_t = 16 * 1024, value_parser = clap::value_parser!(u32).range(256..=1 << 20))]
    max_header_bytes: u32,
    /// Most header lines in a request (at most 128): more gets 431.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=128))]
    max_headers: u16,
    /// Seconds a request's head (and any body, up to --max-body) may take to arrive from its
    /// first byte: past it 408 and close.
    #[arg(long, default_value = "10", value_name = "SECS", value_parser = timeout)]
    header_timeout: Timeout,
    /// Seconds an HTTP keep-alive connection may wait for its next request.
    #[arg(long, default_value = "60", value_name = "SECS", value_parser = timeout)]
    keepalive_timeout: Timeout,
    /// Longest request body read and dropped, in bytes: longer gets 413 and close.
    #[arg(long, default_value_t = 1024 * 1024)]
    max_body: u64,
    /// MiB of small files kept in memory (shared out among workers; 0 turns the cache off).
    /// Every hit checks the file on disk first, so a changed file is never served stale.
    #[arg(long, default_value_t = 64)]
    cache_mib: u64,
    /// Largest file kept in that cache, in KiB. Larger files go out with sendfile, which costs
    /// the server less than copying them from memory once past ~16 KiB.
    #[arg(long, default_value_t = 16)]
    cache_max_file_kib: u64,
}

fn http_config(args: HttpArgs) -> anyhow::Result<HttpConfig> {
    let required = |t: Timeout, flag: &str| {
        t.0.with_context(|| format!("{flag} must be more than 0 (HTTP timeouts cannot be off)"))
    };
    Ok(HttpConfig {
        list: args.list,
        hidden: args.hidden,
        precompressed: !args.no_precompressed,
        cache_control: args.cache_control,
        access_log: args.access_log,
        max_header_bytes: args.max_header_bytes as usize,
        max_headers: usize::from(args.max_headers),
        header_timeout: required(args.header_timeout, "--header-timeout")?,
        keepalive_timeout: required(args.keepalive_timeout, "--keepalive-timeout")?,
        max_body: args.max_body,
        cache_size: args.cache_mib.saturating_mul(1 << 20),
        cache_max_file: args.cache_max_file_kib.saturating_mul(1 << 10),
        ..HttpConfig::default()
    })
}

/// Serves files until SIGINT or SIGTERM.
pub fn run(args: Args) -> anyhow::Result<()> {
    let mut cfg = FilesConfig::new(&args.dir, args.listen);
    cfg.port = args.port.settings(args.listen);
    cfg.max_name = args.max_name;
    cfg.idle_timeout = args.idle_timeout.0;
    cfg.request_timeout = args.request_timeout.0;
    cfg.max_connections = args.max_connections;
    cfg.http = http_config(args.http)?;
    let port = crate::serving::start("file", cfg.port.listen, || files::start(&cfg))?;
    let root = std::fs::canonicalize(&args.dir).unwrap_or(args.dir);
    println!(
        "ringport serve listening on {}, serving {} ({} backend, {} workers)",
        port.local_addr().unwrap_or(cfg.port.listen),
        root.display(),
        port.backend(),
        port.workers()
    );
    crate::serving::wait(port)
}
