//! The AWS API emulator (moto) that `scripts/test` starts on loopback.
//! Without it the AWS contract tests fail; they never skip.

use aws_config::SdkConfig;
use ferry::secrets::SecretsManagerStore;
use ferry::store::DynamoStore;

use crate::throttle::ThrottleFirst;

/// The SDK configuration a Ferry Lambda uses, pointed at the emulator.
pub async fn sdk_config() -> SdkConfig {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if url.starts_with("http://127.") || url.starts_with("http://localhost") => {}
        Ok(url) => panic!("AWS_ENDPOINT_URL={url} is not a loopback emulator; the tests never touch real AWS"),
        Err(_) => panic!(
            "the AWS contract tests need the AWS API emulator: run ./scripts/test, \
             or start `python scripts/emulator.py 127.0.0.1 PORT` and set AWS_ENDPOINT_URL to it"
        ),
    }
    ferry::telemetry::install_crypto_provider();
    ferry::aws::from_environment()
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A DynamoDB store on a table of its own, created like the SAM template's.
pub async fn dynamo_store() -> DynamoStore {
    dynamo_store_with(None).await
}

/// As [`dynamo_store`], with every request first passed through `throttle`.
pub async fn dynamo_store_with(throttle: Option<&ThrottleFirst>) -> DynamoStore {
    let sdk = sdk_config().await;
    let setup = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), unique("ferry-test"));
    setup.create_table().await.expect("create the test table in the emulator");
    let mut config = aws_sdk_dynamodb::config::Builder::from(&sdk);
    if let Some(throttle) = throttle {
        config = config.http_client(throttle.clone());
    }
    DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(config.build()), setup.table())
}

/// A Secrets Manager store under a prefix of its own.
pub async fn secrets_manager(throttle: Option<&ThrottleFirst>) -> SecretsManagerStore {
    let sdk = sdk_config().await;
    let mut config = aws_sdk_secretsmanager::config::Builder::from(&sdk);
    if let Some(throttle) = throttle {
        config = config.http_client(throttle.clone());
    }
    SecretsManagerStore::new(aws_sdk_secretsmanager::Client::from_conf(config.build()), unique("ferry-test"))
}

/// A queue of its own with a dead-letter queue behind it, as the SAM
/// template makes the reconciler's, but quick: an item is visible again
/// `visibility` seconds after a failed receive, and dead-lettered after
/// `max_receives`. The queue's URL and the dead-letter queue's.
pub async fn work_queue(visibility: u32, max_receives: u32) -> (aws_sdk_sqs::Client, String, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let sqs = aws_sdk_sqs::Client::new(&sdk_config().await);
    let dead = sqs.create_queue().queue_name(unique("ferry-dead")).send().await.expect("a dead-letter queue");
    let dead_url = dead.queue_url().expect("its URL").to_owned();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&dead_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("its attributes");
    let dead_arn = attributes.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).expect("its ARN");
    let redrive = format!(r#"{{"deadLetterTargetArn":"{dead_arn}","maxReceiveCount":"{max_receives}"}}"#);
    let queue = sqs
        .create_queue()
        .queue_name(unique("ferry-work"))
        .attributes(QueueAttributeName::VisibilityTimeout, visibility.to_string())
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .expect("a work queue");
    (sqs.clone(), queue.queue_url().expect("its URL").to_owned(), dead_url)
}
