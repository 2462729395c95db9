//! `--plot FILE.svg`: two panels, the one-way latency CDF and the
//! delivered throughput over the measurement, as plain SVG text.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::report::Report;

const PANEL_W: f64 = 460.0;
const PANEL_H: f64 = 300.0;
/// Space around a panel's plot area for the axes' labels.
const MARGIN_L: f64 = 70.0;
const MARGIN_R: f64 = 20.0;
const MARGIN_T: f64 = 50.0;
const MARGIN_B: f64 = 45.0;

/// Writes the plot of `report` to `path`.
pub fn write(report: &Report, path: &Path) -> anyhow::Result<()> {
    std::fs::write(path, svg(report))
        .with_context(|| format!("--plot {}: cannot write it", path.display()))
}

/// The SVG document.
pub fn svg(report: &Report) -> String {
    let width = 2.0 * PANEL_W;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{PANEL_H}" viewBox="0 0 {width} {PANEL_H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="{width}" height="{PANEL_H}" fill="white"/>"#
    );
    let latency: Vec<(f64, f64)> = report
        .latency_cdf
        .iter()
        .map(|&(us, q)| (us / 1000.0, q))
        .collect();
    panel(
        &mut out,
        0.0,
        &Panel {
            title: format!(
                "one-way latency CDF, {} viewers x {:.2} Mbit/s",
                report.viewers,
                report.bitrate_bps as f64 / 1e6
            ),
            x_label: "latency (ms)",
            y_label: "fraction of chunks",
            points: &latency,
            y_max: Some(1.0),
        },
    );
    let throughput: Vec<(f64, f64)> = report
        .throughput
        .iter()
        .map(|&(t, pps)| (t, pps / 1000.0))
        .collect();
    panel(
        &mut out,
        PANEL_W,
        &Panel {
            title: format!("delivered throughput ({} backend)", report.backend),
            x_label: "time into measurement (s)",
            y_label: "datagrams/s (thousands)",
            points: &throughput,
            y_max: None,
        },
    );
    out.push_str("</svg>\n");
    out
}

/// What one panel shows.
struct Panel<'a> {
    title: String,
    x_label: &'static str,
    y_label: &'static str,
    points: &'a [(f64, f64)],
    /// Fixed top of the y axis; otherwise the data's maximum.
    y_max: Option<f64>,
}

/// Draws `p` with its left edge at `left`.
fn panel(out: &mut String, left: f64, p: &Panel<'_>) {
    let x0 = left + MARGIN_L;
    let x1 = left + PANEL_W - MARGIN_R;
    let y0 = PANEL_H - MARGIN_B;
    let y1 = MARGIN_T;
    let x_max = nice(p.points.iter().map(|&(x, _)| x).fold(0.0, f64::max));
    let y_max = p
        .y_max
        .unwrap_or_else(|| nice(p.points.iter().map(|&(_, y)| y).fold(0.0, f64::max)));
    let sx = |x: f64| x0 + (x / x_max).clamp(0.0, 1.0) * (x1 - x0);
    let sy = |y: f64| y0 - (y / y_max).clamp(0.0, 1.0) * (y0 - y1);

    let _ = writeln!(
        out,
        r#"<text x="{}" y="25" text-anchor="middle" font-size="14">{}</text>"#,
        left + PANEL_W / 2.0,
        escape(&p.title)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{x0}" y="{y1}" width="{}" height="{}" fill="none" stroke="#444"/>"##,
        x1 - x0,
        y0 - y1
    );
    for i in 0..=4 {
        let f = f64::from(i) / 4.0;
        let (gx, gy) = (x0 + f * (x1 - x0), y0 - f * (y0 - y1));
        let _ = writeln!(
            out,
            r##"<line x1="{gx}" y1="{y0}" x2="{gx}" y2="{y1}" stroke="#ddd"/><text x="{gx}" y="{}" text-anchor="middle">{}</text>"##,
            y0 + 15.0,
            tick(f * x_max)
        );
        let _ = writeln!(
            out,
            r##"<line x1="{x0}" y1="{gy}" x2="{x1}" y2="{gy}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            x0 - 5.0,
            gy + 4.0,
            tick(f * y_max)
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        (x0 + x1) / 2.0,
        PANEL_H - 8.0,
        escape(p.x_label)
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle" transform="rotate(-90 {} {})">{}</text>"#,
        left + 18.0,
        (y0 + y1) / 2.0,
        left + 18.0,
        (y0 + y1) / 2.0,
        escape(p.y_label)
    );
    let mut coords = String::new();
    for &(x, y) in p.points {
        let _ = write!(coords, "{:.1},{:.1} ", sx(x), sy(y));
    }
    let _ = writeln!(
        out,
        r##"<polyline points="{}" fill="none" stroke="#1f77b4" stroke-width="2"/>"##,
        coords.trim_end()
    );
}

/// A round axis end at or above `v` (1, 2 or 5 times a power of ten).
fn nice(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&end| end >= v)
        .unwrap_or(10.0 * power)
}

/// A tick label: no more digits than it needs.
fn tick(v: f64) -> String {
    let text = format!("{v:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_ends_are_round() {
        assert_eq!(nice(0.0), 1.0);
        assert_eq!(nice(0.7), 1.0);
        assert_eq!(nice(1.0), 1.0);
        assert_eq!(nice(1.3), 2.0);
        assert_eq!(nice(3.0), 5.0);
        assert_eq!(nice(72.0), 100.0);
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(40.0), "40");
    }

    #[test]
    fn the_svg_has_a_polyline_per_panel() {
        let mut report = crate::report::tests::sample();
        report.latency_cdf = vec![(100.0, 0.5), (900.0, 0.99), (5000.0, 1.0)];
        report.throughput = vec![(0.1, 80_000.0), (0.2, 79_000.0), (0.3, 81_000.0)];
        let svg = svg(&report);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<svg").count(), 1);
        // Every element is closed: tags open and close in balance.
        let opened = svg.matches("<text").count();
        assert_eq!(opened, svg.matches("</text>").count());
        assert!(svg.contains("latency CDF") && svg.contains("throughput"));
        // The CDF ends at the top-right corner of the left panel.
        let end = format!("{:.1},{:.1}", PANEL_W - MARGIN_R, MARGIN_T);
        assert!(svg.contains(&end), "{end} not in {svg}");
    }

    #[test]
    fn an_empty_run_still_plots() {
        let mut report = crate::report::tests::sample();
        report.latency_cdf.clear();
        report.throughput.clear();
        let svg = svg(&report);
        assert_eq!(svg.matches("<polyline").count(), 2);
    }
}
