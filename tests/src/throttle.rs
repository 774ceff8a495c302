//! Fault injection at the SDK's HTTP layer: the first N requests are answered
//! with the service's throttling error without reaching the emulator, the
//! rest go through. What the SDK retries, and what Ferry reports after, is
//! then the real code path.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

/// Which AWS JSON protocol the throttling answer speaks.
#[derive(Debug, Clone, Copy)]
pub enum Service {
    DynamoDb,
    SecretsManager,
}

#[derive(Debug, Clone)]
pub struct ThrottleFirst {
    service: Service,
    remaining: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    /// Each request's operation (`PutItem`, `GetSecretValue`…), in order.
    operations: Arc<Mutex<Vec<String>>>,
    inner: SharedHttpClient,
}

impl ThrottleFirst {
    pub fn new(service: Service, throttled: usize) -> Self {
        Self {
            service,
            remaining: Arc::new(AtomicUsize::new(throttled)),
            requests: Arc::new(AtomicUsize::new(0)),
            operations: Arc::default(),
            inner: aws_smithy_http_client::Builder::new().build_http(),
        }
    }

    /// Every request the SDK sent, throttled or not.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// The operations sent since the last call, in order: what one piece of
    /// work cost in AWS calls.
    pub fn take_operations(&self) -> Vec<String> {
        std::mem::take(&mut *self.operations.lock().expect("not poisoned"))
    }

    fn response(&self) -> HttpResponse {
        let (content_type, body) = match self.service {
            Service::DynamoDb => (
                "application/x-amz-json-1.0",
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#,
            ),
            Service::SecretsManager => {
                ("application/x-amz-json-1.1", r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#)
            }
        };
        let mut response = HttpResponse::new(StatusCode::try_from(400).expect("400"), SdkBody::from(body));
        response.headers_mut().insert("content-type", content_type);
        response
    }
}

impl HttpClient for ThrottleFirst {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        let inner = self.inner.http_connector(settings, components);
        SharedHttpConnector::new(Connector { throttle: self.clone(), inner })
    }
}

#[derive(Debug)]
struct Connector {
    throttle: ThrottleFirst,
    inner: SharedHttpConnector,
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        self.throttle.requests.fetch_add(1, Ordering::SeqCst);
        // AWS's JSON protocols name the operation in X-Amz-Target: `DynamoDB_20120810.PutItem`.
        let target = request.headers().get("x-amz-target").unwrap_or_default();
        let operation = target.rsplit('.').next().unwrap_or_default().to_owned();
        self.throttle.operations.lock().expect("not poisoned").push(operation);
        let throttled =
            self.throttle.remaining.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if throttled { HttpConnectorFuture::ready(Ok(self.throttle.response())) } else { self.inner.call(request) }
    }
}
