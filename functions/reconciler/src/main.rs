//! `ferry-reconciler`: invoked by an EventBridge schedule every 10 minutes; answers the cycle's report.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ferry::scheduled::run(ferry::usecase::cycle::Cycle::Reconcile).await
}
