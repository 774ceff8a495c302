//! The Lambda Runtime API, as AWS (or `cargo lambda watch`) serves it to a
//! function: a function binary is started against this fake, given one
//! event, and its answer is read back. This is what `cargo lambda invoke`
//! does, without a Lambda emulator.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers};

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";

/// Hands out the event once; later polls wait (as Lambda does between invocations).
struct Next {
    event: Value,
    served: Arc<AtomicUsize>,
}

impl Respond for Next {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        if self.served.fetch_add(1, Ordering::SeqCst) > 0 {
            return ResponseTemplate::new(200).set_delay(Duration::from_secs(3600));
        }
        let deadline =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap() + Duration::from_secs(60);
        ResponseTemplate::new(200)
            .insert_header("lambda-runtime-aws-request-id", REQUEST_ID)
            .insert_header("lambda-runtime-deadline-ms", deadline.as_millis().to_string().as_str())
            .insert_header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:eu-west-1:123456789012:function:ferry",
            )
            .insert_header(
                "lambda-runtime-trace-id",
                "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419",
            )
            .set_body_json(&self.event)
    }
}

/// What the function answered: its response, or the error it reported.
#[derive(Debug)]
pub enum Answer {
    Response(Value),
    Error(Value),
}

/// Starts `binary` as Lambda would, with `env` added to an environment
/// holding no FERRY_ or AWS_ variable of the test's own but the AWS API
/// emulator's (its state on a fresh table there), hands it `event`,
/// and returns its answer (within 60 s).
pub async fn invoke(binary: &Path, event: &Value, env: &[(&str, &str)]) -> Answer {
    invoke_with_output(binary, event, env).await.0
}

/// [`invoke`], and what the function wrote on stdout (its metrics: its
/// logs go to stderr).
pub async fn invoke_with_output(binary: &Path, event: &Value, env: &[(&str, &str)]) -> (Answer, String) {
    let server = MockServer::start().await;
    let served = Arc::new(AtomicUsize::new(0));
    Mock::given(matchers::method("GET"))
        .and(matchers::path(NEXT))
        .respond_with(Next { event: event.clone(), served: served.clone() })
        .mount(&server)
        .await;
    Mock::given(matchers::method("POST")).respond_with(ResponseTemplate::new(202)).mount(&server).await;
    let mut command = Command::new(binary);
    for (name, _) in std::env::vars() {
        if name.starts_with("FERRY_") || name.starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    let address = server.address().to_string();
    // State on a table of its own in the AWS API emulator, as on Lambda: a
    // Lambda's build has no embedded state store (shared/Cargo.toml).
    let table = crate::emulator::dynamo_store().await.table().to_string();
    for name in ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
        if let Ok(value) = std::env::var(name) {
            command.env(name, value);
        }
    }
    command
        .env("FERRY_TABLE", table)
        .env("AWS_LAMBDA_RUNTIME_API", &address)
        .env("AWS_LAMBDA_FUNCTION_NAME", binary.file_name().and_then(|n| n.to_str()).unwrap_or("ferry"))
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/22/[$LATEST]0123456789abcdef")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/ferry")
        // What the template's LoggingConfig (JSON, INFO) makes Lambda set.
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "INFO")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let started = Instant::now();
    let answer = loop {
        let requests = server.received_requests().await.unwrap_or_default();
        let posted = requests.iter().find(|r| r.method.as_str() == "POST");
        if let Some(posted) = posted {
            let body: Value = serde_json::from_slice(&posted.body).unwrap_or(Value::Null);
            break if posted.url.path().ends_with("/response") { Answer::Response(body) } else { Answer::Error(body) };
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).ok();
            panic!("{} exited ({status}) before answering:\n{err}", binary.display());
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{} did not answer in 60 s", binary.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    let mut output = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        std::io::Read::read_to_string(&mut stdout, &mut output).ok();
    }
    (answer, output)
}

/// A sample event from the repository's `events/` folder.
pub fn sample(path: &str) -> Value {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("events").join(path);
    serde_json::from_str(&std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display())))
        .expect("a JSON sample")
}

/// A scheduled function's one invocation on EventBridge's sample event
/// `events/eventbridge/<function>.json`, its state on the emulator and its
/// secrets in a fresh data directory (and `env`): its report, or the error
/// it reported.
pub async fn scheduled(binary: &Path, function: &str, env: &[(&str, &str)]) -> Result<Value, Value> {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec![("FERRY_DATA_DIR", dir.path().to_str().unwrap())];
    all.extend_from_slice(env);
    match invoke(binary, &sample(&format!("eventbridge/{function}.json")), &all).await {
        Answer::Response(report) => Ok(report),
        Answer::Error(error) => Err(error),
    }
}

/// The sample SQS event `events/sqs/<function>.json` with more records,
/// each a copy of its first with this message id and body.
pub fn sqs_event(function: &str, more: &[(&str, &str)]) -> Value {
    let mut event = sample(&format!("sqs/{function}.json"));
    let first = event["Records"][0].clone();
    let records = event["Records"].as_array_mut().expect("records");
    for (id, body) in more {
        let mut record = first.clone();
        record["messageId"] = (*id).into();
        record["body"] = (*body).into();
        records.push(record);
    }
    event
}

/// Hands `binary` the SQS `event` (its secrets in a fresh data directory,
/// and `env`): the ids of the messages it named to be delivered again.
pub async fn failed_items(binary: &Path, event: &Value, env: &[(&str, &str)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec![("FERRY_DATA_DIR", dir.path().to_str().unwrap())];
    all.extend_from_slice(env);
    match invoke(binary, event, &all).await {
        Answer::Response(answer) => {
            let failures = answer["batchItemFailures"].as_array().unwrap_or_else(|| panic!("{answer}"));
            failures.iter().filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned)).collect()
        }
        Answer::Error(error) => panic!("{error}"),
    }
}
