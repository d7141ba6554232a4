//! Helpers of the exporter tests: `memtrace serve` and a real Prometheus server as children
//! killed on drop, a minimal HTTP/1.0 client (the tests also need one that misbehaves), and
//! Prometheus' query API.
use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use memtrace_tests::{Scratch, StderrLines, memtrace_bin, wait_child};

/// A port nobody listens on now (the kernel picks it; it stays free until someone binds it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A running `memtrace serve`, killed on drop.
pub struct Serve {
    child: Child,
    pub addr: String,
    stderr: StderrLines,
}

impl Serve {
    /// Starts `memtrace serve ARGS` (under `wrapper`, e.g. setpriv, when given) and waits until it
    /// traces; `addr` is where it was told to listen.
    pub fn start(wrapper: &[&str], addr: &str, args: &[&str]) -> Self {
        let mut serve = Self::spawn(wrapper, args);
        serve.addr = addr.to_string();
        serve.wait_for_line("memtrace: tracing", Duration::from_secs(30));
        serve
    }

    /// Starts it without waiting.
    pub fn spawn(wrapper: &[&str], args: &[&str]) -> Self {
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(memtrace_bin());
                c
            }
            None => Command::new(memtrace_bin()),
        };
        let mut child = command
            .arg("serve")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn memtrace serve");
        Self {
            addr: String::new(),
            stderr: StderrLines::follow(&mut child),
            child,
        }
    }

    fn wait_for_line(&mut self, prefix: &str, timeout: Duration) {
        self.stderr.wait_for(prefix, timeout, "serve");
    }

    /// The pid (for signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit; returns its exit code and every stderr line.
    pub fn terminate(mut self) -> (Option<i32>, Vec<String>) {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.wait()
    }

    /// Waits for the exit (at most a minute).
    pub fn wait(&mut self) -> (Option<i32>, Vec<String>) {
        let status = wait_child(&mut self.child, Duration::from_secs(60), "serve");
        (status.code(), self.stderr.rest(Duration::from_secs(2)))
    }

    /// GET /metrics in Prometheus' text format. A connection memtrace closes unanswered
    /// (all its connection slots busy) is tried again, for up to 20 s.
    pub fn scrape(&self) -> String {
        let request = format!("GET /metrics HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match exchange(&self.addr, request.as_bytes()) {
                Some(response) => {
                    assert_eq!(response.status, 200, "{response:?}");
                    return response.body;
                }
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
                None => panic!("memtrace serve answered no scrape for 20 s"),
            }
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// `GET path` over HTTP/1.0 (the server closes after the response), with extra header lines.
pub fn get(addr: &str, path: &str, headers: &[&str]) -> Response {
    let mut request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    exchange(addr, request.as_bytes()).expect("an HTTP response")
}

/// Sends raw bytes and reads the whole response; `None` when the server closed without one.
pub fn exchange(addr: &str, request: &[u8]) -> Option<Response> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    // The server may refuse before reading it all (a huge head): that is an answer too.
    let _ = stream.write_all(request);
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some(Response {
        status,
        head: head.to_string(),
        body: body.to_string(),
    })
}

/// A Prometheus server on loopback, scraping `target` every second; killed on drop, its data
/// directory removed with its scratch dir.
pub struct Prometheus {
    child: Child,
    pub addr: String,
    _scratch: Scratch,
}

impl Prometheus {
    /// Starts it with native histograms on and waits until it is ready.
    pub fn start(target: &str) -> Self {
        let scratch = Scratch::new("prometheus");
        let config = scratch.file("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: memtrace\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("write prometheus.yml");
        let addr = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(scratch.file("prometheus.log")).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                scratch.file("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--enable-feature=native-histograms")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn prometheus (Debian's package; `cargo xtask test` installs it)");
        let prometheus = Self {
            child,
            addr,
            _scratch: scratch,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if TcpStream::connect(&prometheus.addr).is_ok()
                && get(&prometheus.addr, "/-/ready", &[]).status == 200
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus never got ready: {}",
                prometheus.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        prometheus
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._scratch.file("prometheus.log")).unwrap_or_default()
    }

    /// The instant-query result of `expr`: each series' labels (as JSON) and value.
    pub fn query(&self, expr: &str) -> Vec<(serde_json::Value, f64)> {
        let path = format!("/api/v1/query?query={}", percent_encode(expr));
        let response = get(&self.addr, &path, &[]);
        assert_eq!(response.status, 200, "{expr}: {response:?}");
        let json: serde_json::Value = serde_json::from_str(&response.body).expect("JSON");
        assert_eq!(json["status"], "success", "{expr}: {json}");
        json["data"]["result"]
            .as_array()
            .expect("a vector")
            .iter()
            .map(|r| {
                let value = r["value"][1]
                    .as_str()
                    .expect("a value")
                    .parse()
                    .expect("a number");
                (r["metric"].clone(), value)
            })
            .collect()
    }

    /// The single value of `expr`, or `None` when it has no series.
    pub fn value(&self, expr: &str) -> Option<f64> {
        let result = self.query(expr);
        assert!(
            result.len() <= 1,
            "{expr}: more than one series: {result:?}"
        );
        result.first().map(|r| r.1)
    }

    /// Waits until `expr` has a value that `done` accepts; returns the last value seen.
    pub fn wait_for(&self, expr: &str, done: impl Fn(f64) -> bool) -> Option<f64> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let value = self.value(expr);
            if value.is_some_and(&done) || Instant::now() > deadline {
                return value;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything but unreserved characters as %XX.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Runs `promtool check metrics` on an exposition; returns its output when it fails.
pub fn promtool_check_metrics(exposition: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    child
        .stdin
        .take()
        .expect("promtool stdin")
        .write_all(exposition.as_bytes())
        .expect("feed promtool");
    let output = child.wait_with_output().expect("run promtool");
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The repository's root (for deploy/).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}
