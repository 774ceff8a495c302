//! What the status page shows (README.md, "Status page"): tracked
//! repositories, the newest deliveries with what each decided, the newest
//! runs, open previews and the scheduled cycles' last reports. Reads only;
//! each read asks for at most so many records, whatever the size of the
//! organisation (a watched repository's previews: as many as it has up).

use futures::StreamExt;

use crate::domain::{CycleReport, Delivery, Preview, RepoName, Repository, Run, Timestamp};
use crate::store::{Collection, Entity, Key, StateStore, StoreError, Versioned};

/// The newest deliveries shown.
pub const DELIVERIES: usize = 100;

/// The newest runs shown.
pub const RUNS: usize = 100;

/// The repositories shown by name (the page says how many there are).
pub const REPOSITORIES: usize = 500;

/// The repositories whose previews are read: those of the newest
/// deliveries first, then the tracked ones, at most this many.
pub const WATCHED: usize = 50;

/// How many days of deliveries and runs are looked through: the ledger's
/// retention, and today.
const DAYS: u64 = 8;

/// The reports kept, in the order shown.
pub const REPORTS: [&str; 6] = ["reconcile", "reconcile.batch", "rotate", "rotate.batch", "poll", "poll.batch"];

/// Everything the page shows.
#[derive(Debug, Default)]
pub struct Status {
    /// The first [`REPOSITORIES`] tracked repositories, by name.
    pub repositories: Vec<Repository>,
    /// More are tracked than those.
    pub more_repositories: bool,
    /// The newest [`DELIVERIES`] of the last [`DAYS`] days, newest first.
    pub deliveries: Vec<Delivery>,
    /// The newest [`RUNS`] of the last [`DAYS`] days, newest first.
    pub runs: Vec<Run>,
    /// The previews of the watched repositories.
    pub previews: Vec<Preview>,
    /// Each cycle's last report, in [`REPORTS`] order, those there are.
    pub reports: Vec<CycleReport>,
}

/// Gathers the page's facts as of `now`.
pub async fn status(state: &dyn StateStore, now: Timestamp) -> Result<Status, StoreError> {
    // One more than shown: whether there are more.
    let first = Collection::FirstRepositories(REPOSITORIES + 1);
    let mut repositories: Vec<Repository> =
        state.list::<Repository>(&first).await?.into_iter().map(|f| f.record).collect();
    let more_repositories = repositories.len() > REPOSITORIES;
    repositories.truncate(REPOSITORIES);
    let deliveries = newest::<Delivery>(state, now, DELIVERIES, |day, newest| Collection::DeliveriesOn { day, newest });
    let runs = newest::<Run>(state, now, RUNS, |day, newest| Collection::RunsOn { day, newest });
    let (deliveries, runs) = futures::try_join!(deliveries, runs)?;
    let previews = previews(state, &watched(&deliveries, &repositories)).await?;
    let mut reports = Vec::new();
    for name in REPORTS {
        if let Some(found) = state.load::<CycleReport>(&Key::CycleReport(name.to_owned())).await? {
            reports.push(found.record);
        }
    }
    Ok(Status { repositories, more_repositories, deliveries, runs, previews, reports })
}

/// The newest `most` records of a kind, a day's time line (`line`) at a
/// time, today first.
async fn newest<T: Entity>(
    state: &dyn StateStore,
    now: Timestamp,
    most: usize,
    line: impl Fn(Timestamp, usize) -> Collection,
) -> Result<Vec<T>, StoreError> {
    let mut found = Vec::new();
    for days_ago in 0..DAYS {
        let wanted = most - found.len();
        if wanted == 0 {
            break;
        }
        let day = now.minus(std::time::Duration::from_secs(days_ago * 24 * 3600));
        let records = state.list::<T>(&line(day, wanted)).await?;
        found.extend(records.into_iter().map(|record| record.record).take(wanted));
    }
    Ok(found)
}

/// The repositories of the newest deliveries, then the tracked ones, each once.
fn watched(deliveries: &[Delivery], repositories: &[Repository]) -> Vec<RepoName> {
    let mut watched: Vec<RepoName> = Vec::new();
    let named = deliveries.iter().filter_map(|d| d.repo.as_ref()).chain(repositories.iter().map(|r| &r.name));
    for repo in named {
        if watched.len() == WATCHED {
            break;
        }
        if !watched.contains(repo) {
            watched.push(repo.clone());
        }
    }
    watched
}

/// Reads at most this many repositories' items at once.
const READS_AT_ONCE: usize = 8;

async fn previews(state: &dyn StateStore, watched: &[RepoName]) -> Result<Vec<Preview>, StoreError> {
    let collections: Vec<Collection> = watched.iter().map(|repo| Collection::Previews(repo.clone())).collect();
    let reads: Vec<_> = collections.iter().map(|previews| state.list::<Preview>(previews)).collect();
    let mut previews = flatten(futures::stream::iter(reads).buffer_unordered(READS_AT_ONCE).collect().await)?;
    previews.sort_by_key(|p| std::cmp::Reverse(p.applied_at));
    Ok(previews)
}

/// The records of every read, or the first read's failure.
fn flatten<T>(reads: Vec<Result<Vec<Versioned<T>>, StoreError>>) -> Result<Vec<T>, StoreError> {
    let mut records = Vec::new();
    for read in reads {
        records.extend(read?.into_iter().map(|found| found.record));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DeliveryId;

    fn repo(name: &str) -> RepoName {
        RepoName::parse(name).unwrap()
    }

    fn delivery(id: &str, about: Option<&str>) -> Delivery {
        let mut d = Delivery::received(DeliveryId::parse(id).unwrap(), "push", Timestamp::from_unix(0));
        d.repo = about.map(repo);
        d
    }

    fn tracked(name: &str) -> Repository {
        crate::usecase::track::fresh(&repo(name))
    }

    #[test]
    fn the_newest_deliveries_repositories_come_first_each_once() {
        let deliveries = [delivery("a", Some("acme/web")), delivery("b", None), delivery("c", Some("acme/web"))];
        let repositories = [tracked("acme/api"), tracked("acme/web")];
        assert_eq!(watched(&deliveries, &repositories), [repo("acme/web"), repo("acme/api")]);
    }

    /// Today's time line first, then the days before, until there are enough.
    #[tokio::test]
    async fn the_newest_come_from_today_then_the_days_before() {
        use crate::store::{Durability, EmbeddedStore};
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("state.sqlite3"), Durability::Process).unwrap();
        let now = Timestamp::now().unix();
        let today = now - now.rem_euclid(24 * 3600);
        let at = |seconds: i64| Timestamp::from_unix(today + seconds);
        for (id, seconds) in [("today-1", 10), ("today-2", 20), ("yesterday-1", -30), ("yesterday-2", -20)] {
            let mut delivery = delivery(id, None);
            delivery.received_at = at(seconds);
            store.create(&delivery.into()).await.unwrap();
        }
        let state: &dyn StateStore = &store;
        let line = |day, newest| Collection::DeliveriesOn { day, newest };
        let ids = |found: Vec<Delivery>| found.into_iter().map(|d| d.id.to_string()).collect::<Vec<_>>();
        assert_eq!(ids(newest(state, at(30), 3, line).await.unwrap()), ["today-2", "today-1", "yesterday-2"]);
        assert_eq!(ids(newest(state, at(30), 10, line).await.unwrap()).len(), 4);
        assert_eq!(ids(newest(state, at(30), 1, line).await.unwrap()), ["today-2"]);
    }

    #[test]
    fn at_most_so_many_repositories_are_watched() {
        let repositories: Vec<Repository> = (0..WATCHED + 10).map(|i| tracked(&format!("acme/r{i}"))).collect();
        let watched = watched(&[], &repositories);
        assert_eq!(watched.len(), WATCHED);
        assert_eq!(watched[0], repo("acme/r0"));
    }
}
