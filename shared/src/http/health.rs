//! `GET /healthz`: up and answering (`server` says whether the caller is
//! authorised for the management API: `private`, or `public`). With
//! `?deep=1` (authorised callers only) it also asks the state store, the
//! secret store and the cluster, and reports each.

use std::time::Instant;

use axum::Json;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Context;
use crate::secrets::SecretName;
use crate::store::Key;

#[derive(Debug, Default, Deserialize)]
pub struct Params {
    #[serde(default)]
    deep: Option<String>,
}

pub async fn healthz(State(context): State<Context>, Query(params): Query<Params>, request: Request) -> Response {
    let private = super::management::authorised(&context, &request);
    let mut body = json!({
        "ok": true,
        "server": if private { "private" } else { "public" },
        "version": env!("CARGO_PKG_VERSION"),
    });
    if !matches!(params.deep.as_deref(), Some("1" | "true")) {
        return Json(body).into_response();
    }
    if !private {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "a deep health check is for the management API's callers" })),
        )
            .into_response();
    }
    let started = Instant::now();
    let store = report(context.state.get(&Key::Cursor("healthz".into())).await.map(|_| Value::Null), started);
    let started = Instant::now();
    let secrets = report(context.secrets.get(&SecretName::webhook_secret()).await.map(|_| Value::Null), started);
    let started = Instant::now();
    let cluster = report(context.cluster.ping().await.map(Value::from), started);
    let ok = [&store, &secrets, &cluster].iter().all(|c| c["ok"] == true);
    body["ok"] = ok.into();
    body["checks"] = json!({ "state": store, "secrets": secrets, "cluster": cluster });
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

/// One check's report: ok, how long it took, and what it said or why not.
fn report<E: std::fmt::Display>(result: Result<Value, E>, started: Instant) -> Value {
    let mut report = match result {
        Ok(detail) if detail.is_null() => json!({ "ok": true }),
        Ok(detail) => json!({ "ok": true, "detail": detail }),
        Err(e) => json!({ "ok": false, "error": e.to_string() }),
    };
    report["ms"] = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX).into();
    report
}
