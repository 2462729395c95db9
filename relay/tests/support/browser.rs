//! Headless Chromium for the browser tests: launch it, open one page, drive
//! it over the DevTools protocol ([`super::cdp`]), read the page's state
//! back, and take screenshots.
//!
//! Chromium is required, never optional: without it the tests fail naming
//! the Debian package. Every wait has a deadline and fails saying what it
//! waited for, with what the page logged. The browser runs in its own
//! process group with a throwaway profile; dropping [`Browser`] (also while
//! a test panics) kills the whole group and removes the profile.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::cdp::Cdp;

/// How long Chromium may take to start and print its DevTools address
/// (seconds on a loaded two-core machine; far less usually).
const LAUNCH_LIMIT: Duration = Duration::from_secs(30);

/// How long one DevTools command may take to be answered.
const CALL_LIMIT: Duration = Duration::from_secs(15);

/// How long a page may take to load (`document.readyState == "complete"`).
const LOAD_LIMIT: Duration = Duration::from_secs(15);

/// How often [`Browser::wait_until`] polls the page.
const POLL: Duration = Duration::from_millis(150);

/// How many of Chromium's last stderr lines a launch failure shows.
const STDERR_LINES: usize = 40;

/// The executables tried, in order, on `PATH`.
const EXECUTABLES: [&str; 2] = ["chromium", "chromium-browser"];

/// The page's viewport in CSS pixels, and so the screenshots' size.
pub const VIEWPORT: (u32, u32) = (1280, 720);

/// A headless Chromium with one page open, attached over DevTools.
#[derive(Debug)]
pub struct Browser {
    cdp: Cdp,
    /// The page's flattened DevTools session.
    session: String,
    process: Process,
}

impl Browser {
    /// Starts Chromium headless on `about:blank` and attaches to a fresh
    /// page. Fails if Chromium is not installed or does not come up within
    /// [`LAUNCH_LIMIT`].
    pub fn launch() -> Self {
        let exe = find_executable().unwrap_or_else(|| {
            panic!(
                "the browser tests need Chromium: none of {EXECUTABLES:?} is on PATH; \
                 install Debian's package `chromium` (apt-get install chromium)"
            )
        });
        let deadline = Instant::now() + LAUNCH_LIMIT;
        let (process, url) = Process::start(&exe, deadline);
        let mut cdp = Cdp::connect(&url, deadline);
        let call_deadline = || Instant::now() + CALL_LIMIT;
        let target = cdp.call(
            None,
            "Target.createTarget",
            json!({ "url": "about:blank" }),
            call_deadline(),
        );
        let target = target["targetId"].as_str().expect("targetId").to_owned();
        let attached = cdp.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target, "flatten": true }),
            call_deadline(),
        );
        let session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_owned();
        let mut browser = Self {
            cdp,
            session,
            process,
        };
        // Console lines, uncaught errors and failed loads are collected for
        // failure messages.
        for domain in ["Page", "Runtime", "Log"] {
            browser.call(&format!("{domain}.enable"), json!({}));
        }
        // `--window-size` sizes the window, not the page: pin the viewport
        // so screenshots are exactly `VIEWPORT`.
        let (width, height) = VIEWPORT;
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
        );
        browser
    }

    /// Sends a DevTools command to the page and returns its result.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let deadline = Instant::now() + CALL_LIMIT;
        self.cdp.call(Some(&self.session), method, params, deadline)
    }

    /// Opens `url` in the page and waits until it has loaded; fails if the
    /// navigation fails (refused connection, 404 is not a failure).
    pub fn navigate(&mut self, url: &str) {
        let nav = self.call("Page.navigate", json!({ "url": url }));
        if let Some(error) = nav["errorText"].as_str().filter(|e| !e.is_empty()) {
            panic!("opening {url} failed: {error}; page log:{}", self.cdp.log());
        }
        self.wait_until(
            &format!("loading {url}"),
            "document.readyState",
            LOAD_LIMIT,
            |v| v == "complete",
        );
    }

    /// Evaluates `expression` in the page (awaiting it if it is a promise)
    /// and returns its value as JSON (`null` for `undefined`). Fails if it
    /// throws.
    pub fn evaluate(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(e) = r.get("exceptionDetails") {
            let what = e["exception"]["description"]
                .as_str()
                .or(e["text"].as_str())
                .unwrap_or("?");
            panic!(
                "evaluating `{expression}` threw: {what}; page log:{}",
                self.cdp.log()
            );
        }
        r["result"]["value"].clone()
    }

    /// Polls `expression` every [`POLL`] until `until` holds for its value,
    /// and returns that value; fails after `within`, naming `what`, the last
    /// value and what the page logged.
    pub fn wait_until(
        &mut self,
        what: &str,
        expression: &str,
        within: Duration,
        mut until: impl FnMut(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let value = self.evaluate(expression);
            if until(&value) {
                return value;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {within:?} waiting for {what}: `{expression}` is {value}; \
                     page log:{}",
                    self.cdp.log()
                );
            }
            std::thread::sleep(POLL.min(deadline.saturating_duration_since(Instant::now())));
        }
    }

    /// A PNG of the page's viewport.
    pub fn screenshot(&mut self) -> Vec<u8> {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        let data = shot["data"].as_str().expect("screenshot data");
        data_encoding::BASE64
            .decode(data.as_bytes())
            .expect("screenshot is base64")
    }

    /// What the page has logged so far, for a test's own failure messages.
    pub fn log(&self) -> String {
        self.cdp.log()
    }
}

/// The Chromium process group and its profile directory, both removed on
/// drop.
#[derive(Debug)]
struct Process {
    child: Child,
    profile: PathBuf,
    /// Chromium's latest stderr lines, kept by a thread that drains the pipe
    /// (a full pipe would stall the browser).
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl Process {
    /// Starts Chromium and returns it with its DevTools websocket url,
    /// read from its stderr by `deadline`.
    fn start(exe: &Path, deadline: Instant) -> (Self, String) {
        let profile = profile_dir();
        std::fs::create_dir_all(&profile).expect("create the Chromium profile directory");
        let (w, h) = VIEWPORT;
        let mut cmd = Command::new(exe);
        cmd.args([
            "--headless=new",
            // Root in a container has no user namespaces for the sandbox.
            "--no-sandbox",
            "--disable-gpu",
            "--remote-debugging-port=0",
            "--autoplay-policy=no-user-gesture-required",
            "--mute-audio",
            // Containers often give /dev/shm 64 MB, too little for video.
            "--disable-dev-shm-usage",
            // No first-run UI, updates, sync or phoning home.
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            // A headless page must not be treated as hidden and throttled:
            // its timers and media would slow down.
            "--disable-background-timer-throttling",
            "--disable-backgrounding-occluded-windows",
            "--disable-renderer-backgrounding",
            "--hide-scrollbars",
            // No keyring prompts or D-Bus lookups for a password store.
            "--password-store=basic",
            "--use-mock-keychain",
        ])
        .arg(format!("--window-size={w},{h}"))
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own group, so drop can kill the renderers and helpers too.
        .process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", exe.display()));
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let (url_tx, url_rx) = mpsc::channel();
        let pipe = child.stderr.take().expect("piped stderr");
        let lines = Arc::clone(&stderr);
        std::thread::spawn(move || drain_stderr(pipe, &lines, &url_tx));
        let process = Self {
            child,
            profile,
            stderr,
        };
        let wait = deadline.saturating_duration_since(Instant::now());
        match url_rx.recv_timeout(wait) {
            Ok(url) => (process, url),
            Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                "Chromium printed no `DevTools listening on ws://...` within {LAUNCH_LIMIT:?}; \
                 its stderr:{}",
                process.stderr_tail()
            ),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let mut process = process;
                let status = process.child.wait().expect("wait for Chromium");
                panic!(
                    "Chromium exited ({status}) before listening for DevTools; its stderr:{}",
                    process.stderr_tail()
                )
            }
        }
    }

    fn stderr_tail(&self) -> String {
        let lines = self.stderr.lock().expect("stderr lines");
        lines.iter().map(|l| format!("\n  {l}")).collect()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let group = -i32::try_from(self.child.id()).expect("pid fits i32");
        // SAFETY: kill(2) with a negative pid signals the process group
        // whose id is the child's pid; `process_group(0)` made that group
        // for this child, so only Chromium and its helpers are signalled.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Forwards the DevTools url once and keeps the last lines of the rest.
fn drain_stderr(
    pipe: impl std::io::Read,
    lines: &Mutex<VecDeque<String>>,
    url: &mpsc::Sender<String>,
) {
    for line in BufReader::new(pipe).lines() {
        let Ok(line) = line else { break };
        if let Some(ws) = line.strip_prefix("DevTools listening on ") {
            let _ = url.send(ws.trim().to_owned());
        }
        let mut lines = lines.lock().expect("stderr lines");
        if lines.len() == STDERR_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }
}

fn find_executable() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    EXECUTABLES.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// A fresh directory for one browser's profile.
fn profile_dir() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!(
        "shoal-chromium-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}
