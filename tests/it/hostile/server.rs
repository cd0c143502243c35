//! A stand-in Gladly that answers badly on purpose: each report request takes the next
//! scripted [`Answer`] (the last one repeats), on a free loopback port. Paths under `/hang`
//! never answer (a registry that stalls, for the forced exit).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;

/// Makes a body's chunks, afresh for every request.
pub type MakeStream =
    Arc<dyn Fn() -> BoxStream<'static, Result<Bytes, std::io::Error>> + Send + Sync>;

/// What a body is.
#[derive(Clone)]
pub enum BodySpec {
    /// These bytes, at once.
    Bytes(Vec<u8>),
    /// A streamed body (huge, trickling, or cut by an error item).
    Stream(MakeStream),
}

/// One scripted answer to a report request.
#[derive(Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: BodySpec,
}

impl Answer {
    /// A 200 `text/csv` with `body`.
    pub fn csv(body: impl Into<Vec<u8>>) -> Answer {
        Answer::with(200, "text/csv; charset=utf-8", body)
    }

    /// `status` with this content type and body.
    pub fn with(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: BodySpec::Bytes(body.into()),
        }
    }

    /// A 200 `text/csv` whose body is streamed by `make`.
    pub fn streamed(make: MakeStream) -> Answer {
        Answer {
            status: 200,
            headers: vec![("content-type".into(), "text/csv".into())],
            body: BodySpec::Stream(make),
        }
    }

    /// Adds a response header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Answer {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// What the server saw.
#[derive(Default)]
struct Seen {
    reports: AtomicU64,
    other: AtomicU64,
    hanging: AtomicU64,
}

struct Script {
    answers: Mutex<VecDeque<Answer>>,
    seen: Seen,
}

/// A running hostile server.
pub struct Hostile {
    pub url: String,
    script: Arc<Script>,
    task: tokio::task::JoinHandle<()>,
}

impl Hostile {
    /// Serves `answers` (in order, the last one repeating) on a free loopback port.
    pub async fn start(answers: Vec<Answer>) -> Hostile {
        assert!(!answers.is_empty(), "a script needs an answer");
        let script = Arc::new(Script {
            answers: Mutex::new(answers.into()),
            seen: Seen::default(),
        });
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Hostile { url, script, task }
    }

    /// Report requests answered so far.
    pub fn report_requests(&self) -> u64 {
        self.script.seen.reports.load(Ordering::SeqCst)
    }

    /// Requests to `/hang…`, which are never answered.
    pub fn hanging_requests(&self) -> u64 {
        self.script.seen.hanging.load(Ordering::SeqCst)
    }

    /// Any other request (a redirect's target, a GET).
    pub fn other_requests(&self) -> u64 {
        self.script.seen.other.load(Ordering::SeqCst)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State(script): State<Arc<Script>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with("/hang") {
        script.seen.hanging.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    if !path.starts_with("/api/v1/reports") {
        script.seen.other.fetch_add(1, Ordering::SeqCst);
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::empty())
            .unwrap();
    }
    script.seen.reports.fetch_add(1, Ordering::SeqCst);
    let next = {
        let mut answers = script.answers.lock().unwrap();
        if answers.len() > 1 {
            answers.pop_front().unwrap()
        } else {
            answers.front().unwrap().clone()
        }
    };
    let mut resp = Response::builder()
        .status(StatusCode::from_u16(next.status).unwrap())
        .body(match next.body {
            BodySpec::Bytes(b) => Body::from(b),
            BodySpec::Stream(make) => Body::from_stream(make()),
        })
        .unwrap();
    for (name, value) in next.headers {
        resp.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    resp
}

/// A stream of `chunks`, each after `pause`, then (with `fail`) an error that cuts the
/// connection, else the end.
pub fn paced(chunks: Vec<Vec<u8>>, pause: Duration, fail: bool) -> MakeStream {
    Arc::new(move || {
        let items = chunks.clone();
        let head = futures::stream::iter(items).then(move |c| async move {
            tokio::time::sleep(pause).await;
            Ok(Bytes::from(c))
        });
        let tail = futures::stream::iter(fail.then(|| {
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "the hostile server cut the body",
            ))
        }));
        head.chain(tail).boxed()
    })
}

/// `prefix`, then one byte every `pause`, forever.
pub fn trickle(prefix: Vec<u8>, pause: Duration) -> MakeStream {
    Arc::new(move || {
        let first = futures::stream::once(futures::future::ready(Ok(Bytes::from(prefix.clone()))));
        let rest = futures::stream::unfold((), move |()| async move {
            tokio::time::sleep(pause).await;
            Some((Ok(Bytes::from_static(b"x")), ()))
        });
        first.chain(rest).boxed()
    })
}

/// `head`, then `cell_bytes` bytes of `x` in 64 KiB chunks (never held whole), then `tail`.
pub fn huge_cell(head: Vec<u8>, cell_bytes: usize, tail: Vec<u8>) -> MakeStream {
    const CHUNK: usize = 64 * 1024;
    Arc::new(move || {
        let block = Bytes::from(vec![b'x'; CHUNK]);
        let full = cell_bytes / CHUNK;
        let rest = cell_bytes % CHUNK;
        let middle = futures::stream::iter(0..full)
            .map(move |_| Ok(block.clone()))
            .chain(futures::stream::iter(
                (rest > 0).then(|| Ok(Bytes::from(vec![b'x'; rest]))),
            ));
        futures::stream::iter([Ok(Bytes::from(head.clone()))])
            .chain(middle)
            .chain(futures::stream::iter([Ok(Bytes::from(tail.clone()))]))
            .boxed()
    })
}
