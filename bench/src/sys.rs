//! What the load tool reads from the OS beyond std: per-thread CPU time,
//! memory, descriptors and socket drops from /proc. The calls that need
//! `unsafe` (CPU affinity, the open-file limit, socket buffer sizes) are
//! the relay's, in `shoal_relay::sys`, re-exported here.

use std::io;
use std::path::Path;

pub use shoal_relay::sys::cpu::{allowed_cpus, pin_to};
pub use shoal_relay::sys::process::{clock_ticks_per_sec, raise_nofile};
pub use shoal_relay::sys::socket::{Buffer, set_buffer};

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

/// CPU ticks used so far by the threads of process `pid` (`self` for this
/// one) whose name starts with one of `prefixes`, and how many such
/// threads there are.
pub fn threads_cpu_ticks(pid: &str, prefixes: &[&str]) -> io::Result<(u64, usize)> {
    let mut ticks = 0;
    let mut threads = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
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
        let (_, threads) = threads_cpu_ticks("self", &[""]).expect("/proc/self/task");
        assert!(threads >= 1);
        assert!(stat_cpu_ticks(Path::new("/proc/self/stat")).is_ok());
    }
}
