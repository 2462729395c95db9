//! The few OS calls the load tool needs beyond std: CPU affinity, the
//! open-file limit, socket buffer sizes, and per-thread CPU time.

use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

pub use shoal_relay::cpu::{allowed_cpus, pin_to};

/// Raises the soft open-file limit to the hard limit: every viewer holds a
/// socket. Returns the new soft limit.
pub fn raise_nofile() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: `lim` is a valid rlimit; raising the soft limit up to the
        // hard one is always allowed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}

/// Which socket buffer.
#[derive(Debug, Clone, Copy)]
pub enum Buffer {
    /// SO_RCVBUF.
    Receive,
    /// SO_SNDBUF.
    Send,
}

/// Sets a socket buffer to `bytes`, past `net.core.[rw]mem_max` when this
/// process may (root: SO_*BUFFORCE), else as far as the sysctl allows.
pub fn set_buffer(socket: &impl AsRawFd, which: Buffer, bytes: usize) -> io::Result<()> {
    let (force, plain) = match which {
        Buffer::Receive => (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        Buffer::Send => (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    };
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let set = |opt| {
        // SAFETY: the fd is open for the borrow's length; the option value
        // is a c_int and its size is given.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&raw const value).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    if set(force) == 0 || set(plain) == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Clock ticks per second, the unit of utime and stime in /proc.
pub fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// utime + stime, in clock ticks, from a `/proc/.../stat` file.
pub fn stat_cpu_ticks(stat: &Path) -> io::Result<u64> {
    let text = std::fs::read_to_string(stat)?;
    parse_stat_ticks(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: unexpected format", stat.display()),
        )
    })
}

/// utime (field 14) + stime (field 15) of a stat line. The command name
/// (field 2) is in parentheses and may hold spaces, so fields are counted
/// from the last `)`.
fn parse_stat_ticks(text: &str) -> Option<u64> {
    let after = &text[text.rfind(')')? + 1..];
    let mut fields = after.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// CPU ticks used so far by this process's threads whose name starts with
/// one of `prefixes`, and how many such threads there are.
pub fn threads_cpu_ticks(prefixes: &[&str]) -> io::Result<(u64, usize)> {
    let mut ticks = 0;
    let mut threads = 0;
    for entry in std::fs::read_dir("/proc/self/task")? {
        let dir = entry?.path();
        // A thread may exit between listing and reading: skip it.
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        let name = comm.trim_end();
        if !prefixes.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        if let Ok(t) = stat_cpu_ticks(&dir.join("stat")) {
            ticks += t;
            threads += 1;
        }
    }
    Ok((ticks, threads))
}

/// Resident memory of process `pid` (`self` for this one), KiB, from
/// `/proc/PID/status` (VmRSS).
pub fn rss_kib(pid: &str) -> io::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmRSS line"))
}

/// Open file descriptors of process `pid` (`self` for this one).
pub fn fd_count(pid: &str) -> io::Result<u64> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64)
}

/// Datagrams the kernel dropped, since each socket was made, on the IPv4
/// UDP sockets bound to `port` (every worker's socket of a relay: they
/// share the port), from `/proc/net/udp`: a full receive buffer is where
/// a flood the relay cannot keep up with is lost.
pub fn udp_port_drops(port: u16) -> io::Result<u64> {
    let text = std::fs::read_to_string("/proc/net/udp")?;
    Ok(parse_udp_drops(&text, port))
}

/// Sums the last column (drops) of the `/proc/net/udp` lines whose local
/// address has `port`.
fn parse_udp_drops(text: &str, port: u16) -> u64 {
    let want = format!(":{port:04X}");
    text.lines()
        .skip(1)
        .filter(|l| {
            l.split_ascii_whitespace()
                .nth(1)
                .is_some_and(|local| local.ends_with(&want))
        })
        .filter_map(|l| l.split_ascii_whitespace().last()?.parse::<u64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_ticks_skip_a_name_with_spaces() {
        let line = "1234 (shoal worker) 1) S 1 1234 1234 0 -1 4194560 100 0 0 0 \
                    250 75 0 0 20 0 3 0 100 1000 10 18446744073709551615";
        assert_eq!(parse_stat_ticks(line), Some(325));
        assert_eq!(parse_stat_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn udp_drops_are_summed_per_port() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  1: 0100007F:1CE8 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 12
  2: 0100007F:1CE8 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 3
  3: 0100007F:1CE9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 100
";
        assert_eq!(parse_udp_drops(text, 0x1ce8), 15);
        assert_eq!(parse_udp_drops(text, 7), 0);
        assert!(rss_kib("self").expect("VmRSS") > 0);
        assert!(fd_count("self").expect("fds") >= 3);
    }

    #[test]
    fn this_process_reads_its_own_threads() {
        let (_, threads) = threads_cpu_ticks(&[""]).expect("/proc/self/task");
        assert!(threads >= 1);
        assert!(stat_cpu_ticks(Path::new("/proc/self/stat")).is_ok());
    }
}
