//! `ferry-token-rotator`: invoked by an EventBridge schedule every 30 minutes.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ferry::telemetry::init();
    let context = ferry::Context::connect(ferry::Config::from_env()?).await?;
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| {
        let context = context.clone();
        async move {
            Ok::<_, lambda_runtime::Error>(
                ferry::usecase::rotate::rotate(&context.tokens, context.state.as_ref()).await?,
            )
        }
    }))
    .await
}
