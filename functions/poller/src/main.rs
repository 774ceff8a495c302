//! `ferry-poller`: invoked by an EventBridge schedule every minute.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ferry::telemetry::init();
    let context = ferry::Context::connect(ferry::Config::from_env()?).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let context = context.clone();
        // Stop with margin before the invocation's deadline; what is left stays due.
        let left = event.context.deadline().duration_since(std::time::SystemTime::now()).unwrap_or_default();
        let deadline = tokio::time::Instant::now() + left;
        async move { Ok::<_, lambda_runtime::Error>(ferry::usecase::poll::cycle(&context, Some(deadline)).await?) }
    }))
    .await
}
