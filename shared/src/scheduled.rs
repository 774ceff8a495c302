//! The scheduled functions as the Lambda runtime runs them: each
//! EventBridge event runs one [`Cycle`] (or, fanned out, plans it), and
//! each SQS event is a batch of its items; no new work starts after the
//! invocation's deadline (what is left stays due, or goes back on the queue).

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use tokio::time::Instant;

use crate::usecase::cycle::{Cycle, CycleError};

/// A scheduled function's whole life: connect once, then one cycle per
/// scheduled event. A cycle with failures is an error of the invocation.
/// With the cycle's queue configured ([`Cycle::queue`]), a scheduled event
/// only plans and the queue's events are the work, answered with the items
/// to deliver again (`batchItemFailures`).
pub async fn run(cycle: Cycle) -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init();
    let context = crate::Context::connect(crate::Config::from_env()?).await?;
    let queue = connect(cycle, &context.config).await;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (context, queue) = (context.clone(), queue.clone());
        let deadline = deadline(&event.context);
        async move {
            let answer = invocation(cycle, &context, queue, event.payload, deadline).await;
            crate::metrics::emf::flush();
            answer
        }
    }))
    .await
}

/// One invocation: a scheduled event, or a batch of the queue's items.
async fn invocation(
    cycle: Cycle,
    context: &crate::Context,
    queue: Option<Queue>,
    payload: serde_json::Value,
    deadline: Instant,
) -> Result<serde_json::Value, Diagnostic> {
    let queued = payload.get("Records").is_some();
    match (queue, queued) {
        (None, false) => {
            let deadline = deadline.checked_sub(cycle.margin());
            cycle.run(context, deadline).await.map(|r| r.fields).map_err(diagnostic)
        }
        (None, true) => Err(Diagnostic {
            error_type: "NoQueue".into(),
            error_message: format!("an SQS event, but {} has no queue (or is built without fan-out)", cycle.name()),
        }),
        #[cfg(feature = "queue")]
        (Some(queue), false) => {
            cycle.plan(context, queue.as_ref(), Some(deadline)).await.map(|r| r.fields).map_err(diagnostic)
        }
        #[cfg(feature = "queue")]
        (Some(queue), true) => {
            // Items left unstarted go back in time to be sent.
            let deadline = deadline.checked_sub(cycle.margin());
            work_batch(cycle, context, queue.as_ref(), payload, deadline).await
        }
        #[cfg(not(feature = "queue"))]
        (Some(never), _) => match *never {},
    }
}

#[cfg(feature = "queue")]
type Queue = std::sync::Arc<crate::queue::SqsQueue>;
/// Without the `queue` feature, no function fans out.
#[cfg(not(feature = "queue"))]
type Queue = std::sync::Arc<std::convert::Infallible>;

async fn connect(cycle: Cycle, config: &crate::Config) -> Option<Queue> {
    let url = cycle.queue(config)?;
    #[cfg(feature = "queue")]
    return Some(std::sync::Arc::new(crate::queue::SqsQueue::connect(url).await));
    #[cfg(not(feature = "queue"))]
    {
        tracing::warn!(%url, cycle = cycle.name(), "a queue is configured, but this function is built without fan-out");
        None
    }
}

/// One batch of the queue's items, answered with those to deliver again.
#[cfg(feature = "queue")]
async fn work_batch(
    cycle: Cycle,
    context: &crate::Context,
    queue: &dyn crate::queue::WorkQueue,
    payload: serde_json::Value,
    deadline: Option<Instant>,
) -> Result<serde_json::Value, Diagnostic> {
    use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

    let malformed =
        |e: serde_json::Error| Diagnostic { error_type: "MalformedEvent".into(), error_message: e.to_string() };
    let event: SqsEvent = serde_json::from_value(payload).map_err(malformed)?;
    let messages = event
        .records
        .into_iter()
        .map(|m| crate::usecase::fanout::Message {
            id: m.message_id.unwrap_or_default(),
            body: m.body.unwrap_or_default(),
        })
        .collect();
    let (report, failed) = cycle.work(context, queue, messages, deadline).await;
    if report.failures.is_empty() {
        tracing::info!(failed_items = failed.len(), "{}", report.summary);
    } else {
        tracing::warn!(failed_items = failed.len(), report = %report.fields, failures = ?report.failures, "{}", report.summary);
    }
    let mut response = SqsBatchResponse::default();
    for id in failed {
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = id;
        response.batch_item_failures.push(failure);
    }
    serde_json::to_value(response).map_err(malformed)
}

/// The invocation's deadline, on this process's clock.
fn deadline(invocation: &lambda_runtime::Context) -> Instant {
    Instant::now() + invocation.deadline().duration_since(std::time::SystemTime::now()).unwrap_or_default()
}

fn diagnostic(error: CycleError) -> Diagnostic {
    let error_type = match error {
        CycleError::Store { .. } => "CycleCouldNotStart",
        CycleError::Failures { .. } => "CycleFailures",
    };
    // The whole chain: the invocation's error is all Lambda keeps of it.
    Diagnostic { error_type: error_type.to_owned(), error_message: crate::telemetry::chain(&error) }
}
