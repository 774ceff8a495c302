//! The `SecretStore` contract, run against the embedded adapter and against
//! the Secrets Manager adapter on the AWS API emulator.

use ferry::domain::InstallationId;
use ferry::secrets::{EmbeddedSecrets, SecretError, SecretName, SecretStore};
use ferry_tests::emulator::secrets_manager;
use ferry_tests::throttle::{Service, ThrottleFirst};
use secrecy::{ExposeSecret, SecretString};

ferry_tests::contract_suite!(
    embedded => super::embedded(),
    secrets_manager => ((), ferry_tests::emulator::secrets_manager(None).await);
    a_missing_secret_is_none,
    put_then_get,
    a_second_put_replaces_the_value,
    delete_removes_and_deleting_nothing_is_fine,
    a_deleted_name_can_be_used_again,
    names_are_separate,
);

fn embedded() -> (tempfile::TempDir, EmbeddedSecrets) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedSecrets::open(&dir.path().join("secrets.json")).unwrap();
    (dir, store)
}

fn secret(value: &str) -> SecretString {
    SecretString::from(value.to_owned())
}

async fn value(store: &dyn SecretStore, name: &SecretName) -> Option<String> {
    store.get(name).await.unwrap().map(|s| s.expose_secret().to_owned())
}

async fn a_missing_secret_is_none(store: &dyn SecretStore) {
    assert_eq!(value(store, &SecretName::webhook_secret()).await, None);
}

async fn put_then_get(store: &dyn SecretStore) {
    let name = SecretName::installation(InstallationId::new(1));
    store.put(&name, &secret(r#"{"token":"ghs_one","expires_at":1}"#)).await.unwrap();
    assert_eq!(value(store, &name).await.as_deref(), Some(r#"{"token":"ghs_one","expires_at":1}"#));
}

async fn a_second_put_replaces_the_value(store: &dyn SecretStore) {
    let name = SecretName::installation(InstallationId::new(2));
    store.put(&name, &secret("ghs_old")).await.unwrap();
    store.put(&name, &secret("ghs_new")).await.unwrap();
    assert_eq!(value(store, &name).await.as_deref(), Some("ghs_new"));
}

async fn delete_removes_and_deleting_nothing_is_fine(store: &dyn SecretStore) {
    let name = SecretName::app_private_key();
    store.put(&name, &secret("-----BEGIN RSA PRIVATE KEY-----")).await.unwrap();
    store.delete(&name).await.unwrap();
    assert_eq!(value(store, &name).await, None);
    store.delete(&name).await.expect("deleting nothing is fine");
}

async fn a_deleted_name_can_be_used_again(store: &dyn SecretStore) {
    let name = SecretName::installation(InstallationId::new(3));
    store.put(&name, &secret("ghs_first")).await.unwrap();
    store.delete(&name).await.unwrap();
    store.put(&name, &secret("ghs_reinstalled")).await.unwrap();
    assert_eq!(value(store, &name).await.as_deref(), Some("ghs_reinstalled"));
}

async fn names_are_separate(store: &dyn SecretStore) {
    let a = SecretName::cluster("a").unwrap();
    let b = SecretName::cluster("b").unwrap();
    store.put(&a, &secret("kubeconfig-a")).await.unwrap();
    store.put(&b, &secret("kubeconfig-b")).await.unwrap();
    store.delete(&a).await.unwrap();
    assert_eq!(value(store, &b).await.as_deref(), Some("kubeconfig-b"));
}

#[tokio::test]
async fn secrets_manager_throttled_calls_are_retried_then_succeed() {
    let throttle = ThrottleFirst::new(Service::SecretsManager, 2);
    let store = secrets_manager(Some(&throttle)).await;
    let name = SecretName::webhook_secret();
    store.put(&name, &secret("s3cret")).await.expect("retried past two throttled answers");
    assert_eq!(value(&store, &name).await.as_deref(), Some("s3cret"));
}

#[tokio::test]
async fn secrets_manager_throttling_that_persists_is_retryable_and_names_no_value() {
    let throttle = ThrottleFirst::new(Service::SecretsManager, usize::MAX);
    let store = secrets_manager(Some(&throttle)).await;
    let err = store.put(&SecretName::webhook_secret(), &secret("do-not-echo")).await.unwrap_err();
    assert!(matches!(err, SecretError::Throttled(_)), "{err:?}");
    assert!(err.is_retryable());
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("do-not-echo"), "{shown}");
}

#[cfg(unix)]
#[tokio::test]
async fn the_embedded_file_is_private_and_survives_a_restart() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.json");
    let name = SecretName::webhook_secret();
    EmbeddedSecrets::open(&path).unwrap().put(&name, &secret("kept")).await.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let reopened = EmbeddedSecrets::open(&path).unwrap();
    assert_eq!(value(&reopened, &name).await.as_deref(), Some("kept"));
}
