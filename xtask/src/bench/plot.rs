//! The cost curve as pictures: from a results JSON of the reflector
//! scenario, one PNG per kind of object (`<stem>-configmaps.png`,
//! `<stem>-pods.png` beside the JSON) with two log-log panels, initial sync
//! time and peak RSS against N, one line per variant (client × encoding).
//!
//! Drawn with `plotters` on its bitmap backend; the text is set in DejaVu
//! Sans embedded in the binary (the `dejavu` crate, through plotters'
//! `ab_glyph` feature), so nothing looks up system fonts and a fresh
//! machine draws the same picture. Written after every run (unless
//! `--no-plot`) and by `cargo xtask bench --plot-only RESULTS.json`.

use plotters::prelude::*;

use super::*;

/// The panels: title, metric key of the medians, unit factor.
const PANELS: [(&str, &str, f64); 2] = [
    (
        "initial sync, s (process start → cache ready)",
        "sync_ms",
        1e-3,
    ),
    ("peak RSS at sync, MiB", "sync_peak_rss_mib", 1.0),
];

/// A color per variant name, the same in every picture.
fn color(variant: &str) -> RGBColor {
    match variant {
        "ours-json" => RGBColor(31, 119, 180),
        "ours-protobuf" => RGBColor(23, 190, 207),
        "ours-compact" => RGBColor(255, 127, 14),
        "kube-rs" => RGBColor(214, 39, 40),
        "client-go-json" => RGBColor(44, 160, 44),
        "client-go-protobuf" => RGBColor(148, 103, 189),
        _ => RGBColor(127, 127, 127),
    }
}

/// Reads a results JSON and draws its PNGs; returns their paths.
pub(super) fn plot_file(results: &Path) -> Result<Vec<PathBuf>> {
    let text =
        std::fs::read_to_string(results).with_context(|| format!("read {}", results.display()))?;
    let report: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", results.display()))?;
    let pngs = plot_report(&report, results)?;
    for png in &pngs {
        println!("plot: {}", png.display());
    }
    Ok(pngs)
}

/// Draws the PNGs of `report` (a reflector results JSON) beside `out`.
pub(super) fn plot_report(report: &Value, out: &Path) -> Result<Vec<PathBuf>> {
    let curves = report["curves"].as_object().with_context(|| {
        format!(
            "{}: no `curves` (not a reflector results JSON of the cost curve)",
            out.display()
        )
    })?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
        .map_err(|_| anyhow::anyhow!("the embedded DejaVu Sans font does not load"))?;
    let stem = out
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("results");
    let dir = out.parent().unwrap_or(Path::new("."));
    let mut written = Vec::new();
    for (resource, curve) in curves {
        let png = dir.join(format!("{stem}-{resource}.png"));
        draw(&png, resource, curve, report).with_context(|| format!("draw {}", png.display()))?;
        written.push(png);
    }
    Ok(written)
}

/// One series: a variant's (N, value) points.
type Series = (String, Vec<(f64, f64)>);

/// The series of `key` (scaled by `scale`) in `curve`, one per variant.
fn series(curve: &Value, key: &str, scale: f64) -> Vec<Series> {
    let mut by_variant: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for point in curve["points"].as_array().into_iter().flatten() {
        let n = point["objects"].as_f64().unwrap_or(f64::NAN);
        for (variant, v) in point["variants"].as_object().into_iter().flatten() {
            let y = v["median"][key].as_f64().unwrap_or(f64::NAN) * scale;
            if n.is_finite() && y.is_finite() && n > 0.0 && y > 0.0 {
                by_variant.entry(variant.clone()).or_default().push((n, y));
            }
        }
    }
    by_variant.into_iter().collect()
}

/// `[lo, hi]` widened to whole decades around `values` (log axes).
fn decades(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() || hi <= 0.0 {
        return (1.0, 10.0);
    }
    let lo = 10f64.powf(lo.log10().floor());
    let hi = 10f64.powf(hi.log10().ceil()).max(lo * 10.0);
    (lo, hi)
}

/// A tick's label on a log axis: 1, 2 and 5 times a power of ten, with
/// thousands separated (`10,000`); the ticks between stay unlabelled.
fn round_label(v: f64) -> String {
    if !(v.is_finite() && v > 0.0) {
        return String::new();
    }
    let decade = 10f64.powf(v.log10().floor());
    let mantissa = v / decade;
    if ![1.0, 2.0, 5.0].iter().any(|m| (mantissa - m).abs() < 1e-6) {
        return String::new();
    }
    if v >= 1.0 {
        let digits = format!("{:.0}", v);
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else {
        let text = format!("{v:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn draw(png: &Path, resource: &str, curve: &Value, report: &Value) -> Result<()> {
    let root = BitMapBackend::new(png, (1400, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let machine = &report["machine"];
    let title = format!(
        "{resource}: cost against N (log-log; medians of {} run(s); {}, {} cores, {})",
        report["config"]["runs"],
        machine["cpu_model"].as_str().unwrap_or("?"),
        machine["nproc"],
        machine["date"].as_str().unwrap_or("?"),
    );
    let root = root.titled(&title, ("sans-serif", 20))?;
    let panels = root.split_evenly((1, PANELS.len()));
    for (area, (label, key, scale)) in panels.iter().zip(PANELS) {
        let data = series(curve, key, scale);
        let (x0, x1) = decades(data.iter().flat_map(|(_, p)| p.iter().map(|(x, _)| *x)));
        let (y0, y1) = decades(data.iter().flat_map(|(_, p)| p.iter().map(|(_, y)| *y)));
        let mut chart = ChartBuilder::on(area)
            .caption(label, ("sans-serif", 18))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())?;
        chart
            .configure_mesh()
            .x_label_formatter(&|x| round_label(*x))
            .y_label_formatter(&|y| round_label(*y))
            .x_desc("objects (N)")
            .y_desc(label.split(',').next().unwrap_or(label))
            .label_style(("sans-serif", 14))
            .draw()?;
        for (variant, points) in &data {
            let c = color(variant);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))?
                .label(variant.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(2))
                });
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, c.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
