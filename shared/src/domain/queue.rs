//! How many runs run at once (README.md, "Limits for a shared cluster"):
//! `max_running` for a repository and for a unit. A run past a limit is
//! created pending and waits; waiting runs start oldest first as earlier
//! ones finish. Runs are counted from Ferry's records: started and not yet
//! reported is running, `queued_at` is waiting.

use super::{Run, RunStatus, UnitName};

fn running(run: &Run) -> bool {
    run.status == RunStatus::Pending && run.queued_at.is_none()
}

fn waiting(run: &Run) -> bool {
    run.status == RunStatus::Pending && run.queued_at.is_some()
}

/// Why a new run `name` of `unit` must wait, if it must: a limit reached,
/// or runs waiting before it (they go first). `records` are the
/// repository's runs; the new run's own record, if a redelivery finds
/// one, does not count against it.
pub fn must_wait(
    records: &[Run],
    name: &str,
    unit: &UnitName,
    repo_limit: Option<u32>,
    unit_limit: Option<u32>,
) -> Option<String> {
    let others: Vec<&Run> = records.iter().filter(|r| r.name != name).collect();
    let count = |state: fn(&Run) -> bool, unit_only: bool| {
        others.iter().filter(|r| state(r) && (!unit_only || &r.unit == unit)).count()
    };
    let limits = [(repo_limit, false, "of the repository".to_owned()), (unit_limit, true, format!("of {unit}"))];
    for (limit, unit_only, whose) in limits {
        let Some(limit) = limit else { continue };
        let (waiting_now, running_now) = (count(waiting, unit_only), count(running, unit_only));
        if waiting_now > 0 {
            return Some(format!("queued behind {waiting_now} waiting runs {whose} (max_running = {limit})"));
        }
        if running_now >= limit as usize {
            return Some(format!("queued: {running_now} runs {whose} running (max_running = {limit})"));
        }
    }
    None
}

/// The waiting runs to start now, oldest first, as the repository's limit
/// and each one's unit limit leave room.
pub fn to_start(records: &[Run], repo_limit: Option<u32>) -> Vec<&Run> {
    let mut waiting_runs: Vec<&Run> = records.iter().filter(|r| waiting(r)).collect();
    waiting_runs.sort_by_key(|r| (r.queued_at, r.name.clone()));
    let mut started: Vec<&Run> = Vec::new();
    for candidate in waiting_runs {
        let in_repo = records.iter().filter(|r| running(r)).count() + started.len();
        let in_unit = records.iter().filter(|r| running(r) && r.unit == candidate.unit).count()
            + started.iter().filter(|r| r.unit == candidate.unit).count();
        let repo_room = repo_limit.is_none_or(|limit| in_repo < limit as usize);
        let unit_room = candidate.unit_limit.is_none_or(|limit| in_unit < limit as usize);
        if repo_room && unit_room {
            started.push(candidate);
        }
    }
    started
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{RepoName, Sha, Timestamp};

    fn run(name: &str, unit: &str, status: RunStatus, queued_at: Option<i64>, unit_limit: Option<u32>) -> Run {
        Run {
            repo: RepoName::parse("acme/api").unwrap(),
            unit: UnitName::parse(unit).unwrap(),
            sha: Sha::parse("a".repeat(40)).unwrap(),
            namespace: "ci".into(),
            name: name.into(),
            status,
            reported: None,
            run_kind: None,
            queued_at: queued_at.map(Timestamp::from_unix),
            unit_limit,
            keep_runs: None,
        }
    }

    fn api() -> UnitName {
        UnitName::parse("api").unwrap()
    }

    #[test]
    fn a_run_waits_past_a_limit_or_behind_waiting_runs() {
        use RunStatus::{Pending, Success};
        let one_running = [run("r1", "api", Pending, None, None), run("done", "api", Success, None, None)];
        assert_eq!(must_wait(&one_running, "new", &api(), None, None), None, "no limit");
        assert_eq!(must_wait(&one_running, "new", &api(), Some(2), None), None, "room");
        assert_eq!(
            must_wait(&one_running, "new", &api(), Some(1), None).unwrap(),
            "queued: 1 runs of the repository running (max_running = 1)"
        );
        assert_eq!(
            must_wait(&one_running, "new", &api(), None, Some(1)).unwrap(),
            "queued: 1 runs of api running (max_running = 1)"
        );
        // Another unit's run does not count against api's own limit.
        let web_running = [run("w1", "web", Pending, None, None)];
        assert_eq!(must_wait(&web_running, "new", &api(), None, Some(1)), None);
        // Its own record (a redelivery) does not count.
        assert_eq!(must_wait(&one_running, "r1", &api(), Some(1), None), None);
        // Waiting runs go first.
        let queued = [run("r1", "api", Pending, None, None), run("q1", "api", Pending, Some(5), None)];
        assert_eq!(
            must_wait(&queued, "new", &api(), Some(5), None).unwrap(),
            "queued behind 1 waiting runs of the repository (max_running = 5)"
        );
        assert!(must_wait(&queued, "new", &api(), None, Some(5)).unwrap().contains("of api"));
    }

    #[test]
    fn waiting_runs_start_oldest_first_as_the_limits_leave_room() {
        use RunStatus::{Pending, Success};
        let records = [
            run("done", "api", Success, None, None),
            run("running", "api", Pending, None, Some(1)),
            run("q-api-late", "api", Pending, Some(30), Some(1)),
            run("q-web", "web", Pending, Some(20), None),
            run("q-api-early", "api", Pending, Some(10), Some(1)),
            run("q-docs", "docs", Pending, Some(40), None),
        ];
        let names = |started: Vec<&Run>| started.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        // api is at its own limit: web and docs start, in order.
        assert_eq!(names(to_start(&records, None)), ["q-web", "q-docs"]);
        // The repository has room for one more: the oldest that fits.
        assert_eq!(names(to_start(&records, Some(2))), ["q-web"]);
        assert_eq!(names(to_start(&records, Some(1))), Vec::<String>::new());
        // Once api's run finished, its oldest waiting run starts, and only that one.
        let mut finished = records.clone();
        finished[1].status = Success;
        assert_eq!(names(to_start(&finished, None)), ["q-api-early", "q-web", "q-docs"]);
    }
}
