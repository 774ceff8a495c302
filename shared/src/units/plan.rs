//! The decision (pure): given what happened and the units a repository
//! asks for, what to launch, what to tear down, and why every other unit
//! does not run. Applying the plan is the only I/O (`usecase::launch`).

use globset::{Glob, GlobSetBuilder};
use serde::Serialize;

use super::{On, Unit};
use crate::domain::event::Command;
use crate::domain::{UnitDecision, UnitName};

/// What Ferry knows of a pull request when it plans for one. Whether its
/// head may run at all was decided before (`domain::trust`): a plan is
/// only made for a cleared commit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrFacts {
    pub draft: bool,
    pub labels: Vec<String>,
}

/// What happened, in the terms the plan needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Happening {
    Push {
        branch: Option<String>,
    },
    /// Opened, reopened, synchronized, ready for review, labelled.
    PullRequest(PrFacts),
    /// Closed: the previews Ferry recorded for it go (its head's file is
    /// not read again).
    PullRequestClosed {
        previews: Vec<UnitName>,
    },
    /// Published or released (`prerelease` for a prereleased one).
    Release {
        prerelease: bool,
    },
    ReleaseDeleted,
    /// A trusted user's comment command on a pull request: `unit` is the
    /// one it names, if it names one. (`/cancel` and unknown commands
    /// cancel or answer; they launch nothing.)
    Command {
        command: Command,
        unit: Option<String>,
        pr: PrFacts,
        failed: Vec<UnitName>,
    },
    /// A check suite or run someone asked to run again: its failed units.
    Rerequested {
        failed: Vec<UnitName>,
    },
}

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// Launch the unit's pipeline or task run.
    Run { unit: UnitName },
    /// Create the unit's preview environment, or roll it to the new image.
    Preview { unit: UnitName },
    /// Delete the unit's preview environment.
    RemovePreview { unit: UnitName },
    /// Record a trusted user's approval of the head SHA.
    Approve,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Run { unit } => write!(f, "run {unit}"),
            Change::Preview { unit } => write!(f, "preview {unit}"),
            Change::RemovePreview { unit } => write!(f, "remove the preview of {unit}"),
            Change::Approve => f.write_str("approve"),
        }
    }
}

/// A unit that does not run, and why: what "why didn't it run?" gets told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skip {
    pub unit: UnitName,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub skipped: Vec<Skip>,
    /// A command named a unit that does not exist (or runs nothing): why,
    /// with the units that do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
}

impl Plan {
    /// The skip reasons, one line, for the webhook's `reason`.
    pub fn reason(&self) -> Option<String> {
        if let Some(unknown) = &self.unknown {
            return Some(unknown.clone());
        }
        if self.skipped.is_empty() {
            return None;
        }
        Some(self.skipped.iter().map(|s| format!("{}: {}", s.unit, s.reason)).collect::<Vec<_>>().join("; "))
    }
}

impl Plan {
    /// Every unit's decision: what changes for it, or why it does not run.
    pub fn decisions(&self) -> Vec<UnitDecision> {
        let changed = self.changes.iter().filter_map(|change| match change {
            Change::Run { unit } | Change::Preview { unit } | Change::RemovePreview { unit } => {
                Some(UnitDecision { unit: unit.clone(), runs: true, what: change.to_string() })
            }
            Change::Approve => None,
        });
        let skipped =
            self.skipped.iter().map(|s| UnitDecision { unit: s.unit.clone(), runs: false, what: s.reason.clone() });
        changed.chain(skipped).collect()
    }
}

/// The plan for `happening`, given the repository's `units` and the paths
/// the change touched (`None`: unknown, so every path counts as changed).
pub fn plan(happening: &Happening, units: &[Unit], changed_paths: Option<&[String]>) -> Plan {
    let mut plan = Plan::default();
    let mut skip = |unit: &Unit, reason: String| plan.skipped.push(Skip { unit: unit.name.clone(), reason });
    let mut changes = Vec::new();
    match happening {
        Happening::Push { branch } => {
            for unit in units {
                let Some(branch) = branch else {
                    skip(unit, "a tag push runs nothing; a published release does".into());
                    continue;
                };
                match runs_on(unit, On::Push)
                    .and_then(|()| branch_matches(unit, branch))
                    .and_then(|()| paths_match(unit, changed_paths))
                {
                    Ok(()) if unit.runs_something() => changes.push(Change::Run { unit: unit.name.clone() }),
                    Ok(()) => skip(unit, "it has nothing to run: no pipeline or task ref, docker or helm".into()),
                    Err(reason) => skip(unit, reason),
                }
            }
        }
        Happening::PullRequest(pr) => pull_request(pr, units, changed_paths, &mut changes, &mut skip),
        Happening::PullRequestClosed { previews } => {
            changes.extend(previews.iter().map(|unit| Change::RemovePreview { unit: unit.clone() }));
        }
        Happening::Release { prerelease } => {
            for unit in units {
                match runs_on(unit, On::Release) {
                    Ok(()) if unit.runs_something() => changes.push(Change::Run { unit: unit.name.clone() }),
                    Ok(()) => {}
                    Err(reason) if !(*prerelease && unit.preview.is_some()) => skip(unit, reason),
                    Err(_) => {}
                }
                if *prerelease && unit.preview.is_some() {
                    changes.push(Change::Preview { unit: unit.name.clone() });
                }
            }
        }
        Happening::ReleaseDeleted => {
            for unit in units.iter().filter(|u| u.preview.is_some()) {
                changes.push(Change::RemovePreview { unit: unit.name.clone() });
            }
        }
        Happening::Command { command: Command::OkToTest, pr, .. } => {
            changes.push(Change::Approve);
            pull_request(pr, units, changed_paths, &mut changes, &mut skip);
        }
        Happening::Command { command: Command::Retest, unit: None, failed, .. } => {
            rerun(units, failed, &mut changes, &mut skip)
        }
        Happening::Command { command: Command::Test, unit: None, pr, .. } => {
            pull_request(pr, units, changed_paths, &mut changes, &mut skip)
        }
        Happening::Command { command: Command::Retest | Command::Test, unit: Some(name), .. } => {
            match named(units, name) {
                Ok(unit) => changes.push(Change::Run { unit: unit.name.clone() }),
                Err(why) => plan.unknown = Some(why),
            }
        }
        Happening::Command { command: Command::Cancel | Command::Unknown, .. } => {}
        Happening::Rerequested { failed } => rerun(units, failed, &mut changes, &mut skip),
    }
    plan.changes = changes;
    plan
}

fn pull_request(
    pr: &PrFacts,
    units: &[Unit],
    changed_paths: Option<&[String]>,
    changes: &mut Vec<Change>,
    skip: &mut impl FnMut(&Unit, String),
) {
    for unit in units {
        let wanted = runs_on(unit, On::PullRequest).map(|()| unit.runs_something());
        if let Err(reason) = &wanted
            && unit.preview.is_none()
        {
            skip(unit, reason.clone());
            continue;
        }
        let gate = pull_request_gate(unit, pr).and_then(|()| paths_match(unit, changed_paths));
        if let Err(reason) = gate {
            skip(unit, reason);
            continue;
        }
        if wanted == Ok(true) {
            changes.push(Change::Run { unit: unit.name.clone() });
        }
        if unit.preview.is_some() {
            changes.push(Change::Preview { unit: unit.name.clone() });
        }
    }
}

fn pull_request_gate(unit: &Unit, pr: &PrFacts) -> Result<(), String> {
    if pr.draft && !unit.drafts {
        return Err("the pull request is a draft (set `drafts = true` to run on drafts)".into());
    }
    if let Some(label) = pr.labels.iter().find(|l| unit.skip_labels.contains(l)) {
        return Err(format!("the pull request is labelled {label}"));
    }
    Ok(())
}

/// The unit a command names, run whatever its paths or `on` say; or why
/// not, with the units there are.
fn named<'a>(units: &'a [Unit], name: &str) -> Result<&'a Unit, String> {
    let runnable: Vec<&str> = units.iter().filter(|u| u.runs_something()).map(|u| u.name.as_str()).collect();
    let listed = if runnable.is_empty() { "none".to_owned() } else { runnable.join(", ") };
    match units.iter().find(|u| u.name.as_str() == name) {
        Some(unit) if unit.runs_something() => Ok(unit),
        Some(_) => Err(format!("unit `{name}` has nothing to run; units that run: {listed}")),
        None => Err(format!("there is no unit `{name}`; units that run: {listed}")),
    }
}

/// What `/cancel` (or `/cancel <unit>`) cancels among the runs still
/// running on the pull request's head: all of them, or that unit's; or
/// why nothing, with what is running.
pub fn to_cancel<'a>(
    running: &'a [crate::domain::Run],
    unit: Option<&str>,
) -> Result<Vec<&'a crate::domain::Run>, String> {
    let mut names: Vec<&str> = running.iter().map(|r| r.unit.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let chosen: Vec<&crate::domain::Run> =
        running.iter().filter(|r| unit.is_none_or(|unit| r.unit.as_str() == unit)).collect();
    match (chosen.is_empty(), unit) {
        (false, _) => Ok(chosen),
        (true, _) if running.is_empty() => Err("nothing of this pull request is running".into()),
        (true, Some(unit)) => Err(format!("no run of unit `{unit}` is running; running: {}", names.join(", "))),
        (true, None) => unreachable!("every running run is chosen without a unit"),
    }
}

fn rerun(units: &[Unit], failed: &[UnitName], changes: &mut Vec<Change>, skip: &mut impl FnMut(&Unit, String)) {
    for unit in units {
        if failed.contains(&unit.name) && unit.runs_something() {
            changes.push(Change::Run { unit: unit.name.clone() });
        } else {
            skip(unit, "it did not fail on this commit".into());
        }
    }
}

fn runs_on(unit: &Unit, on: On) -> Result<(), String> {
    if unit.on.contains(&on) {
        return Ok(());
    }
    let names: Vec<&str> = unit.on.iter().map(|o| on_name(*o)).collect();
    Err(format!("it runs on {}, not {}", names.join(", "), on_name(on)))
}

fn on_name(on: On) -> &'static str {
    match on {
        On::Push => "push",
        On::PullRequest => "pull_request",
        On::Release => "release",
    }
}

fn branch_matches(unit: &Unit, branch: &str) -> Result<(), String> {
    if unit.branches.is_empty() || matches_any(&unit.branches, [branch]) {
        return Ok(());
    }
    Err(format!("branch {branch} matches none of {}", unit.branches.join(", ")))
}

fn paths_match(unit: &Unit, changed: Option<&[String]>) -> Result<(), String> {
    match changed {
        _ if unit.paths.is_empty() => Ok(()),
        None => Ok(()),
        Some(changed) if matches_any(&unit.paths, changed.iter().map(String::as_str)) => Ok(()),
        Some(_) => Err(format!("no changed path matches {}", unit.paths.join(", "))),
    }
}

/// Whether any of `candidates` matches any of `globs` (`*` stays within a
/// path segment, `**` crosses them). Globs were checked when the file was read.
fn matches_any<'a>(globs: &[String], candidates: impl IntoIterator<Item = &'a str>) -> bool {
    let mut set = GlobSetBuilder::new();
    for glob in globs {
        if let Ok(glob) = globset::GlobBuilder::new(glob).literal_separator(true).build() {
            set.add(glob);
        } else if let Ok(glob) = Glob::new(glob) {
            set.add(glob);
        }
    }
    let Ok(set) = set.build() else { return false };
    candidates.into_iter().any(|c| set.is_match(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::{Preview, RunKind, RunSpec, SKIP_LABEL};

    fn unit(name: &str, on: &[On]) -> Unit {
        let run = RunSpec {
            kind: RunKind::Pipeline,
            namespace: None,
            reference: Some("build".into()),
            service_account: None,
            params: Default::default(),
        };
        Unit {
            skip_labels: vec![SKIP_LABEL.into()],
            run: Some(run),
            ..Unit::new(UnitName::parse(name).unwrap(), on.to_vec())
        }
    }

    fn with_preview(mut unit: Unit) -> Unit {
        unit.preview = Some(Preview { image: "i".into(), port: 80, host: "h".into() });
        unit
    }

    fn preview_only(name: &str) -> Unit {
        let mut unit = with_preview(unit(name, &[On::Push]));
        unit.run = None;
        unit
    }

    fn runs(names: &[&str]) -> Vec<Change> {
        names.iter().map(|n| Change::Run { unit: UnitName::parse(*n).unwrap() }).collect()
    }

    fn trusted() -> PrFacts {
        PrFacts::default()
    }

    fn push(branch: &str) -> Happening {
        Happening::Push { branch: Some(branch.into()) }
    }

    fn paths(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_push_runs_only_units_with_something_to_run() {
        let mut named_only = preview_only("site");
        named_only.run = Some(RunSpec {
            kind: RunKind::Pipeline,
            namespace: Some("prod".into()),
            reference: None,
            service_account: Some("admin".into()),
            params: Default::default(),
        });
        let plan = plan(&push("main"), &[named_only], None);
        assert!(plan.changes.is_empty(), "{plan:?}");
        assert_eq!(plan.skipped[0].reason, "it has nothing to run: no pipeline or task ref, docker or helm");
    }

    #[test]
    fn pushes_follow_on_branches_and_paths() {
        let mut api = unit("api", &[On::Push]);
        api.branches = vec!["main".into(), "release/*".into()];
        api.paths = vec!["api/**".into()];
        let docs = unit("docs", &[On::Release]);
        let mut web = unit("web", &[On::Push, On::PullRequest]);
        web.paths = vec!["web/*.ts".into()];
        let units = [api, docs, web];
        type Case<'a> = (&'a str, Happening, Option<Vec<String>>, Vec<&'a str>, Vec<(&'a str, &'a str)>);
        let cases: Vec<Case> = vec![
            (
                "main, api changed",
                push("main"),
                Some(paths(&["api/src/lib.rs"])),
                vec!["api"],
                vec![("docs", "it runs on release, not push"), ("web", "no changed path matches web/*.ts")],
            ),
            (
                "release branch glob",
                push("release/1.x"),
                Some(paths(&["api/x", "web/a.ts"])),
                vec!["api", "web"],
                vec![("docs", "it runs on release, not push")],
            ),
            (
                "`*` stays in one segment",
                push("release/1.x/hotfix"),
                Some(paths(&["web/deep/a.ts"])),
                vec![],
                vec![
                    ("api", "branch release/1.x/hotfix matches none of main, release/*"),
                    ("docs", "it runs on release, not push"),
                    ("web", "no changed path matches web/*.ts"),
                ],
            ),
            (
                "unknown paths count as all",
                push("main"),
                None,
                vec!["api", "web"],
                vec![("docs", "it runs on release, not push")],
            ),
            (
                "no path changed at all",
                push("main"),
                Some(vec![]),
                vec![],
                vec![
                    ("api", "no changed path matches api/**"),
                    ("docs", "it runs on release, not push"),
                    ("web", "no changed path matches web/*.ts"),
                ],
            ),
            (
                "a tag push",
                Happening::Push { branch: None },
                None,
                vec![],
                vec![
                    ("api", "a tag push runs nothing; a published release does"),
                    ("docs", "a tag push runs nothing; a published release does"),
                    ("web", "a tag push runs nothing; a published release does"),
                ],
            ),
        ];
        for (case, happening, changed, want, skipped) in cases {
            let plan = plan(&happening, &units, changed.as_deref());
            assert_eq!(plan.changes, runs(&want), "{case}");
            let got: Vec<(String, String)> =
                plan.skipped.iter().map(|s| (s.unit.to_string(), s.reason.clone())).collect();
            let skipped: Vec<(String, String)> = skipped.iter().map(|(u, r)| (u.to_string(), r.to_string())).collect();
            assert_eq!(got, skipped, "{case}");
        }
    }

    #[test]
    fn pull_requests_follow_drafts_labels_and_paths() {
        let api = with_preview(unit("api", &[On::Push, On::PullRequest]));
        let mut drafty = unit("drafty", &[On::PullRequest]);
        drafty.drafts = true;
        let pushonly = unit("pushonly", &[On::Push]);
        let site = preview_only("site");
        let units = [api, drafty, pushonly, site];
        let api = UnitName::parse("api").unwrap();
        let drafty_name = UnitName::parse("drafty").unwrap();
        let site_name = UnitName::parse("site").unwrap();
        let all = vec![
            Change::Run { unit: api.clone() },
            Change::Preview { unit: api.clone() },
            Change::Run { unit: drafty_name.clone() },
            Change::Preview { unit: site_name.clone() },
        ];
        let cases: Vec<(&str, PrFacts, Vec<Change>, usize)> = vec![
            ("a cleared pull request", trusted(), all.clone(), 1),
            ("a draft", PrFacts { draft: true, ..trusted() }, vec![Change::Run { unit: drafty_name.clone() }], 3),
            (
                "labelled ferry/skip",
                PrFacts { labels: vec!["bug".into(), "ferry/skip".into()], ..trusted() },
                vec![],
                4,
            ),
        ];
        for (case, facts, want, skipped) in cases {
            let plan = plan(&Happening::PullRequest(facts), &units, None);
            assert_eq!(plan.changes, want, "{case}");
            assert_eq!(plan.skipped.len(), skipped, "{case}: {:?}", plan.skipped);
        }
        let labelled =
            plan(&Happening::PullRequest(PrFacts { labels: vec!["ferry/skip".into()], ..trusted() }), &units, None);
        assert_eq!(labelled.skipped[0].reason, "the pull request is labelled ferry/skip");
        let pushonly = plan(&Happening::PullRequest(trusted()), &units, None);
        assert_eq!(pushonly.skipped[0].reason, "it runs on push, not pull_request");
    }

    #[test]
    fn closing_removes_the_recorded_previews_only() {
        let units = [with_preview(unit("api", &[On::PullRequest])), unit("docs", &[On::PullRequest])];
        let api = UnitName::parse("api").unwrap();
        let plan = plan(&Happening::PullRequestClosed { previews: vec![api.clone()] }, &units, None);
        assert_eq!(plan.changes, [Change::RemovePreview { unit: api }]);
        assert!(plan.skipped.is_empty());
        let none = super::plan(&Happening::PullRequestClosed { previews: vec![] }, &[], None);
        assert!(none.changes.is_empty() && none.skipped.is_empty());
    }

    #[test]
    fn releases_run_release_units_and_prereleases_get_a_preview() {
        let units = [with_preview(unit("api", &[On::Release])), unit("web", &[On::Push]), preview_only("site")];
        let name = |n: &str| UnitName::parse(n).unwrap();
        let published = plan(&Happening::Release { prerelease: false }, &units, None);
        assert_eq!(published.changes, runs(&["api"]));
        assert_eq!(published.skipped.len(), 2);
        let pre = plan(&Happening::Release { prerelease: true }, &units, None);
        assert_eq!(
            pre.changes,
            [
                Change::Run { unit: name("api") },
                Change::Preview { unit: name("api") },
                Change::Preview { unit: name("site") }
            ]
        );
        assert_eq!(pre.skipped, [Skip { unit: name("web"), reason: "it runs on push, not release".into() }]);
        let deleted = plan(&Happening::ReleaseDeleted, &units, None);
        assert_eq!(
            deleted.changes,
            [Change::RemovePreview { unit: name("api") }, Change::RemovePreview { unit: name("site") }]
        );
    }

    #[test]
    fn commands_approve_or_rerun() {
        let units = [unit("api", &[On::PullRequest]), unit("web", &[On::PullRequest])];
        let api = UnitName::parse("api").unwrap();
        let command =
            |command| Happening::Command { command, unit: None, pr: PrFacts::default(), failed: vec![api.clone()] };
        let ok = plan(&command(Command::OkToTest), &units, None);
        assert_eq!(
            ok.changes,
            [Change::Approve, Change::Run { unit: api.clone() }, Change::Run { unit: UnitName::parse("web").unwrap() }]
        );
        let retest = plan(&command(Command::Retest), &units, None);
        assert_eq!(retest.changes, [Change::Run { unit: api.clone() }]);
        assert_eq!(retest.skipped[0].reason, "it did not fail on this commit");
        let rerequested = plan(&Happening::Rerequested { failed: vec![api.clone()] }, &units, None);
        assert_eq!(rerequested.changes, [Change::Run { unit: api }]);
    }

    #[test]
    fn cancel_takes_every_running_run_or_the_named_unit_s() {
        let run = |unit: &str| crate::domain::Run {
            repo: crate::domain::RepoName::parse("acme/api").unwrap(),
            unit: UnitName::parse(unit).unwrap(),
            sha: crate::domain::Sha::parse("a".repeat(40)).unwrap(),
            namespace: "ci".into(),
            name: format!("ferry-{unit}"),
            status: crate::domain::RunStatus::Pending,
            reported: None,
            run_kind: None,
            queued_at: None,
            unit_limit: None,
            keep_runs: None,
            launched_at: None,
            pr: None,
            retain_until: None,
        };
        let running = [run("api"), run("web")];
        let names = |chosen: Vec<&crate::domain::Run>| chosen.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(to_cancel(&running, None).unwrap()), ["ferry-api", "ferry-web"]);
        assert_eq!(names(to_cancel(&running, Some("web")).unwrap()), ["ferry-web"]);
        assert_eq!(
            to_cancel(&running, Some("docs")).unwrap_err(),
            "no run of unit `docs` is running; running: api, web"
        );
        assert_eq!(to_cancel(&[], None).unwrap_err(), "nothing of this pull request is running");
        assert_eq!(to_cancel(&[], Some("api")).unwrap_err(), "nothing of this pull request is running");
    }

    #[test]
    fn test_and_retest_name_a_unit_and_run_it_whatever_its_paths_say() {
        let mut docs = unit("docs", &[On::Push]);
        docs.paths = vec!["docs/**".into()];
        let units = [unit("api", &[On::PullRequest]), docs, preview_only("site")];
        let name = |n: &str| UnitName::parse(n).unwrap();
        let command = |command, unit: Option<&str>| Happening::Command {
            command,
            unit: unit.map(str::to_owned),
            pr: PrFacts::default(),
            failed: vec![],
        };
        let changed = ["src/main.rs".to_owned()];
        for command_kind in [Command::Test, Command::Retest] {
            // Named: it runs, though it runs on push only and no docs path changed.
            let docs = plan(&command(command_kind, Some("docs")), &units, Some(&changed));
            assert_eq!(docs.changes, [Change::Run { unit: name("docs") }], "{command_kind:?}");
            assert_eq!(docs.unknown, None);
            let unknown = plan(&command(command_kind, Some("apii")), &units, Some(&changed));
            assert!(unknown.changes.is_empty());
            assert_eq!(unknown.reason().unwrap(), "there is no unit `apii`; units that run: api, docs");
            let preview = plan(&command(command_kind, Some("site")), &units, Some(&changed));
            assert_eq!(preview.reason().unwrap(), "unit `site` has nothing to run; units that run: api, docs");
        }
        // `/test` alone: what the pull request would run.
        let all = plan(&command(Command::Test, None), &units, Some(&changed));
        assert_eq!(all.changes, [Change::Run { unit: name("api") }, Change::Preview { unit: name("site") }]);
        for launches_nothing in [Command::Cancel, Command::Unknown] {
            let none = plan(&command(launches_nothing, Some("api")), &units, None);
            assert!(none.changes.is_empty() && none.unknown.is_none(), "{launches_nothing:?}");
        }
        assert!(
            plan(&command(Command::Test, Some("api")), &[], None).reason().unwrap().ends_with("units that run: none")
        );
    }
}
