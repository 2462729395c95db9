//! A minimal Chrome DevTools Protocol client: JSON commands over one
//! websocket to the browser, answered by id, with a flattened page session
//! named by `sessionId` on each message.
//!
//! WebDriver BiDi (Firefox's remote protocol) frames its commands, answers
//! and events the same way, without sessions: it uses this client too.
//!
//! Synchronous on purpose: a test sends one command and reads frames until
//! its answer comes, keeping the events it passes on the way (console lines,
//! page errors) so a failure can show what the page said. Every read is
//! bounded by the caller's deadline; nothing blocks forever.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// How many of the page's latest log lines are kept for failure messages.
const LOG_LINES: usize = 200;

/// The longest one blocking read waits before the deadline is checked again.
const READ_SLICE: Duration = Duration::from_millis(250);

/// A DevTools connection.
pub struct Cdp {
    socket: WebSocket<TcpStream>,
    next_id: u64,
    log: VecDeque<String>,
}

impl std::fmt::Debug for Cdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cdp")
            .field("next_id", &self.next_id)
            .finish_non_exhaustive()
    }
}

impl Cdp {
    /// Connects to the DevTools websocket at `url` (`ws://host:port/...`),
    /// failing if that takes past `deadline`.
    pub fn connect(url: &str, deadline: Instant) -> Self {
        let authority = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("DevTools url {url:?} is not ws://host:port/..."));
        let addr: SocketAddr = authority
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .unwrap_or_else(|| panic!("DevTools url {url:?}: no address for {authority:?}"));
        let stream = TcpStream::connect_timeout(&addr, remaining(deadline, "connect to DevTools"))
            .unwrap_or_else(|e| panic!("connect to DevTools at {addr}: {e}"));
        stream.set_nodelay(true).expect("TCP_NODELAY");
        // The handshake is a single exchange; bound it as a whole.
        let limit = remaining(deadline, "DevTools handshake");
        stream.set_read_timeout(Some(limit)).expect("read timeout");
        stream
            .set_write_timeout(Some(limit))
            .expect("write timeout");
        let (socket, _) = tungstenite::client(url, stream)
            .unwrap_or_else(|e| panic!("websocket handshake with DevTools at {url}: {e}"));
        Self {
            socket,
            next_id: 1,
            log: VecDeque::new(),
        }
    }

    /// Sends `method` with `params`, to the page `session` if given (else to
    /// the browser), and returns its `result`. Fails on a protocol error or
    /// if no answer comes by `deadline`.
    pub fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
        deadline: Instant,
    ) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut command = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            command["sessionId"] = json!(session);
        }
        self.socket
            .get_ref()
            .set_write_timeout(Some(remaining(deadline, method)))
            .expect("write timeout");
        self.socket
            .send(Message::text(command.to_string()))
            .unwrap_or_else(|e| panic!("send {method} to the browser: {e}"));
        loop {
            let text = self.read(deadline, method);
            let Ok(msg) = serde_json::from_str::<Value>(&text) else {
                panic!("{method}: the browser sent something not JSON: {text:.200}");
            };
            if msg["id"].as_u64() == Some(id) {
                if let Some(error) = msg.get("error") {
                    panic!("{method} failed: {error}");
                }
                return msg["result"].clone();
            }
            if let Some(event) = msg["method"].as_str() {
                self.note(event, &msg["params"]);
            }
        }
    }

    /// What the page has logged so far (console calls, uncaught errors,
    /// browser log entries such as failed loads), oldest first, formatted
    /// one per line.
    pub fn log(&self) -> String {
        if self.log.is_empty() {
            return "(nothing)".to_owned();
        }
        self.log.iter().map(|l| format!("\n  {l}")).collect()
    }

    /// Reads the next text message, bounded by `deadline`.
    fn read(&mut self, deadline: Instant, method: &str) -> String {
        loop {
            let slice = remaining(deadline, method).min(READ_SLICE);
            self.socket
                .get_ref()
                .set_read_timeout(Some(slice))
                .expect("read timeout");
            match self.socket.read() {
                Ok(Message::Text(text)) => return text.as_str().to_owned(),
                Ok(Message::Close(frame)) => {
                    panic!("{method}: the browser closed DevTools: {frame:?}")
                }
                Ok(_) => {}
                // A timed-out read leaves a partial frame in tungstenite's
                // buffer; reading again resumes it.
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("{method}: reading from DevTools: {e}"),
            }
        }
    }

    /// Keeps the events worth showing when a test fails.
    fn note(&mut self, event: &str, params: &Value) {
        let line = match event {
            "Runtime.consoleAPICalled" => {
                let args: Vec<String> = params["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| match &a["value"] {
                        Value::String(s) => s.clone(),
                        Value::Null => a["description"].as_str().unwrap_or("?").to_owned(),
                        v => v.to_string(),
                    })
                    .collect();
                format!(
                    "console.{}: {}",
                    params["type"].as_str().unwrap_or("?"),
                    args.join(" ")
                )
            }
            "Runtime.exceptionThrown" => {
                let d = &params["exceptionDetails"];
                let what = d["exception"]["description"]
                    .as_str()
                    .or(d["text"].as_str())
                    .unwrap_or("?");
                format!("uncaught: {what}")
            }
            "Log.entryAdded" => {
                let e = &params["entry"];
                format!(
                    "log.{} ({}): {} {}",
                    e["level"].as_str().unwrap_or("?"),
                    e["source"].as_str().unwrap_or("?"),
                    e["text"].as_str().unwrap_or("?"),
                    e["url"].as_str().unwrap_or("")
                )
            }
            "Inspector.targetCrashed" | "Target.targetCrashed" => "the page crashed".to_owned(),
            // WebDriver BiDi: console calls and page errors.
            "log.entryAdded" => format!(
                "{}.{}: {}",
                params["type"].as_str().unwrap_or("log"),
                params["level"].as_str().unwrap_or("?"),
                params["text"].as_str().unwrap_or("?")
            ),
            _ => return,
        };
        if self.log.len() == LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }
}

/// The time left until `deadline`, failing (naming `what`) if none is.
pub fn remaining(deadline: Instant, what: &str) -> Duration {
    let left = deadline.saturating_duration_since(Instant::now());
    assert!(
        !left.is_zero(),
        "{what}: no answer from the browser in time"
    );
    left
}
