//! The machine side of a comparison: pinning to CPUs, the descriptor limit, what the run
//! was made on.

use std::io;

use serde::{Deserialize, Serialize};

/// CPU of the server processes when pinned.
pub const SERVER_CPU: usize = 0;
/// CPU of the load generator when pinned.
pub const LOAD_CPU: usize = 1;

/// Pins the calling thread (and the threads and processes it starts afterwards) to `cpu`.
///
/// # Errors
/// When the CPU does not exist or may not be used.
pub fn pin_to(cpu: usize) -> io::Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set)?;
    Ok(())
}

/// CPUs this process may run on.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Raises the open-descriptor limit to at least `want` (soft and hard, which needs
/// `CAP_SYS_RESOURCE` above the hard limit), else as far as the hard limit goes; the limit
/// now, and a sentence when it is below `want`.
pub fn raise_fd_limit(want: u64) -> (u64, Option<String>) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let now = getrlimit(Resource::Nofile);
    let cur = now.current.unwrap_or(u64::MAX);
    if cur >= want {
        return (cur, None);
    }
    let hard = now.maximum.unwrap_or(u64::MAX);
    let target = if hard >= want {
        (want, hard)
    } else {
        (want, want)
    };
    let wanted = Rlimit {
        current: Some(target.0),
        maximum: Some(target.1),
    };
    if setrlimit(Resource::Nofile, wanted).is_ok() {
        return (want, None);
    }
    // Not allowed above the hard limit: take what there is.
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        },
    );
    let got = getrlimit(Resource::Nofile).current.unwrap_or(hard);
    let note = format!(
        "the open-descriptor limit is {got} and may not be raised to {want} here (raising \
         the hard limit needs CAP_SYS_RESOURCE: `ulimit -Hn {want}` as root): points with \
         many connections may show connection errors"
    );
    (got, Some(note))
}

/// What the comparison ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// CPUs available to the comparison.
    pub cpus: usize,
    /// `uname -sr`.
    pub kernel: String,
    /// Whether the servers ran on CPU 0 and the load generator on CPU 1.
    pub pinned: bool,
    /// CPUs each server may use (the "CPUs" of one thread per CPU and of 2 × CPUs + 2).
    pub server_cpus: usize,
    /// The open-descriptor limit of the run.
    pub fd_limit: u64,
    /// Notes on the setup (limits not raised, pinning not possible).
    pub notes: Vec<String>,
}

/// The kernel's name and release.
pub fn kernel() -> String {
    let uname = rustix::system::uname();
    format!(
        "{} {}",
        uname.sysname().to_string_lossy(),
        uname.release().to_string_lossy()
    )
}
