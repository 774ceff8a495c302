//! The embedded adapter: the same single-table model in one SQLite file
//! under the data dir, for `ferry serve` with no AWS account.
//!
//! Why SQLite (through rusqlite, bundled): a conditional write is one
//! statement in one transaction, the `(pk, sk)` primary key gives ordered
//! prefix queries for free, and in WAL mode each commit is appended to the
//! log before the call returns, so a crash of the process loses nothing,
//! without an fsync per webhook. How much more it survives is the operator's
//! choice ([`Durability`]). redb would need an fsync per durable commit to
//! survive a process crash.
//!
//! One thread owns the writing connection and commits whatever calls are
//! queued as one transaction (group commit): no lock contention, one
//! wake-up and one log write per batch, and no caller hears "done" before
//! its commit. A point read (`get`) runs in the caller's thread on a reader
//! connection of its own ([`Readers`]): WAL readers never wait for the
//! writer, so reads neither queue behind writes nor hold the write lock.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use super::{
    Collection, Durability, Fields, Key, Record, Scope, StateStore, StoreError, Version, Versioned, checked_json,
    is_live,
};
use crate::domain::Timestamp;

/// A handle to the store's thread and its readers; clones share them.
#[derive(Clone)]
pub struct EmbeddedStore {
    jobs: mpsc::Sender<Job>,
    readers: Arc<Readers>,
}

/// Connections for point reads, made on demand and kept for the next read:
/// a reader in WAL mode never waits for the writer and sees every commit
/// acknowledged before it began, so a read needs no trip to the store's
/// thread (and no write transaction) and runs in the caller's thread.
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// Readers kept idle at most: one per thread that reads at once, and a few.
const MAX_IDLE_READERS: usize = 8;

/// How long a read waits for a lock: a reader in WAL mode meets one only
/// while another process recovers the log, and it waits on an async
/// runtime's thread, so briefly; past it the read is `Unavailable`.
const READER_BUSY_TIMEOUT: Duration = Duration::from_millis(100);

impl Readers {
    /// Runs `read` on an idle reader, or a new one.
    fn with<T>(&self, read: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let db = match idle {
            Some(db) => db,
            None => {
                let db = Connection::open(&self.path).map_err(other)?;
                db.busy_timeout(READER_BUSY_TIMEOUT).map_err(other)?;
                db.execute_batch("PRAGMA cache_size = -256").map_err(other)?;
                db
            }
        };
        let result = read(&db);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(db);
        }
        result
    }
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore").finish_non_exhaustive()
    }
}

/// Work for the store's thread: runs inside a transaction and returns what
/// to tell the caller once that transaction has committed (or failed to);
/// or, when no transaction could begin, is refused without running.
type Job = Box<dyn Work>;
type Answer = Box<dyn FnOnce(Option<&rusqlite::Error>) + Send>;

trait Work: Send {
    fn run(self: Box<Self>, db: &Connection) -> Answer;
    fn refuse(self: Box<Self>, why: &rusqlite::Error);
}

/// One call: its work and where its result goes.
struct Call<F, T> {
    work: F,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<F, T> Work for Call<F, T>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, db: &Connection) -> Answer {
        let Call { work, reply } = *self;
        let result = work(db);
        Box::new(move |commit_failed: Option<&rusqlite::Error>| {
            let result = match commit_failed {
                // Nothing of this transaction is durable: no caller may think otherwise.
                Some(e) => Err(StoreError::Unavailable(format!("commit failed: {e}").into())),
                None => result,
            };
            let _ = reply.send(result);
        })
    }

    fn refuse(self: Box<Self>, why: &rusqlite::Error) {
        let _ = self.reply.send(Err(StoreError::Unavailable(format!("no transaction could begin: {why}").into())));
    }
}

/// How long a call waits for another process holding the file's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// At most this many calls share one transaction.
const MAX_BATCH: usize = 256;

// `fields` is the record's JSON, LZ4-compressed: a push delivery's 4-8 KB of
// JSON (mostly paths) shrinks to about a page, so writing it touches one
// page instead of an overflow chain, and the log and its checkpoints carry
// a fraction of the bytes.
// A rowid table, not WITHOUT ROWID: a delivery's fields run to kilobytes,
// and those belong in the table's pages with the key in a small index.
const SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    CREATE TABLE IF NOT EXISTS items (
        pk TEXT NOT NULL,
        sk TEXT NOT NULL,
        kind TEXT NOT NULL,
        version INTEGER NOT NULL,
        expires_at INTEGER,
        fields BLOB NOT NULL,
        listed_as TEXT,
        timeline TEXT,
        timeline_at INTEGER,
        PRIMARY KEY (pk, sk)
    );
";

/// The sparse indexes, as DynamoDB's `by-listing` and `by-time`: only
/// listed records (or those in a time line) are in each, so a listing reads
/// its own rows and no others.
const INDEXES: &str = "
    DROP INDEX IF EXISTS items_listed;
    CREATE INDEX IF NOT EXISTS items_by_listing ON items (listed_as, pk) WHERE listed_as IS NOT NULL;
    CREATE INDEX IF NOT EXISTS items_by_time ON items (timeline, timeline_at) WHERE timeline IS NOT NULL;
    PRAGMA user_version = 2;
";

/// The layout's version [`INDEXES`] ends with.
const LAYOUT: i64 = 2;

/// Brings a file written before records named their listing (1) or their
/// time line (2) up to date: the columns, each record's listing and time
/// line, and the indexes.
fn migrate(db: &Connection) -> Result<(), StoreError> {
    let version: i64 = db.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(other)?;
    if version >= LAYOUT {
        return Ok(());
    }
    db.execute_batch("BEGIN IMMEDIATE").map_err(other)?;
    let migrated = (|| {
        // Asked again under the write lock: another process may have migrated meanwhile.
        let version: i64 = db.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(other)?;
        if version >= LAYOUT {
            return Ok(());
        }
        for (column, kind) in [("listed_as", "TEXT"), ("timeline", "TEXT"), ("timeline_at", "INTEGER")] {
            if db.prepare(&format!("SELECT {column} FROM items LIMIT 0")).is_err() {
                db.execute_batch(&format!("ALTER TABLE items ADD COLUMN {column} {kind}")).map_err(other)?;
            }
        }
        let mut rows = db.prepare("SELECT pk, sk, kind, version, fields FROM items").map_err(other)?;
        let rows = rows
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
            })
            .map_err(other)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(other)?;
        for (pk, sk, kind, version, fields) in rows {
            // A row Ferry cannot read stays unlisted: reading it is an error anyway.
            let found = match decode(format!("{pk} {sk}"), kind, version, fields) {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(error = %e, "a row the listing migration cannot read");
                    continue;
                }
            };
            let (listing, (line, at)) = (found.record.listed_as(), found.record.timeline().unzip());
            if listing.is_some() || line.is_some() {
                execute(
                    db,
                    "UPDATE items SET listed_as = ?3, timeline = ?4, timeline_at = ?5 WHERE pk = ?1 AND sk = ?2",
                    params![pk, sk, listing, line, at],
                )?;
            }
        }
        db.execute_batch(INDEXES).map_err(other)
    })();
    db.execute_batch(if migrated.is_ok() { "COMMIT" } else { "ROLLBACK" }).map_err(other)?;
    migrated
}

impl Durability {
    /// Both connections need it: the writer syncs the log when it starts
    /// over, the checkpointer syncs around each checkpoint.
    fn pragma(self) -> &'static str {
        match self {
            Durability::Machine => "PRAGMA synchronous = NORMAL",
            Durability::Process => "PRAGMA synchronous = OFF",
        }
    }
}

impl EmbeddedStore {
    /// The store's file in a data dir, as `ferry serve` lays it out.
    pub const FILE: &str = "state.sqlite3";

    /// Opens (creating if needed) the store at `path`, sweeps expired items,
    /// and starts the thread that owns the connection.
    pub fn open(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        Self::open_waiting(path, durability, BUSY_TIMEOUT)
    }

    /// [`EmbeddedStore::open`], waiting at most `busy` for another process's lock.
    fn open_waiting(path: &Path, durability: Durability, busy: Duration) -> Result<Self, StoreError> {
        let db = Connection::open(path).map_err(other)?;
        db.busy_timeout(busy).map_err(other)?;
        db.execute_batch(SCHEMA).map_err(other)?;
        migrate(&db)?;
        db.execute_batch(durability.pragma()).map_err(other)?;
        db.execute(
            "DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at <= ?1",
            params![Timestamp::now().unix()],
        )
        .map_err(other)?;
        // Checkpoints copy the log into the database file (and, durable
        // against a power cut, fsync both). A second connection does that
        // every 10 ms while writes arrive, off the write path (see
        // `checkpoint`); the writer
        // starts the log over once a checkpoint has copied all of it, and
        // runs one itself if the log ever passes 64 MB (16384 pages).
        // Page caches: 256 KB for the writer, whose hot pages are the index's
        // upper levels and the newest rows (delivery ids are random: a bigger
        // cache holds pages read once; 1 MB measured no faster and 1 MB more
        // resident); the checkpointer only copies pages through.
        db.execute_batch("PRAGMA wal_autocheckpoint = 16384; PRAGMA cache_size = -256").map_err(other)?;
        let checkpointer = Connection::open(path).map_err(other)?;
        checkpointer.busy_timeout(busy).map_err(other)?;
        checkpointer.execute_batch("PRAGMA cache_size = -128").map_err(other)?;
        checkpointer.execute_batch(durability.pragma()).map_err(other)?;
        let flush = match durability {
            Durability::Machine => Some(sync_handle(path).map_err(|e| StoreError::Other(e.into()))?),
            Durability::Process => None,
        };
        let (stop, stopped) = mpsc::channel::<()>();
        let (jobs, queue) = mpsc::channel();
        let finish = Arc::new(AtomicBool::new(false));
        let asked = Arc::clone(&finish);
        let spawn = |name: &str, work: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(name.into()).spawn(work).map_err(|e| StoreError::Other(e.into()))
        };
        spawn("ferry-checkpoint", Box::new(move || checkpoint(checkpointer, flush, asked, stopped)))?;
        spawn("ferry-store", Box::new(move || serve(db, queue, finish, stop)))?;
        let readers = Readers { path: path.to_path_buf(), idle: Mutex::default() };
        Ok(Self { jobs, readers: Arc::new(readers) })
    }

    /// Runs `work` on the store's thread; answers once its transaction committed.
    async fn with_db<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(Call { work, reply });
        self.jobs.send(job).map_err(|_| StoreError::Unavailable("the store's thread has stopped".into()))?;
        answer.await.map_err(|_| StoreError::Unavailable("the store's thread has stopped".into()))?
    }
}

/// The store's thread: takes every call queued, runs them in one
/// transaction, commits once, then answers each. Under load many webhook
/// deliveries share a commit; alone, a call commits at once.
fn serve(
    db: Connection,
    queue: mpsc::Receiver<Job>,
    finish_checkpoint: Arc<AtomicBool>,
    _stop_checkpoints_when_done: mpsc::Sender<()>,
) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // A batch runs inside one transaction or not at all: were its jobs
        // run in autocommit after a failed BEGIN, their writes would stick
        // while their callers heard "failed".
        if let Err(e) = db.execute_batch("BEGIN IMMEDIATE") {
            tracing::warn!(error = %e, calls = batch.len(), "the state store could not begin a transaction");
            for job in batch {
                job.refuse(&e);
            }
            continue;
        }
        let mut answers: Vec<Answer> = Vec::with_capacity(batch.len());
        for job in batch {
            // A call that had to roll the batch back ended its transaction:
            // the rest would write outside it.
            if db.is_autocommit() {
                job.refuse(&rolled_back());
            } else {
                answers.push(job.run(&db));
            }
        }
        let committed = db.execute_batch("COMMIT");
        if committed.is_err() && !db.is_autocommit() {
            let _ = db.execute_batch("ROLLBACK");
        }
        for answer in answers {
            answer(committed.as_ref().err());
        }
        // Between two batches no frame is being written: a checkpoint here
        // copies everything, so the next commit starts the log over. Busy
        // (the checkpointer is at it this moment): after the next batch.
        if finish_checkpoint.swap(false, Ordering::AcqRel) {
            match passive_checkpoint(&db) {
                Ok(Some(_)) => {}
                Ok(None) => finish_checkpoint.store(true, Ordering::Release),
                Err(e) => tracing::warn!(error = %e, "checkpoint failed; the next one retries"),
            }
        }
    }
}

/// Why a call was refused after another rolled its batch back.
fn rolled_back() -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
        Some("the batch's transaction was rolled back".into()),
    )
}

/// The checkpointer: passive checkpoints on a connection of its own, which
/// never block the writer, every 10 ms while the log grows (every 100 ms
/// when it does not). Small and frequent, so each fsync has little to
/// write: at 100 ms the load run's p99 was 4.1-4.9 ms, at 10 ms 2.7-2.8 ms
/// (BENCHMARKS.md).
///
/// Under steady writes a passive checkpoint never catches up (the writer
/// appends while it copies), and the log can only start over once one has
/// copied all of it. Left alone, the writer would do that itself at 64 MB,
/// stalling every caller for 15-20 ms of fsyncs. So once the log holds
/// [`RESTART_AT`] frames, the checkpointer asks the writer to finish between
/// two batches, when what is left to copy and sync is the last few
/// milliseconds' worth (about 1.5 ms of fsyncs, measured).
fn checkpoint(db: Connection, flush: Option<Arc<File>>, finish: Arc<AtomicBool>, stopped: mpsc::Receiver<()>) {
    let mut log = Log { db, flush, copied: 0 };
    let mut wait = CHECKPOINT_IDLE;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
        wait = CHECKPOINT_IDLE;
        let copied = match log.copy() {
            Ok(Some(copied)) => copied,
            // The writer is finishing one: look again soon.
            Ok(None) => {
                wait = CHECKPOINT_WRITING;
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "checkpoint failed; the next one retries");
                continue;
            }
        };
        if copied.moved {
            wait = CHECKPOINT_WRITING;
            if let Err(e) = log.sync() {
                tracing::warn!(error = %e, "syncing the database file failed; the next checkpoint retries");
            }
        }
        if copied.frames >= RESTART_AT {
            finish.store(true, Ordering::Release);
        }
    }
}

/// The checkpointer's connection and, durable against a power cut, the
/// database file, to sync what it copies.
struct Log {
    db: Connection,
    flush: Option<Arc<File>>,
    /// Frames copied as of the last checkpoint.
    copied: i64,
}

/// What one checkpoint found: the frames in the log, and whether it
/// copied any new ones.
struct Copied {
    frames: i64,
    moved: bool,
}

impl Log {
    /// One passive checkpoint; `None` when busy (the writer is finishing one).
    fn copy(&mut self) -> rusqlite::Result<Option<Copied>> {
        let Some((frames, copied)) = passive_checkpoint(&self.db)? else { return Ok(None) };
        let moved = copied != self.copied;
        self.copied = copied;
        Ok(Some(Copied { frames, moved }))
    }

    /// Syncs the pages checkpoints copied (SQLite syncs the database file
    /// only after a checkpoint that caught up), so that the checkpoint that
    /// completes has little left to sync.
    fn sync(&self) -> std::io::Result<()> {
        self.flush.as_deref().map_or(Ok(()), File::sync_data)
    }
}

/// A passive checkpoint: the frames in the log and how many of them are
/// copied, or `None` when another connection is checkpointing right now.
fn passive_checkpoint(db: &Connection) -> rusqlite::Result<Option<(i64, i64)>> {
    let (busy, frames, copied): (i64, i64, i64) =
        db.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    Ok((busy == 0).then_some((frames, copied)))
}

/// A descriptor of the database file to sync it with, one per file for the
/// life of the process: closing any descriptor of a file drops every POSIX
/// lock the process holds on it, SQLite's included, so these are never
/// closed (SQLite keeps its own open for the same reason).
fn sync_handle(path: &Path) -> std::io::Result<Arc<File>> {
    static OPEN: Mutex<Vec<(PathBuf, Arc<File>)>> = Mutex::new(Vec::new());
    let path = path.canonicalize()?;
    let mut open = OPEN.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, file)) = open.iter().find(|(known, _)| *known == path) {
        return Ok(Arc::clone(file));
    }
    let file = Arc::new(File::open(&path)?);
    open.push((path, Arc::clone(&file)));
    Ok(file)
}

const CHECKPOINT_WRITING: Duration = Duration::from_millis(10);
const CHECKPOINT_IDLE: Duration = Duration::from_millis(100);

/// Log frames (pages) past which the writer is asked to finish a checkpoint:
/// 32 MB, a few times a second under full load.
const RESTART_AT: i64 = 8192;

struct Row {
    pk: String,
    sk: String,
    kind: String,
    fields: Vec<u8>,
    expires_at: Option<i64>,
    listed_as: Option<&'static str>,
    timeline: Option<String>,
    timeline_at: Option<i64>,
}

fn encode(record: &Record, version: Version) -> Result<(Key, Row), StoreError> {
    let key = record.key();
    let fields = checked_json(record, &key, version)?;
    let (timeline, timeline_at) = record.timeline().unzip();
    let row = Row {
        pk: key.pk(),
        sk: key.sk(),
        kind: record.kind().to_owned(),
        fields: lz4_flex::compress_prepend_size(fields.as_bytes()),
        expires_at: record.expires_at().map(Timestamp::unix),
        listed_as: record.listed_as(),
        timeline,
        timeline_at,
    };
    Ok((key, row))
}

struct JsonFields(Vec<u8>);

impl Fields for JsonFields {
    type Error = serde_json::Error;
    fn decode<T: DeserializeOwned>(self) -> Result<T, Self::Error> {
        serde_json::from_slice(&self.0)
    }
}

fn decode(at: String, kind: String, version: i64, fields: Vec<u8>) -> Result<Versioned<Record>, StoreError> {
    let corrupt = |problem: String| StoreError::Corrupt { at: at.clone(), problem };
    let version = u64::try_from(version).map_err(|e| corrupt(e.to_string()))?;
    let json = lz4_flex::decompress_size_prepended(&fields).map_err(|e| corrupt(e.to_string()))?;
    let record = Record::decode(&kind, JsonFields(json)).map_err(corrupt)?;
    Ok(Versioned { record, version: Version(version) })
}

/// The statement reading a collection, and its arguments. BINARY collation
/// orders UTF-8 bytewise, as DynamoDB orders keys.
fn listing_sql(scope: &Scope) -> (&'static str, Vec<Value>) {
    let text = |s: &str| Value::Text(s.to_owned());
    // SQLite's LIMIT -1 is none.
    let limit = |first: Option<usize>| Value::Integer(first.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX)));
    match scope {
        Scope::Partition { pk, sk_prefix } => (
            "SELECT pk, sk, kind, version, expires_at, fields FROM items
             WHERE pk = ?1 AND substr(sk, 1, length(?2)) = ?2 ORDER BY sk",
            vec![text(pk), text(sk_prefix)],
        ),
        Scope::Timeline { line, newest } => (
            "SELECT pk, sk, kind, version, expires_at, fields FROM items INDEXED BY items_by_time
             WHERE timeline = ?1 ORDER BY timeline_at DESC LIMIT ?2",
            vec![text(line), limit(Some(*newest))],
        ),
        // Named: for one partition, SQLite would otherwise walk the whole
        // partition by its primary key (a repository's every run and release).
        Scope::Listed { kind, pk: Some(pk), first } => (
            "SELECT pk, sk, kind, version, expires_at, fields FROM items INDEXED BY items_by_listing
             WHERE listed_as = ?1 AND pk = ?2 ORDER BY pk, sk LIMIT ?3",
            vec![text(kind), text(pk), limit(*first)],
        ),
        Scope::Listed { kind, pk: None, first } => (
            "SELECT pk, sk, kind, version, expires_at, fields FROM items INDEXED BY items_by_listing
             WHERE listed_as = ?1 ORDER BY pk, sk LIMIT ?2",
            vec![text(kind), limit(*first)],
        ),
    }
}

fn live_version(db: &Connection, key: &Key, now: Timestamp) -> Result<Option<i64>, StoreError> {
    let found: Option<(i64, Option<i64>)> = query_row(
        db,
        "SELECT version, expires_at FROM items WHERE pk = ?1 AND sk = ?2",
        params![key.pk(), key.sk()],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    Ok(found.filter(|(_, expires)| is_live(*expires, now)).map(|(v, _)| v))
}

/// Runs one statement, prepared once per connection.
fn execute(db: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<usize, StoreError> {
    db.prepare_cached(sql).and_then(|mut statement| statement.execute(params)).map_err(other)
}

/// Inserts a row at version 1, or takes over an expired item's key, in one
/// statement; a live item there is `AlreadyExists`, and nothing changes.
fn insert_new(db: &Connection, key: Key, row: &Row) -> Result<(), StoreError> {
    let changed = execute(
        db,
        "INSERT INTO items (pk, sk, kind, version, expires_at, fields, listed_as, timeline, timeline_at)
         VALUES (?1, ?2, ?3, 1, ?4, ?5, ?7, ?8, ?9)
         ON CONFLICT (pk, sk) DO UPDATE
         SET kind = excluded.kind, version = 1, expires_at = excluded.expires_at, fields = excluded.fields,
             listed_as = excluded.listed_as, timeline = excluded.timeline, timeline_at = excluded.timeline_at
         WHERE items.expires_at IS NOT NULL AND items.expires_at <= ?6",
        params![
            row.pk,
            row.sk,
            row.kind,
            row.expires_at,
            row.fields,
            Timestamp::now().unix(),
            row.listed_as,
            row.timeline,
            row.timeline_at
        ],
    )?;
    if changed == 0 {
        return Err(StoreError::AlreadyExists { key });
    }
    Ok(())
}

/// The one row a statement finds, if any, prepared once per connection.
fn query_row<T>(
    db: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    read: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>, StoreError> {
    db.prepare_cached(sql).and_then(|mut statement| statement.query_row(params, read).optional()).map_err(other)
}

fn other(err: rusqlite::Error) -> StoreError {
    match err {
        rusqlite::Error::SqliteFailure(e, _)
            if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) =>
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
        self.with_db(move |db| insert_new(db, key, &row).map(|()| Version(1))).await
    }

    async fn create_all(&self, records: &[Record]) -> Result<(), StoreError> {
        let rows = records.iter().map(|record| encode(record, Version(1))).collect::<Result<Vec<_>, _>>()?;
        self.with_db(move |db| {
            // Other calls share this transaction (group commit): a savepoint
            // undoes this call's rows alone.
            execute(db, "SAVEPOINT create_all", [])?;
            let written = rows.into_iter().try_for_each(|(key, row)| insert_new(db, key, &row));
            let end = if written.is_ok() { "RELEASE create_all" } else { "ROLLBACK TO create_all; RELEASE create_all" };
            if let Err(e) = db.execute_batch(end) {
                // This call's rows cannot be told apart from the batch's any
                // more: the whole batch is undone, and every caller in it
                // hears "failed" (the commit finds no transaction).
                let _ = db.execute_batch("ROLLBACK");
                return Err(other(e));
            }
            written
        })
        .await
    }

    /// One indexed row, read in the caller's thread: microseconds from
    /// cached pages, never behind the writer's queue.
    async fn get(&self, key: &Key) -> Result<Option<Versioned<Record>>, StoreError> {
        self.readers.with(|db| {
            let found: Option<(String, i64, Option<i64>, Vec<u8>)> = query_row(
                db,
                "SELECT kind, version, expires_at, fields FROM items WHERE pk = ?1 AND sk = ?2",
                params![key.pk(), key.sk()],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )?;
            match found {
                Some((kind, version, expires_at, fields)) if is_live(expires_at, Timestamp::now()) => {
                    decode(key.to_string(), kind, version, fields).map(Some)
                }
                _ => Ok(None),
            }
        })
    }

    async fn update(&self, record: &Record, expected: Version) -> Result<Version, StoreError> {
        let next = Version(expected.0 + 1);
        let (key, row) = encode(record, next)?;
        self.with_db(move |db| {
            let now = Timestamp::now();
            let expected_db = i64::try_from(expected.0).map_err(|e| StoreError::Other(e.into()))?;
            let changed = execute(
                db,
                "UPDATE items SET kind = ?3, version = version + 1, expires_at = ?4, fields = ?5, listed_as = ?8,
                     timeline = ?9, timeline_at = ?10
                 WHERE pk = ?1 AND sk = ?2 AND version = ?6
                   AND (expires_at IS NULL OR expires_at > ?7)",
                params![
                    row.pk,
                    row.sk,
                    row.kind,
                    row.expires_at,
                    row.fields,
                    expected_db,
                    now.unix(),
                    row.listed_as,
                    row.timeline,
                    row.timeline_at
                ],
            )?;
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
            execute(db, "DELETE FROM items WHERE pk = ?1 AND sk = ?2", params![key.pk(), key.sk()])?;
            Ok(())
        })
        .await
    }

    async fn query(&self, collection: &Collection) -> Result<Vec<Versioned<Record>>, StoreError> {
        let scope = collection.scope();
        self.with_db(move |db| {
            let (sql, arguments) = listing_sql(&scope);
            let mut statement = db.prepare_cached(sql).map_err(other)?;
            let rows = statement
                .query_map(rusqlite::params_from_iter(arguments), |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get::<_, Option<i64>>(4)?,
                        row.get(5)?,
                    ))
                })
                .map_err(other)?;
            let now = Timestamp::now();
            let mut records = Vec::new();
            for row in rows {
                let (pk, sk, kind, version, expires_at, fields) = row.map_err(other)?;
                if is_live(expires_at, now) {
                    records.push(decode(format!("{pk} {sk}"), kind, version, fields)?);
                }
            }
            Ok(records)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Cursor, InstallationId};

    #[tokio::test]
    async fn a_batch_that_cannot_begin_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite3");
        let store = EmbeddedStore::open_waiting(&path, Durability::Machine, Duration::from_millis(50)).unwrap();
        let other_process = Connection::open(&path).unwrap();
        other_process.execute_batch("BEGIN EXCLUSIVE").unwrap();

        let cursor = Record::Cursor(Cursor { name: "deliveries".into(), position: "1".into(), etag: None });
        let refused = store.create(&cursor).await.unwrap_err();
        assert!(refused.is_retryable(), "{refused}");

        other_process.execute_batch("ROLLBACK").unwrap();
        assert_eq!(store.get(&cursor.key()).await.unwrap(), None, "a refused call wrote nothing");
        assert_eq!(store.get(&Key::Installation(InstallationId::new(1))).await.unwrap(), None);
        assert_eq!(store.create(&cursor).await.unwrap(), Version(1), "the store works again");
    }

    /// Writers that never pause still let the log start over near
    /// `RESTART_AT` (32 MB), not at SQLite's own 64 MB checkpoint, which
    /// would stall every caller for its fsyncs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn under_steady_writes_the_log_starts_over_at_restart_at() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite3");
        let store = EmbeddedStore::open(&path, Durability::Machine).unwrap();
        let log = dir.path().join("state.sqlite3-wal");
        // Each write takes a page of its own (4 KB of text LZ4 cannot
        // shrink) and dirties an index page: 12,000 of them log more than
        // SQLite's own 64 MB (without the writer's checkpoint the log
        // reached 67.5 MB).
        let writers = (0..16u64).map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut seed = task + 1;
                for n in 0..750 {
                    let cursor =
                        Record::Cursor(Cursor { name: format!("{task}-{n}"), position: noise(&mut seed), etag: None });
                    store.create(&cursor).await.unwrap();
                }
            })
        });
        for writer in writers {
            writer.await.unwrap();
        }
        let largest = std::fs::metadata(&log).unwrap().len();
        // Slack for what the writers add before the checkpointer asks (it
        // wakes every 10-100 ms), yet below SQLite's own 16384 frames.
        let limit = (RESTART_AT as u64 + 6144) * (4096 + 24);
        assert!(largest < limit, "the log grew to {largest} bytes; it should start over before {limit}");
    }

    /// Stores opened on one file share one sync descriptor, never closed:
    /// closing one would drop the process's SQLite locks on the file.
    #[tokio::test]
    async fn stores_on_one_file_share_one_sync_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite3");
        let first = EmbeddedStore::open(&path, Durability::Machine).unwrap();
        let same = dir.path().join(".").join("state.sqlite3");
        let second = EmbeddedStore::open(&same, Durability::Machine).unwrap();
        assert!(Arc::ptr_eq(&sync_handle(&path).unwrap(), &sync_handle(&same).unwrap()));
        drop(first);
        let cursor = Record::Cursor(Cursor { name: "after".into(), position: "1".into(), etag: None });
        assert_eq!(second.create(&cursor).await.unwrap(), Version(1));
        let other = dir.path().join("other.sqlite3");
        let _third = EmbeddedStore::open(&other, Durability::Machine).unwrap();
        assert!(!Arc::ptr_eq(&sync_handle(&path).unwrap(), &sync_handle(&other).unwrap()));
    }

    /// What a cycle reads (unfinished deliveries, a repository's pending
    /// runs and open pull requests) and the walks of every installation or
    /// repository go through the listing index, never a scan of the table.
    #[test]
    fn listings_read_through_the_listing_index_and_partitions_through_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite3");
        let _store = EmbeddedStore::open(&path, Durability::Process).unwrap();
        let db = Connection::open(&path).unwrap();
        let repo = crate::domain::RepoName::parse("acme/api").unwrap();
        let plan = |collection: Collection| -> String {
            let (sql, arguments) = listing_sql(&collection.scope());
            let mut statement = db.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = statement.query_map(rusqlite::params_from_iter(arguments), |row| row.get::<_, String>(3));
            rows.unwrap().collect::<Result<Vec<_>, _>>().unwrap().join("; ")
        };
        for listing in [
            Collection::UnfinishedDeliveries,
            Collection::PendingRuns(repo.clone()),
            Collection::OpenPullRequests(repo.clone()),
            Collection::Repositories,
            Collection::Installations,
            Collection::Logins,
        ] {
            let plan = plan(listing.clone());
            assert!(plan.contains("USING INDEX items_by_listing"), "{listing:?}: {plan}");
            assert!(!plan.contains("SCAN items"), "{listing:?}: {plan}");
        }
        let today = Collection::DeliveriesOn { day: crate::domain::Timestamp::now(), newest: 100 };
        let newest = plan(today);
        assert!(newest.contains("USING INDEX items_by_time (timeline=?)"), "{newest}");
        assert!(!newest.contains("TEMP B-TREE"), "sorted by the index, not after: {newest}");
        for partition in [Collection::Runs(repo.clone()), Collection::Releases(repo)] {
            let plan = plan(partition.clone());
            assert!(plan.contains("USING INDEX sqlite_autoindex_items_1 (pk=?)"), "{partition:?}: {plan}");
        }
    }

    /// A file of an older layout: `schema`, then the sample records as
    /// `adjust` leaves them, with their listing when the layout had one.
    fn old_file(path: &std::path::Path, schema: &str, listed: bool, adjust: impl Fn(&mut Record)) {
        let old = Connection::open(path).unwrap();
        old.execute_batch(schema).unwrap();
        for mut record in crate::store::samples::all() {
            adjust(&mut record);
            let (_, row) = encode(&record, Version(1)).unwrap();
            let listing = if listed { row.listed_as } else { None };
            old.execute(
                "INSERT INTO items (pk, sk, kind, version, expires_at, fields) VALUES (?1, ?2, ?3, 1, ?4, ?5)",
                params![row.pk, row.sk, row.kind, row.expires_at, row.fields],
            )
            .unwrap();
            if listing.is_some() {
                old.execute(
                    "UPDATE items SET listed_as = ?3 WHERE pk = ?1 AND sk = ?2",
                    params![row.pk, row.sk, listing],
                )
                .unwrap();
            }
        }
    }

    fn user_version(path: &std::path::Path) -> i64 {
        Connection::open(path).unwrap().query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap()
    }

    /// A file written before records named their listing is brought up to
    /// date when opened: what was listed is listed, through the index.
    #[tokio::test]
    async fn a_file_from_before_the_listing_and_time_line_columns_is_migrated() {
        use crate::domain::{RunStatus, Timestamp};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite3");
        let schema = "CREATE TABLE items (pk TEXT NOT NULL, sk TEXT NOT NULL, kind TEXT NOT NULL,
                 version INTEGER NOT NULL, expires_at INTEGER, fields BLOB NOT NULL, PRIMARY KEY (pk, sk));
             CREATE INDEX items_listed ON items (kind, pk) WHERE kind IN ('installation', 'repository');";
        old_file(&path, schema, false, |record| match record {
            Record::Run(run) => run.status = RunStatus::Pending,
            Record::Delivery(delivery) => delivery.received_at = Timestamp::now(),
            _ => {}
        });
        let store = EmbeddedStore::open(&path, Durability::Process).unwrap();
        let repo = crate::domain::RepoName::parse("acme/api").unwrap();
        for collection in [
            Collection::UnfinishedDeliveries,
            Collection::PendingRuns(repo.clone()),
            Collection::OpenPullRequests(repo),
            Collection::Repositories,
            Collection::Installations,
        ] {
            let found = store.query(&collection).await.unwrap();
            assert_eq!(found.len(), 1, "{collection:?}");
        }
        // And the deliveries are on their day's time line.
        let today = Collection::DeliveriesOn { day: Timestamp::now(), newest: 10 };
        assert_eq!(store.query(&today).await.unwrap().len(), 1);
        assert_eq!(user_version(&path), LAYOUT);
        // Opened again, nothing is migrated twice.
        drop(store);
        let store = EmbeddedStore::open(&path, Durability::Process).unwrap();
        assert_eq!(store.query(&Collection::Installations).await.unwrap().len(), 1);
    }

    /// A file of the listing's layout (version 1) gains the time lines when
    /// opened: its deliveries and launched runs are on them.
    #[tokio::test]
    async fn a_file_from_before_the_time_lines_is_migrated() {
        use crate::domain::Timestamp;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite3");
        let schema = "CREATE TABLE items (pk TEXT NOT NULL, sk TEXT NOT NULL, kind TEXT NOT NULL,
                 version INTEGER NOT NULL, expires_at INTEGER, fields BLOB NOT NULL, listed_as TEXT,
                 PRIMARY KEY (pk, sk));
             CREATE INDEX items_by_listing ON items (listed_as, pk) WHERE listed_as IS NOT NULL;
             PRAGMA user_version = 1;";
        let now = Timestamp::now();
        old_file(&path, schema, true, |record| match record {
            Record::Delivery(delivery) => delivery.received_at = now,
            Record::Run(run) => run.launched_at = Some(now),
            _ => {}
        });
        let store = EmbeddedStore::open(&path, Durability::Process).unwrap();
        for line in [Collection::DeliveriesOn { day: now, newest: 10 }, Collection::RunsOn { day: now, newest: 10 }] {
            assert_eq!(store.query(&line).await.unwrap().len(), 1, "{line:?}");
        }
        assert_eq!(store.query(&Collection::Installations).await.unwrap().len(), 1, "the listings stay");
        assert_eq!(user_version(&path), LAYOUT);
    }

    /// 4,096 characters of 64 kinds, from a xorshift generator.
    fn noise(state: &mut u64) -> String {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..4096)
            .map(|_| {
                *state ^= *state << 13;
                *state ^= *state >> 7;
                *state ^= *state << 17;
                ALPHABET[(*state >> 58) as usize] as char
            })
            .collect()
    }
}
