//! `ferry-webhook`: API Gateway (REST and HTTP APIs) and Function URL events.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    ferry::telemetry::init();
    let context = ferry::Context::connect(ferry::Config::from_env()?).await?;
    lambda_http::run(ferry::http::lambda_service(ferry::http::router(context))).await
}
