//! The HTTP side of `memtrace serve`: hyper's HTTP/1 server on the session's runtime, with
//! limits so that no client can hold it up or grow its memory, while tracing goes on:
//! - only `GET`/`HEAD` of `/metrics` and `/` (a short page naming the endpoint); other paths
//!   get 404, other methods 405;
//! - request heads above [`MAX_HEAD_BYTES`] are refused (431) and the connection closed;
//! - a head must arrive within [`HEAD_TIMEOUT`], and a connection lives at most
//!   [`CONNECTION_LIFETIME`] (a client that never reads its response is dropped then);
//! - at most [`MAX_CONNECTIONS`] at once: further ones are closed as soon as they are accepted.
use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode,
    body::{Bytes, Incoming},
    header,
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use memtrace::report::metrics::{Format, SharedMetrics, encode};
use tokio::{net::TcpListener, sync::Semaphore};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 32;
/// The largest request head read (hyper's read buffer).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Time a client has to send its request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a connection may stay open, keep-alive included.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// The page at `/`.
const INDEX: &str = "<html><head><title>memtrace</title></head><body><h1>memtrace</h1>\
<p>Page-fault latency, reclaim stalls, swap and OOM kills per memory cgroup: \
<a href=\"/metrics\">/metrics</a>.</p></body></html>\n";

/// Serves the metrics.
pub struct Server {
    metrics: SharedMetrics,
    scrapes: Arc<AtomicU64>,
}

impl Server {
    /// A server of these metrics.
    pub fn new(metrics: SharedMetrics) -> Self {
        Self {
            metrics,
            scrapes: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Counts the `/metrics` responses sent.
    pub fn scrapes(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.scrapes)
    }

    /// Accepts connections until the task is dropped.
    pub async fn run(self, listener: TcpListener) {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(HEAD_TIMEOUT)
            .max_buf_size(MAX_HEAD_BYTES)
            .keep_alive(true);
        let builder = Arc::new(builder);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of file descriptors, or a connection reset before accept: try again
                // after a breath rather than spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let metrics = Arc::clone(&self.metrics);
            let scrapes = Arc::clone(&self.scrapes);
            let builder = Arc::clone(&builder);
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let response = respond(&request, &metrics, &scrapes);
                    async move { Ok::<_, Infallible>(response) }
                });
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
                drop(slot);
            });
        }
    }
}

/// The response to one request.
fn respond(
    request: &Request<Incoming>,
    metrics: &SharedMetrics,
    scrapes: &AtomicU64,
) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    if path != "/metrics" && path != "/" {
        return plain(StatusCode::NOT_FOUND, "not found: try /metrics\n");
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    if path == "/" {
        return with_type(StatusCode::OK, "text/html; charset=utf-8", INDEX.into());
    }
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = Format::negotiate(accept);
    match encode(metrics, format) {
        Ok(body) => {
            scrapes.fetch_add(1, Ordering::Relaxed);
            with_type(StatusCode::OK, format.content_type(), body.into())
        }
        Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e}\n")),
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    with_type(
        status,
        "text/plain; charset=utf-8",
        Bytes::from(text.to_string()),
    )
}

fn with_type(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}
