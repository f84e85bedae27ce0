//! `ringport info`.

use ringport::{probe, Backend};

/// Flags of `ringport info`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backend to ask for, as a server would.
    #[arg(long, env = Backend::ENV, default_value = "auto")]
    backend: Backend,
}

/// Worker count default: available CPUs.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Prints the kernel, the backend decision and what io_uring offers.
pub fn run(args: Args) -> anyhow::Result<()> {
    let p = probe::probe();
    println!("kernel: Linux {}", p.kernel);
    println!("cpus: {}", default_workers());
    match p.sysctl_disabled {
        Some(v) => println!("kernel.io_uring_disabled: {v}"),
        None => println!("kernel.io_uring_disabled: (no such sysctl)"),
    }
    match p.memlock {
        Some(b) => println!("RLIMIT_MEMLOCK: {} KiB", b / 1024),
        None => println!("RLIMIT_MEMLOCK: unlimited"),
    }
    match ringport::backend::select(args.backend) {
        Ok((kind, why)) => println!("backend ({}): {kind} — {why}", args.backend),
        Err(e) => println!("backend ({}): none — {e}", args.backend),
    }
    println!("{}", probe::describe(&p));
    Ok(())
}
