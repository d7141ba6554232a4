//! The report's charts as SVG, drawn with plotters' SVG backend: the timeline (stalled share by
//! kind, flagged intervals shaded, OOM kills marked), the machine's context (PSI, kswapd, swap
//! rates, free memory), and the percentile-distribution curves.
use std::io;

use plotters::{coord::Shift, prelude::*};

use super::curves::{CurveChart, x_of};
use crate::{
    report::{Report, timeline::TimelineRow, units},
    samples::StallCategory,
};

/// Width and height of a chart, in SVG user units (the page scales them to its width).
const SIZE: (u32, u32) = (960, 300);
/// Okabe–Ito: told apart with every common form of colour blindness (its black is kept for
/// the OOM markers).
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0xF0, 0xE4, 0x42),
];
/// Shading of the intervals flagged as hurting.
const FLAGGED: RGBColor = RGBColor(0xD5, 0x5E, 0x00);

fn failed(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("drawing a chart: {e}"))
}

/// Draws into an SVG string.
fn svg(
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> io::Result<()>,
) -> io::Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        draw(&root)?;
        root.present().map_err(failed)?;
    }
    Ok(out)
}

/// A timeline's x range: the recording's seconds.
fn span(report: &Report) -> f64 {
    report.timeline.last().map_or(1.0, |r| r.end_s()).max(0.001)
}

/// Step points: a value holds over its whole interval.
fn steps(report: &Report, value: impl Fn(&TimelineRow) -> f64) -> Vec<(f64, f64)> {
    report
        .timeline
        .iter()
        .flat_map(|r| {
            let v = value(r);
            [(r.start_s, v), (r.end_s(), v)]
        })
        .collect()
}

/// Stalled share of the interval's most stalled processes, stacked by kind; flagged intervals
/// shaded; OOM kills marked with their victim.
pub fn stalls(report: &Report) -> io::Result<String> {
    let x_max = span(report);
    let share = |r: &TimelineRow, kind: StallCategory| -> f64 {
        r.processes
            .iter()
            .filter_map(|p| p.by_kind.get(&kind))
            .sum()
    };
    let y_max = report
        .timeline
        .iter()
        .map(|r| StallCategory::ALL.iter().map(|&k| share(r, k)).sum::<f64>())
        .fold(10.0, f64::max)
        * 1.1;
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                "stalled share of the interval, by kind (%)",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)
            .map_err(failed)?;
        chart
            .configure_mesh()
            .x_desc("seconds into the recording")
            .y_desc("% of the interval")
            .draw()
            .map_err(failed)?;
        let bands = report.timeline.iter().filter(|r| r.flagged).map(|r| {
            let end = r.end_s();
            Rectangle::new([(r.start_s, 0.0), (end, y_max)], FLAGGED.mix(0.12).filled())
        });
        chart.draw_series(bands).map_err(failed)?;
        // Stacked: each kind's area reaches the sum of it and the kinds below it.
        let mut below = vec![0.0; report.timeline.len()];
        let mut layers = Vec::new();
        for (i, &kind) in StallCategory::ALL.iter().enumerate() {
            let tops: Vec<f64> = report
                .timeline
                .iter()
                .zip(&below)
                .map(|(r, b)| b + share(r, kind))
                .collect();
            if tops.iter().zip(&below).any(|(t, b)| t > b) {
                layers.push((kind, PALETTE[i % PALETTE.len()], tops.clone()));
            }
            below = tops;
        }
        for (kind, color, tops) in layers.iter().rev() {
            let points: Vec<(f64, f64)> = report
                .timeline
                .iter()
                .zip(tops)
                .flat_map(|(r, &v)| [(r.start_s, v), (r.end_s(), v)])
                .collect();
            let color = *color;
            chart
                .draw_series(AreaSeries::new(points, 0.0, color.mix(0.8)).border_style(color))
                .map_err(failed)?
                .label(kind.short())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
        }
        for kill in &report.oom_kills {
            let at = kill.at_s;
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(at, 0.0), (at, y_max)],
                    BLACK.stroke_width(2),
                )))
                .map_err(failed)?;
            let text = format!(
                "OOM kill: {}[{}]",
                units::printable(&kill.victim.comm),
                kill.victim.tgid
            );
            chart
                .draw_series(std::iter::once(Text::new(
                    text,
                    (at, y_max * 0.95),
                    ("sans-serif", 14).into_font(),
                )))
                .map_err(failed)?;
        }
        if !layers.is_empty() {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(failed)?;
        }
        Ok(())
    })
}

/// A named line of a timeline chart: its value in each row.
pub type Series<'a> = (&'a str, &'a dyn Fn(&TimelineRow) -> Option<f64>);

/// One or more lines over the recording, with a legend.
pub fn lines(
    report: &Report,
    title: &str,
    y_desc: &str,
    series: &[Series<'_>],
    y_label: &dyn Fn(&f64) -> String,
) -> io::Result<String> {
    let drawn: Vec<Line> = series
        .iter()
        .enumerate()
        .map(|(i, (name, value))| Line {
            name: (*name).to_string(),
            points: steps(report, |r| value(r).unwrap_or(0.0)),
            style: PALETTE[i % PALETTE.len()].stroke_width(2),
        })
        .collect();
    let axes = Axes {
        title,
        y_desc,
        y_label: Some(y_label),
        legend: SeriesLabelPosition::MiddleRight,
    };
    draw_lines(&axes, span(report), &drawn)
}

/// A line to draw: its legend, its points and its style.
struct Line {
    name: String,
    points: Vec<(f64, f64)>,
    style: ShapeStyle,
}

/// A line chart's title, y axis and legend.
struct Axes<'a> {
    title: &'a str,
    y_desc: &'a str,
    /// How the y axis's values read (`None`: plotters' own).
    y_label: Option<&'a dyn Fn(&f64) -> String>,
    legend: SeriesLabelPosition,
}

/// Lines over the recording's seconds (to at least `x_min_span`), from 0 to a tenth above the
/// highest point, with a legend.
fn draw_lines(axes: &Axes<'_>, x_min_span: f64, lines: &[Line]) -> io::Result<String> {
    let points = || lines.iter().flat_map(|l| l.points.iter());
    let x_max = points().map(|p| p.0).fold(x_min_span, f64::max);
    let y_max = points().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(axes.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)
            .map_err(failed)?;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc("seconds into the recording")
            .y_desc(axes.y_desc);
        if let Some(y_label) = axes.y_label {
            mesh.y_label_formatter(y_label);
        }
        mesh.draw().map_err(failed)?;
        for line in lines {
            let style = line.style;
            chart
                .draw_series(LineSeries::new(line.points.iter().copied(), style))
                .map_err(failed)?
                .label(line.name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], style));
        }
        chart
            .configure_series_labels()
            .position(axes.legend.clone())
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(failed)?;
        Ok(())
    })
}

/// Each zone's lowest free pages per interval (zones of a few MiB, such as DMA, left out),
/// with the min and low watermarks of the largest zone; `None` without zone readings (older
/// recordings).
pub fn zones(report: &Report) -> io::Result<Option<String>> {
    let Some(first) = report.timeline.iter().find(|r| !r.zones.is_empty()) else {
        return Ok(None);
    };
    // (node, zone) of the zones shown; the largest (by its low watermark) first.
    let mut shown: Vec<(u32, String, u64)> = first
        .zones
        .iter()
        .filter(|z| z.low_pages >= 256)
        .map(|z| (z.node, z.zone.clone(), z.low_pages))
        .collect();
    shown.sort_by_key(|z| std::cmp::Reverse(z.2));
    let Some((node, zone, _)) = shown.first().cloned() else {
        return Ok(None);
    };
    let find = |row: &TimelineRow, node: u32, zone: &str| {
        row.zones
            .iter()
            .find(|z| z.node == node && z.zone == zone)
            .cloned()
    };
    type Value = Box<dyn Fn(&TimelineRow) -> Option<f64>>;
    let mut named: Vec<(String, Value)> = Vec::new();
    for (n, z, _) in &shown {
        let (n, z2) = (*n, z.clone());
        named.push((
            format!("{} lowest free", units::printable(z)),
            Box::new(move |r| find(r, n, &z2).map(|z| z.lowest_free_pages as f64)),
        ));
    }
    let (low_zone, min_zone) = (zone.clone(), zone.clone());
    named.push((
        format!("{} low", units::printable(&zone)),
        Box::new(move |r| find(r, node, &low_zone).map(|z| z.low_pages as f64)),
    ));
    named.push((
        format!("{} min", units::printable(&zone)),
        Box::new(move |r| find(r, node, &min_zone).map(|z| z.min_pages as f64)),
    ));
    let series: Vec<Series<'_>> = named.iter().map(|(n, f)| (n.as_str(), &**f)).collect();
    lines(
        report,
        "zones: lowest free pages against the watermarks",
        "pages",
        &series,
        &|v| units::count(*v as u64),
    )
    .map(Some)
}

/// The percentile label of an x of the 1/(1−p) axis.
fn percentile_label(x: &f64) -> String {
    const TICKS: [(f64, &str); 6] = [
        (0.0, "0%"),
        (1.0, "90%"),
        (2.0, "99%"),
        (3.0, "99.9%"),
        (4.0, "99.99%"),
        (5.0, "99.999%"),
    ];
    TICKS
        .iter()
        .find(|(at, _)| (at - x).abs() < 1e-6)
        .map(|(_, label)| (*label).to_string())
        .unwrap_or_else(|| format!("{:.3}%", (1.0 - 10f64.powf(-x)) * 100.0))
}

/// Latency against percentile, one line per process, log latency axis.
pub fn percentiles(chart_data: &CurveChart) -> io::Result<String> {
    let y_max = chart_data
        .curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.1))
        .fold(10.0, f64::max)
        * 2.0;
    let y_min = chart_data
        .curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.1))
        .fold(f64::MAX, f64::min)
        .clamp(1.0, y_max / 10.0)
        / 2.0;
    let x_max = x_of(1.0);
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("{}: latency by percentile", chart_data.title),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..x_max, (y_min..y_max).log_scale())
            .map_err(failed)?;
        chart
            .configure_mesh()
            .x_labels(6)
            .x_label_formatter(&percentile_label)
            .y_label_formatter(&|ns| units::duration_ns(*ns as u64))
            .x_desc("percentile")
            .y_desc("latency")
            .draw()
            .map_err(failed)?;
        for (i, curve) in chart_data.curves.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(curve.points.clone(), color.stroke_width(2)))
                .map_err(failed)?
                .label(units::printable(&curve.label))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(failed)?;
        Ok(())
    })
}

/// Growers shown in the growth chart.
pub const GROWERS: usize = 5;

/// Resident + swap over the recording of the processes that grew most (the steady growers
/// first), with the first one's memory cgroup limit when it has one; `None` when no process
/// grew by a MiB.
pub fn growth(report: &Report) -> io::Result<Option<String>> {
    let shown: Vec<&crate::report::growth::ProcessGrowth> = report
        .growth
        .processes
        .iter()
        .filter(|p| p.series.len() >= 2 && p.fitted_growth_kb() >= 1024.0)
        .take(GROWERS)
        .collect();
    let Some(first) = shown.first() else {
        return Ok(None);
    };
    let mut drawn: Vec<Line> = shown
        .iter()
        .enumerate()
        .map(|(i, p)| Line {
            name: format!(
                "{}[{}] {}{}",
                units::printable(&p.comm),
                p.pid,
                crate::report::growth::rate_kb(p.slope_kb_per_s.unwrap_or(0.0)),
                if p.steady_growth { " steady" } else { "" }
            ),
            points: p
                .series
                .iter()
                .map(|&(x, y)| (f64::from(x), f64::from(y)))
                .collect(),
            style: PALETTE[i % PALETTE.len()].stroke_width(2),
        })
        .collect();
    let x_max = drawn
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(span(report), f64::max);
    if let Some(kb) = first.memcg_limit_kb {
        let limit = kb as f64 / 1024.0;
        drawn.push(Line {
            name: "memcg limit".into(),
            points: vec![(0.0, limit), (x_max, limit)],
            style: BLACK.stroke_width(1),
        });
    }
    let axes = Axes {
        title: "memory of the growing processes (resident + swap)",
        y_desc: "MiB",
        y_label: None,
        legend: SeriesLabelPosition::UpperLeft,
    };
    draw_lines(&axes, x_max, &drawn).map(Some)
}
