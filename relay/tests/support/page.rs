//! One open page in a headless browser, whichever browser: what the
//! browser tests do with it. Chromium ([`super::browser::Browser`]) and
//! Firefox ([`super::firefox::Firefox`]) each implement it over their own
//! remote protocol.

use std::time::{Duration, Instant};

use serde_json::Value;

/// How often [`Page::wait_until`] polls the page.
const POLL: Duration = Duration::from_millis(150);

/// The PNG a remote protocol sent as base64 (`data` of a screenshot).
pub fn png_from_base64(data: &str) -> Vec<u8> {
    data_encoding::BASE64
        .decode(data.as_bytes())
        .expect("screenshot is base64")
}

/// A page the test drives.
pub trait Page {
    /// The browser's name, for messages.
    fn name(&self) -> &'static str;

    /// Opens `url` and waits until it has loaded; fails if the navigation
    /// fails (a refused connection; a 404 is not a failure).
    fn navigate(&mut self, url: &str);

    /// Evaluates `expression` in the page and returns its value as JSON
    /// (strings, numbers, booleans; `null` for `undefined`). Fails if it
    /// throws.
    fn evaluate(&mut self, expression: &str) -> Value;

    /// A PNG of the page's viewport.
    fn screenshot(&mut self) -> Vec<u8>;

    /// What the page has logged so far, for failure messages.
    fn log(&self) -> String;

    /// Polls `expression` every [`POLL`] until `until` holds for its value,
    /// and returns that value; fails after `within`, naming `what`, the
    /// last value and what the page logged.
    fn wait_until(
        &mut self,
        what: &str,
        expression: &str,
        within: Duration,
        mut until: impl FnMut(&Value) -> bool,
    ) -> Value
    where
        Self: Sized,
    {
        let deadline = Instant::now() + within;
        loop {
            let value = self.evaluate(expression);
            if until(&value) {
                return value;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{}: timed out after {within:?} waiting for {what}: `{expression}` is \
                     {value}; page log:{}",
                    self.name(),
                    self.log()
                );
            }
            std::thread::sleep(POLL.min(deadline.saturating_duration_since(Instant::now())));
        }
    }
}
