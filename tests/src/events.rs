//! GitHub deliveries as Lambda receives them: wrapped in the event of each
//! front door, with the headers GitHub sends.

use ferry::domain::signature::{WebhookSecret, sign};
use secrecy::SecretString;
use serde_json::{Map, Value, json};

/// The secret the samples in `events/` are signed with (events/README.md).
pub const SAMPLE_SECRET: &str = "ferry-sample-secret";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// API Gateway REST API (payload format 1.0), stage `prod`.
    RestApi,
    /// API Gateway HTTP API (payload format 2.0).
    HttpApi,
    /// Lambda Function URL (payload format 2.0).
    FunctionUrl,
}

impl Front {
    pub const ALL: [Front; 3] = [Front::RestApi, Front::HttpApi, Front::FunctionUrl];

    /// Its folder under `events/`.
    pub fn folder(self) -> &'static str {
        match self {
            Front::RestApi => "apigw-v1",
            Front::HttpApi => "apigw-v2",
            Front::FunctionUrl => "function-url",
        }
    }
}

pub fn secret(value: &str) -> WebhookSecret {
    WebhookSecret::new(SecretString::from(value.to_owned()))
}

/// The headers of a delivery, as GitHub names them; `signature` as given.
pub fn github_headers(event: &str, delivery: &str, signature: Option<&str>, body: &str) -> Map<String, Value> {
    let mut headers = Map::new();
    headers.insert("Content-Type".into(), json!("application/json"));
    headers.insert("Content-Length".into(), json!(body.len().to_string()));
    headers.insert("User-Agent".into(), json!("GitHub-Hookshot/7e2a1f0"));
    headers.insert("X-GitHub-Event".into(), json!(event));
    headers.insert("X-GitHub-Delivery".into(), json!(delivery));
    headers.insert("X-GitHub-Hook-ID".into(), json!("123456789"));
    headers.insert("X-GitHub-Hook-Installation-Target-Type".into(), json!("integration"));
    headers.insert("X-GitHub-Hook-Installation-Target-ID".into(), json!("424242"));
    if let Some(signature) = signature {
        headers.insert("X-Hub-Signature-256".into(), json!(signature));
    }
    headers
}

/// A delivery signed with `secret`, wrapped for `front`.
pub fn signed(front: Front, event: &str, delivery: &str, secret_value: &str, body: &str) -> Value {
    let signature = sign(&secret(secret_value), body.as_bytes());
    lambda_event(front, github_headers(event, delivery, Some(&signature), body), body)
}

/// `body` with `headers`, as `front` hands them to Lambda.
pub fn lambda_event(front: Front, headers: Map<String, Value>, body: &str) -> Value {
    let user_agent = headers.get("User-Agent").cloned().unwrap_or(json!("curl/8"));
    match front {
        Front::RestApi => {
            let multi: Map<String, Value> = headers.iter().map(|(k, v)| (k.clone(), json!([v]))).collect();
            json!({
                "resource": "/webhook",
                "path": "/webhook",
                "httpMethod": "POST",
                "headers": headers,
                "multiValueHeaders": multi,
                "queryStringParameters": null,
                "multiValueQueryStringParameters": null,
                "pathParameters": null,
                "stageVariables": null,
                "requestContext": {
                    "accountId": "123456789012",
                    "apiId": "a1b2c3d4e5",
                    "resourceId": "x1y2z3",
                    "resourcePath": "/webhook",
                    "httpMethod": "POST",
                    "path": "/prod/webhook",
                    "protocol": "HTTP/1.1",
                    "stage": "prod",
                    "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
                    "requestTimeEpoch": 1_795_000_000_000_u64,
                    "identity": { "sourceIp": "140.82.115.10", "userAgent": user_agent }
                },
                "body": body,
                "isBase64Encoded": false
            })
        }
        Front::HttpApi | Front::FunctionUrl => {
            // Payload format 2.0 lowercases header names.
            let lower: Map<String, Value> = headers.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
            let (domain, route_key) = match front {
                Front::HttpApi => ("a1b2c3d4e5.execute-api.us-east-1.amazonaws.com", "POST /webhook"),
                _ => ("abcdefghijklmnopqrstuvwxyz234567.lambda-url.us-east-1.on.aws", "$default"),
            };
            json!({
                "version": "2.0",
                "routeKey": route_key,
                "rawPath": "/webhook",
                "rawQueryString": "",
                "headers": lower,
                "requestContext": {
                    "accountId": "123456789012",
                    "apiId": domain.split('.').next(),
                    "domainName": domain,
                    "domainPrefix": domain.split('.').next(),
                    "http": {
                        "method": "POST",
                        "path": "/webhook",
                        "protocol": "HTTP/1.1",
                        "sourceIp": "140.82.115.10",
                        "userAgent": user_agent
                    },
                    "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
                    "routeKey": route_key,
                    "stage": "$default",
                    "time": "22/Nov/2026:08:00:00 +0000",
                    "timeEpoch": 1_795_000_000_000_u64
                },
                "body": body,
                "isBase64Encoded": false
            })
        }
    }
}
