//! The HTML report in a real browser: a sandboxed swap storm is recorded, `memtrace report
//! --html` renders it, and headless Chromium opens the file from disk with no network at all
//! (its own network namespace). The page must load without console errors, show its charts with
//! data, and the screenshot must not be blank; it is kept in target/ as an artifact.
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use memtrace::lab::sandbox::{MemcgLimits, Sandbox};
use memtrace_tests::{Scratch, Workload, memtrace_bin, require_root};

const MIB: u64 = 1 << 20;

/// Where the screenshot is kept: target/ of the workspace.
fn artifact() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/memtrace-html-report.png")
}

/// Runs headless Chromium on `page` with `extra` arguments, without network; returns stdout
/// and stderr.
fn chromium(page: &Path, extra: &[&str]) -> (String, String) {
    let url = format!("file://{}", page.display());
    let output = Command::new("unshare")
        .args([
            "--net",
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
        ])
        .args(["--hide-scrollbars", "--enable-logging=stderr", "--v=0"])
        .args(extra)
        .arg(&url)
        .stdin(Stdio::null())
        .output()
        .expect("run chromium (cargo xtask test installs it)");
    assert!(output.status.success(), "chromium failed: {output:?}");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_html_report_opens_in_a_browser_with_its_charts() {
    require_root();
    let scratch = Scratch::new("html");
    let limits = MemcgLimits {
        memory_bytes: 64 * MIB,
        swap_bytes: None,
    };
    let sandbox = Sandbox::create(&limits, Some(512 * MIB)).expect("sandbox");
    let mut workload = Workload::spawn(&[
        "faults",
        "--file-mib",
        "32",
        "--anon-mib",
        "32",
        "--swap-mib",
        "160",
        "--pause-ms",
        "500",
    ]);
    sandbox.memcg.add_pid(workload.pid).expect("into the memcg");
    let recording = scratch.0.join("storm.mtr");
    let pid = workload.pid.to_string();
    let recorder = Command::new(memtrace_bin())
        .args([
            "record",
            "--quiet",
            "--interval",
            "200ms",
            "--pid",
            &pid,
            "-o",
        ])
        .arg(&recording)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the recorder");
    memtrace_tests::wait_for_recording_header(&recording);
    workload.go();
    let _: serde_json::Value = workload.finish();
    let recorded = recorder.wait_with_output().expect("recorder");
    assert!(recorded.status.success(), "{recorded:?}");
    drop(sandbox);

    let page = scratch.0.join("report.html");
    let rendered = Command::new(memtrace_bin())
        .arg("report")
        .arg(&recording)
        .arg("--html")
        .arg(&page)
        .output()
        .expect("memtrace report --html");
    assert!(rendered.status.success(), "{rendered:?}");
    let html = std::fs::read_to_string(&page).expect("the page");
    assert!(
        !html.contains("<script") && !html.contains("src="),
        "self-contained"
    );

    // The DOM the browser built: the charts are there, with drawn data.
    let (dom, log) = chromium(&page, &["--dump-dom"]);
    let svgs = dom.matches("<svg").count();
    assert!(svgs >= 7, "{svgs} charts in the DOM");
    let lines = dom.matches("<polyline").count() + dom.matches("<path").count();
    assert!(lines >= 8, "{lines} drawn lines and areas");
    assert!(dom.contains("swap_in faults: latency by percentile"));
    assert!(
        dom.contains("memcg_reclaim stalls"),
        "the storm's stalls are charted"
    );
    let console: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(console.is_empty(), "console messages: {console:?}");

    // The screenshot: a page of charts is neither blank nor one colour.
    let shot = artifact();
    let (_, log) = chromium(
        &page,
        &[
            "--window-size=1200,4000",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    assert!(shot.exists(), "no screenshot: {log}");
    let decoder = png::Decoder::new(std::fs::File::open(&shot).expect("png"));
    let mut reader = decoder.read_info().expect("png header");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).expect("png frame");
    let channels = info.color_type.samples();
    let pixels = &pixels[..info.buffer_size()];
    let total = pixels.len() / channels;
    let inked = pixels
        .chunks(channels)
        .filter(|p| p[..3].iter().any(|&c| c < 200))
        .count();
    let colourful = pixels
        .chunks(channels)
        .filter(|p| {
            let (r, g, b) = (i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
            (r - g).abs() > 60 || (g - b).abs() > 60 || (r - b).abs() > 60
        })
        .count();
    eprintln!(
        "screenshot {}: {}x{}, {inked} inked and {colourful} coloured pixels of {total}",
        shot.display(),
        info.width,
        info.height
    );
    assert!(inked * 50 > total, "the page is nearly blank");
    assert!(colourful * 500 > total, "no coloured chart data");
}

/// A leak recorded with `--stacks`: the flame graph opens in the browser (its own script runs
/// without console errors and the DOM names the leaking function), and the HTML report shows
/// the growth chart with the steady grower.
#[test]
fn the_flame_graph_and_the_growth_chart_open_in_a_browser() {
    require_root();
    let scratch = Scratch::new("html-leak");
    let mut leak = Workload::spawn(&["leak", "--kib-per-s", "4096", "--seconds", "20"]);
    let recording = scratch.0.join("leak.mtr");
    let recorder = Command::new(memtrace_bin())
        .args([
            "record",
            "--quiet",
            "--stacks",
            "--pid",
            &leak.pid.to_string(),
            "-o",
        ])
        .arg(&recording)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the recorder");
    memtrace_tests::wait_for_recording_header(&recording);
    leak.go();
    let _: serde_json::Value = leak.finish();
    let recorded = recorder.wait_with_output().expect("recorder");
    assert!(recorded.status.success(), "{recorded:?}");

    let svg = scratch.0.join("leak.svg");
    let page = scratch.0.join("leak.html");
    let rendered = Command::new(memtrace_bin())
        .arg("report")
        .arg(&recording)
        .arg("--flamegraph")
        .arg(&svg)
        .arg("--html")
        .arg(&page)
        .output()
        .expect("memtrace report");
    assert!(rendered.status.success(), "{rendered:?}");

    let (dom, log) = chromium(&svg, &["--dump-dom"]);
    assert!(
        dom.contains("leak_pages"),
        "the flame graph names the function"
    );
    assert!(dom.contains("pages"), "pages are the weight");
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Uncaught") || (l.contains("CONSOLE") && l.contains("ERROR")))
        .collect();
    assert!(errors.is_empty(), "script errors: {errors:?}");

    let (dom, _) = chromium(&page, &["--dump-dom"]);
    assert!(dom.contains("Memory growth"), "the growth section");
    assert!(dom.contains("memory of the growing processes"), "its chart");
    assert!(dom.contains("grows steadily"), "the steady grower's line");
}
