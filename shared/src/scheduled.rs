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
        let left = event.context.deadline().duration_since(std::time::SystemTime::now()).unwrap_or_default();
        let deadline = Instant::now() + left;
        async move { cycle.run(&context, Some(deadline)).await.map(|report| report.fields).map_err(diagnostic) }
    }))
    .await
}

fn diagnostic(error: CycleError) -> Diagnostic {
    let error_type = match error {
        CycleError::Store { .. } => "CycleCouldNotStart",
        CycleError::Failures { .. } => "CycleFailures",
    };
    // The whole chain: the invocation's error is all Lambda keeps of it.
    Diagnostic { error_type: error_type.to_owned(), error_message: crate::telemetry::chain(&error) }
}
