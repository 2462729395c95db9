//! The progress line on stderr while a run goes.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// A one-line status on stderr: redrawn in place on a terminal, a line a
/// second otherwise.
#[derive(Debug)]
pub struct Progress {
    tty: bool,
    /// On a terminal: an indicatif spinner with the elapsed time and the
    /// text, one per phase.
    bar: Option<indicatif::ProgressBar>,
    last: Option<Instant>,
}

impl Progress {
    /// A progress line on stderr.
    pub fn new() -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
            bar: None,
            last: None,
        }
    }

    /// Shows `text`: on a terminal as a live progress line, elsewhere (CI
    /// logs) as a plain line once a second.
    pub fn show(&mut self, text: &str) {
        if self.tty {
            let bar = self.bar.get_or_insert_with(|| {
                let bar = indicatif::ProgressBar::new_spinner();
                if let Ok(style) =
                    indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                {
                    bar.set_style(style);
                }
                bar.enable_steady_tick(Duration::from_millis(100));
                bar
            });
            bar.set_message(text.to_owned());
            return;
        }
        let now = Instant::now();
        if self.last.is_some_and(|t| now - t < Duration::from_secs(1)) {
            return;
        }
        self.last = Some(now);
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{text}");
        let _ = err.flush();
    }

    /// Ends the phase's line, so what follows starts on its own.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
        self.last = None;
    }
}
