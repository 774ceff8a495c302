//! `ferry-poller`: invoked by an EventBridge schedule every minute; answers the cycle's report.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ferry::scheduled::run(ferry::usecase::cycle::Cycle::Poll).await
}
