//! Headless Firefox for the browser tests, driven over WebDriver BiDi (its
//! remote protocol since Firefox 129; no geckodriver needed): launch it,
//! open one page, read the page's state back, take screenshots ([`Page`]).
//!
//! Firefox is required, never optional: without it the test fails naming
//! the Debian package. It reaches for the network on its own (remote
//! settings, telemetry), so the tests run it only inside a network
//! namespace of their own that has nothing but loopback
//! ([`super::netns::Netns`]). BiDi frames commands, answers and events
//! like the DevTools protocol, so the same client ([`Cdp`]) carries it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::browser::VIEWPORT;
use super::cdp::Cdp;
use super::launch::{Launched, find_executable};
use super::page::{Page, png_from_base64};

/// How long Firefox may take to start and print its BiDi address.
const LAUNCH_LIMIT: Duration = Duration::from_secs(60);

/// How long one command may take to be answered (a navigation waits for
/// the page to load).
const CALL_LIMIT: Duration = Duration::from_secs(20);

/// The executables tried, in order, on `PATH`.
const EXECUTABLES: [&str; 2] = ["firefox-esr", "firefox"];

/// Preferences for a test profile: media plays without a gesture; no
/// first-run pages, updates, telemetry or network checks.
const USER_JS: &str = r#"user_pref("media.autoplay.default", 0);
user_pref("media.autoplay.blocking_policy", 0);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.aboutwelcome.enabled", false);
user_pref("app.update.disabledForTesting", true);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.enabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("browser.safebrowsing.update.enabled", false);
"#;

/// A headless Firefox with one page, attached over WebDriver BiDi.
#[derive(Debug)]
pub struct Firefox {
    bidi: Cdp,
    /// The page's browsing context.
    context: String,
    _process: Launched,
}

impl Firefox {
    /// Starts Firefox headless and attaches to its first page. Fails if it
    /// is not installed or does not come up within [`LAUNCH_LIMIT`].
    pub fn launch() -> Self {
        let exe = find_executable(&EXECUTABLES).unwrap_or_else(|| {
            panic!(
                "this test needs Firefox: none of {EXECUTABLES:?} is on PATH; install \
                 Debian's package `firefox-esr` (apt-get install firefox-esr)"
            )
        });
        let deadline = Instant::now() + LAUNCH_LIMIT;
        let (process, url) = start(&exe, deadline);
        let mut bidi = Cdp::connect(&format!("{url}/session"), deadline);
        let call_deadline = || Instant::now() + CALL_LIMIT;
        bidi.call(
            None,
            "session.new",
            json!({ "capabilities": {} }),
            call_deadline(),
        );
        bidi.call(
            None,
            "session.subscribe",
            json!({ "events": ["log.entryAdded"] }),
            call_deadline(),
        );
        let tree = bidi.call(None, "browsingContext.getTree", json!({}), call_deadline());
        let context = tree["contexts"][0]["context"]
            .as_str()
            .expect("a browsing context")
            .to_owned();
        let (width, height) = VIEWPORT;
        bidi.call(
            None,
            "browsingContext.setViewport",
            json!({ "context": context, "viewport": { "width": width, "height": height } }),
            call_deadline(),
        );
        Self {
            bidi,
            context,
            _process: process,
        }
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.bidi
            .call(None, method, params, Instant::now() + CALL_LIMIT)
    }
}

impl Page for Firefox {
    fn name(&self) -> &'static str {
        "Firefox"
    }

    fn navigate(&mut self, url: &str) {
        let context = self.context.clone();
        self.call(
            "browsingContext.navigate",
            json!({ "context": context, "url": url, "wait": "complete" }),
        );
    }

    fn evaluate(&mut self, expression: &str) -> Value {
        let context = self.context.clone();
        let r = self.call(
            "script.evaluate",
            json!({
                "expression": expression,
                "target": { "context": context },
                "awaitPromise": true,
            }),
        );
        if r["type"] == "exception" {
            panic!(
                "evaluating `{expression}` threw: {}; page log:{}",
                r["exceptionDetails"]["text"],
                self.bidi.log()
            );
        }
        // A remote value: {"type": "string", "value": ...}, and for
        // undefined or null no value.
        r["result"]["value"].clone()
    }

    fn screenshot(&mut self) -> Vec<u8> {
        let context = self.context.clone();
        let shot = self.call(
            "browsingContext.captureScreenshot",
            json!({ "context": context }),
        );
        let data = shot["data"].as_str().expect("screenshot data");
        png_from_base64(data)
    }

    fn log(&self) -> String {
        self.bidi.log()
    }
}

/// Starts Firefox with a fresh profile and returns it with its BiDi
/// websocket url (without the `/session` path).
fn start(exe: &Path, deadline: Instant) -> (Launched, String) {
    let (w, h) = VIEWPORT;
    let mut cmd = Command::new(exe);
    cmd.args(["--headless", "--no-remote", "--remote-debugging-port", "0"])
        .arg(format!("--window-size={w},{h}"));
    Launched::start(
        "firefox",
        cmd,
        |profile| {
            std::fs::write(profile.join("user.js"), USER_JS).expect("write the profile's user.js");
            vec![
                "--profile".to_owned(),
                profile.display().to_string(),
                "about:blank".to_owned(),
            ]
        },
        "WebDriver BiDi listening on ",
        deadline,
    )
}
