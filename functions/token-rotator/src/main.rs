//! `ferry-token-rotator`: invoked by an EventBridge schedule.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ferry::telemetry::init();
    let context = ferry::Context::connect(ferry::Config::from_env()?).await?;
    lambda_runtime::run(service_fn(|_event: LambdaEvent<Value>| {
        let _context = context.clone();
        async move { Err::<Value, _>(lambda_runtime::Error::from("token rotation is not implemented yet (issue #4)")) }
    }))
    .await
}
