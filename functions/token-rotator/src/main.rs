//! `ferry-token-rotator`: invoked by an EventBridge schedule every 30 minutes; answers the cycle's report.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ferry::scheduled::run(ferry::usecase::cycle::Cycle::Rotate).await
}
