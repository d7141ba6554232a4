//! The page and its charts, rendered into a buffer from the shared fixture model.
use super::*;
use crate::report::{Report, View, fixture};

fn page() -> String {
    let model = fixture::model();
    let report = Report::new(&model, &View::default());
    let curves = curve_charts(&model);
    let mut out = Vec::new();
    write(&report, &curves, "the <text> report & tables", &mut out).expect("render");
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn the_page_is_self_contained_with_every_chart() {
    let html = page();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    for forbidden in ["<script", "<link", "@import", "src=", "href=", "url("] {
        assert!(!html.contains(forbidden), "{forbidden} in the page");
    }
    // The only URLs are the SVG namespace names, which are never fetched.
    let urls = html.matches("http").count();
    let namespaces = html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count();
    assert_eq!(urls, namespaces);
    let charts = html.matches("<svg ").count();
    let curves = curve_charts(&fixture::model()).len();
    assert_eq!(
        charts,
        4 + curves,
        "four timeline charts and one per class or kind"
    );
    assert!(curves >= 3, "minor, major_file, swap_in at least");
    assert!(
        html.contains("the &lt;text&gt; report &amp; tables"),
        "escaped tables"
    );
    assert!(html.contains("vm.swappiness"));
}

#[test]
fn verdicts_have_a_section_of_their_own_only_when_there_are_some() {
    let model = fixture::model();
    let mut report = Report::new(&model, &View::default());
    let verdicts = report.verdicts.len();
    report.verdicts.clear();
    let mut out = Vec::new();
    write(&report, &[], "", &mut out).expect("render");
    let html = String::from_utf8(out).expect("utf-8");
    assert!(
        !html.contains("Why reclaim ran"),
        "a section without verdicts"
    );
    // The fixture's own: its direct reclaim began under min.
    assert_eq!(
        verdicts,
        1,
        "{:?}",
        Report::new(&model, &View::default()).verdicts
    );
    report.verdicts.push(crate::report::verdict::Verdict {
        start_s: 3.0,
        cause: crate::report::verdict::Cause::Fragmentation,
        text: "order <8> & more".into(),
    });
    let mut out = Vec::new();
    write(&report, &[], "", &mut out).expect("render");
    let html = String::from_utf8(out).expect("utf-8");
    assert!(html.contains("<h2>Why reclaim ran</h2>"));
    assert!(
        html.contains("<p><b>3.0 s</b> (fragmentation): order &lt;8&gt; &amp; more</p>"),
        "{html}"
    );
}

#[test]
fn the_timeline_shades_flagged_intervals_and_marks_oom_kills() {
    let model = fixture::model();
    let report = Report::new(&model, &View::default());
    assert!(report.timeline.iter().any(|r| r.flagged));
    let svg = charts::stalls(&report).expect("chart");
    assert!(svg.contains("OOM kill: "), "the kill is marked");
    // The flagged band's colour (Okabe–Ito vermillion) at low opacity.
    assert!(
        svg.contains("#D55E00")
            || svg.contains("rgb(213,94,0)")
            || svg.to_lowercase().contains("d55e00")
    );
    assert!(svg.contains("memcg"), "the stalled kinds are in the legend");
}

#[test]
fn percentile_curves_have_the_nines_on_the_axis_and_data_paths() {
    let model = fixture::model();
    let charts = curve_charts(&model);
    let minor = charts
        .iter()
        .find(|c| c.title == "minor faults")
        .expect("minor chart");
    assert!(!minor.curves.is_empty() && minor.curves.len() <= curves::CURVES_PER_CHART);
    let svg = charts::percentiles(minor).expect("chart");
    for tick in ["90%", "99%", "99.9%"] {
        // plotters puts a text element's content on a line of its own.
        assert!(svg.contains(&format!("\n{tick}\n")), "tick {tick}");
    }
    assert!(
        svg.contains("<polyline") || svg.contains("<path"),
        "lines drawn"
    );
    assert!(
        svg.contains("postgres[100]"),
        "the busiest process is named"
    );
}

#[test]
fn text_is_escaped_for_html() {
    assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
}

#[test]
fn the_zones_chart_draws_each_zone_against_the_largest_zones_watermarks() {
    let model = fixture::model();
    let mut report = Report::new(&model, &View::default());
    assert!(
        charts::zones(&report).expect("chart").is_none(),
        "no chart without zone readings"
    );
    let zone = |name: &str, free: u64, min: u64| crate::samples::zones::ZoneSample {
        node: 0,
        zone: name.into(),
        free_pages: free,
        lowest_free_pages: free,
        min_pages: min,
        low_pages: min * 5 / 4,
        high_pages: min * 3 / 2,
        readings: 10,
        ..Default::default()
    };
    for row in &mut report.timeline {
        row.zones = vec![
            zone("DMA", 3840, 10),
            zone("DMA32", 300_000, 2116),
            zone("Normal", 90_000, 14_769),
        ];
    }
    let svg = charts::zones(&report).expect("chart").expect("a chart");
    for label in [
        "Normal lowest free",
        "DMA32 lowest free",
        "Normal low",
        "Normal min",
    ] {
        assert!(svg.contains(label), "{label} in the legend");
    }
    assert!(!svg.contains("DMA lowest"), "DMA's few pages are left out");
    let mut out = Vec::new();
    write(&report, &[], "", &mut out).expect("render");
    let html = String::from_utf8(out).expect("utf-8");
    assert!(html.contains("zones: lowest free pages against the watermarks"));
}

#[test]
fn a_steady_grower_gets_the_growth_section_with_its_chart_and_line() {
    use crate::samples::{
        IntervalSample,
        growth::{MemcgUsage, MemoryInterval, MemoryReading},
    };
    let mut model = fixture::model();
    let start = model.last_end_ns;
    for t in 1..=20u64 {
        let anon = 4096 + 2048 * t;
        let sample = IntervalSample {
            index: 100 + t,
            start_ns: start + (t - 1) * 1_000_000_000,
            end_ns: start + t * 1_000_000_000,
            memory: MemoryInterval {
                read_ns: start + t * 1_000_000_000,
                readings: vec![MemoryReading {
                    pid: 77,
                    start_ns: 1,
                    comm: "leaky<b>".into(),
                    memcg_id: 5,
                    rss_anon_kb: anon * 16,
                    ..MemoryReading::default()
                }],
                memcgs: vec![MemcgUsage {
                    id: 5,
                    usage_kb: anon * 16,
                    limit_kb: Some(4 << 20),
                }],
                ..MemoryInterval::default()
            },
            ..IntervalSample::default()
        };
        model.apply(&sample);
    }
    let report = Report::new(&model, &View::default());
    let mut out = Vec::new();
    write(&report, &curve_charts(&model), "tables", &mut out).expect("render");
    let html = String::from_utf8(out).expect("utf-8");
    assert!(html.contains("<h2>Memory growth</h2>"));
    assert!(html.contains("memory of the growing processes"));
    assert!(html.contains("memcg limit"), "the limit line");
    assert!(
        html.contains("leaky&lt;b&gt;[77] grows steadily"),
        "escaped: {html}"
    );
    assert!(!html.contains("<script"));
    // Without growth, no section.
    assert!(!page().contains("Memory growth"));
}
