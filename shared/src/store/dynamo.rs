//! The DynamoDB adapter: the single table of README.md, "State", one item per record.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, Put, ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem,
};
use serde::de::DeserializeOwned;

use super::{
    Collection, Fields, Key, LISTED_AS, LISTING_INDEX, Record, Scope, StateStore, StoreError, TIMELINE, TIMELINE_AT,
    TIMELINE_INDEX, Version, Versioned, checked_fields, is_live,
};
use crate::aws::{Fault, code, fault};
use crate::domain::Timestamp;

type Item = HashMap<String, AttributeValue>;

/// Keys one BatchGetItem call takes at most.
const BATCH_GET: usize = 100;

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The newest `newest` records of time line `line`: their keys from the
    /// index (keys only: a delivery's event is never copied there), newest
    /// first, page after page until there are enough; then the records
    /// themselves, a hundred keys a call.
    async fn timeline(&self, line: String, newest: usize) -> Result<Vec<Versioned<Record>>, StoreError> {
        let mut keys: Vec<Item> = Vec::new();
        let mut start = None;
        while keys.len() < newest {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(TIMELINE_INDEX)
                .key_condition_expression("#line = :line")
                .expression_attribute_names("#line", TIMELINE)
                .expression_attribute_values(":line", AttributeValue::S(line.clone()))
                .scan_index_forward(false)
                .limit(i32::try_from(newest - keys.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(failure)?;
            keys.extend(
                page.items
                    .unwrap_or_default()
                    .into_iter()
                    .map(|item| item.into_iter().filter(|(name, _)| name == "pk" || name == "sk").collect::<Item>()),
            );
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        let mut items = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET) {
            items.extend(self.batch_get(chunk.to_vec()).await?);
        }
        // In the index's order, not the batch's.
        let position = |item: &Item| {
            keys.iter().position(|key| key.get("pk") == item.get("pk") && key.get("sk") == item.get("sk"))
        };
        items.sort_by_key(position);
        decode_all(items)
    }

    /// The items at `keys` (at most [`BATCH_GET`]), asking again for those
    /// DynamoDB left unprocessed (throttled), a few times.
    async fn batch_get(&self, mut keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut items = Vec::new();
        let mut idle = 0u32;
        // Keys left for a full answer (16 MB) are asked for at once; keys
        // left with nothing read (throttled), after a pause, a few times.
        while !keys.is_empty() && idle < 5 {
            if idle > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(50 << idle)).await;
            }
            let wanted =
                KeysAndAttributes::builder().set_keys(Some(keys)).build().map_err(|e| StoreError::Other(e.into()))?;
            let answer =
                self.client.batch_get_item().request_items(&self.table, wanted).send().await.map_err(failure)?;
            let read = answer.responses.unwrap_or_default().remove(&self.table).unwrap_or_default();
            idle = if read.is_empty() { idle + 1 } else { 0 };
            items.extend(read);
            keys = answer
                .unprocessed_keys
                .unwrap_or_default()
                .remove(&self.table)
                .map(|left| left.keys)
                .unwrap_or_default();
        }
        if !keys.is_empty() {
            return Err(StoreError::Throttled(format!("{} items left unread after retries", keys.len()).into()));
        }
        Ok(items)
    }

    /// Creates the table as the SAM template does (on-demand, TTL on
    /// `expires_at`, the sparse listing index): for tests and emulators.
    pub async fn create_table(&self) -> Result<(), StoreError> {
        let typed = |name: &str, kind| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(kind)
                .build()
                .map_err(|e| StoreError::Other(e.into()))
        };
        let attribute = |name: &str| typed(name, ScalarAttributeType::S);
        let key = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|e| StoreError::Other(e.into()))
        };
        let index = |name: &str, hash: &str, range: &str, projected| {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(hash, KeyType::Hash)?)
                .key_schema(key(range, KeyType::Range)?)
                .projection(Projection::builder().projection_type(projected).build())
                .build()
                .map_err(|e| StoreError::Other(e.into()))
        };
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("pk")?)
            .attribute_definitions(attribute("sk")?)
            .attribute_definitions(attribute(LISTED_AS)?)
            .attribute_definitions(attribute(TIMELINE)?)
            .attribute_definitions(typed(TIMELINE_AT, ScalarAttributeType::N)?)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .global_secondary_indexes(index(LISTING_INDEX, LISTED_AS, "pk", ProjectionType::All)?)
            .global_secondary_indexes(index(TIMELINE_INDEX, TIMELINE, TIMELINE_AT, ProjectionType::KeysOnly)?)
            .send()
            .await
            .map_err(failure)?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name("expires_at")
                    .enabled(true)
                    .build()
                    .map_err(|e| StoreError::Other(e.into()))?,
            )
            .send()
            .await
            .map_err(failure)?;
        Ok(())
    }

    fn encode(&self, record: &Record, key: &Key, version: Version) -> Result<Item, StoreError> {
        let fields = checked_fields(record, key, version)?;
        serde_dynamo::to_item(fields).map_err(|e| StoreError::Other(e.into()))
    }

    async fn put(
        &self,
        item: Item,
        condition: &str,
        expected: Option<Version>,
    ) -> Result<
        (),
        SdkError<
            aws_sdk_dynamodb::operation::put_item::PutItemError,
            aws_smithy_runtime_api::client::orchestrator::HttpResponse,
        >,
    > {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .expression_attribute_values(":now", number(Timestamp::now().unix()));
        if let Some(expected) = expected {
            request = request.expression_attribute_values(":expected", number(expected.0));
        }
        request.send().await.map(|_| ())
    }
}

#[async_trait]
impl StateStore for DynamoStore {
    async fn create(&self, record: &Record) -> Result<Version, StoreError> {
        let key = record.key();
        let item = self.encode(record, &key, Version(1))?;
        // An expired item may linger until DynamoDB's TTL sweep: it does not count.
        match self.put(item, NEW_ITEM, None).await {
            Ok(()) => Ok(Version(1)),
            Err(e) if conditional_check_failed(&e) => Err(StoreError::AlreadyExists { key }),
            Err(e) => Err(write_failure(e, key)),
        }
    }

    /// One `TransactWriteItems` of conditional puts (IAM authorises each as
    /// `PutItem`): one request for up to 100 records and 4 MB. DynamoDB
    /// bills a transaction's writes twice: one round trip fewer for twice
    /// the write units (BENCHMARKS.md, "AWS calls per delivery"). A random
    /// client token makes the SDK's own retry of a request whose answer was
    /// lost succeed instead of finding its own items there.
    async fn create_all(&self, records: &[Record]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let keys: Vec<Key> = records.iter().map(Record::key).collect();
        let mut token = [0u8; 16];
        getrandom::fill(&mut token).map_err(|e| StoreError::Other(e.to_string().into()))?;
        let mut request = self.client.transact_write_items().client_request_token(hex::encode(token));
        for (record, key) in records.iter().zip(&keys) {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(self.encode(record, key, Version(1))?))
                .condition_expression(NEW_ITEM)
                .expression_attribute_values(":now", number(Timestamp::now().unix()))
                .build()
                .map_err(|e| StoreError::Other(e.into()))?;
            request = request.transact_items(TransactWriteItem::builder().put(put).build());
        }
        request.send().await.map(|_| ()).map_err(|e| cancelled(e, keys))
    }

    async fn get(&self, key: &Key) -> Result<Option<Versioned<Record>>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.pk()))
            .key("sk", AttributeValue::S(key.sk()))
            .consistent_read(true)
            .send()
            .await
            .map_err(failure)?;
        match output.item {
            Some(item) => decode(item, Timestamp::now()).map_err(|problem| corrupt(key, problem)),
            None => Ok(None),
        }
    }

    async fn update(&self, record: &Record, expected: Version) -> Result<Version, StoreError> {
        let key = record.key();
        let next = Version(expected.0 + 1);
        let item = self.encode(record, &key, next)?;
        let condition = "version = :expected AND (attribute_not_exists(expires_at) OR expires_at > :now)";
        match self.put(item, condition, Some(expected)).await {
            Ok(()) => Ok(next),
            Err(e) if conditional_check_failed(&e) => match self.get(&key).await? {
                Some(_) => Err(StoreError::StaleVersion { key, expected }),
                None => Err(StoreError::NotFound { key }),
            },
            Err(e) => Err(write_failure(e, key)),
        }
    }

    async fn delete(&self, key: &Key) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.pk()))
            .key("sk", AttributeValue::S(key.sk()))
            .send()
            .await
            .map_err(failure)?;
        Ok(())
    }

    async fn query(&self, collection: &Collection) -> Result<Vec<Versioned<Record>>, StoreError> {
        let request = self.client.query().table_name(&self.table);
        let request = match collection.scope() {
            Scope::Timeline { line, newest } => return self.timeline(line, newest).await,
            Scope::Partition { pk, sk_prefix } => request
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", AttributeValue::S(pk))
                .expression_attribute_values(":prefix", AttributeValue::S(sk_prefix))
                .consistent_read(true),
            // A global index is eventually consistent: a record written a
            // moment ago may be missing from one listing, never from the next.
            Scope::Listed { kind, pk, first } => {
                let request = request
                    .index_name(LISTING_INDEX)
                    .expression_attribute_names("#listed", LISTED_AS)
                    .expression_attribute_values(":kind", AttributeValue::S(kind.to_owned()))
                    .set_limit(first.map(|first| i32::try_from(first).unwrap_or(i32::MAX)));
                let request = match pk {
                    Some(pk) => request
                        .key_condition_expression("#listed = :kind AND pk = :pk")
                        .expression_attribute_values(":pk", AttributeValue::S(pk)),
                    None => request.key_condition_expression("#listed = :kind"),
                };
                // Only as many pages as the first items need.
                let mut pages = request.into_paginator().items().send();
                let mut items = Vec::new();
                while first.is_none_or(|first| items.len() < first) {
                    let Some(item) = pages.next().await else { break };
                    items.push(item.map_err(failure)?);
                }
                return decode_all(items);
            }
        };
        let items: Vec<Item> =
            request.into_paginator().items().send().collect::<Result<Vec<_>, _>>().await.map_err(failure)?;
        decode_all(items)
    }
}

/// The live records of a query's items.
fn decode_all(items: Vec<Item>) -> Result<Vec<Versioned<Record>>, StoreError> {
    let now = Timestamp::now();
    let mut records = Vec::with_capacity(items.len());
    for item in items {
        let at = format!("{} {}", string(&item, "pk").unwrap_or_default(), string(&item, "sk").unwrap_or_default());
        if let Some(found) = decode(item, now).map_err(|problem| StoreError::Corrupt { at, problem })? {
            records.push(found);
        }
    }
    Ok(records)
}

struct DynamoFields(Item);

impl Fields for DynamoFields {
    type Error = serde_dynamo::Error;
    fn decode<T: DeserializeOwned>(self) -> Result<T, Self::Error> {
        serde_dynamo::from_item(self.0)
    }
}

fn corrupt(key: &Key, problem: String) -> StoreError {
    StoreError::Corrupt { at: key.to_string(), problem }
}

/// The live record in `item`, or `None` when it has expired.
fn decode(item: Item, now: Timestamp) -> Result<Option<Versioned<Record>>, String> {
    let expires_at = match item.get("expires_at") {
        Some(AttributeValue::N(n)) => Some(n.parse::<i64>().map_err(|e| format!("expires_at: {e}"))?),
        _ => None,
    };
    if !is_live(expires_at, now) {
        return Ok(None);
    }
    let kind = string(&item, "kind").ok_or("no kind")?.to_owned();
    let version = match item.get("version") {
        Some(AttributeValue::N(n)) => Version(n.parse().map_err(|e| format!("version: {e}"))?),
        _ => return Err("no version".into()),
    };
    let record = Record::decode(&kind, DynamoFields(item))?;
    Ok(Some(Versioned { record, version }))
}

fn string<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

fn number(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// Why a transaction of creates failed, by the first item that made it:
/// one already there is `AlreadyExists`, one too large `TooLarge`, a
/// throttled one `Throttled`; a conflict with another transaction on the
/// same items is `Unavailable` (try again).
fn cancelled(
    err: SdkError<TransactWriteItemsError, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    keys: Vec<Key>,
) -> StoreError {
    let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) = err.as_service_error() else {
        return match keys.into_iter().next_back() {
            Some(key) => write_failure(err, key),
            None => failure(err),
        };
    };
    let reasons = cancelled.cancellation_reasons();
    tracing::debug!(?reasons, "a transaction of creates was cancelled");
    let first = reasons.iter().zip(keys).find(|(reason, _)| reason.code().is_some_and(|code| code != "None"));
    match first {
        Some((reason, key)) => match reason.code() {
            Some("ConditionalCheckFailed") => StoreError::AlreadyExists { key },
            Some("ValidationError") if reason.message().is_some_and(|m| m.contains("size")) => {
                StoreError::TooLarge { key, size: 0 }
            }
            Some("ThrottlingError" | "ProvisionedThroughputExceeded" | "RequestLimitExceeded") => {
                StoreError::Throttled(err.into())
            }
            _ => StoreError::Unavailable(err.into()),
        },
        None => StoreError::Unavailable(err.into()),
    }
}

/// A create's condition: no item at the key, or only an expired one that
/// DynamoDB's TTL sweep has not removed yet.
const NEW_ITEM: &str = "attribute_not_exists(pk) OR expires_at <= :now";

fn conditional_check_failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    code(err) == Some("ConditionalCheckFailedException")
}

/// A write the service refused for size is reported as such, whatever the
/// client-side estimate said.
fn write_failure<E, R>(err: SdkError<E, R>, key: Key) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let too_large = code(&err) == Some("ValidationException")
        && err.as_service_error().and_then(|e| e.message()).is_some_and(|m| m.contains("size"));
    if too_large {
        return StoreError::TooLarge { key, size: 0 };
    }
    failure(err)
}

pub(crate) fn failure<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let kind = fault(&err);
    tracing::warn!(error = %DisplayErrorContext(&err), "DynamoDB call failed");
    match kind {
        Fault::Throttled => StoreError::Throttled(err.into()),
        Fault::Unavailable => StoreError::Unavailable(err.into()),
        Fault::Rejected => StoreError::Other(err.into()),
    }
}
