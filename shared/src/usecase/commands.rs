//! Pull request comment commands (README.md, "Comment commands"): what
//! `/cancel` and an unknown command do, and the one-line answer every
//! command gets on the pull request. `/test`, `/retest` and `/ok-to-test`
//! launch through `launch`, which reads the units at the cleared head.

use super::Action;
use super::launch::{LaunchError, LaunchPorts, Launched, target};
use crate::cluster::RunState;
use crate::domain::event::{Command, CommentDetail, GitEvent};
use crate::domain::{PrNumber, Run, RunStatus};
use crate::units::plan::to_cancel;

/// How an answer to an unknown command begins (and how it is told apart).
const UNKNOWN: &str = "unknown command";

/// The commands there are, for an unknown one's answer.
const KNOWN: &str = "/test [unit], /retest [unit], /cancel [unit], /ok-to-test [sha]";

/// Why an unknown command does nothing.
pub fn unknown(word: &str) -> String {
    format!("{UNKNOWN} `/{word}`; Ferry knows {KNOWN}")
}

/// Cancels the runs Ferry launched for pull request `number`, on any of
/// its heads, that have no result yet (or `unit`'s): a command's, or a
/// closed pull request's. A waiting run leaves the queue.
pub(super) async fn cancel_for(
    ports: LaunchPorts<'_>,
    at: &crate::forge::Target,
    number: PrNumber,
    unit: Option<&str>,
) -> Result<Launched, LaunchError> {
    let found: Vec<(Run, crate::store::Version)> = ports
        .state
        .runs(&at.repo)
        .await?
        .into_iter()
        .filter(|found| found.record.pr == Some(number) && found.record.status == RunStatus::Pending)
        .map(|found| (found.record, found.version))
        .collect();
    let running: Vec<Run> = found.iter().map(|(run, _)| run.clone()).collect();
    let chosen = match to_cancel(&running, unit) {
        Ok(chosen) => chosen,
        Err(why) => return Ok(Launched::note(why)),
    };
    let mut launched = Launched::default();
    for run in chosen {
        let state = RunState::of_record(run);
        ports.cluster.cancel(&state).await?;
        if run.queued_at.is_some()
            && let Some((_, version)) = found.iter().find(|(r, _)| r.name == run.name)
        {
            // Cancelled before it started: no longer waiting, reported as cancelled.
            let left = Run { queued_at: None, ..run.clone() };
            if let Err(e) = ports.state.update(&left.into(), *version).await {
                tracing::warn!(error = %e, run = %run.name, "a cancelled run still shows as waiting");
            }
        }
        launched.actions.push(Action::in_namespace("run.cancelled", run.namespace.clone(), run.name.clone()));
    }
    Ok(launched)
}

/// The one line a command gets: who asked what, and what came of it.
/// Ferry keeps one such comment per pull request and edits it, so commands
/// never fill a conversation. A stranger's command gets no answer:
/// strangers cannot make Ferry write.
pub(super) async fn answer(
    ports: LaunchPorts<'_>,
    event: &GitEvent,
    comment: &CommentDetail,
    command: Command,
    launched: &Result<Launched, LaunchError>,
) {
    let outcome = match launched {
        Ok(launched) => what_came(launched),
        // Retried by the reconciler, which answers then.
        Err(e) if is_retried(e) => return,
        Err(e) => format!("it failed: {e}"),
    };
    // A stranger's command, or an unknown one that reached no trusted ear, gets no answer.
    if outcome == crate::domain::trust::UNTRUSTED_COMMAND
        || (command == Command::Unknown && !outcome.starts_with(UNKNOWN))
    {
        return;
    }
    let Some(repo) = &event.repo else { return };
    let Ok(Some(at)) = target(ports.state, event, repo).await else { return };
    let asked = match (&comment.command_arg, command) {
        (Some(arg), Command::Unknown) => format!("/{arg}"),
        (Some(arg), _) => format!("{} {arg}", command.name()),
        (None, _) => command.name().to_owned(),
    };
    let mut line = format!("`{asked}` from @{}: {outcome}", comment.author);
    line.truncate(line.floor_char_boundary(1000));
    if let Err(e) = ports.forge.comment(&at, comment.number, "command", &line).await {
        tracing::warn!(error = %e, "could not answer the command");
    }
}

fn is_retried(error: &LaunchError) -> bool {
    matches!(error, LaunchError::Partly(_) | LaunchError::Store(_) | LaunchError::Cluster(_) | LaunchError::Forge(_))
}

/// What a launch did, in words: the runs it started or cancelled, else why nothing.
fn what_came(launched: &Launched) -> String {
    let named = |kinds: &[&str]| {
        let names: Vec<&str> =
            launched.actions.iter().filter(|a| kinds.contains(&a.kind.as_ref())).map(|a| a.name.as_str()).collect();
        names.join(", ")
    };
    let started = named(&["pipelinerun.created", "taskrun.created"]);
    let cancelled = named(&["run.cancelled"]);
    let mut parts = Vec::new();
    if !started.is_empty() {
        parts.push(format!("started {started}"));
    }
    if !cancelled.is_empty() {
        parts.push(format!("cancelled {cancelled}"));
    }
    if parts.is_empty() {
        parts.push(launched.reason.clone().unwrap_or_else(|| "nothing to do".into()));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launched(actions: &[(&'static str, &str)], reason: Option<&str>) -> Launched {
        Launched {
            actions: actions.iter().map(|(kind, name)| Action::new(kind, name)).collect(),
            reason: reason.map(str::to_owned),
            decisions: Vec::new(),
        }
    }

    #[test]
    fn an_answer_says_what_started_or_was_cancelled_else_why_nothing() {
        let cases = [
            (
                launched(&[("pipelinerun.created", "ferry-api-1"), ("taskrun.created", "ferry-web-1")], None),
                "started ferry-api-1, ferry-web-1",
            ),
            (launched(&[("run.cancelled", "ferry-api-1")], None), "cancelled ferry-api-1"),
            (
                launched(&[("pipelinerun.exists", "ferry-api-1")], Some("docs: no path matches")),
                "docs: no path matches",
            ),
            (launched(&[], None), "nothing to do"),
            (
                launched(&[], Some(&unknown("tset"))),
                "unknown command `/tset`; Ferry knows /test [unit], /retest [unit], /cancel [unit], /ok-to-test [sha]",
            ),
        ];
        for (launched, expected) in cases {
            assert_eq!(what_came(&launched), expected);
        }
    }
}
