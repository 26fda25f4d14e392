//! Charts drawn as SVG strings for the self-contained HTML report: vertical
//! bars, lines, horizontal bars and a heat grid.
//!
//! The output is meant to be pasted inline into a page served under a strict
//! Content-Security-Policy, so it holds no script, no external reference (no
//! `href`, no `url(`, generic font families only), and every piece of user
//! text is escaped. It is also deterministic: the same input gives the same
//! string, byte for byte, so reports can be compared and snapshot-tested.

/// Colours of the series, in order; the report's browser test looks for them in screenshots.
pub const PALETTE: [&str; 6] = [
    "#2563eb", "#f97316", "#16a34a", "#9333ea", "#dc2626", "#0891b2",
];
/// Axis and text colour.
pub const INK: &str = "#374151";
/// Gridline and frame colour.
pub const GRID: &str = "#e5e7eb";

/// PALETTE[0] as RGB, for the heat grid's blend from white.
const BLUE: [u8; 3] = [0x25, 0x63, 0xeb];
const FONT: &str = "system-ui, sans-serif";
const LABEL_MAX: usize = 24;
const MAX_X_LABELS: usize = 8;
/// Rough width of an 11px glyph: enough to keep labels apart without measuring text.
const CHAR_W: f64 = 6.5;
/// Past this nothing on a report is meaningful, and the scale arithmetic stays finite.
const VALUE_LIMIT: f64 = 1e15;

/// Size, title and unit of one chart. Sizes under 160 × 100 are raised to that,
/// which is the least that leaves room for a plot.
#[derive(Debug, Clone, Copy)]
pub struct Chart<'a> {
    pub title: &'a str,
    pub width: u32,
    pub height: u32,
    /// Appended to axis numbers, e.g. "%" or " ms"; may be empty.
    pub unit: &'a str,
}

/// How a series' line is drawn; dashed marks a forecast or a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stroke {
    Solid,
    Dashed,
}

/// One line of a [`lines`] chart.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    pub name: &'a str,
    /// One value per label; None = gap.
    pub values: &'a [Option<f64>],
    pub stroke: Stroke,
}

/// The plot area inside the margins, in SVG user units.
#[derive(Debug, Clone, Copy)]
struct Area {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

/// A value axis from `lo` to `hi` with a tick every `step`.
#[derive(Debug, Clone, Copy)]
struct Scale {
    lo: f64,
    hi: f64,
    step: f64,
}

impl Scale {
    /// Spans zero and every value; each end is a nice number.
    fn new(values: impl Iterator<Item = f64>) -> Scale {
        let (min, max) = values.fold((0.0f64, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
        if min >= 0.0 {
            let (hi, step) = nice_max(max);
            return Scale { lo: 0.0, hi, step };
        }
        let (top, top_step) = if max > 0.0 { nice_max(max) } else { (0.0, 0.0) };
        let (bottom, bottom_step) = nice_max(-min);
        // Both sides share one step so zero falls on a gridline.
        let step = top_step.max(bottom_step);
        Scale {
            lo: -(bottom / step).ceil() * step,
            hi: (top / step).ceil() * step,
            step,
        }
    }

    /// Maps `v` from the scale onto the segment `a`..`b` (either direction).
    fn at(&self, v: f64, a: f64, b: f64) -> f64 {
        a + (v - self.lo) / (self.hi - self.lo) * (b - a)
    }

    fn ticks(&self, unit: &str) -> Vec<(f64, String)> {
        let n = ((self.hi - self.lo) / self.step).round() as usize;
        let tick = |i: usize| self.lo + i as f64 * self.step;
        (0..=n)
            .map(|i| (tick(i), format!("{}{unit}", short_num(tick(i)))))
            .collect()
    }
}

/// The axis end for a largest value `v`: the smallest of 1, 2, 2.5, 5 × 10^k at
/// least `v`, with its tick step (4 or 5 intervals). Zero or invalid gives 1.
fn nice_max(v: f64) -> (f64, f64) {
    if !(v.is_finite() && v >= 1e-9) {
        return (1.0, 0.2);
    }
    let mag = 10f64.powi(v.log10().floor() as i32);
    for (m, step) in [(1.0, 0.2), (2.0, 0.5), (2.5, 0.5), (5.0, 1.0)] {
        // The tolerance absorbs log10 rounding (e.g. 1000 seen as 999.99…).
        if v <= m * mag * (1.0 + 1e-9) {
            return (m * mag, step * mag);
        }
    }
    (10.0 * mag, 2.0 * mag)
}

/// Indices of the labels to print: at most `max`, evenly spaced, first and last always.
fn thin(n: usize, max: usize) -> Vec<usize> {
    let max = max.max(2);
    if n <= max {
        return (0..n).collect();
    }
    let stride = (n - 1).div_ceil(max - 1);
    let mut keep: Vec<usize> = (0..n - 1).step_by(stride).collect();
    // The last label always shows; its neighbour goes if the two would crowd.
    if keep.len() > 1 && keep.last().is_some_and(|&l| n - 1 - l < stride) {
        keep.pop();
    }
    keep.push(n - 1);
    keep
}

fn finite(v: f64) -> f64 {
    if v.is_finite() {
        v.clamp(-VALUE_LIMIT, VALUE_LIMIT)
    } else {
        0.0
    }
}

/// Trims a number printed with `{:.N}` (always with a point) of its trailing zeros.
fn trim(s: String) -> String {
    let t = s.trim_end_matches('0').trim_end_matches('.');
    if t == "-0" { "0" } else { t }.to_string()
}

/// A value as printed: at most 2 decimals, trailing zeros trimmed.
fn fmt_num(v: f64) -> String {
    trim(format!("{:.2}", finite(v)))
}

/// A coordinate: one decimal is finer than a pixel and keeps the SVG short.
fn c(v: f64) -> String {
    trim(format!("{:.1}", finite(v)))
}

/// A value shortened for axes and bar ends: 1234 → 1.2k, 3400000 → 3.4M.
fn short_num(v: f64) -> String {
    let v = finite(v);
    if v.abs() < 999.995 {
        return fmt_num(v);
    }
    let mut x = v / 1000.0;
    for suffix in ["k", "M", "B"] {
        if x.abs() < 999.95 {
            return format!("{}{suffix}", trim(format!("{x:.1}")));
        }
        x /= 1000.0;
    }
    format!("{}T", trim(format!("{x:.1}")))
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// Escapes text for SVG/HTML content and attributes (& < > " ').
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML: one would make the whole SVG invalid.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// A `<text>` shortened to `max` chars; when cut, the full text stays as a tooltip.
fn text(x: f64, y: f64, anchor: &str, extra: &str, label: &str, max: usize) -> String {
    let short = shorten(label, max);
    let (x, y, body, full) = (c(x), c(y), escape(&short), escape(label));
    let tip = if short == label {
        String::new()
    } else {
        format!("<title>{full}</title>")
    };
    format!(
        r#"<text x="{x}" y="{y}" text-anchor="{anchor}" fill="{INK}"{extra}>{body}{tip}</text>"#
    )
}

fn label_at(labels: &[String], i: usize) -> &str {
    labels.get(i).map_or("", String::as_str)
}

/// The tooltip of one data mark: "label: value{unit}".
fn tip(label: &str, v: f64, unit: &str) -> String {
    let (label, v, unit) = (escape(label), fmt_num(v), escape(unit));
    format!("<title>{label}: {v}{unit}</title>")
}

/// Sizes below these would leave a plot area of negative size.
fn size(chart: &Chart) -> (f64, f64) {
    let (w, h) = (chart.width.max(160), chart.height.max(100));
    (f64::from(w), f64::from(h))
}

fn rect(class: &str, (x, y, w, h): (f64, f64, f64, f64), fill: &str, body: &str) -> String {
    let (x, y, w, h) = (c(x), c(y), c(w), c(h));
    format!(
        r#"<rect class="{class}" x="{x}" y="{y}" width="{w}" height="{h}" fill="{fill}">{body}</rect>"#
    )
}

fn line((x1, y1): (f64, f64), (x2, y2): (f64, f64), stroke: &str, extra: &str) -> String {
    let (x1, y1, x2, y2) = (c(x1), c(y1), c(x2), c(y2));
    format!(r#"<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{stroke}"{extra}/>"#)
}

fn dash(stroke: Stroke) -> &'static str {
    match stroke {
        Stroke::Solid => r#" stroke-width="2""#,
        Stroke::Dashed => r#" stroke-width="2" stroke-dasharray="6 4""#,
    }
}

/// Length in chars of the longest text once shortened, for sizing margins.
fn widest<'a>(texts: impl Iterator<Item = &'a str>) -> usize {
    texts
        .map(|t| t.chars().count().min(LABEL_MAX))
        .max()
        .unwrap_or(1)
}

/// The `<svg>` start tag, its `<title>`, a white framed background and the visible title.
fn open(kind: &str, chart: &Chart) -> String {
    let (w, h) = size(chart);
    let title = escape(chart.title);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-kind="{kind}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{title}" font-family="{FONT}" font-size="11"><title>{title}</title>"#
    );
    let (fw, fh) = (w - 1.0, h - 1.0);
    s += &format!(
        r#"<rect x="0.5" y="0.5" width="{fw}" height="{fh}" fill="white" stroke="{GRID}"/>"#
    );
    let bold = r#" font-size="13" font-weight="600""#;
    let room = ((w - 16.0) / 7.5) as usize;
    s + &text(8.0, 18.0, "start", bold, chart.title, room)
}

/// Finishes an empty chart: the frame and a centred "No data", no palette colour.
fn no_data(s: String, chart: &Chart) -> String {
    let (w, h) = size(chart);
    s + &text(w / 2.0, h / 2.0 + 4.0, "middle", "", "No data", LABEL_MAX) + "</svg>"
}

/// Horizontal gridlines with tick labels on the left; returns the plot area.
fn y_axis(s: &mut String, chart: &Chart, scale: &Scale, top: f64) -> Area {
    let (w, h) = size(chart);
    let ticks = scale.ticks(chart.unit);
    let left =
        (widest(ticks.iter().map(|t| t.1.as_str())) as f64 * CHAR_W + 12.0).clamp(28.0, w / 3.0);
    let area = Area {
        left,
        right: w - 12.0,
        top,
        bottom: h - 24.0,
    };
    for (v, label) in ticks {
        let y = scale.at(v, area.bottom, area.top);
        let ink = if v == 0.0 { INK } else { GRID };
        *s += &line((area.left, y), (area.right, y), ink, "");
        *s += &text(area.left - 6.0, y + 4.0, "end", "", &label, LABEL_MAX);
    }
    area
}

/// Labels under the plot at `xs`, thinned so they neither crowd nor overlap.
fn x_labels(s: &mut String, chart: &Chart, area: &Area, labels: &[String], xs: &[f64]) {
    let (w, _) = size(chart);
    let longest = widest(labels.iter().map(String::as_str));
    let fits = ((area.right - area.left) / (longest as f64 * CHAR_W + 8.0)) as usize;
    for i in thin(xs.len(), fits.min(MAX_X_LABELS)) {
        let label = label_at(labels, i);
        // Centred labels at the ends are pulled in so they are not cut by the frame.
        let half = widest([label].into_iter()) as f64 * CHAR_W / 2.0;
        let x = xs[i].clamp(half + 4.0, (w - half - 4.0).max(half + 4.0));
        *s += &text(x, area.bottom + 16.0, "middle", "", label, LABEL_MAX);
    }
}

/// Vertical bars, one per label (e.g. page views per day).
pub fn bars(chart: &Chart, labels: &[String], values: &[f64]) -> String {
    let values: Vec<f64> = values.iter().map(|&v| finite(v)).collect();
    let mut s = open("bars", chart);
    if values.iter().all(|&v| v == 0.0) {
        return no_data(s, chart);
    }
    let scale = Scale::new(values.iter().copied());
    let area = y_axis(&mut s, chart, &scale, 30.0);
    let slot = (area.right - area.left) / values.len() as f64;
    let zero = scale.at(0.0, area.bottom, area.top);
    for (i, &v) in values.iter().enumerate() {
        let y = scale.at(v, area.bottom, area.top);
        let x = area.left + (i as f64 + 0.1) * slot;
        let frame = (x, y.min(zero), slot * 0.8, (y - zero).abs());
        s += &rect(
            "bar",
            frame,
            PALETTE[0],
            &tip(label_at(labels, i), v, chart.unit),
        );
    }
    let xs: Vec<f64> = (0..values.len())
        .map(|i| area.left + (i as f64 + 0.5) * slot)
        .collect();
    x_labels(&mut s, chart, &area, labels, &xs);
    s + "</svg>"
}

fn point(values: &[Option<f64>], i: usize) -> Option<f64> {
    let v = values.get(i).copied().flatten()?;
    v.is_finite().then(|| finite(v))
}

/// Lines over shared labels (e.g. weekly runs, with a dashed forecast series).
/// Each point gets a small dot; a legend names the series when there are several.
pub fn lines(chart: &Chart, labels: &[String], series: &[Series]) -> String {
    let n = labels.len();
    let values: Vec<Vec<Option<f64>>> = series
        .iter()
        .map(|se| (0..n).map(|i| point(se.values, i)).collect())
        .collect();
    let mut s = open("lines", chart);
    if values.iter().flatten().flatten().all(|&v| v == 0.0) {
        return no_data(s, chart);
    }
    let (w, _) = size(chart);
    let mut top = 30.0;
    if series.len() > 1 {
        // The legend flows left to right under the title, wrapping when full.
        let (mut x, mut y) = (8.0, 34.0);
        for (k, se) in series.iter().enumerate() {
            let width = 34.0 + widest([se.name].into_iter()) as f64 * CHAR_W;
            if x + width > w - 8.0 && x > 8.0 {
                (x, y) = (8.0, y + 16.0);
            }
            let (colour, dashes) = (PALETTE[k % 6], dash(se.stroke));
            s += &line((x, y - 4.0), (x + 18.0, y - 4.0), colour, dashes);
            s += &text(x + 22.0, y, "start", "", se.name, LABEL_MAX);
            x += width;
        }
        top = y + 12.0;
    }
    let scale = Scale::new(values.iter().flatten().flatten().copied());
    let area = y_axis(&mut s, chart, &scale, top);
    let step = (area.right - area.left) / n.saturating_sub(1).max(1) as f64;
    let xs: Vec<f64> = match n {
        1 => vec![(area.left + area.right) / 2.0],
        _ => (0..n).map(|i| area.left + i as f64 * step).collect(),
    };
    for (k, (se, vals)) in series.iter().zip(&values).enumerate() {
        let (colour, dashes) = (PALETTE[k % 6], dash(se.stroke));
        let y = |v: f64| scale.at(v, area.bottom, area.top);
        // A gap (None) lifts the pen, so the next point starts a new piece.
        let mut d = Vec::new();
        for (i, v) in vals.iter().enumerate() {
            if let Some(v) = v {
                let joined = i > 0 && vals[i - 1].is_some();
                let pen = if joined { 'L' } else { 'M' };
                d.push(format!("{pen}{} {}", c(xs[i]), c(y(*v))));
            }
        }
        if !d.is_empty() {
            let d = d.join(" ");
            s += &format!(r#"<path d="{d}" fill="none" stroke="{colour}"{dashes}/>"#);
        }
        for (i, v) in vals.iter().enumerate() {
            let Some(v) = *v else { continue };
            let label = match series.len() {
                1 => label_at(labels, i).to_string(),
                _ => format!("{} · {}", se.name, label_at(labels, i)),
            };
            let (cx, cy, title) = (c(xs[i]), c(y(v)), tip(&label, v, chart.unit));
            s += &format!(
                r#"<circle class="point" cx="{cx}" cy="{cy}" r="3" fill="{colour}">{title}</circle>"#
            );
        }
    }
    x_labels(&mut s, chart, &area, labels, &xs);
    s + "</svg>"
}

/// Horizontal bars with their label left and value right (funnels, ROI per
/// workflow). Negative values go left of the zero line, in PALETTE[4].
pub fn hbars(chart: &Chart, rows: &[(String, f64)]) -> String {
    let rows: Vec<(&str, f64)> = rows.iter().map(|(l, v)| (l.as_str(), finite(*v))).collect();
    let mut s = open("hbars", chart);
    if rows.iter().all(|&(_, v)| v == 0.0) {
        return no_data(s, chart);
    }
    let (w, h) = size(chart);
    let ends: Vec<String> = rows
        .iter()
        .map(|r| format!("{}{}", short_num(r.1), chart.unit))
        .collect();
    let left = 8.0 + (widest(rows.iter().map(|r| r.0)) as f64 * CHAR_W + 8.0).min(w * 0.35);
    let right =
        w - 8.0 - (widest(ends.iter().map(String::as_str)) as f64 * CHAR_W + 8.0).min(w * 0.25);
    let area = Area {
        left,
        right,
        top: 30.0,
        bottom: h - 22.0,
    };
    let scale = Scale::new(rows.iter().map(|r| r.1));
    for (v, label) in scale.ticks(chart.unit) {
        let x = scale.at(v, area.left, area.right);
        let ink = if v == 0.0 { INK } else { GRID };
        s += &line((x, area.top), (x, area.bottom), ink, "");
        s += &text(x, area.bottom + 14.0, "middle", "", &label, LABEL_MAX);
    }
    let slot = (area.bottom - area.top) / rows.len() as f64;
    // Few rows would otherwise make slabs; a cap keeps bars bar-like.
    let thick = (slot * 0.7).min(24.0);
    let zero = scale.at(0.0, area.left, area.right);
    for (i, (&(label, v), end)) in rows.iter().zip(&ends).enumerate() {
        let mid = area.top + (i as f64 + 0.5) * slot;
        let x = scale.at(v, area.left, area.right);
        let colour = if v < 0.0 { PALETTE[4] } else { PALETTE[0] };
        let frame = (x.min(zero), mid - thick / 2.0, (x - zero).abs(), thick);
        s += &rect("hbar", frame, colour, &tip(label, v, chart.unit));
        s += &text(area.left - 6.0, mid + 4.0, "end", "", label, LABEL_MAX);
        s += &text(w - 8.0, mid + 4.0, "end", "", end, LABEL_MAX);
    }
    s + "</svg>"
}

/// White blended toward PALETTE[0] by `t` in 0..=1.
fn blend(t: f64) -> String {
    let mix = |b: u8| (255.0 + (f64::from(b) - 255.0) * t.clamp(0.0, 1.0)).round() as u8;
    let [r, g, b] = BLUE.map(mix);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// A heat grid of `cols` x `rows` cells, each cell's count shaded from white to
/// PALETTE[0] in proportion to count / max; cells not listed are 0, and cells
/// listed twice add up. `cells` = (col, row, count). Out-of-range cells are ignored.
pub fn heat(chart: &Chart, cols: usize, rows: usize, cells: &[(usize, usize, u64)]) -> String {
    // Sparse on purpose: only listed cells cost anything, whatever `cols * rows` is.
    let mut counts = std::collections::BTreeMap::<(usize, usize), u64>::new();
    for &(col, row, n) in cells.iter().filter(|cell| cell.0 < cols && cell.1 < rows) {
        let sum = counts.entry((row, col)).or_insert(0);
        *sum = sum.saturating_add(n);
    }
    let mut s = open("heat", chart);
    let max = counts.values().copied().max().unwrap_or(0);
    if max == 0 {
        return no_data(s, chart);
    }
    let (w, h) = size(chart);
    let (gw, gh) = (w - 16.0, h - 54.0);
    s += &rect("grid", (8.0, 30.0, gw, gh), "white", "");
    let (cw, ch) = (gw / cols as f64, gh / rows as f64);
    // A one-unit gap keeps neighbouring cells apart, once cells are big enough to spare it.
    let gap = |size: f64| if size > 3.0 { size - 1.0 } else { size };
    for (&(row, col), &n) in counts.iter().filter(|cell| *cell.1 > 0) {
        let (x, y) = (8.0 + col as f64 * cw, 30.0 + row as f64 * ch);
        let title = tip(&format!("col {col}, row {row}"), n as f64, chart.unit);
        let fill = blend(n as f64 / max as f64);
        s += &rect("cell", (x, y, gap(cw), gap(ch)), &fill, &title);
    }
    let key = format!("max {}{}", short_num(max as f64), chart.unit);
    let kx = w - 24.0 - key.chars().count() as f64 * CHAR_W;
    s += &rect("key", (kx, h - 16.0, 10.0, 10.0), PALETTE[0], "");
    s + &text(w - 8.0, h - 7.0, "end", "", &key, LABEL_MAX) + "</svg>"
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: Chart = Chart {
        title: "Chart",
        width: 600,
        height: 220,
        unit: " ms",
    };

    fn labels(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("day {i}")).collect()
    }

    fn one<'a>(name: &'a str, values: &'a [Option<f64>], stroke: Stroke) -> [Series<'a>; 1] {
        [Series {
            name,
            values,
            stroke,
        }]
    }

    #[test]
    fn user_text_appears_only_escaped() {
        let evil = "<script>&\"'";
        let c = Chart { title: evil, ..C };
        let outputs = [
            bars(&c, &[evil.into()], &[1.0]),
            lines(&c, &[evil.into()], &one(evil, &[Some(1.0)], Stroke::Solid)),
            hbars(&c, &[(evil.into(), 1.0)]),
            heat(&c, 1, 1, &[(0, 0, 1)]),
        ];
        for s in outputs {
            assert!(s.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart""#));
            assert!(s.contains("&lt;script&gt;&amp;&quot;&#39;"), "{s}");
            for banned in ["<script", "url(", "href"] {
                assert!(!s.contains(banned), "{banned} in {s}");
            }
        }
        assert_eq!(escape("a\u{0}b\nc"), "ab\nc");
    }

    #[test]
    fn one_bar_per_value() {
        let s = bars(&C, &labels(30), &[3.0; 30]);
        assert_eq!(s.matches(r#"<rect class="bar""#).count(), 30);
        assert!(s.contains(r#"data-kind="bars""#) && s.contains("<title>day 4: 3 ms</title>"));
    }

    #[test]
    fn nice_max_is_1_2_2_5_5_times_a_power_of_ten() {
        let cases = [
            (0.0, 1.0),
            (-3.0, 1.0),
            (f64::NAN, 1.0),
            (1.0, 1.0),
            (7.0, 10.0),
        ];
        let more = [
            (0.3, 0.5),
            (1234.0, 2000.0),
            (2.2, 2.5),
            (1000.0, 1000.0),
            (0.07, 0.1),
        ];
        for (v, max) in cases.into_iter().chain(more) {
            let (got, step) = nice_max(v);
            assert!((got - max).abs() < 1e-9, "{v} gave {got}");
            let intervals = (got / step).round();
            assert!(
                (4.0..=5.0).contains(&intervals),
                "{v}: {intervals} intervals"
            );
        }
        let sc = Scale::new([-3.0, 17.0].into_iter());
        assert_eq!((sc.lo, sc.hi, sc.step), (-5.0, 20.0, 5.0));
    }

    #[test]
    fn thinning_keeps_first_and_last() {
        assert_eq!(thin(5, 8), vec![0, 1, 2, 3, 4]);
        assert_eq!(thin(30, 7), vec![0, 5, 10, 15, 20, 29]);
        for n in [9, 10, 31, 100, 365] {
            let keep = thin(n, 8);
            assert!(keep.len() <= 8 && keep[0] == 0, "{n}: {keep:?}");
            assert_eq!(keep.last(), Some(&(n - 1)));
        }
    }

    #[test]
    fn numbers_are_short_and_finite() {
        assert_eq!(
            (fmt_num(2.50), fmt_num(-0.001), fmt_num(f64::INFINITY)),
            ("2.5".into(), "0".into(), "0".into())
        );
        assert_eq!(
            (short_num(1234.0), short_num(3.4e6), short_num(999.0)),
            ("1.2k".into(), "3.4M".into(), "999".into())
        );
        let bad = [f64::NAN, f64::INFINITY, 2.0, f64::NEG_INFINITY, 1e300];
        let opt = bad.map(Some);
        let outputs = [
            bars(&C, &labels(5), &bad),
            lines(&C, &labels(5), &one("a", &opt, Stroke::Solid)),
            hbars(&C, &labels(5).into_iter().zip(bad).collect::<Vec<_>>()),
        ];
        for s in outputs {
            assert!(!s.contains("NaN") && !s.contains("inf"), "{s}");
        }
    }

    #[test]
    fn empty_input_says_no_data_without_palette() {
        let outputs = [
            bars(&C, &[], &[]),
            bars(&C, &labels(3), &[0.0, 0.0, 0.0]),
            lines(&C, &[], &[]),
            lines(&C, &labels(2), &one("a", &[None, None], Stroke::Dashed)),
            hbars(&C, &[]),
            heat(&C, 24, 7, &[]),
            heat(&C, 0, 0, &[(0, 0, 5)]),
        ];
        for s in outputs {
            assert!(
                s.contains("No data") && s.contains("<title>Chart</title>"),
                "{s}"
            );
            assert!(PALETTE.iter().all(|p| !s.contains(p)), "{s}");
        }
    }

    #[test]
    fn heat_ignores_out_of_range_and_saturates_the_max() {
        let cells = [(0, 0, 2), (2, 1, 4), (3, 0, 99), (0, 2, 99), (1, 1, 0)];
        let s = heat(&C, 3, 2, &cells);
        assert_eq!(s.matches(r#"<rect class="cell""#).count(), 2);
        let full = format!(r#"fill="{}"><title>col 2, row 1: 4 ms"#, PALETTE[0]);
        let half = format!(r#"fill="{}"><title>col 0, row 0: 2 ms"#, blend(0.5));
        assert!(s.contains(&full) && s.contains(&half), "{s}");
        assert_eq!(
            (blend(1.0).as_str(), blend(0.0).as_str()),
            (PALETTE[0], "#ffffff")
        );
    }

    #[test]
    fn negative_hbars_go_left_of_zero_in_red() {
        let s = hbars(&C, &[("won".into(), 120.0), ("lost".into(), -80.0)]);
        assert_eq!(s.matches(r#"<rect class="hbar""#).count(), 2);
        let lost = format!(r#"fill="{}"><title>lost: -80 ms"#, PALETTE[4]);
        assert!(
            s.contains(&lost) && s.contains(r#"x="75.5" y="144" width="134.1""#),
            "{s}"
        );
        assert!(s.contains(&format!(r#"fill="{}"><title>won: 120 ms"#, PALETTE[0])));
        // Zero sits at x = 209.7: the loss ends there, the win starts there.
        assert!(s.contains(&format!(r#"x2="209.7" y2="198" stroke="{INK}""#)));
        assert!(s.contains(r#"<rect class="hbar" x="209.7""#));
    }

    #[test]
    fn lines_dash_legend_gaps_and_long_labels() {
        let long = "a label that is much longer than twenty-four chars".to_string();
        let (a, b) = ([Some(1.0), None, Some(3.0)], [None, Some(2.0), Some(4.0)]);
        let series = [
            Series {
                name: "runs",
                values: &a,
                stroke: Stroke::Solid,
            },
            Series {
                name: "forecast",
                values: &b,
                stroke: Stroke::Dashed,
            },
        ];
        let s = lines(&C, &[long.clone(), "b".into(), "c".into()], &series);
        assert_eq!(s.matches(r#"<circle class="point""#).count(), 4);
        assert!(s.contains(r#"stroke-dasharray="6 4""#) && s.contains(">forecast</text>"));
        assert!(s.contains("a label that is much lo…<title>a label that is much longer"));
    }

    #[test]
    fn output_is_deterministic() {
        let rows: Vec<(String, f64)> = labels(4).into_iter().zip([4.0, 3.0, 2.5, 1.0]).collect();
        assert_eq!(hbars(&C, &rows), hbars(&C, &rows));
        assert_eq!(
            bars(&C, &labels(3), &[1.0, 2.0, 3.0]),
            bars(&C, &labels(3), &[1.0, 2.0, 3.0])
        );
        assert_eq!(
            heat(&C, 2, 2, &[(1, 1, 3), (0, 0, 1)]),
            heat(&C, 2, 2, &[(1, 1, 3), (0, 0, 1)])
        );
        let series = one("a", &[Some(1.0), None, Some(2.5)], Stroke::Solid);
        assert_eq!(
            lines(&C, &labels(3), &series),
            lines(&C, &labels(3), &series)
        );
    }
}
