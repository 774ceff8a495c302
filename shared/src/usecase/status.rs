//! What the status page shows (README.md, "Status page"): tracked
//! repositories, the newest deliveries with what each decided, runs, open
//! previews and the scheduled cycles' last reports. Reads only, each
//! bounded, whatever the size of the organisation.

use futures::StreamExt;

use crate::domain::{CycleReport, Delivery, Preview, RepoName, Repository, Run, Timestamp};
use crate::store::{Collection, Key, StateStore, StoreError, Versioned};

/// The newest deliveries shown.
pub const DELIVERIES: usize = 100;

/// The newest runs shown.
pub const RUNS: usize = 100;

/// The repositories shown by name (the page says how many there are).
pub const REPOSITORIES: usize = 500;

/// The repositories whose runs and previews are read: those of the newest
/// deliveries first, then the tracked ones, at most this many.
pub const WATCHED: usize = 50;

/// How many days of deliveries are looked through: the ledger's retention, and today.
const DAYS: u64 = 8;

/// The reports kept, in the order shown.
pub const REPORTS: [&str; 6] = ["reconcile", "reconcile.batch", "rotate", "rotate.batch", "poll", "poll.batch"];

/// Everything the page shows.
#[derive(Debug, Default)]
pub struct Status {
    /// The first [`REPOSITORIES`] tracked repositories, by name.
    pub repositories: Vec<Repository>,
    /// How many are tracked in all.
    pub tracked: usize,
    /// The newest [`DELIVERIES`], newest first.
    pub deliveries: Vec<Delivery>,
    /// The newest [`RUNS`] of the watched repositories, newest first.
    pub runs: Vec<Run>,
    /// The previews of the watched repositories.
    pub previews: Vec<Preview>,
    /// Each cycle's last report, in [`REPORTS`] order, those there are.
    pub reports: Vec<CycleReport>,
}

/// Gathers the page's facts as of `now`.
pub async fn status(state: &dyn StateStore, now: Timestamp) -> Result<Status, StoreError> {
    let mut repositories: Vec<Repository> =
        state.list::<Repository>(&Collection::Repositories).await?.into_iter().map(|found| found.record).collect();
    repositories.sort_by(|a, b| a.name.full_name().cmp(b.name.full_name()));
    let tracked = repositories.len();
    let deliveries = newest_deliveries(state, now).await?;
    let watched = watched(&deliveries, &repositories);
    repositories.truncate(REPOSITORIES);
    let (runs, previews) = futures::try_join!(runs(state, &watched), previews(state, &watched))?;
    let mut reports = Vec::new();
    for name in REPORTS {
        if let Some(found) = state.load::<CycleReport>(&Key::CycleReport(name.to_owned())).await? {
            reports.push(found.record);
        }
    }
    Ok(Status { repositories, tracked, deliveries, runs, previews, reports })
}

/// The newest [`DELIVERIES`], a day's time line at a time, today first.
async fn newest_deliveries(state: &dyn StateStore, now: Timestamp) -> Result<Vec<Delivery>, StoreError> {
    let mut deliveries = Vec::new();
    for days_ago in 0..DAYS {
        let wanted = DELIVERIES - deliveries.len();
        if wanted == 0 {
            break;
        }
        let day = now.minus(std::time::Duration::from_secs(days_ago * 24 * 3600));
        let found = state.list::<Delivery>(&Collection::DeliveriesOn { day, newest: wanted }).await?;
        deliveries.extend(found.into_iter().map(|found| found.record).take(wanted));
    }
    Ok(deliveries)
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

async fn runs(state: &dyn StateStore, watched: &[RepoName]) -> Result<Vec<Run>, StoreError> {
    let reads: Vec<_> = watched.iter().map(|repo| state.runs(repo)).collect();
    let mut runs = flatten(futures::stream::iter(reads).buffer_unordered(READS_AT_ONCE).collect().await)?;
    // Newest first; a run kept from before launch times were recorded last.
    runs.sort_by(|a, b| b.launched_at.cmp(&a.launched_at).then_with(|| a.name.cmp(&b.name)));
    runs.truncate(RUNS);
    Ok(runs)
}

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
    use crate::domain::{DeliveryId, RepoMode};

    fn repo(name: &str) -> RepoName {
        RepoName::parse(name).unwrap()
    }

    fn delivery(id: &str, about: Option<&str>) -> Delivery {
        let mut d = Delivery::received(DeliveryId::parse(id).unwrap(), "push", Timestamp::from_unix(0));
        d.repo = about.map(repo);
        d
    }

    fn tracked(name: &str) -> Repository {
        Repository {
            name: repo(name),
            mode: RepoMode::App,
            installation: None,
            hook_id: None,
            last_event_at: None,
            last_error: None,
            tracked_since: None,
        }
    }

    #[test]
    fn the_newest_deliveries_repositories_come_first_each_once() {
        let deliveries = [delivery("a", Some("acme/web")), delivery("b", None), delivery("c", Some("acme/web"))];
        let repositories = [tracked("acme/api"), tracked("acme/web")];
        assert_eq!(watched(&deliveries, &repositories), [repo("acme/web"), repo("acme/api")]);
    }

    #[test]
    fn at_most_so_many_repositories_are_watched() {
        let repositories: Vec<Repository> = (0..WATCHED + 10).map(|i| tracked(&format!("acme/r{i}"))).collect();
        let watched = watched(&[], &repositories);
        assert_eq!(watched.len(), WATCHED);
        assert_eq!(watched[0], repo("acme/r0"));
    }
}
