//! What this kernel's io_uring can do, and whether ringport can run on it.

use std::fmt::Write as _;

use io_uring::{opcode, IoUring, Probe};

/// The operations ringport needs, by name and opcode.
const NEEDED: &[(&str, u8)] = &[
    ("ACCEPT", opcode::Accept::CODE),
    ("RECV", opcode::Recv::CODE),
    ("SEND", opcode::Send::CODE),
    ("CONNECT", opcode::Connect::CODE),
    ("CLOSE", opcode::Close::CODE),
    ("TIMEOUT", opcode::Timeout::CODE),
    ("ASYNC_CANCEL", opcode::AsyncCancel::CODE),
    ("POLL_ADD", opcode::PollAdd::CODE),
    ("OPENAT2", opcode::OpenAt2::CODE),
    ("READ", opcode::Read::CODE),
    ("WRITE", opcode::Write::CODE),
];

/// Operations probed for later work (not used yet).
const OPTIONAL: &[(&str, u8)] = &[
    ("SEND_ZC", opcode::SendZc::CODE),
    ("STATX", opcode::Statx::CODE),
    ("MSG_RING", opcode::MsgRingData::CODE),
];

/// What probing io_uring found.
#[derive(Debug, Clone)]
pub struct UringProbe {
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// `kernel.io_uring_disabled` (0 allowed, 1 restricted, 2 disabled), if the sysctl exists.
    pub sysctl_disabled: Option<u8>,
    /// `RLIMIT_MEMLOCK` soft limit in bytes (`None`: unlimited).
    pub memlock: Option<u64>,
    /// The error of `io_uring_setup`, if it failed.
    pub setup_error: Option<String>,
    /// Setup flags ringport asks for, and whether the kernel accepted them.
    pub setup_flags: Vec<(&'static str, bool)>,
    /// Opcodes, whether ringport needs them, and whether the kernel has them.
    pub opcodes: Vec<(&'static str, bool, bool)>,
    /// Whether a provided buffer ring could be registered (Linux 5.19+).
    pub buf_ring: bool,
    /// Whether multishot receive is available (Linux 6.0+).
    pub recv_multishot: bool,
}

impl UringProbe {
    /// Why ringport cannot use io_uring here, or `None` if it can.
    pub fn unusable_because(&self) -> Option<String> {
        if let Some(e) = &self.setup_error {
            let mut why = format!("io_uring_setup: {e}");
            match self.sysctl_disabled {
                Some(2) => why.push_str(" (kernel.io_uring_disabled = 2)"),
                Some(1) => why.push_str(" (kernel.io_uring_disabled = 1: only for io_uring_group)"),
                _ if e.contains("not permitted") => why.push_str(" (seccomp filter?)"),
                _ if e.contains("memory") => why.push_str(" (RLIMIT_MEMLOCK too low?)"),
                _ => {}
            }
            return Some(why);
        }
        let missing: Vec<_> = self
            .opcodes
            .iter()
            .filter(|o| o.1 && !o.2)
            .map(|o| o.0)
            .collect();
        if !missing.is_empty() {
            return Some(format!("missing opcodes: {}", missing.join(", ")));
        }
        if !self.buf_ring {
            return Some("provided buffer rings unsupported (need Linux 5.19+)".into());
        }
        if !self.recv_multishot {
            return Some(format!(
                "multishot receive needs Linux 6.0+ (kernel {})",
                self.kernel
            ));
        }
        None
    }
}

/// Probes io_uring on this machine.
pub fn probe() -> UringProbe {
    let mut p = UringProbe {
        kernel: kernel_release(),
        sysctl_disabled: std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
            .ok()
            .and_then(|s| s.trim().parse().ok()),
        memlock: memlock(),
        setup_error: None,
        setup_flags: Vec::new(),
        opcodes: Vec::new(),
        buf_ring: false,
        recv_multishot: kernel_at_least(&kernel_release(), 6, 0),
    };
    let ring = match IoUring::new(8) {
        Ok(r) => r,
        Err(e) => {
            p.setup_error = Some(e.to_string());
            return p;
        }
    };
    let mut pr = Probe::new();
    let have = ring.submitter().register_probe(&mut pr).is_ok();
    for &(name, code) in NEEDED {
        p.opcodes.push((name, true, have && pr.is_supported(code)));
    }
    for &(name, code) in OPTIONAL {
        p.opcodes.push((name, false, have && pr.is_supported(code)));
    }
    p.setup_flags = vec![
        (
            "SINGLE_ISSUER|DEFER_TASKRUN",
            builds(|b| b.setup_single_issuer().setup_defer_taskrun()),
        ),
        ("COOP_TASKRUN", builds(|b| b.setup_coop_taskrun())),
        ("SUBMIT_ALL", builds(|b| b.setup_submit_all())),
    ];
    if let Ok(pool) = crate::buf::BufPool::new(1, 64) {
        let registered = super::buf_ring::BufRing::register(&ring, &pool);
        p.buf_ring = registered.is_ok();
        drop(ring); // the registration goes with the ring, before the ring memory is unmapped
        drop(registered);
    }
    p
}

/// Checks that io_uring is usable; the error says why not.
pub(crate) fn check() -> Result<(), String> {
    match probe().unusable_because() {
        None => Ok(()),
        Some(why) => Err(why),
    }
}

fn builds(f: impl FnOnce(&mut io_uring::Builder) -> &mut io_uring::Builder) -> bool {
    let mut b = IoUring::builder();
    f(&mut b);
    b.build(8).is_ok()
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".into(), |s| s.trim().to_owned())
}

/// Whether `release` (like "6.1.0-13-amd64") is at least `major.minor`.
pub(crate) fn kernel_at_least(release: &str, major: u32, minor: u32) -> bool {
    let mut nums = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse::<u32>().ok());
    match (nums.next(), nums.next()) {
        (Some(a), Some(b)) => (a, b) >= (major, minor),
        _ => false,
    }
}

fn memlock() -> Option<u64> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the valid struct we pass.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut rl) } == 0;
    (ok && rl.rlim_cur != libc::RLIM_INFINITY).then_some(rl.rlim_cur)
}

/// Formats the probe as the lines `ringport info` prints.
pub fn describe(p: &UringProbe) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "io_uring setup: {}",
        p.setup_error.as_deref().unwrap_or("ok")
    );
    for (name, ok) in &p.setup_flags {
        let _ = writeln!(
            s,
            "  setup flag {name:<28} {}",
            if *ok { "yes" } else { "no" }
        );
    }
    for (name, needed, ok) in &p.opcodes {
        let role = if *needed { "needed" } else { "optional" };
        let _ = writeln!(
            s,
            "  opcode {name:<14} {role:<9} {}",
            if *ok { "yes" } else { "no" }
        );
    }
    let _ = writeln!(
        s,
        "  provided buffer ring          {}",
        if p.buf_ring { "yes" } else { "no" }
    );
    let _ = write!(
        s,
        "  multishot recv                {}",
        if p.recv_multishot { "yes" } else { "no" }
    );
    s
}

#[cfg(test)]
mod tests {
    use super::kernel_at_least;

    #[test]
    fn kernel_versions() {
        assert!(kernel_at_least("6.1.0-13-amd64", 6, 0));
        assert!(kernel_at_least("6.18.44-fc", 6, 1));
        assert!(!kernel_at_least("5.15.0", 6, 0));
        assert!(!kernel_at_least("garbage", 6, 0));
    }
}
