//! The scheduled functions as the Lambda runtime runs them: each
//! EventBridge event runs one [`Cycle`], stopping new work by the
//! invocation's deadline (what is left stays due for the next cycle).

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use tokio::time::Instant;

use crate::usecase::cycle::{Cycle, CycleError};

/// A scheduled function's whole life: connect once, then one cycle per
/// event. A cycle with failures is an error of the invocation.
pub async fn run(cycle: Cycle) -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init();
    let context = crate::Context::connect(crate::Config::from_env()?).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let context = context.clone();
        let deadline = deadline(&event.context);
        async move { cycle.run(&context, Some(deadline)).await.map(|report| report.fields).map_err(diagnostic) }
    }))
    .await
}

/// The reconciler's whole life. With `FERRY_RECONCILE_QUEUE`, a scheduled
/// event only plans (one item per repository onto the queue) and the
/// queue's events are the repairs, answered with the items that failed
/// (`batchItemFailures`); without it, each scheduled event is a whole cycle.
#[cfg(feature = "queue")]
pub async fn run_reconciler() -> Result<(), lambda_runtime::Error> {
    use crate::usecase::{fanout, reconcile};

    crate::telemetry::init();
    let context = crate::Context::connect(crate::Config::from_env()?).await?;
    let queue = match &context.config.reconcile_queue {
        Some(url) => Some(std::sync::Arc::new(crate::queue::SqsQueue::connect(url.clone()).await)),
        None => None,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (context, queue) = (context.clone(), queue.clone());
        let deadline = deadline(&event.context);
        async move {
            let ports = reconcile::Ports::of(&context);
            match (queue, event.payload.get("Records").is_some()) {
                (Some(queue), true) => {
                    // Items left unstarted go back in time to be sent.
                    let deadline = deadline.checked_sub(WORK_MARGIN);
                    work_batch(ports, queue.as_ref(), event.payload, deadline).await
                }
                (None, true) => Err(Diagnostic {
                    error_type: "NoQueue".into(),
                    error_message: "an SQS event, but FERRY_RECONCILE_QUEUE is not set".into(),
                }),
                (Some(queue), false) => {
                    let planned = crate::usecase::cycle::reconciled(fanout::plan(ports, queue.as_ref()).await);
                    Cycle::Reconcile.outcome(planned).map(|report| report.fields).map_err(diagnostic)
                }
                (None, false) => {
                    let deadline = deadline.checked_sub(WORK_MARGIN);
                    Cycle::Reconcile.run(&context, deadline).await.map(|report| report.fields).map_err(diagnostic)
                }
            }
        }
    }))
    .await
}

/// Kept before a worker's deadline: for the repairs under way to end and the
/// items not started to go back on the queue.
#[cfg(feature = "queue")]
const WORK_MARGIN: std::time::Duration = std::time::Duration::from_secs(60);

/// One batch of the queue's items, answered with those to deliver again.
#[cfg(feature = "queue")]
async fn work_batch(
    ports: crate::usecase::reconcile::Ports<'_>,
    queue: &dyn crate::queue::WorkQueue,
    payload: serde_json::Value,
    deadline: Option<Instant>,
) -> Result<serde_json::Value, Diagnostic> {
    use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

    use crate::usecase::fanout;

    let malformed =
        |e: serde_json::Error| Diagnostic { error_type: "MalformedEvent".into(), error_message: e.to_string() };
    let event: SqsEvent = serde_json::from_value(payload).map_err(malformed)?;
    let messages = event
        .records
        .into_iter()
        .map(|m| fanout::Message { id: m.message_id.unwrap_or_default(), body: m.body.unwrap_or_default() })
        .collect();
    let worked = fanout::work(ports, queue, messages, deadline).await;
    tracing::info!(failed_items = worked.failed.len(), "{}", worked.report.summary());
    let mut response = SqsBatchResponse::default();
    for id in worked.failed {
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
