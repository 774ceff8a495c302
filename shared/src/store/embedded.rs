//! The embedded adapter: the same single-table model in one SQLite file
//! under the data dir, for `ferry serve` with no AWS account.
//!
//! Why SQLite (through rusqlite, bundled): a conditional write is one
//! statement in one transaction, the `(pk, sk)` primary key gives ordered
//! prefix queries for free, and in WAL mode with `synchronous = NORMAL` each
//! commit is appended to the log before the call returns, so a crash of the
//! process loses nothing (a power cut can lose the last commits, never
//! corrupt the file), without an fsync per webhook. redb would need an fsync
//! per durable commit to survive a process crash.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use serde::de::DeserializeOwned;

use super::{
    Collection, Fields, Key, Record, StateStore, StoreError, Version, Versioned, checked_fields,
    is_live,
};
use crate::domain::Timestamp;

#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore").finish_non_exhaustive()
    }
}

const SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    CREATE TABLE IF NOT EXISTS items (
        pk TEXT NOT NULL,
        sk TEXT NOT NULL,
        kind TEXT NOT NULL,
        version INTEGER NOT NULL,
        expires_at INTEGER,
        fields TEXT NOT NULL,
        PRIMARY KEY (pk, sk)
    ) WITHOUT ROWID;
";

impl EmbeddedStore {
    /// Opens (creating if needed) the store at `path`, and sweeps expired items.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Connection::open(path).map_err(other)?;
        db.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(other)?;
        db.execute_batch(SCHEMA).map_err(other)?;
        db.execute(
            "DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at <= ?1",
            params![Timestamp::now().unix()],
        )
        .map_err(other)?;
        Ok(Self {
            db: Arc::new(Mutex::new(db)),
        })
    }

    /// Runs `work` on the connection off the async runtime's threads.
    async fn with_db<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave a half-written
            // transaction behind (SQLite rolls it back), so the poison is moot.
            let db = db.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&db)
        })
        .await
        .map_err(|e| StoreError::Other(e.into()))?
    }
}

struct Row {
    pk: String,
    sk: String,
    kind: String,
    fields: String,
    expires_at: Option<i64>,
}

fn encode(record: &Record, version: Version) -> Result<(Key, Row), StoreError> {
    let key = record.key();
    let fields = checked_fields(record, &key, version)?;
    let row = Row {
        pk: key.pk(),
        sk: key.sk(),
        kind: record.kind().to_owned(),
        fields: fields.to_string(),
        expires_at: record.expires_at().map(Timestamp::unix),
    };
    Ok((key, row))
}

struct JsonFields(String);

impl Fields for JsonFields {
    type Error = serde_json::Error;
    fn decode<T: DeserializeOwned>(self) -> Result<T, Self::Error> {
        serde_json::from_str(&self.0)
    }
}

fn decode(
    at: String,
    kind: String,
    version: i64,
    fields: String,
) -> Result<Versioned<Record>, StoreError> {
    let corrupt = |problem: String| StoreError::Corrupt {
        at: at.clone(),
        problem,
    };
    let version = u64::try_from(version).map_err(|e| corrupt(e.to_string()))?;
    let record = Record::decode(&kind, JsonFields(fields)).map_err(corrupt)?;
    Ok(Versioned {
        record,
        version: Version(version),
    })
}

fn live_version(db: &Connection, key: &Key, now: Timestamp) -> Result<Option<i64>, StoreError> {
    let found: Option<(i64, Option<i64>)> = db
        .query_row(
            "SELECT version, expires_at FROM items WHERE pk = ?1 AND sk = ?2",
            params![key.pk(), key.sk()],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(other)?;
    Ok(found
        .filter(|(_, expires)| is_live(*expires, now))
        .map(|(v, _)| v))
}

fn other(err: rusqlite::Error) -> StoreError {
    match err {
        rusqlite::Error::SqliteFailure(e, _)
            if matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            StoreError::Unavailable(err.into())
        }
        _ => StoreError::Other(err.into()),
    }
}

#[async_trait]
impl StateStore for EmbeddedStore {
    async fn create(&self, record: &Record) -> Result<Version, StoreError> {
        let (key, row) = encode(record, Version(1))?;
        self.with_db(move |db| {
            // One statement: insert, or take over an expired item, or change nothing.
            let changed = db
                .execute(
                    "INSERT INTO items (pk, sk, kind, version, expires_at, fields)
                     VALUES (?1, ?2, ?3, 1, ?4, ?5)
                     ON CONFLICT (pk, sk) DO UPDATE
                     SET kind = excluded.kind, version = 1, expires_at = excluded.expires_at, fields = excluded.fields
                     WHERE items.expires_at IS NOT NULL AND items.expires_at <= ?6",
                    params![row.pk, row.sk, row.kind, row.expires_at, row.fields, Timestamp::now().unix()],
                )
                .map_err(other)?;
            if changed == 0 {
                return Err(StoreError::AlreadyExists { key });
            }
            Ok(Version(1))
        })
        .await
    }

    async fn get(&self, key: &Key) -> Result<Option<Versioned<Record>>, StoreError> {
        let key = key.clone();
        self.with_db(move |db| {
            let found: Option<(String, i64, Option<i64>, String)> = db
                .query_row(
                    "SELECT kind, version, expires_at, fields FROM items WHERE pk = ?1 AND sk = ?2",
                    params![key.pk(), key.sk()],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
                )
                .optional()
                .map_err(other)?;
            match found {
                Some((kind, version, expires_at, fields))
                    if is_live(expires_at, Timestamp::now()) =>
                {
                    decode(key.to_string(), kind, version, fields).map(Some)
                }
                _ => Ok(None),
            }
        })
        .await
    }

    async fn update(&self, record: &Record, expected: Version) -> Result<Version, StoreError> {
        let next = Version(expected.0 + 1);
        let (key, row) = encode(record, next)?;
        self.with_db(move |db| {
            let now = Timestamp::now();
            let expected_db = i64::try_from(expected.0).map_err(|e| StoreError::Other(e.into()))?;
            let changed = db
                .execute(
                    "UPDATE items SET kind = ?3, version = version + 1, expires_at = ?4, fields = ?5
                     WHERE pk = ?1 AND sk = ?2 AND version = ?6
                       AND (expires_at IS NULL OR expires_at > ?7)",
                    params![row.pk, row.sk, row.kind, row.expires_at, row.fields, expected_db, now.unix()],
                )
                .map_err(other)?;
            if changed == 1 {
                return Ok(next);
            }
            match live_version(db, &key, now)? {
                Some(_) => Err(StoreError::StaleVersion { key, expected }),
                None => Err(StoreError::NotFound { key }),
            }
        })
        .await
    }

    async fn delete(&self, key: &Key) -> Result<(), StoreError> {
        let key = key.clone();
        self.with_db(move |db| {
            db.execute(
                "DELETE FROM items WHERE pk = ?1 AND sk = ?2",
                params![key.pk(), key.sk()],
            )
            .map_err(other)?;
            Ok(())
        })
        .await
    }

    async fn query(&self, collection: &Collection) -> Result<Vec<Versioned<Record>>, StoreError> {
        let (pk, prefix) = (collection.pk(), collection.sk_prefix());
        self.with_db(move |db| {
            // BINARY collation orders UTF-8 bytewise, as DynamoDB orders sort keys.
            let mut statement = db
                .prepare_cached(
                    "SELECT sk, kind, version, expires_at, fields FROM items
                     WHERE pk = ?1 AND substr(sk, 1, length(?2)) = ?2
                     ORDER BY sk",
                )
                .map_err(other)?;
            let rows = statement
                .query_map(params![pk, prefix], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get::<_, Option<i64>>(3)?,
                        row.get(4)?,
                    ))
                })
                .map_err(other)?;
            let now = Timestamp::now();
            let mut records = Vec::new();
            for row in rows {
                let (sk, kind, version, expires_at, fields) = row.map_err(other)?;
                if is_live(expires_at, now) {
                    records.push(decode(format!("{pk} {sk}"), kind, version, fields)?);
                }
            }
            Ok(records)
        })
        .await
    }
}
