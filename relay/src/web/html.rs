//! The HTML pages, made from plain strings: every value from outside
//! (stream ids, paths) is escaped.

use std::fmt::Write as _;

use super::streams::StreamView;

const HEAD: &str = "<!doctype html><html lang=en><head><meta charset=utf-8>\
<meta name=viewport content=\"width=device-width, initial-scale=1\">";

/// `text` with `&`, `<`, `>`, `"` and `'` escaped.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        "{HEAD}<title>{}</title></head><body>{body}</body></html>\n",
        escape(title)
    )
}

/// `GET /`: the streams, each linking to its page.
pub(super) fn index(streams: &[StreamView]) -> String {
    let mut body = String::from("<h1>shoal relay</h1>");
    if streams.is_empty() {
        body.push_str(
            "<p>No streams yet: this relay carries a stream once its publisher sends it here.</p>",
        );
    } else {
        body.push_str("<ul>");
        for s in streams {
            let id = escape(&s.id);
            let state = if s.live {
                "live"
            } else {
                "waiting for its descriptor"
            };
            let _ = write!(
                body,
                "<li><a href=\"/watch/{id}\">{id}</a>: {state}, {} subscribers</li>",
                s.subscribers
            );
        }
        body.push_str("</ul>");
    }
    page("shoal relay", &body)
}

/// The 400 page for a path that is not a stream id.
pub(super) fn bad_stream_id(text: &str) -> String {
    page(
        "shoal: not a stream id",
        &format!(
            "<h1>Not a stream id: {}</h1><p>A stream id is 52 letters and digits, as <code>shoal keygen</code> prints it. See <a href=\"/\">the streams this relay carries</a>.</p>",
            escape(text)
        ),
    )
}
