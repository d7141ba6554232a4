//! `memtrace serve` scraped by a real Prometheus (Debian's package): the sandbox cgroup's page
//! faults and swap traffic as Prometheus stores them equal the kernel's counters, its p99 is
//! memtrace's own within a bucket, an OOM kill counts once in its memcg; the exposition passes
//! `promtool check metrics`; bad clients don't stop it; it runs as a non-root user with exactly
//! the DaemonSet's capabilities and names the one that is missing.
#[path = "serve/support.rs"]
mod support;

use std::{
    io::Write,
    net::TcpStream,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use memtrace::lab::{
    sandbox::{MemcgLimits, Sandbox},
    workload::faults::FaultOutcome,
};
use memtrace::samples::StopReason;
use memtrace_tests::{
    Scratch, Workload, assert_within, parse_report, require_root, run_memtrace, vmstat,
};
use support::{Prometheus, Serve, exchange, free_port, get, promtool_check_metrics, repo_root};

const MIB: u64 = 1 << 20;

/// The `cgroup` label of a sandbox: its path below the memory hierarchy's mount.
fn cgroup_label(sandbox: &Sandbox) -> String {
    let path = sandbox.memcg.path().display().to_string();
    for mount in [
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/unified",
        "/sys/fs/cgroup",
    ] {
        if let Some(rest) = path.strip_prefix(mount)
            && rest.starts_with('/')
        {
            return rest.to_string();
        }
    }
    panic!("{path} is under no cgroup mount")
}

/// The classic buckets of one series in a text exposition: (upper bound, cumulative count).
fn classic_buckets(text: &str, name: &str, selector: &str) -> Vec<(f64, u64)> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}_bucket{{")) && l.contains(selector))
        .map(|l| {
            let le = l
                .split("le=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .expect("le");
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().expect("bound")
            };
            let count = l
                .rsplit(' ')
                .next()
                .and_then(|c| c.parse().ok())
                .expect("count");
            (bound, count)
        })
        .collect()
}

/// The classic bucket that holds quantile `q`: (lower bound, upper bound).
fn classic_quantile_bucket(buckets: &[(f64, u64)], q: f64) -> (f64, f64) {
    let total = buckets.last().expect("buckets").1 as f64;
    let mut lower = 0.0;
    for &(bound, count) in buckets {
        if count as f64 >= q * total {
            return (lower, bound);
        }
        lower = bound;
    }
    unreachable!("+Inf holds everything")
}

#[test]
fn serve_scraped_by_prometheus_matches_the_kernel_counters() {
    require_root();
    let scratch = Scratch::new("serve-prometheus");
    let recording = scratch.file("serve.rec");
    let addr = format!("127.0.0.1:{}", free_port());
    let limits = MemcgLimits {
        memory_bytes: 64 * MIB,
        swap_bytes: None,
    };
    let sandbox = Sandbox::create(&limits, Some(512 * MIB)).expect("sandbox");
    let cgroup = cgroup_label(&sandbox);
    // 160 MiB written and read back in a 64 MiB memcg: swap-outs, swap-ins, reclaim stalls.
    let mut workload = Workload::spawn(&[
        "faults",
        "--file-mib",
        "0",
        "--anon-mib",
        "0",
        "--swap-mib",
        "160",
    ]);
    sandbox.memcg.add_pid(workload.pid).expect("add pid");
    let rec = recording.to_str().expect("utf-8");
    let serve = Serve::start(&[], &addr, &["--listen", &addr, "-o", rec]);
    let prometheus = Prometheus::start(&addr);
    let up = prometheus.wait_for("up{job=\"memtrace\"}", |v| v == 1.0);
    assert_eq!(
        up,
        Some(1.0),
        "prometheus never scraped memtrace: {}",
        prometheus.log()
    );

    // The workload waits on its stdin, so the sandbox takes no fault until `go`.
    let pgfault0 = sandbox
        .memcg
        .stat("pgfault")
        .expect("memory.stat")
        .expect("pgfault");
    let (pswpin0, pswpout0) = (vmstat("pswpin"), vmstat("pswpout"));
    workload.go();
    let outcome: FaultOutcome = workload.finish();
    let pgfault = sandbox
        .memcg
        .stat("pgfault")
        .expect("memory.stat")
        .expect("pgfault")
        - pgfault0;
    let (pswpin, pswpout) = (vmstat("pswpin") - pswpin0, vmstat("pswpout") - pswpout0);
    eprintln!(
        "kernel: memcg pgfault {pgfault}, pswpin {pswpin}, pswpout {pswpout}; workload {outcome:?}"
    );
    assert!(
        pswpout >= 10_000,
        "the storm swapped out only {pswpout} pages"
    );

    // Native histograms: Prometheus asked for protobuf and keeps the sparse buckets.
    let sel = format!("cgroup=\"{cgroup}\"");
    let faults = format!(
        "sum(histogram_count(memtrace_page_fault_duration_seconds{{{sel}}})) + \
         sum(memtrace_untimed_page_faults_total{{{sel}}} or vector(0))"
    );
    // Minor faults travel in per-CPU batches sent within 100 ms of the CPU's next fault: wait
    // (30 s at most) for the count to reach the kernel's, then compare.
    let seen = prometheus
        .wait_for(&faults, |v| v as u64 >= pgfault)
        .expect("fault series of the sandbox");
    // Every fault of the workload succeeds, so memtrace's count (each fault's end, and the
    // kernel's PGFAULT event for faults taken without an exception) is memory.stat's pgfault.
    assert_eq!(
        seen as u64, pgfault,
        "page faults of the sandbox memcg: prometheus vs memory.stat pgfault"
    );
    let swap = |dir: &str| {
        let expr = format!("sum(memtrace_swap_pages_total{{direction=\"{dir}\",{sel}}})");
        prometheus.wait_for(&expr, |_| true).unwrap_or(0.0) as u64
    };
    let (swap_in, swap_out) = (swap("in"), swap("out"));
    eprintln!("prometheus: faults {seen}, swap-ins {swap_in}, swap-outs {swap_out}");
    assert_within("swap-ins of the sandbox memcg", swap_in, pswpin, 2.0);
    assert_within("swap-outs of the sandbox memcg", swap_out, pswpout, 2.0);
    let lost = prometheus.value("sum(memtrace_lost_events_total{type=\"fault\"})");
    assert_eq!(lost, Some(0.0), "lost fault records");

    // p99 of the swap-in faults: Prometheus' estimate from native buckets (schema 3, a factor
    // of 2^(1/8) apart) against memtrace's own, from the same run's recording.
    let p99 = prometheus
        .value(&format!(
            "histogram_quantile(0.99, sum(memtrace_page_fault_duration_seconds{{class=\"swap_in\",{sel}}}))"
        ))
        .expect("a p99 of swap-in faults");
    let text = serve.scrape();
    promtool_check_metrics(&text).unwrap_or_else(|e| panic!("promtool check metrics: {e}"));
    let buckets = classic_buckets(
        &text,
        "memtrace_page_fault_duration_seconds",
        &format!("class=\"swap_in\",{sel}"),
    );
    let (code, stderr) = serve.terminate();
    assert_eq!(code, Some(0), "serve on SIGTERM: {stderr:#?}");
    drop(prometheus);
    let json = scratch.file("report.json");
    let output = run_memtrace(
        &["report", rec, "--json", json.to_str().expect("utf-8")],
        None,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = parse_report(&std::fs::read_to_string(&json).expect("the JSON report"));
    let me = report
        .processes
        .iter()
        .find(|p| p.pid == outcome.pid)
        .expect("the workload in the recording");
    let own = me.classes.swap_in.latency.p99_ns as f64 / 1e9;
    let factor = 2f64.powf(1.0 / 8.0) * 1.001;
    eprintln!("p99 of swap-ins: prometheus {p99} s, memtrace {own} s");
    assert!(
        p99 <= own * factor && p99 >= own / factor,
        "prometheus' p99 {p99} s is more than a native bucket from memtrace's {own} s"
    );
    // Classic buckets (what a scraper without native histograms gets): the bucket holding the
    // p99 holds memtrace's own p99 too.
    let (lower, upper) = classic_quantile_bucket(&buckets, 0.99);
    assert!(
        own > lower * 0.999 && own <= upper * 1.001,
        "memtrace's p99 {own} s is outside the classic bucket ({lower}, {upper}]"
    );
    drop(sandbox);
}

#[test]
fn serve_counts_an_oom_kill_in_its_memcg_for_prometheus() {
    require_root();
    let addr = format!("127.0.0.1:{}", free_port());
    let limits = MemcgLimits {
        memory_bytes: 48 * MIB,
        swap_bytes: Some(0),
    };
    let sandbox = Sandbox::create(&limits, None).expect("sandbox");
    let cgroup = cgroup_label(&sandbox);
    let serve = Serve::start(&[], &addr, &["--listen", &addr]);
    let prometheus = Prometheus::start(&addr);
    assert_eq!(
        prometheus.wait_for("up{job=\"memtrace\"}", |v| v == 1.0),
        Some(1.0)
    );
    let kills0 = sandbox.memcg.oom_kills().expect("oom_control");
    // 200 MiB in 16 MiB steps in 48 MiB without swap: killed.
    let mut hog = Command::new(memtrace_tests::memtrace_bin())
        .args([
            "workload",
            "--wait",
            "oom-hog",
            "--mib",
            "200",
            "--step-mib",
            "16",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the hog");
    sandbox.memcg.add_pid(hog.id()).expect("into the memcg");
    hog.stdin
        .take()
        .expect("stdin")
        .write_all(b"go\n")
        .expect("go");
    let status = hog.wait().expect("wait for the hog");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "the hog was not killed: {status}"
    );
    let kills = sandbox.memcg.oom_kills().expect("oom_control") - kills0;
    assert_eq!(kills, 1, "the kernel's count of OOM kills in the sandbox");
    let expr = format!("memtrace_oom_kills_total{{constraint=\"memcg\",cgroup=\"{cgroup}\"}}");
    let seen = prometheus.wait_for(&expr, |v| v >= 1.0);
    assert_eq!(
        seen,
        Some(1.0),
        "{expr}: {:?}",
        prometheus.query("memtrace_oom_kills_total")
    );
    let points = prometheus.value(&format!(
        "memtrace_oom_victim_badness_points{{constraint=\"memcg\",cgroup=\"{cgroup}\"}}"
    ));
    assert!(points.is_some_and(|p| p > 0.0), "victim points {points:?}");
    drop(serve);
    drop(sandbox);
}

#[test]
fn serve_survives_bad_clients_and_listens_on_loopback_by_default() {
    require_root();
    // No --listen: loopback only, on the documented default port.
    let serve = Serve::start(&[], "127.0.0.1:10037", &[]);
    let listening = listening_sockets(serve.pid());
    assert_eq!(
        listening,
        vec!["127.0.0.1:10037".to_string()],
        "listening sockets"
    );
    let addr = serve.addr.clone();
    assert_eq!(get(&addr, "/nothing", &[]).status, 404);
    let post = exchange(
        &addr,
        b"POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
    )
    .expect("a response");
    assert_eq!(post.status, 405, "{post:?}");
    assert!(
        post.head.to_ascii_lowercase().contains("allow: get, head"),
        "{post:?}"
    );
    // A 1 MB header: refused (431) or the connection dropped, never served.
    let huge = format!(
        "GET /metrics HTTP/1.0\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    if let Some(response) = exchange(&addr, huge.as_bytes()) {
        assert_eq!(response.status, 431, "{response:?}");
    }
    let first = faults_counted(&serve.scrape());
    // 200 connections at once that send half a request and wait; and clients that ask for the
    // metrics and never read the answer.
    let idle: Vec<TcpStream> = (0..200)
        .filter_map(|_| {
            let mut s = TcpStream::connect(&addr).ok()?;
            let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
            Some(s)
        })
        .collect();
    let deaf: Vec<TcpStream> = (0..4)
        .filter_map(|_| {
            let mut s = TcpStream::connect(&addr).ok()?;
            let _ = s.write_all(
                b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                    .repeat(50)
                    .as_slice(),
            );
            Some(s)
        })
        .collect();
    // Connections beyond the limit were closed at once; the others hold their slots until
    // their head times out. Free them: memtrace serves again, and traced all along.
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(20);
    let later = loop {
        let count = faults_counted(&serve.scrape());
        if count > first || Instant::now() > deadline {
            break count;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        later > first,
        "tracing stopped: {first} then {later} faults"
    );
    drop(deaf);
    let (code, stderr) = serve.terminate();
    assert_eq!(code, Some(0), "serve on SIGTERM: {stderr:#?}");
}

/// Faults of every cgroup in an exposition.
fn faults_counted(text: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with("memtrace_page_fault_duration_seconds_count{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The TCP sockets `pid` listens on, as `addr:port`.
fn listening_sockets(pid: u32) -> Vec<String> {
    let output = Command::new("ss")
        .args(["-Htlnp"])
        .output()
        .expect("run ss");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.contains(&format!("pid={pid},")))
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
        .collect()
}

/// The capabilities the DaemonSet adds, as setpriv names them (`bpf`, `perfmon`).
fn manifest_capabilities() -> Vec<String> {
    let manifest = std::fs::read_to_string(repo_root().join("deploy/daemonset.yaml"))
        .expect("deploy/daemonset.yaml");
    let add = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("add:"))
        .expect("a capabilities add: line");
    let list = add
        .split_once('[')
        .and_then(|(_, r)| r.split_once(']'))
        .expect("add: [..]")
        .0;
    list.split(',')
        .map(|c| c.trim().trim_matches('"').to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .collect()
}

/// setpriv as `nobody` holding exactly `caps` (and nothing in its bounding set beyond them).
fn as_nobody_with(caps: &[String]) -> Vec<String> {
    let list: String = caps.iter().map(|c| format!(",+{c}")).collect();
    vec![
        "setpriv".into(),
        "--reuid=65534".into(),
        "--regid=65534".into(),
        "--clear-groups".into(),
        format!("--inh-caps=-all{list}"),
        format!("--ambient-caps=-all{list}"),
        format!("--bounding-set=-all{list}"),
    ]
}

#[test]
fn serve_runs_as_nobody_with_exactly_the_manifest_capabilities() {
    require_root();
    let caps = manifest_capabilities();
    assert!(caps.contains(&"bpf".to_string()), "{caps:?}");
    let addr = format!("127.0.0.1:{}", free_port());
    let wrapper = as_nobody_with(&caps);
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let serve = Serve::start(&wrapper, &addr, &["--listen", &addr]);
    // It traces: the machine's faults show up within a few intervals.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut text = serve.scrape();
    while faults_counted(&text) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        text = serve.scrape();
    }
    assert!(
        faults_counted(&text) > 0,
        "no faults traced as nobody:\n{text}"
    );
    let (code, stderr) = serve.terminate();
    assert_eq!(code, Some(0), "{stderr:#?}");
    // Without any one of them it refuses, naming it.
    for dropped in &caps {
        let fewer: Vec<String> = caps.iter().filter(|c| *c != dropped).cloned().collect();
        let wrapper = as_nobody_with(&fewer);
        let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
        let mut serve = Serve::spawn(&wrapper, &["--listen", &addr, "--duration", "5s"]);
        let (code, stderr) = serve.wait();
        let name = format!("CAP_{}", dropped.to_ascii_uppercase());
        assert_ne!(code, Some(0), "serve ran without {name}: {stderr:#?}");
        assert!(
            stderr.iter().any(|l| l.contains(&name)),
            "the error does not name {name}: {stderr:#?}"
        );
    }
}

#[test]
fn serve_rules_and_manifests_pass_promtool() {
    let rules = repo_root().join("deploy/prometheus-rules.yaml");
    // promtool checks a rule file, not the PrometheusRule resource around it: the test checks
    // the rule groups that deploy/ also ships inside the resource.
    let output = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .expect("run promtool");
    assert!(
        output.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let resource = std::fs::read_to_string(repo_root().join("deploy/prometheusrule.yaml"))
        .expect("deploy/prometheusrule.yaml");
    let groups = std::fs::read_to_string(&rules).expect("rules");
    // The resource embeds the same groups, indented under `spec:`.
    for line in groups
        .lines()
        .filter(|l| l.contains("expr:") || l.contains("record:") || l.contains("alert:"))
    {
        assert!(
            resource.contains(line.trim()),
            "{} is not in the PrometheusRule",
            line.trim()
        );
    }
}

#[test]
fn serve_drops_the_series_of_removed_cgroups_after_the_expiry() {
    require_root();
    let addr = format!("127.0.0.1:{}", free_port());
    let serve = Serve::start(
        &[],
        &addr,
        &["--listen", &addr, "--interval", "250ms", "--expire", "3s"],
    );
    let limits = MemcgLimits {
        memory_bytes: 64 * MIB,
        swap_bytes: None,
    };
    // Ten cgroups come and go, each with a process that faults in it; each is removed once its
    // series are served (a cgroup is named at the close of the interval that first saw it).
    let has = |text: &str, label: &str| text.contains(&format!("cgroup=\"{label}\""));
    let mut labels = Vec::new();
    let mut text = String::new();
    for _ in 0..10 {
        let sandbox = Sandbox::create(&limits, None).expect("sandbox");
        let label = cgroup_label(&sandbox);
        let mut workload = Workload::spawn(&["faults", "--file-mib", "0", "--anon-mib", "4"]);
        sandbox.memcg.add_pid(workload.pid).expect("add pid");
        workload.go();
        let _: FaultOutcome = workload.finish();
        let deadline = Instant::now() + Duration::from_secs(10);
        text = serve.scrape();
        while !has(&text, &label) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            text = serve.scrape();
        }
        assert!(has(&text, &label), "no series for {label}");
        labels.push(label);
        drop(sandbox);
    }
    // Removed and idle for the expiry (3 s, checked every 0.3 s): gone from the scrape.
    let deadline = Instant::now() + Duration::from_secs(30);
    while labels.iter().any(|l| has(&text, l)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        text = serve.scrape();
    }
    let kept: Vec<&String> = labels.iter().filter(|l| has(&text, l)).collect();
    assert!(
        kept.is_empty(),
        "series of removed cgroups still served: {kept:?}"
    );
    let (code, stderr) = serve.terminate();
    assert_eq!(code, Some(0), "{stderr:#?}");
}

/// `serve -o` rotating every half second while a sandboxed workload runs: every file is a
/// recording `memtrace report` reads alone (`rotated` but the last), and the workload's faults
/// summed over the files are the kernel's.
#[test]
fn serve_rotates_its_recording_and_loses_no_fault() {
    require_root();
    let scratch = Scratch::new("serve-rotate");
    let path = scratch.file("serve.mtr");
    let sandbox = Sandbox::create(
        &MemcgLimits {
            memory_bytes: 256 * MIB,
            swap_bytes: None,
        },
        None,
    )
    .expect("sandbox");
    let mut workload = Workload::spawn(&[
        "faults",
        "--file-mib",
        "16",
        "--anon-mib",
        "64",
        "--pause-ms",
        "2000",
    ]);
    sandbox.memcg.add_pid(workload.pid).expect("add pid");
    let pid = workload.pid.to_string();
    let addr = format!("127.0.0.1:{}", free_port());
    let path_arg = path.display().to_string();
    let mut serve = Serve::start(
        &[],
        &addr,
        &[
            "--listen",
            &addr,
            "--pid",
            &pid,
            "--interval",
            "250ms",
            "-o",
            &path_arg,
            "--rotate-every",
            "500ms",
            "--keep",
            "100",
        ],
    );
    workload.go();
    let outcome: FaultOutcome = workload.finish();
    let (code, stderr) = serve.wait();
    assert_eq!(code, Some(0), "{stderr:#?}");
    let mut files: Vec<std::path::PathBuf> = (1..=100)
        .map(|n| scratch.file(&format!("serve.mtr.{n}")))
        .filter(|p| p.exists())
        .collect();
    files.reverse();
    assert!(
        files.len() >= 3,
        "only {} rotations: {stderr:#?}",
        files.len()
    );
    files.push(path.clone());
    let mut faults = 0;
    for (i, file) in files.iter().enumerate() {
        let output = run_memtrace(
            &["report", &file.display().to_string(), "--json", "-"],
            None,
        );
        assert!(output.status.success(), "{file:?}: {output:?}");
        let report = parse_report(&String::from_utf8_lossy(&output.stdout));
        let last = i + 1 == files.len();
        assert_eq!(
            report.stop_reason,
            if last {
                StopReason::TracedExited
            } else {
                StopReason::Rotated
            },
            "{file:?}"
        );
        let here: u64 = report
            .processes
            .iter()
            .filter(|p| p.pid == outcome.pid)
            .map(|p| {
                p.classes
                    .iter()
                    .iter()
                    .map(|(_, c)| c.latency.count)
                    .sum::<u64>()
                    + p.untimed_faults
            })
            .sum();
        eprintln!("{}: {} s, {here} faults", file.display(), report.duration_s);
        faults += here;
    }
    let kernel = outcome.total.minflt + outcome.total.majflt;
    eprintln!(
        "memtrace: {faults} faults in {} files; kernel {kernel}",
        files.len()
    );
    assert_within("faults over the rotated files", faults, kernel, 2.0);
}

/// Resident memory of a process, in KiB (`VmRSS`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

/// The exporter's own count of series groups in a scrape.
fn tracked(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("memtrace_tracked_series_groups "))
        .and_then(|v| v.trim().parse().ok())
        .expect("memtrace_tracked_series_groups")
}

/// The soak, by hand (not in CI): `MEMTRACE_SOAK_MINUTES=30 cargo xtask test --kernel --
/// serve_soak_by_hand --ignored --nocapture`. See [`soak`]; its points come every 30 s.
#[test]
#[ignore = "a soak of several minutes, run by hand"]
fn serve_soak_by_hand_stays_flat_under_fork_and_cgroup_churn() {
    require_root();
    let minutes: u64 = std::env::var("MEMTRACE_SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(10);
    soak(Duration::from_secs(minutes * 60), Duration::from_secs(30));
}

/// The suite's short soak: two minutes, a point every 10 s.
#[test]
fn serve_soak_stays_flat_for_two_minutes_of_fork_and_cgroup_churn() {
    require_root();
    soak(Duration::from_secs(120), Duration::from_secs(10));
}

/// `serve` runs while two shell loops fork `/bin/true` as fast as they can and memory cgroups
/// are created, faulted in and removed one after the other (series expire after 30 s); its
/// RSS and series count are printed every `every`. Fails when the last quarter's mean RSS is
/// more than 20 % (and 4 MiB) above the second quarter's highest, or the last quarter's series
/// count is more than 20 % (and 5) above the second quarter's highest.
fn soak(length: Duration, every: Duration) {
    let addr = format!("127.0.0.1:{}", free_port());
    let serve = Serve::start(&[], &addr, &["--listen", &addr, "--expire", "30s"]);
    let forkers: Vec<KillOnDrop> = (0..2)
        .map(|_| {
            KillOnDrop(
                Command::new("nice")
                    .args(["-n", "19", "bash", "-c", "while :; do /bin/true; done"])
                    .spawn()
                    .expect("spawn a fork loop"),
            )
        })
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let limits = MemcgLimits {
                memory_bytes: 64 * MIB,
                swap_bytes: None,
            };
            let mut cgroups = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let sandbox = Sandbox::create(&limits, None).expect("sandbox");
                let mut workload =
                    Workload::spawn(&["faults", "--file-mib", "0", "--anon-mib", "2"]);
                sandbox.memcg.add_pid(workload.pid).expect("add pid");
                workload.go();
                let _: FaultOutcome = workload.finish();
                // Named at the next interval's close: keep it that long.
                std::thread::sleep(Duration::from_millis(1100));
                drop(sandbox);
                cgroups += 1;
            }
            cgroups
        })
    };
    let start = Instant::now();
    let mut curve: Vec<(u64, u64, u64)> = Vec::new();
    let forks0 = forks_total();
    while start.elapsed() < length {
        std::thread::sleep(every);
        let text = serve.scrape();
        let point = (
            start.elapsed().as_secs(),
            rss_kib(serve.pid()),
            tracked(&text),
        );
        eprintln!(
            "soak: {:>5} s  rss {:>7} KiB  series groups {:>4}  forks/s {:.0}",
            point.0,
            point.1,
            point.2,
            (forks_total() - forks0) as f64 / start.elapsed().as_secs_f64()
        );
        curve.push(point);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let cgroups = churn.join().expect("churn thread");
    drop(forkers);
    eprintln!("soak: {cgroups} cgroups created and removed");
    let (code, stderr) = serve.terminate();
    assert_eq!(code, Some(0), "{stderr:#?}");
    assert!(cgroups >= 10, "only {cgroups} cgroups came and went");
    let quarter = curve.len() / 4;
    assert!(quarter >= 1, "too short a soak for a verdict: {curve:?}");
    let second = &curve[quarter..2 * quarter];
    let last = &curve[curve.len() - quarter..];
    let mean = |points: &[(u64, u64, u64)], f: fn(&(u64, u64, u64)) -> u64| {
        points.iter().map(f).sum::<u64>() as f64 / points.len() as f64
    };
    // RSS swings by ~15 % around the periodic malloc_trim (every 60 intervals): growth is the
    // last quarter's mean above the second quarter's peak.
    let rss_second = second.iter().map(|p| p.1).max().unwrap_or(0) as f64;
    let rss_last = mean(last, |p| p.1);
    assert!(
        rss_last <= (rss_second * 1.2).max(rss_second + 4096.0),
        "RSS grew from at most {rss_second:.0} KiB to {rss_last:.0} KiB: {curve:?}"
    );
    let series_peak = second.iter().map(|p| p.2).max().unwrap_or(0) as f64;
    let series_last = mean(last, |p| p.2);
    assert!(
        series_last <= (series_peak * 1.2).max(series_peak + 5.0),
        "series grew from at most {series_peak} to {series_last:.1}: {curve:?}"
    );
}

/// Processes forked on the machine so far (`processes` in /proc/stat).
fn forks_total() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("processes "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// A child killed and reaped on drop.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // `nice` execs bash: the pid is the loop's.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
