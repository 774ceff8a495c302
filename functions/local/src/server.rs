//! `ferry serve`'s HTTP server: hyper's HTTP/1 connections, bounded in time
//! and in number by `ferry::http::limits`, serving the shared router behind
//! the request-body budget.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use ferry::http::limits::{self, BodyBudget};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The pause after a failed accept: out of file descriptors, most often,
/// which only closing connections cures.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `shutdown` completes, then lets the
/// open connections finish the requests they are answering.
pub async fn serve(listener: TcpListener, router: Router, shutdown: impl Future<Output = ()>) {
    let budget = BodyBudget::new(limits::BODY_BUDGET);
    let router = router.layer(axum::middleware::from_fn_with_state(budget, limits::hold_budget));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits::HEADER_READ_TIMEOUT)
        .max_header_size(limits::CONNECTION_BUFFER)
        .max_buf_size(limits::CONNECTION_BUFFER);
    let slots = Arc::new(Semaphore::new(limits::MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // Past the cap, connections wait in the kernel's backlog, unaccepted.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the connection semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            match tokio::time::timeout(limits::CONNECTION_LIFETIME, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(%error, "connection ended"),
                Err(_) => tracing::debug!("connection closed at the end of its lifetime"),
            }
            drop(slot);
        });
    }
    graceful.shutdown().await;
}
