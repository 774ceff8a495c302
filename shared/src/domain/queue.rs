//! How many runs run at once (README.md, "Limits for a shared cluster"):
//! `max_running` for a repository and for a unit. A run past a limit is
//! created pending and waits; waiting runs start oldest first as earlier
//! ones finish. Runs are counted from Ferry's records: started and not yet
//! reported is running, `queued_at` is waiting.

use super::{Run, RunStatus, Timestamp};

fn running(run: &Run) -> bool {
    run.status == RunStatus::Pending && run.queued_at.is_none()
}

fn waiting(run: &Run) -> bool {
    run.status == RunStatus::Pending && run.queued_at.is_some()
}

/// Why `candidate`, a new run (its `unit_limit` its unit's), must wait,
/// if it must: it waits unless [`to_start`] would start it now, as the
/// newest of the waiting runs, queued `now`. `records` are the
/// repository's runs; the candidate's own record, if a redelivery finds
/// one, does not count against it.
pub fn must_wait(records: &[Run], candidate: &Run, repo_limit: Option<u32>, now: Timestamp) -> Option<String> {
    let mut all: Vec<Run> = records.iter().filter(|r| r.name != candidate.name).cloned().collect();
    let queued = Run { status: RunStatus::Pending, queued_at: Some(now), ..candidate.clone() };
    all.push(queued);
    if to_start(&all, repo_limit).iter().any(|r| r.name == candidate.name) {
        return None;
    }
    let others = &all[..all.len() - 1];
    let count = |state: fn(&Run) -> bool, unit_only: bool| {
        others.iter().filter(|r| state(r) && (!unit_only || r.unit == candidate.unit)).count()
    };
    let limits = [
        (repo_limit, false, "of the repository".to_owned()),
        (candidate.unit_limit, true, format!("of {}", candidate.unit)),
    ];
    for (limit, unit_only, whose) in limits {
        let Some(limit) = limit else { continue };
        let (running_now, waiting_now) = (count(running, unit_only), count(waiting, unit_only));
        if running_now + waiting_now >= limit as usize || waiting_now > 0 {
            return Some(match waiting_now {
                0 => format!("queued: {running_now} runs {whose} running (max_running = {limit})"),
                _ => format!("queued behind {waiting_now} waiting runs {whose} (max_running = {limit})"),
            });
        }
    }
    Some("queued behind earlier waiting runs (max_running)".into())
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
    use crate::domain::{RepoName, Sha, UnitName};

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
            launched_at: None,
            pr: None,
            retain_until: None,
        }
    }

    #[test]
    fn a_run_waits_past_a_limit_or_behind_waiting_runs() {
        use RunStatus::{Pending, Success};
        let now = Timestamp::from_unix(100);
        let new = |unit_limit| run("new", "api", Pending, None, unit_limit);
        let one_running = [run("r1", "api", Pending, None, None), run("done", "api", Success, None, None)];
        assert_eq!(must_wait(&one_running, &new(None), None, now), None, "no limit");
        assert_eq!(must_wait(&one_running, &new(None), Some(2), now), None, "room");
        assert_eq!(
            must_wait(&one_running, &new(None), Some(1), now).unwrap(),
            "queued: 1 runs of the repository running (max_running = 1)"
        );
        assert_eq!(
            must_wait(&one_running, &new(Some(1)), None, now).unwrap(),
            "queued: 1 runs of api running (max_running = 1)"
        );
        // Another unit's run does not count against api's own limit.
        let web_running = [run("w1", "web", Pending, None, None)];
        assert_eq!(must_wait(&web_running, &new(Some(1)), None, now), None);
        // Its own record (a redelivery) does not count.
        let itself = [run("new", "api", Pending, None, None)];
        assert_eq!(must_wait(&itself, &new(None), Some(1), now), None);
        // Older waiting runs that have room go first.
        let queued = [run("r1", "api", Pending, None, None), run("q1", "api", Pending, Some(5), None)];
        assert_eq!(
            must_wait(&queued, &new(None), Some(2), now).unwrap(),
            "queued behind 1 waiting runs of the repository (max_running = 2)"
        );
        // A waiting run blocked by its own unit's limit does not hold up another unit.
        let blocked = [run("r1", "web", Pending, None, Some(1)), run("q-web", "web", Pending, Some(5), Some(1))];
        assert_eq!(must_wait(&blocked, &new(None), Some(5), now), None);
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
