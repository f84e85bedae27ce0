//! `ringport info`.

use ringport::Backend;

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

/// Prints the system, the backend decision and what the backend offers here.
pub fn run(args: Args) -> anyhow::Result<()> {
    platform::run(args.backend)
}

/// The backend decision line.
fn print_backend(requested: Backend) {
    match ringport::backend::select(requested) {
        Ok((kind, why)) => println!("backend ({requested}): {kind} — {why}"),
        Err(e) => println!("backend ({requested}): none — {e}"),
    }
}

#[cfg(target_os = "linux")]
mod platform {
    use ringport::{probe, Backend};

    use super::{default_workers, print_backend};

    /// The kernel, CPUs, io_uring's switches and limits, the backend, the io_uring probe.
    pub fn run(requested: Backend) -> anyhow::Result<()> {
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
        print_backend(requested);
        println!("{}", probe::describe(&p));
        Ok(())
    }
}

#[cfg(windows)]
mod platform {
    use anyhow::Context;
    use ringport::Backend;
    use windows_sys::Wdk::System::SystemServices::RtlGetVersion;
    use windows_sys::Win32::System::SystemInformation::OSVERSIONINFOW;

    use super::{default_workers, print_backend};

    /// The Windows version as the kernel reports it (`RtlGetVersion`: unlike `GetVersionEx`,
    /// not shimmed to what the program's manifest declares).
    fn version() -> std::io::Result<(u32, u32, u32)> {
        let mut info = OSVERSIONINFOW {
            dwOSVersionInfoSize: std::mem::size_of::<OSVERSIONINFOW>() as u32,
            ..OSVERSIONINFOW::default()
        };
        // SAFETY: `info` is a writable OSVERSIONINFOW whose size field says so, as the call
        // requires.
        let status = unsafe { RtlGetVersion(&mut info) };
        if status != 0 {
            return Err(std::io::Error::other(format!(
                "RtlGetVersion: NTSTATUS {status:#x}"
            )));
        }
        Ok((info.dwMajorVersion, info.dwMinorVersion, info.dwBuildNumber))
    }

    /// The Windows version, CPUs, the handle limit and the backend.
    pub fn run(requested: Backend) -> anyhow::Result<()> {
        let (major, minor, build) = version().context("reading the Windows version")?;
        println!("system: Windows {major}.{minor} (build {build})");
        println!("cpus: {}", default_workers());
        let limit = ringport::fd_limit().context("reading the handle limit")?;
        println!("handle limit: {limit}");
        print_backend(requested);
        println!("iocp: I/O completion ports, one port per worker");
        Ok(())
    }
}
