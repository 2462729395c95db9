//! Headless Chromium for the browser tests: launch it, open one page, drive
//! it over the DevTools protocol ([`super::cdp`]), read the page's state
//! back, and take screenshots ([`Page`]).
//!
//! Chromium is required, never optional: without it the tests fail naming
//! the Debian package. Every wait has a deadline and fails saying what it
//! waited for, with what the page logged. The browser runs in its own
//! process group with a throwaway profile ([`Launched`]); dropping
//! [`Browser`] (also while a test panics) kills the whole group and
//! removes the profile.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::cdp::Cdp;
use super::launch::{Launched, find_executable};
use super::page::{Page, png_from_base64};

/// How long Chromium may take to start and print its DevTools address
/// (seconds on a loaded two-core machine; far less usually).
const LAUNCH_LIMIT: Duration = Duration::from_secs(30);

/// How long one DevTools command may take to be answered.
const CALL_LIMIT: Duration = Duration::from_secs(15);

/// How long a page may take to load (`document.readyState == "complete"`).
const LOAD_LIMIT: Duration = Duration::from_secs(15);

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
    _process: Launched,
}

impl Browser {
    /// Starts Chromium headless on `about:blank` and attaches to a fresh
    /// page. Fails if Chromium is not installed or does not come up within
    /// [`LAUNCH_LIMIT`].
    pub fn launch() -> Self {
        let exe = find_executable(&EXECUTABLES).unwrap_or_else(|| {
            panic!(
                "the browser tests need Chromium: none of {EXECUTABLES:?} is on PATH; \
                 install Debian's package `chromium` (apt-get install chromium)"
            )
        });
        let deadline = Instant::now() + LAUNCH_LIMIT;
        let (process, url) = start(&exe, deadline);
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
            _process: process,
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
}

impl Page for Browser {
    fn name(&self) -> &'static str {
        "Chromium"
    }

    /// Opens `url` in the page and waits until it has loaded; fails if the
    /// navigation fails (refused connection, 404 is not a failure).
    fn navigate(&mut self, url: &str) {
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
    fn evaluate(&mut self, expression: &str) -> Value {
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

    /// A PNG of the page's viewport.
    fn screenshot(&mut self) -> Vec<u8> {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        let data = shot["data"].as_str().expect("screenshot data");
        png_from_base64(data)
    }

    /// What the page has logged so far, for a test's own failure messages.
    fn log(&self) -> String {
        self.cdp.log()
    }
}

/// Starts Chromium and returns it with its DevTools websocket url.
fn start(exe: &Path, deadline: Instant) -> (Launched, String) {
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
    .arg(format!("--window-size={w},{h}"));
    Launched::start(
        "chromium",
        cmd,
        |profile| {
            vec![
                format!("--user-data-dir={}", profile.display()),
                "about:blank".to_owned(),
            ]
        },
        "DevTools listening on ",
        deadline,
    )
}
