//! The browser side of "watch in a browser", compiled into the binary: the
//! player page, the 404 page and the files they load from `/assets/` (the
//! stream list at `/` is drawn by the server, `html.rs`). The pages fetch nothing but the relay's own paths
//! (`/assets/…`, `/streams/…`, `/api/streams`), so a relay with no Internet
//! access serves a working player. `assets/README.md` says what each file
//! is and how the vendored mpegts.js is refreshed.
//!
//! The HTTP server owns the routes; this module only hands out bytes:
//! [`WATCH_HTML`] for `/watch/<ID>`, [`not_found_page`] for an unknown `<ID>`, and [`asset`] for
//! `/assets/<name>`.

/// One file served under `/assets/`.
#[derive(Debug)]
pub struct Asset {
    /// The name after `/assets/`.
    pub path: &'static str,
    /// The `Content-Type` header to send with it.
    pub content_type: &'static str,
    /// The file's bytes.
    pub body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// The player page, served as is at `/watch/<ID>`; it reads `<ID>` from its
/// own address, so one page serves every stream.
pub const WATCH_HTML: &str = include_str!("assets/watch.html");

/// The 404 page for an unknown stream id; [`NOT_FOUND_ID`] marks where the
/// id goes, HTML-escaped (see [`not_found_page`]).
pub const NOT_FOUND_HTML: &str = include_str!("assets/not_found.html");

/// The placeholder in [`NOT_FOUND_HTML`].
pub const NOT_FOUND_ID: &str = "{id}";

/// Every file under `/assets/`.
pub static ASSETS: &[Asset] = &[
    Asset {
        path: "watch.js",
        content_type: JS,
        body: include_bytes!("assets/watch.js"),
    },
    Asset {
        path: "waiting.js",
        content_type: JS,
        body: include_bytes!("assets/waiting.js"),
    },
    Asset {
        path: "watch.css",
        content_type: CSS,
        body: include_bytes!("assets/watch.css"),
    },
    Asset {
        path: "mpegts.js",
        content_type: JS,
        body: include_bytes!("assets/mpegts.js"),
    },
    Asset {
        path: "mpegts.LICENSE",
        content_type: TEXT,
        body: include_bytes!("assets/mpegts.LICENSE"),
    },
    Asset {
        path: "mpegts.js.LICENSE.txt",
        content_type: TEXT,
        body: include_bytes!("assets/mpegts.js.LICENSE.txt"),
    },
];

/// The file served at `/assets/<path>`, if there is one.
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// [`NOT_FOUND_HTML`] naming `id`, escaped: the id comes from the request
/// line, so it is the client's text, never markup.
pub fn not_found_page(id: &str) -> String {
    NOT_FOUND_HTML.replace(NOT_FOUND_ID, &super::html::escape(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGES: [(&str, &str); 2] = [
        ("watch.html", WATCH_HTML),
        ("not_found.html", NOT_FOUND_HTML),
    ];

    /// Our own text files: everything but the vendored mpegts.js and its
    /// licences, which quote URLs of their own.
    fn our_files() -> Vec<(&'static str, &'static str)> {
        let mut files = PAGES.to_vec();
        for name in ["watch.js", "watch.css"] {
            let a = asset(name).expect("listed");
            files.push((name, std::str::from_utf8(a.body).expect("utf-8")));
        }
        files
    }

    /// The values of every `attr="…"` in `html`.
    fn attribute_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
        let open = format!(" {attr}=\"");
        html.match_indices(&open)
            .filter_map(|(at, _)| {
                let rest = &html[at + open.len()..];
                rest.find('"').map(|end| &rest[..end])
            })
            .collect()
    }

    #[test]
    fn every_asset_is_non_empty_and_found_by_its_path() {
        for a in ASSETS {
            assert!(!a.body.is_empty(), "{} is empty", a.path);
            assert!(std::ptr::eq(asset(a.path).expect("found"), a));
        }
        for (name, page) in PAGES {
            assert!(page.starts_with("<!doctype html>"), "{name}");
        }
        assert!(asset("nope.js").is_none());
        assert!(asset("../assets.rs").is_none());
        assert!(asset("").is_none());
    }

    #[test]
    fn content_types_follow_the_file_names() {
        for a in ASSETS {
            let want = if a.path.ends_with(".js") {
                JS
            } else if a.path.ends_with(".css") {
                CSS
            } else {
                assert!(a.path.contains("LICENSE"), "{}: no type rule", a.path);
                TEXT
            };
            assert_eq!(a.content_type, want, "{}", a.path);
        }
    }

    #[test]
    fn mpegts_is_the_pinned_minified_build() {
        let body = std::str::from_utf8(asset("mpegts.js").expect("listed").body).expect("utf-8");
        assert!(
            body.starts_with("/*! For license information please see mpegts.js.LICENSE.txt */"),
            "not the npm package's dist/mpegts.js"
        );
        let version = include_str!("assets/refresh.sh")
            .lines()
            .find_map(|l| l.strip_prefix("VERSION="))
            .expect("refresh.sh sets VERSION");
        assert!(
            body.contains(&format!(
                "\"version\",{{enumerable:!0,get:function(){{return\"{version}\"}}"
            )),
            "mpegts.js is not version {version}: run assets/refresh.sh"
        );
        assert!(
            include_str!("assets/README.md").contains(&format!("**{version}**")),
            "assets/README.md names another version than refresh.sh"
        );
        let licence = std::str::from_utf8(asset("mpegts.LICENSE").expect("listed").body);
        assert!(licence.expect("utf-8").contains("Apache License"));
    }

    #[test]
    fn pages_load_only_the_relays_own_paths() {
        for (name, text) in our_files() {
            assert!(!text.contains("http://"), "{name} names an http:// URL");
            assert!(!text.contains("https://"), "{name} names an https:// URL");
            assert!(!text.contains("//cdn"), "{name} names a CDN");
        }
        for (name, page) in PAGES {
            let mut links = attribute_values(page, "src");
            links.extend(attribute_values(page, "href"));
            assert!(!links.is_empty(), "{name} links nothing");
            for link in links {
                if let Some(file) = link.strip_prefix("/assets/") {
                    assert!(
                        asset(file).is_some(),
                        "{name} loads {link}, which is not served"
                    );
                } else {
                    assert!(["/", "/api/streams"].contains(&link), "{name} links {link}");
                }
            }
        }
        let watch_js = our_files()
            .into_iter()
            .find(|(name, _)| *name == "watch.js")
            .expect("listed")
            .1;
        assert!(watch_js.contains("'/streams/'"));
        assert!(watch_js.contains("'.ts'"));
        assert!(watch_js.contains("'/status'"));
    }

    #[test]
    fn the_watch_page_has_the_elements_its_script_fills() {
        for id in [
            "video",
            "state",
            "unmute",
            "note",
            "stream-id",
            "latency",
            "repaired",
            "lost",
            "frames-decoded",
            "frames-dropped",
            "position",
        ] {
            assert!(WATCH_HTML.contains(&format!("id=\"{id}\"")), "no #{id}");
        }
        assert!(WATCH_HTML.contains(" muted autoplay playsinline"));
        let mpegts = WATCH_HTML
            .find("/assets/mpegts.js")
            .expect("loads mpegts.js");
        let player = WATCH_HTML.find("/assets/watch.js").expect("loads watch.js");
        assert!(mpegts < player, "watch.js needs mpegts loaded first");
    }

    #[test]
    fn the_404_page_names_the_id_once_and_escaped() {
        assert_eq!(NOT_FOUND_HTML.matches(NOT_FOUND_ID).count(), 1);
        let page = not_found_page("<script>alert('x')</script>&\"");
        assert!(!page.contains(NOT_FOUND_ID));
        assert!(!page.contains("<script>"));
        assert!(
            page.contains(
                "<code>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;</code>"
            )
        );
        assert!(not_found_page("cam-1").contains("No stream <code>cam-1</code>"));
    }
}
