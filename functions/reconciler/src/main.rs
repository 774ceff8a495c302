//! `ferry-reconciler`: invoked by an EventBridge schedule every 10 minutes (a cycle, or with a queue
//! its plan) and by the queue's events (the repairs); answers the report.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ferry::scheduled::run(ferry::usecase::cycle::Cycle::Reconcile).await
}
