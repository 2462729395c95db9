//! A headless browser's process for the browser tests: started in its own
//! process group with a throwaway profile directory, its stderr drained by
//! a thread (a full pipe would stall it) that hands over the line saying
//! where its remote protocol listens. Dropping [`Launched`] (also while a
//! test panics) kills the whole group and removes the profile.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// How many of the browser's last stderr lines a failure shows.
const STDERR_LINES: usize = 40;

/// A running browser and its profile directory.
#[derive(Debug)]
pub struct Launched {
    child: Child,
    profile: PathBuf,
    /// Its latest stderr lines.
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl Launched {
    /// Starts `cmd` (to which `profile_args` adds the profile directory)
    /// and returns it with what follows `ready` on the first stderr line
    /// that starts so (its remote protocol's url), read by `deadline`.
    /// `name` names the browser in failures.
    pub fn start(
        name: &str,
        mut cmd: Command,
        profile_args: impl FnOnce(&std::path::Path) -> Vec<String>,
        ready: &'static str,
        deadline: Instant,
    ) -> (Self, String) {
        let profile = profile_dir(name);
        std::fs::create_dir_all(&profile)
            .unwrap_or_else(|e| panic!("create the {name} profile directory: {e}"));
        cmd.args(profile_args(&profile))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own group, so drop can kill its helper processes too.
            .process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} ({cmd:?}): {e}"));
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let (url_tx, url_rx) = mpsc::channel();
        let pipe = child.stderr.take().expect("piped stderr");
        let lines = Arc::clone(&stderr);
        std::thread::spawn(move || drain_stderr(pipe, &lines, ready, &url_tx));
        let mut launched = Self {
            child,
            profile,
            stderr,
        };
        let wait = deadline.saturating_duration_since(Instant::now());
        match url_rx.recv_timeout(wait) {
            Ok(url) => (launched, url),
            Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                "{name} printed no `{ready}...` within {wait:?}; its stderr:{}",
                launched.stderr_tail()
            ),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = launched.child.wait().expect("wait for the browser");
                panic!(
                    "{name} exited ({status}) before it listened; its stderr:{}",
                    launched.stderr_tail()
                )
            }
        }
    }

    /// Its last stderr lines, one per line, indented.
    pub fn stderr_tail(&self) -> String {
        let lines = self.stderr.lock().expect("stderr lines");
        lines.iter().map(|l| format!("\n  {l}")).collect()
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        let group = -i32::try_from(self.child.id()).expect("pid fits i32");
        // SAFETY: kill(2) with a negative pid signals the process group
        // whose id is the child's pid; `process_group(0)` made that group
        // for this child, so only the browser and its helpers are signalled.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Forwards what follows `ready` once and keeps the last lines of the rest.
fn drain_stderr(
    pipe: impl std::io::Read,
    lines: &Mutex<VecDeque<String>>,
    ready: &str,
    url: &mpsc::Sender<String>,
) {
    for line in BufReader::new(pipe).lines() {
        let Ok(line) = line else { break };
        if let Some(rest) = line.strip_prefix(ready) {
            let _ = url.send(rest.trim().to_owned());
        }
        let mut lines = lines.lock().expect("stderr lines");
        if lines.len() == STDERR_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }
}

/// The first of `names` that is a file on `PATH`.
pub fn find_executable(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// A fresh directory for one browser's profile.
fn profile_dir(name: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!(
        "shoal-{name}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}
