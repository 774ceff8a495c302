//! The AWS API emulator (moto) that `scripts/test` starts on loopback.
//! Without it the AWS contract tests fail; they never skip.

use aws_config::SdkConfig;
use ferry::secrets::SecretsManagerStore;
use ferry::store::DynamoStore;

use crate::throttle::ThrottleFirst;

/// The SDK configuration Ferry uses, pointed at the emulator.
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
    ferry::aws::sdk_config().await
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
