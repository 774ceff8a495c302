//! `ferry-reconciler`: invoked by an EventBridge schedule (every 10 minutes);
//! answers with the cycle's report.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ferry::telemetry::init();
    let context = ferry::Context::connect(ferry::Config::from_env()?).await?;
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| {
        let context = context.clone();
        async move {
            let report = ferry::usecase::reconcile::reconcile(ferry::usecase::reconcile::Ports::of(&context)).await;
            Ok::<_, lambda_runtime::Error>(report)
        }
    }))
    .await
}
