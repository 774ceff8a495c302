//! The scheduled functions' work queues on SQS (README.md, "Fan-out"): a
//! planner sends one item per unit of work, delayed to spread each
//! rate-limit budget's items over the cycle; a worker gives a rate-limited
//! item back the same way.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

/// SQS delays a message 15 minutes at most.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

/// SQS takes at most 10 messages in one batch.
const BATCH: usize = 10;

/// Items that could not be queued (after the SDK's retries).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} of the items could not be queued: {first}", .unsent.len())]
pub struct QueueError {
    /// Their indexes in what was to be sent.
    pub unsent: Vec<usize>,
    pub first: String,
}

/// Where work items go.
#[async_trait]
pub trait WorkQueue: Send + Sync {
    /// Sends each `(body, delay)` (a delay past [`MAX_DELAY`] is cut to it).
    async fn send(&self, items: &[(String, Duration)]) -> Result<(), QueueError>;
}

/// An SQS queue, by URL.
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self { client, url: url.into() }
    }

    /// The queue at `url`, with the SDK configured the usual way.
    pub async fn connect(url: impl Into<String>) -> Self {
        Self::new(aws_sdk_sqs::Client::new(&crate::aws::sdk_config().await), url)
    }
}

#[async_trait]
impl WorkQueue for SqsQueue {
    async fn send(&self, items: &[(String, Duration)]) -> Result<(), QueueError> {
        let mut unsent = Vec::new();
        let mut first = None;
        for (chunk_index, chunk) in items.chunks(BATCH).enumerate() {
            let offset = chunk_index * BATCH;
            let entries = chunk.iter().enumerate().map(|(i, (body, delay))| {
                let seconds = i32::try_from(delay.min(&MAX_DELAY).as_secs()).unwrap_or(0);
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .delay_seconds(seconds)
                    .build()
            });
            let entries = match entries.collect::<Result<Vec<_>, _>>() {
                Ok(entries) => entries,
                Err(e) => {
                    unsent.extend(offset..offset + chunk.len());
                    first.get_or_insert_with(|| e.to_string());
                    continue;
                }
            };
            let sent = self.client.send_message_batch().queue_url(&self.url).set_entries(Some(entries)).send().await;
            match sent {
                Ok(answer) => {
                    for failed in answer.failed() {
                        unsent.extend(failed.id().parse::<usize>().ok().map(|i| offset + i));
                        first.get_or_insert_with(|| format!("{}: {}", failed.code(), failed.message().unwrap_or("")));
                    }
                }
                Err(e) => {
                    unsent.extend(offset..offset + chunk.len());
                    first.get_or_insert_with(|| DisplayErrorContext(&e).to_string());
                }
            }
        }
        match first {
            None => Ok(()),
            Some(first) => Err(QueueError { unsent, first }),
        }
    }
}
