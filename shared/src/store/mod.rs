//! The state port: what Ferry remembers, in domain terms, and where.
//!
//! One table, `pk`/`sk` strings, TTL attribute `expires_at` (README.md,
//! "State"). [`Key`] and [`Collection`] are the only places that know the
//! layout; adapters only move items.

mod dynamo;
#[cfg(feature = "embedded")]
mod embedded;
mod size;

use std::fmt;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::{
    BodySeen, Cursor, CycleReport, Delivery, DeliveryId, DeliveryPart, Installation, InstallationId, ListingTags,
    Login, OauthState, PolledRef, PrNumber, PrState, Preview, PullRequest, RefName, Release, RepoName, Repository, Run,
    RunStatus, Sha, Tag, Timestamp, UnitName,
};

pub use dynamo::DynamoStore;
#[cfg(feature = "embedded")]
pub use embedded::EmbeddedStore;
pub use size::{ITEM_SIZE_LIMIT, item_size, json_item_size};

/// What a commit the store has acknowledged survives (`FERRY_EMBEDDED_DURABILITY`): a
/// setting of the embedded store, read by the configuration in every build.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// A crash of the machine or a power cut: the file is never corrupt,
    /// the last moments of commits may be lost. The log is fsynced before
    /// each checkpoint and when it starts over, the file after each
    /// checkpoint (SQLite's `synchronous = NORMAL` in WAL mode).
    #[default]
    Machine,
    /// A crash of Ferry's process, not of the machine: nothing is fsynced
    /// (`synchronous = OFF`), so no commit ever waits for the disk. A power
    /// cut can corrupt the file. Fine for trying Ferry, and the fastest.
    Process,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where one item lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Installation(InstallationId),
    Repository(RepoName),
    Ref(RepoName, RefName),
    PullRequest(RepoName, PrNumber),
    Release(RepoName, Tag),
    Run(RepoName, UnitName, Sha),
    /// A preview: the repository, what it is of (`pr-7`), the unit.
    Preview(RepoName, String, UnitName),
    Delivery(DeliveryId),
    Cursor(String),
    OauthState(String),
    /// A GitHub login's record, by login.
    Login(String),
    /// A delivery body, by its SHA-256 in hex.
    Body(String),
    /// One piece of a delivery's event too large for one item.
    DeliveryPart(DeliveryId, u32),
    /// The ETags of a repository's listings.
    ListingTags(RepoName),
    /// A scheduled cycle's last report, by name (`reconcile`, `reconcile.batch`).
    CycleReport(String),
}

impl Key {
    pub fn pk(&self) -> String {
        match self {
            Key::Installation(id) => format!("INST#{id}"),
            Key::Repository(repo)
            | Key::Ref(repo, _)
            | Key::PullRequest(repo, _)
            | Key::Release(repo, _)
            | Key::Run(repo, _, _)
            | Key::Preview(repo, _, _)
            | Key::ListingTags(repo) => repo_pk(repo),
            Key::Delivery(id) | Key::DeliveryPart(id, _) => format!("DELIVERY#{id}"),
            Key::Cursor(name) => format!("CURSOR#{name}"),
            Key::OauthState(state) => format!("OAUTH#{state}"),
            Key::Login(login) => format!("LOGIN#{login}"),
            Key::Body(hash) => format!("BODY#{hash}"),
            Key::CycleReport(name) => format!("REPORT#{name}"),
        }
    }

    pub fn sk(&self) -> String {
        match self {
            Key::Installation(_)
            | Key::Repository(_)
            | Key::Delivery(_)
            | Key::Cursor(_)
            | Key::OauthState(_)
            | Key::Login(_)
            | Key::Body(_)
            | Key::CycleReport(_) => "META".to_owned(),
            Key::Ref(_, name) => format!("REF#{name}"),
            Key::PullRequest(_, number) => format!("PR#{number}"),
            Key::Release(_, tag) => format!("REL#{tag}"),
            Key::Run(_, unit, sha) => format!("RUN#{unit}#{sha}"),
            Key::Preview(_, of, unit) => format!("PREVIEW#{of}#{unit}"),
            Key::DeliveryPart(_, index) => format!("PART#{index:06}"),
            Key::ListingTags(_) => "ETAGS".to_owned(),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.pk(), self.sk())
    }
}

fn repo_pk(repo: &RepoName) -> String {
    format!("REPO#{repo}")
}

/// A set of items read together: the items of one partition whose sort key
/// starts with one prefix, or every item of a listed kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collection {
    Refs(RepoName),
    PullRequests(RepoName),
    Releases(RepoName),
    Runs(RepoName),
    RunsOfUnit(RepoName, UnitName),
    /// A repository's runs whose result is not yet reported: what the
    /// reconciler and a new run's slot ask about, whatever else is kept.
    PendingRuns(RepoName),
    /// A repository's pull requests Ferry holds as open.
    OpenPullRequests(RepoName),
    Previews(RepoName),
    /// Every installation (the token rotator walks them).
    Installations,
    /// Every tracked repository (the poller and the reconciler walk them).
    Repositories,
    /// The first `n` tracked repositories by name (what the status page shows).
    FirstRepositories(usize),
    /// Every GitHub login with a stored token.
    Logins,
    /// Every delivery not yet done with (received, deferred or failed):
    /// what the reconciler tries again.
    UnfinishedDeliveries,
    /// The pieces of one delivery's event, in order.
    DeliveryParts(DeliveryId),
    /// The newest deliveries received on the (UTC) day of `day`, newest
    /// first, at most `newest` of them: what the status page shows.
    DeliveriesOn {
        day: Timestamp,
        newest: usize,
    },
    /// The newest runs launched on the (UTC) day of `day`, as [`Collection::DeliveriesOn`].
    RunsOn {
        day: Timestamp,
        newest: usize,
    },
}

/// Where a collection's items are found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Items of partition `pk` whose sort key starts with `sk_prefix`, in sort-key order.
    Partition { pk: String, sk_prefix: String },
    /// Items whose [`LISTED_AS`] attribute is `kind` (and, given `pk`, of
    /// that partition), in partition-key order, all or the `first` few: a
    /// sparse index, so only listed records cost anything to index.
    /// (DynamoDB orders one partition's listed items by nothing: `first`
    /// is for listings across partitions.)
    Listed { kind: &'static str, pk: Option<String>, first: Option<usize> },
    /// The newest `newest` items whose [`TIMELINE`] attribute is `line`,
    /// newest ([`TIMELINE_AT`], by the second) first: another sparse index,
    /// of keys only (the items are read from the table).
    Timeline { line: String, newest: usize },
}

/// The attribute (and DynamoDB index key) that puts a record in a time
/// line: a day's deliveries (`delivery#2026-12-03`) or runs (`run#…`), so
/// no one partition of the index takes every one there ever was.
pub const TIMELINE: &str = "timeline";

/// When a record in a time line happened, in Unix seconds: its order there.
pub const TIMELINE_AT: &str = "timeline_at";

/// The sparse index over [`TIMELINE`], sort key [`TIMELINE_AT`].
pub const TIMELINE_INDEX: &str = "by-time";

/// The attribute (and DynamoDB index key) that puts a record in a listing.
pub const LISTED_AS: &str = "listed_as";

/// The sparse index over [`LISTED_AS`], partition key `listed_as`, sort key `pk`.
pub const LISTING_INDEX: &str = "by-listing";

/// The listing of runs whose result is not yet reported.
const PENDING_RUN: &str = "pending_run";

/// The listing of pull requests held as open.
const OPEN_PULL_REQUEST: &str = "open_pull_request";

impl Collection {
    pub fn scope(&self) -> Scope {
        let partition = |repo: &RepoName, sk_prefix: String| Scope::Partition { pk: repo_pk(repo), sk_prefix };
        match self {
            Collection::Refs(repo) => partition(repo, "REF#".to_owned()),
            Collection::PullRequests(repo) => partition(repo, "PR#".to_owned()),
            Collection::Releases(repo) => partition(repo, "REL#".to_owned()),
            Collection::Runs(repo) => partition(repo, "RUN#".to_owned()),
            Collection::Previews(repo) => partition(repo, "PREVIEW#".to_owned()),
            Collection::RunsOfUnit(repo, unit) => partition(repo, format!("RUN#{unit}#")),
            Collection::PendingRuns(repo) => listed(PENDING_RUN, Some(repo_pk(repo))),
            Collection::OpenPullRequests(repo) => listed(OPEN_PULL_REQUEST, Some(repo_pk(repo))),
            Collection::Installations => listed("installation", None),
            Collection::Repositories => listed("repository", None),
            Collection::FirstRepositories(first) => Scope::Listed { kind: "repository", pk: None, first: Some(*first) },
            Collection::Logins => listed("login", None),
            Collection::UnfinishedDeliveries => listed("delivery", None),
            Collection::DeliveryParts(id) => {
                Scope::Partition { pk: Key::Delivery(id.clone()).pk(), sk_prefix: "PART#".to_owned() }
            }
            Collection::DeliveriesOn { day, newest } => {
                Scope::Timeline { line: time_line("delivery", *day), newest: *newest }
            }
            Collection::RunsOn { day, newest } => Scope::Timeline { line: time_line("run", *day), newest: *newest },
        }
    }
}

/// Every listed record of `kind` (of partition `pk`, if given).
fn listed(kind: &'static str, pk: Option<String>) -> Scope {
    Scope::Listed { kind, pk, first: None }
}

/// The time line of the `kind` of records that happened on `day`'s (UTC) day.
fn time_line(kind: &str, day: Timestamp) -> String {
    format!("{kind}#{}", day.day())
}

/// Declares every kind of record once: the [`Record`] variant, the type it
/// holds, the kind name stored beside its fields, and its [`Key`]. `key`,
/// `kind`, `decode` and the typed reads ([`Entity`]) all follow from it.
macro_rules! records {
    ($($variant:ident($ty:ty) as $kind:literal, key: |$it:ident| $key:expr;)*) => {
        /// Anything the store holds. Serialises as the inner record's fields
        /// alone; the kind is stored beside them and [`Record::decode`] reads
        /// it back.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
        #[serde(untagged)]
        pub enum Record {
            $($variant($ty),)*
        }

        impl Record {
            pub fn key(&self) -> Key {
                match self {
                    $(Record::$variant($it) => $key,)*
                }
            }

            pub fn kind(&self) -> &'static str {
                match self {
                    $(Record::$variant(_) => $kind,)*
                }
            }

            pub fn decode<F: Fields>(kind: &str, fields: F) -> Result<Record, String> {
                let err = |e: F::Error| format!("{kind}: {e}");
                match kind {
                    $($kind => Ok(Record::$variant(fields.decode().map_err(err)?)),)*
                    other => Err(format!("unknown kind {other:?}")),
                }
            }
        }

        $(
            impl From<$ty> for Record {
                fn from(value: $ty) -> Record {
                    Record::$variant(value)
                }
            }

            impl Entity for $ty {
                fn from_record(record: Record) -> Result<Self, Box<Record>> {
                    match record {
                        Record::$variant(value) => Ok(value),
                        other => Err(Box::new(other)),
                    }
                }
            }
        )*
    };
}

records! {
    Installation(Installation) as "installation", key: |i| Key::Installation(i.id);
    Repository(Repository) as "repository", key: |r| Key::Repository(r.name.clone());
    Ref(PolledRef) as "ref", key: |r| Key::Ref(r.repo.clone(), r.name.clone());
    PullRequest(PullRequest) as "pull_request", key: |p| Key::PullRequest(p.repo.clone(), p.number);
    Release(Release) as "release", key: |r| Key::Release(r.repo.clone(), r.tag.clone());
    Run(Run) as "run", key: |r| Key::Run(r.repo.clone(), r.unit.clone(), r.sha.clone());
    Preview(Preview) as "preview", key: |p| Key::Preview(p.repo.clone(), p.of.clone(), p.unit.clone());
    Delivery(Delivery) as "delivery", key: |d| Key::Delivery(d.id.clone());
    Cursor(Cursor) as "cursor", key: |c| Key::Cursor(c.name.clone());
    OauthState(OauthState) as "oauth_state", key: |o| Key::OauthState(o.state.clone());
    Login(Login) as "login", key: |l| Key::Login(l.login.clone());
    Body(BodySeen) as "body", key: |b| Key::Body(b.hash.clone());
    ListingTags(ListingTags) as "listing_tags", key: |l| Key::ListingTags(l.repo.clone());
    DeliveryPart(DeliveryPart) as "delivery_part", key: |p| Key::DeliveryPart(p.delivery.clone(), p.index);
    CycleReport(CycleReport) as "cycle_report", key: |r| Key::CycleReport(r.name.clone());
}

/// Something that can deserialize one record's fields in some format.
pub trait Fields {
    type Error: fmt::Display;
    fn decode<T: DeserializeOwned>(self) -> Result<T, Self::Error>;
}

impl Record {
    /// The listing this record belongs to, if its kind is listed.
    pub fn listed_as(&self) -> Option<&'static str> {
        match self {
            Record::Installation(_) | Record::Repository(_) | Record::Login(_) => Some(self.kind()),
            Record::Delivery(delivery) if delivery.is_unfinished() => Some(self.kind()),
            Record::Run(run) if run.status == RunStatus::Pending => Some(PENDING_RUN),
            Record::PullRequest(pr) if pr.state == PrState::Open => Some(OPEN_PULL_REQUEST),
            _ => None,
        }
    }

    /// The time line this record is in, and when in it, if its kind has one.
    pub fn timeline(&self) -> Option<(String, i64)> {
        match self {
            Record::Delivery(delivery) => {
                Some((time_line("delivery", delivery.received_at), delivery.received_at.unix()))
            }
            Record::Run(Run { launched_at: Some(at), .. }) => Some((time_line("run", *at), at.unix())),
            _ => None,
        }
    }

    /// When the store may forget this record (DynamoDB TTL).
    pub fn expires_at(&self) -> Option<Timestamp> {
        match self {
            Record::Delivery(d) => Some(d.expires_at()),
            Record::OauthState(o) => Some(o.created_at.plus(OauthState::LIFETIME)),
            Record::Body(b) => Some(b.received_at.plus(BodySeen::RETENTION)),
            Record::DeliveryPart(p) => Some(p.received_at.plus(Delivery::RETENTION)),
            // Kept while it may still need repair, then for the retention.
            Record::Run(run) if run.status != RunStatus::Pending => run.retain_until,
            Record::PullRequest(pr) if pr.state == PrState::Closed => pr.retain_until,
            _ => None,
        }
    }
}

/// A record type that can be read back out of a [`Record`].
pub trait Entity: Into<Record> + Sized {
    /// The record's value, or the record back when it is of another kind.
    fn from_record(record: Record) -> Result<Self, Box<Record>>;
}

/// The optimistic-lock version of an item: 1 when created, +1 per update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u64);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A record as stored, with the version an update must name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    pub record: T,
    pub version: Version,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{key} already exists")]
    AlreadyExists { key: Key },
    #[error("{key} changed since version {expected}")]
    StaleVersion { key: Key, expected: Version },
    #[error("{key} does not exist")]
    NotFound { key: Key },
    #[error("{key} would be {size} bytes, over the {ITEM_SIZE_LIMIT}-byte item limit")]
    TooLarge { key: Key, size: usize },
    #[error("{at} holds data Ferry cannot read: {problem}")]
    Corrupt { at: String, problem: String },
    #[error("the state store is throttling requests, still after retries")]
    Throttled(#[source] BoxError),
    #[error("the state store could not be reached")]
    Unavailable(#[source] BoxError),
    #[error("the state store failed")]
    Other(#[source] BoxError),
}

impl StoreError {
    /// Worth trying again later: the request itself was fine.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Throttled(_) | StoreError::Unavailable(_))
    }
}

/// The state port. Every adapter passes the contract suite in `tests/`.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Writes `record` at version 1 unless a live item holds its key.
    async fn create(&self, record: &Record) -> Result<Version, StoreError>;

    /// Writes every one of `records` at version 1 in one write, or none of
    /// them: when a live item holds one of their keys, nothing is written and
    /// the error names that key (the first, in order, of those taken).
    async fn create_all(&self, records: &[Record]) -> Result<(), StoreError>;

    /// The live item at `key`: an expired one is absent even before it is deleted.
    async fn get(&self, key: &Key) -> Result<Option<Versioned<Record>>, StoreError>;

    /// Replaces the item if it is still at `expected`; returns the new version.
    async fn update(&self, record: &Record, expected: Version) -> Result<Version, StoreError>;

    /// Removes the item; removing nothing is not an error.
    async fn delete(&self, key: &Key) -> Result<(), StoreError>;

    /// The live items of `collection`, in sort-key order.
    async fn query(&self, collection: &Collection) -> Result<Vec<Versioned<Record>>, StoreError>;
}

impl dyn StateStore + '_ {
    /// Every run record of `repo`, with its version.
    pub async fn runs(&self, repo: &RepoName) -> Result<Vec<Versioned<Run>>, StoreError> {
        self.list(&Collection::Runs(repo.clone())).await
    }

    /// [`StateStore::query`], typed: a record of another kind in the
    /// collection is corrupt, never silently skipped.
    pub async fn list<T: Entity>(&self, collection: &Collection) -> Result<Vec<Versioned<T>>, StoreError> {
        self.query(collection).await?.into_iter().map(typed).collect()
    }

    /// Creates `fresh`, or replaces what is at its key with `merge(current)`:
    /// for events that carry the whole truth about a record. Retries lost
    /// races a few times, since each retry reads the newer version.
    pub async fn save<T: Entity + Clone>(&self, fresh: T, merge: impl Fn(T) -> T) -> Result<Version, StoreError> {
        let fresh: Record = fresh.into();
        let key = fresh.key();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let written = match self.load::<T>(&key).await? {
                None => self.create(&fresh).await,
                Some(current) => self.update(&merge(current.record).into(), current.version).await,
            };
            match written {
                Err(
                    StoreError::AlreadyExists { .. } | StoreError::StaleVersion { .. } | StoreError::NotFound { .. },
                ) if attempts < 5 => {}
                other => return other,
            }
        }
    }

    /// As [`save`](Self::save), for a record that is usually new: created at
    /// once, and read and merged only when one is already there (one call
    /// instead of two in the usual case).
    pub async fn save_new<T: Entity + Clone>(&self, fresh: T, merge: impl Fn(T) -> T) -> Result<Version, StoreError> {
        match self.create(&fresh.clone().into()).await {
            Err(StoreError::AlreadyExists { .. }) => self.save(fresh, merge).await,
            created => created,
        }
    }

    /// [`StateStore::get`], typed: a record of another kind at `key` is corrupt.
    pub async fn load<T: Entity>(&self, key: &Key) -> Result<Option<Versioned<T>>, StoreError> {
        self.get(key).await?.map(typed).transpose()
    }
}

fn typed<T: Entity>(found: Versioned<Record>) -> Result<Versioned<T>, StoreError> {
    match T::from_record(found.record) {
        Ok(record) => Ok(Versioned { record, version: found.version }),
        Err(other) => {
            Err(StoreError::Corrupt { at: other.key().to_string(), problem: format!("holds a {}", other.kind()) })
        }
    }
}

/// Attribute names the layout owns; no record field may use them.
#[cfg(test)]
pub(crate) const RESERVED: [&str; 8] = ["pk", "sk", "kind", "version", "expires_at", LISTED_AS, TIMELINE, TIMELINE_AT];

/// The record's fields plus the layout's attributes, as JSON: the one shape
/// both adapters measure against the item size limit.
pub(crate) fn checked_fields(record: &Record, key: &Key, version: Version) -> Result<serde_json::Value, StoreError> {
    let mut fields = serde_json::to_value(record).map_err(|e| StoreError::Other(e.into()))?;
    let map = fields.as_object_mut().ok_or_else(|| StoreError::Corrupt {
        at: key.to_string(),
        problem: "a record must serialise as a map".into(),
    })?;
    map.insert("pk".into(), key.pk().into());
    map.insert("sk".into(), key.sk().into());
    map.insert("kind".into(), record.kind().into());
    map.insert("version".into(), version.0.into());
    if let Some(expires) = record.expires_at() {
        map.insert("expires_at".into(), expires.unix().into());
    }
    if let Some(listing) = record.listed_as() {
        map.insert(LISTED_AS.into(), listing.into());
    }
    if let Some((line, at)) = record.timeline() {
        map.insert(TIMELINE.into(), line.into());
        map.insert(TIMELINE_AT.into(), at.into());
    }
    let size = item_size(map);
    if size > ITEM_SIZE_LIMIT {
        return Err(StoreError::TooLarge { key: key.clone(), size });
    }
    Ok(fields)
}

/// The record's fields as JSON text, measured as [`checked_fields`] measures
/// them, layout attributes included: for adapters that store text. Text
/// under half the limit is not measured: no value counts more than twice
/// its JSON ([`size::at_most_twice_the_text`]), so it cannot be over.
#[cfg(feature = "embedded")]
pub(crate) fn checked_json(record: &Record, key: &Key, version: Version) -> Result<String, StoreError> {
    let text = serde_json::to_string(record).map_err(|e| StoreError::Other(e.into()))?;
    let layout = layout_size(record, key, version);
    if size::at_most_twice_the_text(&text) + layout <= ITEM_SIZE_LIMIT {
        return Ok(text);
    }
    let size = json_size(&text, layout)?;
    if size > ITEM_SIZE_LIMIT {
        return Err(StoreError::TooLarge { key: key.clone(), size });
    }
    Ok(text)
}

/// A record's exact size from its JSON text and its layout's [`layout_size`].
#[cfg(feature = "embedded")]
fn json_size(text: &str, layout: usize) -> Result<usize, StoreError> {
    Ok(json_item_size(text).map_err(|e| StoreError::Other(e.into()))? + layout)
}

/// What the layout's attributes add to a record's size.
#[cfg(feature = "embedded")]
fn layout_size(record: &Record, key: &Key, version: Version) -> usize {
    "pk".len()
        + key.pk().len()
        + "sk".len()
        + key.sk().len()
        + "kind".len()
        + record.kind().len()
        + "version".len()
        + size::number_size(version.0)
        + record.expires_at().map_or(0, |at| "expires_at".len() + size::number_size(at.unix()))
        + record.listed_as().map_or(0, |listing| LISTED_AS.len() + listing.len())
        + record
            .timeline()
            .map_or(0, |(line, at)| TIMELINE.len() + line.len() + TIMELINE_AT.len() + size::number_size(at))
}

pub(crate) fn is_live(expires_at: Option<i64>, now: Timestamp) -> bool {
    expires_at.is_none_or(|at| at > now.unix())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> RepoName {
        RepoName::parse("acme/api").unwrap()
    }

    #[test]
    fn keys_follow_the_single_table_layout() {
        let sha = Sha::parse("a".repeat(40)).unwrap();
        let unit = UnitName::parse("api").unwrap();
        let cases = [
            (Key::Installation(InstallationId::new(7)), "INST#7", "META"),
            (Key::Repository(repo()), "REPO#acme/api", "META"),
            (Key::Ref(repo(), RefName::parse("refs/heads/main").unwrap()), "REPO#acme/api", "REF#refs/heads/main"),
            (Key::PullRequest(repo(), PrNumber::new(12)), "REPO#acme/api", "PR#12"),
            (Key::Release(repo(), Tag::parse("v1.0").unwrap()), "REPO#acme/api", "REL#v1.0"),
            (Key::Delivery(DeliveryId::parse("abc-1").unwrap()), "DELIVERY#abc-1", "META"),
            (Key::Cursor("deliveries".into()), "CURSOR#deliveries", "META"),
        ];
        for (key, pk, sk) in cases {
            assert_eq!((key.pk().as_str(), key.sk().as_str()), (pk, sk));
        }
        let run = Key::Run(repo(), unit.clone(), sha.clone());
        assert_eq!(run.sk(), format!("RUN#api#{sha}"));
        let Scope::Partition { sk_prefix, .. } = Collection::RunsOfUnit(repo(), unit).scope() else { panic!() };
        assert!(run.sk().starts_with(&sk_prefix));
    }

    #[test]
    fn collections_match_only_their_keys() {
        let prefix = |collection: Collection| match collection.scope() {
            Scope::Partition { pk, sk_prefix } => (pk, sk_prefix),
            Scope::Listed { .. } | Scope::Timeline { .. } => panic!("{collection:?} is a partition"),
        };
        let pr = Key::PullRequest(repo(), PrNumber::new(1));
        let (pk, sk_prefix) = prefix(Collection::PullRequests(repo()));
        assert!(pr.pk() == pk && pr.sk().starts_with(&sk_prefix));
        assert!(!pr.sk().starts_with(&prefix(Collection::Releases(repo())).1));
        assert!(!pr.sk().starts_with(&prefix(Collection::Refs(repo())).1));
    }

    #[test]
    fn deliveries_and_launched_runs_are_on_their_day_s_time_line() {
        for record in crate::store::samples::all() {
            let expected = match &record {
                Record::Delivery(d) => Some((format!("delivery#{}", d.received_at.day()), d.received_at.unix())),
                Record::Run(Run { launched_at: Some(at), .. }) => Some((format!("run#{}", at.day()), at.unix())),
                _ => None,
            };
            assert_eq!(record.timeline(), expected, "{}", record.kind());
        }
        let day = Timestamp::from_unix(1_796_256_000 + 3600);
        let Scope::Timeline { line, newest } = (Collection::RunsOn { day, newest: 7 }).scope() else { panic!() };
        assert_eq!((line.as_str(), newest), ("run#2026-12-03", 7));
    }

    #[test]
    fn installations_repositories_and_what_may_need_repair_are_listed() {
        for record in crate::store::samples::all() {
            let listed = match &record {
                Record::Installation(_) | Record::Repository(_) | Record::Login(_) => Some(record.kind()),
                Record::Delivery(delivery) => delivery.is_unfinished().then(|| record.kind()),
                Record::Run(run) => (run.status == RunStatus::Pending).then_some(PENDING_RUN),
                Record::PullRequest(pr) => (pr.state == PrState::Open).then_some(OPEN_PULL_REQUEST),
                _ => None,
            };
            assert_eq!(record.listed_as(), listed);
        }
        assert_eq!(Collection::Installations.scope(), Scope::Listed { kind: "installation", pk: None, first: None });
        assert_eq!(Collection::Repositories.scope(), Scope::Listed { kind: "repository", pk: None, first: None });
        let pending = Collection::PendingRuns(repo()).scope();
        assert_eq!(pending, Scope::Listed { kind: PENDING_RUN, pk: Some("REPO#acme/api".into()), first: None });
    }

    #[test]
    fn records_never_use_a_layout_attribute_name() {
        for record in crate::store::samples::all() {
            let fields = serde_json::to_value(&record).unwrap();
            for name in RESERVED {
                assert!(fields.get(name).is_none(), "{} uses {name}", record.kind());
            }
            let decoded = Record::decode(record.kind(), JsonFields(fields)).unwrap();
            assert_eq!(decoded, record);
        }
    }

    /// A typed read of a key or a collection holding another kind is an
    /// error naming what it holds, never a silent skip.
    #[tokio::test]
    async fn typed_reads_refuse_a_record_of_another_kind() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("state.sqlite3"), Durability::Process).unwrap();
        let state: &dyn StateStore = &store;
        for record in crate::store::samples::all() {
            state.create(&record).await.unwrap();
            let read = state.load::<Installation>(&record.key()).await;
            match (&record, read) {
                (Record::Installation(_), Ok(Some(found))) => assert_eq!(Record::from(found.record), record),
                (_, Err(StoreError::Corrupt { problem, .. })) => {
                    assert_eq!(problem, format!("holds a {}", record.kind()))
                }
                // A sample dated long ago has expired: it reads as absent.
                (_, Ok(None)) if record.expires_at().is_some_and(|at| at < Timestamp::now()) => {}
                (_, other) => panic!("{}: {other:?}", record.kind()),
            }
        }
        let runs = state.list::<Run>(&Collection::Runs(repo())).await.unwrap();
        assert!(!runs.is_empty());
        let wrong = state.list::<Preview>(&Collection::Runs(repo())).await;
        assert!(matches!(wrong, Err(StoreError::Corrupt { problem, .. }) if problem == "holds a run"));
    }

    struct JsonFields(serde_json::Value);
    impl Fields for JsonFields {
        type Error = serde_json::Error;
        fn decode<T: DeserializeOwned>(self) -> Result<T, Self::Error> {
            serde_json::from_value(self.0)
        }
    }

    #[test]
    fn text_and_document_measures_agree() {
        for record in crate::store::samples::all() {
            let key = record.key();
            let document = checked_fields(&record, &key, Version(3)).unwrap();
            let text = serde_json::to_string(&record).unwrap();
            let size = json_size(&text, layout_size(&record, &key, Version(3))).unwrap();
            assert_eq!(size, item_size(document.as_object().unwrap()), "{}", record.kind());
        }
    }

    #[test]
    fn only_deliveries_their_parts_and_bodies_login_states_and_what_is_done_with_expire() {
        for record in crate::store::samples::all() {
            let expires = matches!(record.kind(), "delivery" | "delivery_part" | "body" | "oauth_state");
            assert_eq!(record.expires_at().is_some(), expires, "{}", record.kind());
        }
        let until = Timestamp::from_unix(2_000_000_000);
        let run = |status| {
            let Record::Run(run) = samples::all().into_iter().find(|r| r.kind() == "run").unwrap() else { panic!() };
            Record::from(Run { status, retain_until: Some(until), ..run })
        };
        assert_eq!(run(RunStatus::Pending).expires_at(), None, "a pending run is kept whatever it says");
        for done in [RunStatus::Success, RunStatus::Failure, RunStatus::Error] {
            assert_eq!(run(done).expires_at(), Some(until));
        }
        let pr = |state| {
            let Record::PullRequest(pr) = samples::all().into_iter().find(|r| r.kind() == "pull_request").unwrap()
            else {
                panic!()
            };
            Record::from(PullRequest { state, retain_until: Some(until), ..pr })
        };
        assert_eq!(pr(PrState::Open).expires_at(), None, "an open pull request is kept");
        assert_eq!(pr(PrState::Closed).expires_at(), Some(until));
    }
}

#[cfg(test)]
pub(crate) mod samples {
    use super::*;
    use crate::domain::*;

    /// One record of every kind.
    #[expect(clippy::too_many_lines, reason = "a literal record of every kind")]
    pub fn all() -> Vec<Record> {
        let repo = RepoName::parse("acme/api").unwrap();
        let sha = Sha::parse("b".repeat(40)).unwrap();
        vec![
            DeliveryPart {
                delivery: DeliveryId::parse("d-1").unwrap(),
                index: 3,
                text: "{\"name\":".into(),
                received_at: Timestamp::from_unix(1_800_000_000),
            }
            .into(),
            BodySeen {
                hash: "c".repeat(64),
                delivery: DeliveryId::parse("d-1").unwrap(),
                received_at: Timestamp::from_unix(1_800_000_000),
            }
            .into(),
            Installation {
                token_expires_at: Some(Timestamp::from_unix(7)),
                token_error: Some("GitHub answered 502".into()),
                ..Installation::new(InstallationId::new(1), "acme", "all")
            }
            .into(),
            Repository {
                name: repo.clone(),
                mode: RepoMode::App,
                installation: Some(InstallationId::new(1)),
                hook_id: None,
                last_event_at: None,
                last_error: None,
                tracked_since: Some(Timestamp::from_unix(4)),
            }
            .into(),
            PolledRef {
                repo: repo.clone(),
                name: RefName::parse("main").unwrap(),
                sha: Some(sha.clone()),
                etag: Some("W/\"x\"".into()),
                token_epoch: 2,
                next_poll_at: Timestamp::from_unix(5),
                endpoint: None,
                last_error: None,
            }
            .into(),
            PullRequest {
                repo: repo.clone(),
                number: PrNumber::new(3),
                head_sha: sha.clone(),
                state: PrState::Open,
                approved_sha: None,
                approved_by: None,
                preview_namespace: None,
                head_ref: Some("feature".into()),
                draft: false,
                labels: vec!["bug".into()],
                author_association: Some("MEMBER".into()),
                author: Some("someone".into()),
                updated_at: Some(Timestamp::from_unix(7)),
                head_at: Some(Timestamp::from_unix(6)),
                unseen_listings: 1,
                from_fork: false,
                head_pushed_by: None,
                untrusted_push: false,
                retain_until: None,
            }
            .into(),
            Release {
                repo: repo.clone(),
                tag: Tag::parse("v1").unwrap(),
                prerelease: true,
                recorded_at: Timestamp::from_unix(9),
            }
            .into(),
            Run {
                repo: repo.clone(),
                unit: UnitName::parse("api").unwrap(),
                sha: sha.clone(),
                namespace: "ci".into(),
                name: "api-x".into(),
                status: RunStatus::Pending,
                reported: None,
                run_kind: Some("PipelineRun".into()),
                queued_at: Some(Timestamp::from_unix(11)),
                unit_limit: Some(2),
                keep_runs: None,
                launched_at: Some(Timestamp::from_unix(6)),
                pr: None,
                retain_until: None,
            }
            .into(),
            Preview {
                repo: repo.clone(),
                of: "pr-3".into(),
                unit: UnitName::parse("api").unwrap(),
                namespace: "preview-api-api-pr-3-0a1b2c3d".into(),
                deployment: "api".into(),
                sha: sha.clone(),
                environment: "preview/api/pr-3".into(),
                github_deployment: Some(11),
                url: "https://api-pr-3.preview.example.com".into(),
                applied_at: Timestamp::from_unix(8),
                reported: None,
            }
            .into(),
            Delivery {
                id: DeliveryId::parse("d-1").unwrap(),
                event: "push".into(),
                received_at: Timestamp::from_unix(100),
                outcome: Outcome::Received,
                attempts: 0,
                reason: None,
                git_event: Some(Box::new(crate::domain::event::GitEvent {
                    name: "ping".into(),
                    action: None,
                    installation: None,
                    repo: None,
                    clone_url: None,
                    sender: Some("octocat".into()),
                    happened_at: Some(Timestamp::from_unix(99)),
                    detail: crate::domain::event::Detail::Ping,
                })),
                last_attempt_at: Some(Timestamp::from_unix(120)),
                parts: 0,
                repo: Some(repo.clone()),
                actions: vec![crate::domain::Action::in_namespace("pipelinerun.created", "ci", "ferry-api-1")],
                decisions: vec![crate::domain::UnitDecision {
                    unit: UnitName::parse("docs").unwrap(),
                    runs: false,
                    what: "no changed path matches docs/**".into(),
                }],
            }
            .into(),
            CycleReport {
                name: "reconcile".into(),
                at: Timestamp::from_unix(130),
                summary: "reconciled: nothing to do".into(),
                failures: vec!["acme/api: the cluster could not be reached".into()],
                fields: "{\"repositories\":1}".into(),
            }
            .into(),
            Cursor { name: "deliveries".into(), position: "42".into(), etag: Some("\"abc\"".into()) }.into(),
            ListingTags {
                repo: repo.clone(),
                pull_requests: Some("W/\"p\"".into()),
                open: vec![3],
                releases: None,
                listed: true,
            }
            .into(),
            OauthState { state: "s-1".into(), created_at: Timestamp::from_unix(50), used: false }.into(),
            Login { login: "octocat".into(), logged_in_at: Timestamp::from_unix(60) }.into(),
        ]
    }
}
