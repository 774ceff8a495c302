//! How much of the server any one client may take, in one place: the
//! numbers, and the request-body budget that enforces the shared one.
//!
//! `ferry serve` applies them all (its server reads the connection limits,
//! its router wears [`hold_budget`]). On Lambda, API Gateway has read and
//! bounded every request before Ferry sees it, so only [`MAX_BODY`] applies.

use std::error::Error as StdError;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Json};
use futures::StreamExt;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// GitHub's own limit for a delivery: larger bodies are refused unread.
pub const MAX_BODY: usize = 25 * 1024 * 1024;

/// Request-body bytes `ferry serve` buffers at once, every request together:
/// two deliveries at GitHub's limit fit, a third is refused with 503 until
/// one is answered. Together with the process's own ~25 MB this keeps a
/// flood of large bodies well under 256 MB resident (BENCHMARKS.md).
pub const BODY_BUDGET: usize = 64 * 1024 * 1024;

/// How long a client has to send a request's head. hyper starts counting as
/// soon as a connection waits for a head, so this is also how long an idle
/// keep-alive connection (or one that never says anything) is kept.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client has to send a whole body, counted from its head.
/// GitHub gives up on a delivery after 10 s, so no real one needs longer;
/// it also bounds how long a trickling client holds its share of the budget.
pub const BODY_READ_DEADLINE: Duration = Duration::from_secs(30);

/// The longest request head, and the cap on hyper's read buffer for one
/// connection: a longer head is answered 431. hyper checks the cap between
/// reads, so a buffer can reach a small multiple of it; with
/// [`MAX_CONNECTIONS`] that is tens of MiB outside the budget at worst.
/// GitHub's heads are a few kilobytes.
pub const CONNECTION_BUFFER: usize = 32 * 1024;

/// Connections served at once; further ones wait in the kernel's accept
/// backlog. Far above what a laptop's webhooks need, and each idle one is
/// closed after [`HEADER_READ_TIMEOUT`], so a slot frees up in seconds.
pub const MAX_CONNECTIONS: usize = 1024;

/// How long one connection may stay open, whatever it does: hyper times
/// the reading of a request head but not the writing of an answer, so a
/// client that pipelines requests and never reads would otherwise hold its
/// slot for ever. Far above what a delivery needs (the body deadline is 30 s).
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// Why a body was not read to its end, for the handler reading it to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unread {
    #[error("Ferry is already reading {} MiB of request bodies; retry shortly", BODY_BUDGET / 1024 / 1024)]
    OverBudget,
    #[error("the body took over {} s to arrive", BODY_READ_DEADLINE.as_secs())]
    TooSlow,
}

impl IntoResponse for Unread {
    fn into_response(self) -> Response {
        let status = match self {
            Self::OverBudget => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooSlow => StatusCode::REQUEST_TIMEOUT,
        };
        let mut response = (status, Json(json!({ "outcome": "rejected", "reason": self.to_string() }))).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// The first `T` in `error`'s chain of causes: a body's error reaches its
/// handler wrapped by each layer it went through.
pub fn cause<'a, T: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    std::iter::successors(Some(error), |&e| e.source()).find_map(|e| e.downcast_ref::<T>())
}

/// The bytes of request bodies being buffered, as semaphore permits.
#[derive(Debug, Clone)]
pub struct BodyBudget(Arc<Semaphore>);

impl BodyBudget {
    pub fn new(bytes: usize) -> Self {
        Self(Arc::new(Semaphore::new(bytes)))
    }

    /// Bytes not taken by any request now.
    pub fn available(&self) -> usize {
        self.0.available_permits()
    }
}

/// The permits one request holds, given back when it has been answered.
type Held = Arc<Mutex<Option<OwnedSemaphorePermit>>>;

/// Middleware: a request takes its declared length (at most [`MAX_BODY`],
/// more is refused unread by every route) from the budget before anything
/// reads its body, or is refused with 503; a body without a length takes
/// from it chunk by chunk as it is read. Either way the body must arrive
/// within [`BODY_READ_DEADLINE`], and its bytes go back once the handler
/// has answered (its copy of the body is gone by then).
pub async fn hold_budget(State(budget): State<BodyBudget>, request: Request, next: Next) -> Response {
    let declared = declared_length(request.headers());
    let held = Held::default();
    if let Some(length) = declared {
        let bytes = u32::try_from(length.min(MAX_BODY as u64)).unwrap_or(u32::MAX);
        match budget.0.clone().try_acquire_many_owned(bytes) {
            Ok(permit) => keep(&held, permit),
            Err(_) => return Unread::OverBudget.into_response(),
        }
    }
    let (parts, body) = request.into_parts();
    let metered = Metered {
        chunks: body.into_data_stream(),
        budget: declared.is_none().then_some(budget),
        held: held.clone(),
        deadline: tokio::time::Instant::now() + BODY_READ_DEADLINE,
    };
    let body = Body::from_stream(futures::stream::unfold(Some(metered), |state| async move {
        let mut metered = state?;
        let chunk = metered.next().await?;
        let more = chunk.is_ok().then_some(metered);
        Some((chunk, more))
    }));
    let response = next.run(Request::from_parts(parts, body)).await;
    drop(held);
    response
}

/// The body's length as the request declares it, if it does.
pub(crate) fn declared_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// A request's body as it is read: against the deadline, and when it
/// declared no length, against the budget.
struct Metered {
    chunks: axum::body::BodyDataStream,
    budget: Option<BodyBudget>,
    held: Held,
    deadline: tokio::time::Instant,
}

impl Metered {
    async fn next(&mut self) -> Option<Result<Bytes, BoxError>> {
        let chunk = match tokio::time::timeout_at(self.deadline, self.chunks.next()).await {
            Err(_) => return Some(Err(Unread::TooSlow.into())),
            Ok(chunk) => chunk?,
        };
        let Ok(chunk) = chunk else { return Some(chunk.map_err(Into::into)) };
        if let Some(budget) = &self.budget {
            let bytes = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
            match budget.0.clone().try_acquire_many_owned(bytes) {
                Ok(permit) => keep(&self.held, permit),
                Err(_) => return Some(Err(Unread::OverBudget.into())),
            }
        }
        Some(Ok(chunk))
    }
}

fn keep(held: &Held, permit: OwnedSemaphorePermit) {
    let mut held = held.lock().unwrap_or_else(PoisonError::into_inner);
    match held.as_mut() {
        Some(all) => all.merge(permit),
        None => *held = Some(permit),
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::to_bytes;
    use axum::routing::post;
    use tower::ServiceExt;

    use super::*;

    /// Reads the whole body, as the webhook does, and says how it went.
    async fn read(request: Request) -> Response {
        match to_bytes(request.into_body(), usize::MAX).await {
            Ok(body) => body.len().to_string().into_response(),
            Err(error) => match cause::<Unread>(&error) {
                Some(unread) => (*unread).into_response(),
                None => StatusCode::BAD_REQUEST.into_response(),
            },
        }
    }

    fn app(budget: &BodyBudget) -> Router {
        Router::new().route("/", post(read)).layer(axum::middleware::from_fn_with_state(budget.clone(), hold_budget))
    }

    fn declared(length: usize) -> Request {
        Request::post("/").header(header::CONTENT_LENGTH, length).body(Body::from(vec![b'x'; length])).unwrap()
    }

    fn chunked(chunks: usize, size: usize) -> Request {
        let chunks = futures::stream::iter((0..chunks).map(move |_| Ok::<_, std::io::Error>(vec![b'x'; size])));
        Request::post("/").body(Body::from_stream(chunks)).unwrap()
    }

    async fn json(response: Response) -> serde_json::Value {
        serde_json::from_slice(&to_bytes(response.into_body(), 4096).await.unwrap()).unwrap()
    }

    #[tokio::test]
    async fn a_declared_length_over_what_is_left_is_503_unread_and_the_bytes_come_back_after_each_answer() {
        let budget = BodyBudget::new(1000);
        let answered = app(&budget).oneshot(declared(600)).await.unwrap();
        assert_eq!(answered.status(), StatusCode::OK);
        assert_eq!(budget.available(), 1000, "given back once answered");

        // Another request holds 600 bytes while this one asks for 600.
        let holder = budget.0.clone().try_acquire_many_owned(600).unwrap();
        let refused = app(&budget).oneshot(declared(600)).await.unwrap();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
        let reason = json(refused).await;
        assert_eq!(reason["outcome"], "rejected");
        assert!(reason["reason"].as_str().unwrap().contains("retry shortly"), "{reason}");
        drop(holder);
        assert_eq!(app(&budget).oneshot(declared(600)).await.unwrap().status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_body_without_a_length_takes_from_the_budget_as_it_is_read() {
        let budget = BodyBudget::new(1000);
        let fits = app(&budget).oneshot(chunked(9, 100)).await.unwrap();
        assert_eq!(to_bytes(fits.into_body(), 64).await.unwrap(), "900");
        let over = app(&budget).oneshot(chunked(11, 100)).await.unwrap();
        assert_eq!(over.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(budget.available(), 1000, "what it had taken is given back");
    }

    #[tokio::test]
    async fn a_declared_length_over_the_largest_body_takes_only_that_much() {
        let budget = BodyBudget::new(MAX_BODY);
        let request = Request::post("/").header(header::CONTENT_LENGTH, u64::MAX).body(Body::empty()).unwrap();
        // Past the budget's reach, yet no route reads more than MAX_BODY:
        // the route, not the budget, refuses it (here hyper would have, on the length).
        let answered = app(&budget).oneshot(request).await.unwrap();
        assert_ne!(answered.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_never_ends_is_408_at_the_deadline() {
        let budget = BodyBudget::new(1000);
        let forever = futures::stream::pending::<Result<Bytes, std::io::Error>>();
        let request = Request::post("/").body(Body::from_stream(forever)).unwrap();
        let started = tokio::time::Instant::now();
        let answered = app(&budget).oneshot(request).await.unwrap();
        assert_eq!(answered.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(started.elapsed(), BODY_READ_DEADLINE);
        assert_eq!(budget.available(), 1000);
    }
}
