//! Launching units (README.md, "Units"; docs/architecture.md, "A delivery,
//! from the edge to the cluster"): read the repository's units at the
//! cleared commit, decide (pure),
//! then apply the plan to the cluster and report it on the forge.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

use crate::cluster::manifests::{self, Cause, PreviewOf, RunInput};
use crate::cluster::{Cluster, ClusterError, Label, RunState};
use crate::domain::event::{Command, CommentDetail, Detail, GitEvent, PullRequestDetail, ReleaseDetail};
use crate::domain::route::Trigger;
use crate::domain::tokens::Credential;
use crate::domain::trust::{self, Cleared, HeadFacts, Refusal, Subject};
use crate::domain::{
    Installation, PrNumber, PrState, Preview, PullRequest, Release, RepoMode, RepoName, Repository, Run, RunStatus,
    Sha, Timestamp, UnitDecision, UnitName,
};
use crate::forge::{CommitStatus, DeploymentStatus, Forge, ForgeError, StatusState, Target};
use crate::store::{Collection, Key, StateStore, StoreError};
use crate::units::plan::{Change, Happening, Plan, PrFacts, plan};
use crate::units::{OperatorConfig, TemplateContext, Unit, file, kube_git_deploy};

use super::Action;
use super::tokens::{TokenError, Tokens};

/// The ports launching needs.
#[derive(Clone, Copy)]
pub struct LaunchPorts<'a> {
    pub state: &'a dyn StateStore,
    pub tokens: &'a Tokens,
    pub forge: &'a dyn Forge,
    pub cluster: &'a dyn Cluster,
    pub operator: &'a OperatorConfig,
    /// Added to status contexts so two clusters do not overwrite each other.
    pub cluster_name: Option<&'a str>,
    pub clock: &'a dyn crate::domain::Clock,
}

impl<'a> LaunchPorts<'a> {
    /// Every port, from the composition root's context.
    pub fn of(context: &'a crate::Context) -> Self {
        Self {
            state: context.state.as_ref(),
            tokens: &context.tokens,
            forge: context.forge.as_ref(),
            cluster: context.cluster.as_ref(),
            operator: &context.operator,
            cluster_name: context.config.cluster_name.as_deref(),
            clock: &crate::domain::SystemClock,
        }
    }
}

/// What launching (or any action on a delivery) did, for the delivery log.
#[derive(Debug, Default)]
pub struct Launched {
    pub actions: Vec<Action>,
    /// Why units did not run, or why nothing could.
    pub reason: Option<String>,
    /// What was decided for each unit, when units were read.
    pub decisions: Vec<UnitDecision>,
}

impl Launched {
    /// Nothing done, for this reason.
    pub fn note(reason: String) -> Self {
        Self { reason: Some(reason), ..Self::default() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("the event names no repository")]
    NoRepository,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Forge(#[from] ForgeError),
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Some changes applied, some did not; the reconciler retries the event.
    #[error("{0}")]
    Partly(String),
}

/// The commit status context for `name`: `ferry/<name>`, or
/// `ferry/<cluster>/<name>` with a cluster name, so two clusters reporting
/// on one commit do not overwrite each other.
pub fn status_context(cluster_name: Option<&str>, name: &str) -> String {
    match cluster_name {
        Some(cluster) => format!("ferry/{cluster}/{name}"),
        None => format!("ferry/{name}"),
    }
}

fn context(ports: &LaunchPorts<'_>, name: &str) -> String {
    status_context(ports.cluster_name, name)
}

/// Everything one launch decides on.
struct Situation {
    happening: Happening,
    /// Whose code this is: what the trust boundary decides on.
    subject: Subject,
    /// When the event happened: runs of older events never supersede it.
    happened_at: Option<Timestamp>,
    sha: Option<Sha>,
    cause: Cause,
    /// Runs in one lane (branch, pull request, release) supersede each other.
    lane: String,
    pr: Option<PullRequest>,
    changed_paths: Option<Vec<String>>,
    tag: Option<String>,
}

#[tracing::instrument(
    skip_all,
    fields(repo = %event.repo.as_ref().map_or("", |r| r.full_name()), trigger = ?trigger)
)]
pub async fn launch(ports: LaunchPorts<'_>, event: &GitEvent, trigger: Trigger) -> Result<Launched, LaunchError> {
    let launched = launch_event(ports, event, trigger).await;
    // A command is answered on the pull request: what it did, or why not.
    if let (Trigger::Command(command), Detail::Comment(comment)) = (trigger, &event.detail) {
        super::commands::answer(ports, event, comment, command, &launched).await;
    }
    launched
}

async fn launch_event(ports: LaunchPorts<'_>, event: &GitEvent, trigger: Trigger) -> Result<Launched, LaunchError> {
    let repo = event.repo.clone().ok_or(LaunchError::NoRepository)?;
    let Some(target) = target(ports.state, event, &repo).await? else {
        return Ok(note(format!(
            "Ferry has no credential for {repo}: install the App on it, or track it with a token"
        )));
    };
    if let Credential::Installation(id) = &target.credential
        && let Some(found) = ports.state.load::<Installation>(&Key::Installation(*id)).await?
        && found.record.suspended
    {
        return Ok(note(format!("installation {id} is suspended: nothing launches")));
    }
    let situation = match situation(ports, &target, event, trigger).await? {
        Decision::Go(situation) => situation,
        Decision::Nothing(reason) => return Ok(note(reason)),
        Decision::Done(launched) => return Ok(launched),
    };
    let Some(sha) = situation.sha.clone() else {
        return Ok(note("the commit could not be resolved: nothing to build".into()));
    };
    if let Happening::PullRequestClosed { .. } = &situation.happening {
        let decided = plan(&situation.happening, &[], None);
        let mut launched = apply(ports, &target, &situation, &sha, &[], &decided, event).await?;
        if ports.operator.defaults.cancel_on_close
            && let Some(pr) = &situation.pr
        {
            // Nothing of a closed pull request is worth finishing; "nothing is running" is no news.
            let cancelled = super::commands::cancel_for(ports, &target, pr.number, None).await?;
            launched.actions.extend(cancelled.actions);
        }
        return Ok(launched);
    }
    let cleared = match trust::clear(&sha, &situation.subject) {
        Ok(cleared) => cleared,
        Err(refusal) => return refused(ports, &target, &sha, &refusal).await,
    };
    // Why a stranger-writable file is about to be read: the audit trail.
    tracing::info!(sha = %sha.short(), grant = ?cleared.grant, "the trust boundary cleared the commit");
    let mut template = TemplateContext::new(event, &repo, &sha);
    if let Some(pr) = &situation.pr {
        template = template.with_pr(pr.number, pr.head_ref.as_deref());
    }
    if let Some(tag) = &situation.tag {
        template.git.tag = Some(tag.clone());
    }
    let (units, from) = match units(ports, &target, &cleared, &template).await? {
        Units::Found { units, from } => (units, from),
        Units::None => {
            return Ok(note(format!("{repo} has no {} and the operator config gives it no units", file::FILE_NAME)));
        }
        Units::Broken { from, problem } => {
            let status =
                CommitStatus::new(context(&ports, "config"), StatusState::Failure, format!("{from}: {problem}"));
            ports.forge.status(&target, &sha, &status).await?;
            let mut launched = note(format!("{from} is broken: {problem}"));
            launched.actions.push(Action::new("status.failure", status.context));
            return Ok(launched);
        }
    };
    let decided = plan(&situation.happening, &units, situation.changed_paths.as_deref());
    let mut launched = apply(ports, &target, &situation, &sha, &units, &decided, event).await?;
    if units.is_empty() {
        // A condition can leave a file with no unit for this event: say so.
        launched.reason.get_or_insert_with(|| format!("{from} defines no unit for this {}", template.event));
    }
    Ok(launched)
}

fn note(reason: String) -> Launched {
    Launched::note(reason)
}

/// The trust boundary said no: nothing of the commit is read. A head
/// waiting for approval says so on the commit.
async fn refused(
    ports: LaunchPorts<'_>,
    target: &Target,
    sha: &Sha,
    refusal: &Refusal,
) -> Result<Launched, LaunchError> {
    let mut launched = note(refusal.reason().to_owned());
    if let Refusal::AwaitsApproval(reason) = refusal {
        let mut description = format!("Waits for /ok-to-test: {reason}");
        description.truncate(description.floor_char_boundary(140));
        let status = CommitStatus::new(context(&ports, "ok-to-test"), StatusState::Pending, description);
        ports.forge.status(target, sha, &status).await?;
        launched.actions.push(Action::new("status.pending", status.context));
    }
    Ok(launched)
}

/// How Ferry reaches the repository: its installation, its own token, or its own host.
pub(crate) async fn target(
    state: &dyn StateStore,
    event: &GitEvent,
    repo: &RepoName,
) -> Result<Option<Target>, StoreError> {
    if let Some(id) = event.installation {
        return Ok(Some(Target { repo: repo.clone(), credential: Credential::Installation(id) }));
    }
    Ok(state.load::<Repository>(&Key::Repository(repo.clone())).await?.and_then(|found| target_of(&found.record)))
}

/// Where and as whom a tracked repository is reached.
pub(crate) fn target_of(repository: &Repository) -> Option<Target> {
    let repo = repository.name.clone();
    let credential = match repository {
        Repository { mode: RepoMode::Token, .. } => Credential::Repository(repo.clone()),
        Repository { mode: RepoMode::Host, .. } => Credential::Host(repo.clone()),
        Repository { installation: Some(id), .. } => Credential::Installation(*id),
        _ => return None,
    };
    Some(Target { repo, credential })
}

/// What an event comes to before any unit is read.
enum Decision {
    Go(Box<Situation>),
    /// Nothing launches, for this reason.
    Nothing(String),
    /// Done without reading the commit (`/cancel`, an unknown command).
    Done(Launched),
}

impl Decision {
    fn go(situation: Situation) -> Self {
        Decision::Go(Box::new(situation))
    }

    fn nothing(event: &GitEvent) -> Self {
        Decision::Nothing(format!("{} action `{}` launches nothing", event.name, event.action.as_deref().unwrap_or("")))
    }
}

/// Whether `login` may run code here: GitHub says they are an owner,
/// member or collaborator, and (owners aside) the repository confirms they
/// can push. An organisation member is not trusted for being one.
async fn trusted(
    ports: LaunchPorts<'_>,
    target: &Target,
    login: Option<&str>,
    association: &str,
) -> Result<bool, ForgeError> {
    if !trust::is_trusted_association(association) {
        return Ok(false);
    }
    if association == "OWNER" {
        return Ok(true);
    }
    let Some(login) = login.filter(|l| !l.is_empty()) else { return Ok(false) };
    Ok(ports.forge.can_push(target, login).await?.unwrap_or(true))
}

/// What the trust boundary needs to know of a pull request's head.
async fn head_facts(ports: LaunchPorts<'_>, target: &Target, pr: &PullRequest) -> Result<HeadFacts, ForgeError> {
    let author = pr.author.as_deref();
    let author_trusted = trusted(ports, target, author, pr.author_association.as_deref().unwrap_or_default()).await?;
    let pusher_trusted = match pr.head_pushed_by.as_deref() {
        _ if !pr.from_fork || !author_trusted => None,
        Some(pusher) if Some(pusher) == author => Some(true),
        // Someone else pushed to the fork: GitHub gives no association
        // for them, so only the repository's own answer counts.
        Some(pusher) => Some(ports.forge.can_push(target, pusher).await? == Some(true)),
        None => None,
    };
    Ok(HeadFacts {
        author_trusted,
        from_fork: pr.from_fork,
        pusher_trusted,
        untrusted_push: pr.untrusted_push || (pr.from_fork && pusher_trusted == Some(false)),
        approved: pr.approved_sha.as_ref() == Some(&pr.head_sha),
    })
}

/// Remembers that someone who cannot push here pushed to the pull
/// request's fork: later heads carry their commits until an approval.
async fn remember_untrusted_push(state: &dyn StateStore, pr: &PullRequest) -> Result<(), StoreError> {
    let tainted = PullRequest { untrusted_push: true, ..pr.clone() };
    state.save(tainted, |known| PullRequest { untrusted_push: true, ..known }).await.map(drop)
}

/// A number naming one request (a `/retest` comment, a re-requested check):
/// the same request always gives the same number, so its redelivery names
/// the runs it started.
fn request_id(parts: &[&str]) -> u64 {
    let digest = Sha256::digest(parts.join("\n").as_bytes());
    u64::from_be_bytes(digest[..8].try_into().unwrap_or([0; 8]))
}

async fn situation(
    ports: LaunchPorts<'_>,
    target: &Target,
    event: &GitEvent,
    trigger: Trigger,
) -> Result<Decision, LaunchError> {
    let at = event.happened_at;
    Ok(match (&event.detail, trigger) {
        (Detail::Push(push), Trigger::Push) => Decision::go(Situation {
            happening: Happening::Push { branch: push.branch().map(str::to_owned) },
            subject: Subject::Push,
            happened_at: at,
            sha: Some(push.after.clone()),
            cause: Cause::Push,
            lane: push.git_ref.to_string(),
            pr: None,
            changed_paths: (!push.paths_truncated).then(|| push.changed_paths.clone()),
            tag: push.tag().map(str::to_owned),
        }),
        (Detail::PullRequest(detail), Trigger::PullRequest) => pull_request(ports, target, event, detail).await?,
        (Detail::Release(release), Trigger::Release) => release_situation(ports, target, event, release).await?,
        (Detail::Comment(comment), Trigger::Command(command)) => {
            command_situation(ports, target, event, comment, command).await?
        }
        (Detail::Rerequested { head_sha, check_id }, Trigger::Rerequested) => {
            let (ran_before, failed) = runs_of(ports.state, &target.repo, head_sha).await?;
            Decision::go(Situation {
                happening: Happening::Rerequested { failed },
                subject: Subject::Rerun { ran_before },
                happened_at: at,
                sha: Some(head_sha.clone()),
                cause: Cause::Retry(request_id(&[
                    "check",
                    &check_id.to_string(),
                    &at.unwrap_or_else(|| ports.clock.now()).unix().to_string(),
                ])),
                lane: format!("sha/{head_sha}"),
                pr: None,
                changed_paths: None,
                tag: None,
            })
        }
        // An event its trigger does not fit, or one that launches nothing:
        // a new kind of event must be placed here by name.
        (
            Detail::Push(_)
            | Detail::PullRequest(_)
            | Detail::Release(_)
            | Detail::Comment(_)
            | Detail::Rerequested { .. }
            | Detail::Ping
            | Detail::Installation(_)
            | Detail::InstallationRepositories(_)
            | Detail::Other,
            _,
        ) => Decision::nothing(event),
    })
}

/// A pull request event: what it says is recorded first (a late older one
/// changes nothing), then the facts about its head are gathered, and
/// [`decide_pull_request`] decides.
async fn pull_request(
    ports: LaunchPorts<'_>,
    target: &Target,
    event: &GitEvent,
    detail: &PullRequestDetail,
) -> Result<Decision, LaunchError> {
    let heard = heard(&target.repo, event, detail, ports.operator.reconciler.retain_from(ports.clock.now()));
    if record_heard(ports.state, &heard).await? {
        // Late, but what it says of who pushed still holds for later heads.
        if let Some(pusher) = heard.head_pushed_by.as_deref()
            && detail.from_fork
            && pusher != detail.author
            && ports.forge.can_push(target, pusher).await? != Some(true)
        {
            remember_untrusted_push(ports.state, &heard).await?;
        }
        return Ok(Decision::Nothing(format!(
            "pull request #{} changed after this event; the newer event decided",
            detail.number
        )));
    }
    let closed = heard.state == PrState::Closed;
    let key = Key::PullRequest(target.repo.clone(), detail.number);
    let record = ports.state.load::<PullRequest>(&key).await?.map_or(heard, |found| found.record);
    let facts = if record.head_sha != detail.head_sha {
        // Moved on meanwhile: the newer event decides, nothing is asked.
        PullRequestFacts::Moved
    } else if closed {
        PullRequestFacts::Closed { previews: recorded_previews(ports.state, &target.repo, detail.number).await? }
    } else {
        let head = head_facts(ports, target, &record).await?;
        if head.untrusted_push && !record.untrusted_push {
            remember_untrusted_push(ports.state, &record).await?;
        }
        PullRequestFacts::Open { head, changed: changed_files(ports, target, detail.number).await }
    };
    Ok(decide_pull_request(event, detail, record, facts))
}

/// The pull request as this event describes it.
/// Closed, it is kept until `closed_until`.
fn heard(repo: &RepoName, event: &GitEvent, detail: &PullRequestDetail, closed_until: Timestamp) -> PullRequest {
    let action = event.action.as_deref().unwrap_or("");
    PullRequest {
        repo: repo.clone(),
        number: detail.number,
        head_sha: detail.head_sha.clone(),
        state: if action == "closed" { PrState::Closed } else { PrState::Open },
        approved_sha: None,
        approved_by: None,
        preview_namespace: None,
        head_ref: Some(detail.head_ref.clone()),
        draft: detail.draft,
        labels: detail.labels.clone(),
        author_association: Some(detail.author_association.clone()),
        author: Some(detail.author.clone()),
        updated_at: event.happened_at,
        head_at: event.happened_at,
        unseen_listings: 0,
        from_fork: detail.from_fork,
        // Only these actions are sent by whoever brought the head.
        head_pushed_by: event.sender.clone().filter(|_| matches!(action, "opened" | "synchronize")),
        untrusted_push: false,
        retain_until: (action == "closed").then_some(closed_until),
    }
}

/// Records what the event says: whether it came late (the record had
/// heard of a newer update, which carried the whole pull request already).
async fn record_heard(state: &dyn StateStore, heard: &PullRequest) -> Result<bool, StoreError> {
    let stale = AtomicBool::new(false);
    state
        .save(heard.clone(), |known| {
            let merged = known.heard(heard.clone());
            stale.store(merged.updated_at != heard.updated_at && heard.updated_at.is_some(), Ordering::Relaxed);
            merged
        })
        .await?;
    Ok(stale.load(Ordering::Relaxed))
}

/// What is known of a recorded pull request when its event is decided.
#[derive(Debug)]
enum PullRequestFacts {
    /// Its head moved on while this event was handled.
    Moved,
    /// Closed: the units whose previews Ferry recorded for it.
    Closed { previews: Vec<UnitName> },
    /// Open: what the trust boundary needs of its head, and the paths it
    /// changes (`None`: unknown, every path counts).
    Open { head: HeadFacts, changed: Option<Vec<String>> },
}

/// What a pull request event comes to, from the recorded pull request and
/// the facts gathered about it.
fn decide_pull_request(
    event: &GitEvent,
    detail: &PullRequestDetail,
    record: PullRequest,
    facts: PullRequestFacts,
) -> Decision {
    let (happening, subject, changed) = match facts {
        PullRequestFacts::Moved => {
            return Decision::Nothing(format!(
                "pull request #{} moved to {} while this event was handled; the newer event decides",
                detail.number,
                record.head_sha.short()
            ));
        }
        PullRequestFacts::Closed { previews } => {
            (Happening::PullRequestClosed { previews }, Subject::PullRequestHead(HeadFacts::default()), None)
        }
        PullRequestFacts::Open { head, changed } => {
            let facts = PrFacts { draft: detail.draft, labels: detail.labels.clone() };
            (Happening::PullRequest(facts), Subject::PullRequestHead(head), changed)
        }
    };
    Decision::go(Situation {
        happening,
        subject,
        happened_at: event.happened_at,
        sha: Some(detail.head_sha.clone()),
        cause: Cause::PullRequest(detail.number),
        lane: format!("pull/{}", detail.number),
        pr: Some(record),
        changed_paths: changed,
        tag: None,
    })
}

/// The units whose previews Ferry recorded for pull request `number`.
async fn recorded_previews(
    state: &dyn StateStore,
    repo: &RepoName,
    number: PrNumber,
) -> Result<Vec<UnitName>, StoreError> {
    let of = preview_key(&PreviewOf::PullRequest(number));
    let previews = state.list::<Preview>(&Collection::Previews(repo.clone())).await?;
    Ok(previews.into_iter().filter(|found| found.record.of == of).map(|found| found.record.unit).collect())
}

async fn release_situation(
    ports: LaunchPorts<'_>,
    target: &Target,
    event: &GitEvent,
    release: &ReleaseDetail,
) -> Result<Decision, LaunchError> {
    let happening = match event.action.as_deref().unwrap_or("") {
        "published" | "released" => Happening::Release { prerelease: false },
        "prereleased" => Happening::Release { prerelease: true },
        "deleted" => Happening::ReleaseDeleted,
        _ => return Ok(Decision::nothing(event)),
    };
    let sha = match ports.forge.commit_of(target, release.tag.as_str()).await? {
        Some(sha) => Some(sha),
        None => ports.forge.commit_of(target, &release.target_commitish).await?,
    };
    if !matches!(happening, Happening::ReleaseDeleted) {
        let record = Release {
            repo: target.repo.clone(),
            tag: release.tag.clone(),
            prerelease: release.prerelease,
            recorded_at: ports.clock.now(),
        };
        ports.state.save(record.clone(), |_| record.clone()).await?;
        forget_old_releases(ports, &target.repo).await?;
    }
    Ok(Decision::go(Situation {
        happening,
        subject: Subject::Release,
        happened_at: event.happened_at,
        sha,
        cause: Cause::Release,
        lane: format!("release/{}", release.tag),
        pr: None,
        changed_paths: None,
        tag: Some(release.tag.to_string()),
    }))
}

/// Keeps the repository's newest `[reconciler] keep_releases` releases.
async fn forget_old_releases(ports: LaunchPorts<'_>, repo: &RepoName) -> Result<(), StoreError> {
    let recorded: Vec<Release> =
        ports.state.list::<Release>(&Collection::Releases(repo.clone())).await?.into_iter().map(|f| f.record).collect();
    for old in crate::domain::repair::releases_to_forget(&recorded, ports.operator.reconciler.releases_kept()) {
        ports.state.delete(&Key::Release(old.repo.clone(), old.tag.clone())).await?;
    }
    Ok(())
}

async fn command_situation(
    ports: LaunchPorts<'_>,
    target: &Target,
    event: &GitEvent,
    comment: &CommentDetail,
    command: Command,
) -> Result<Decision, LaunchError> {
    let repo = &target.repo;
    let at = event.happened_at;
    // First: a stranger's command is answered by nothing, whatever the pull request's state.
    let by_trusted = trusted(ports, target, Some(&comment.author), &comment.author_association).await?;
    if !by_trusted {
        return Ok(Decision::Nothing(trust::UNTRUSTED_COMMAND.to_owned()));
    }
    let Some(found) = ports.state.load::<PullRequest>(&Key::PullRequest(repo.clone(), comment.number)).await? else {
        return Ok(Decision::Nothing(format!(
            "pull request #{} is not known yet: its opening event has not arrived",
            comment.number
        )));
    };
    let pr = found.record;
    // A closed pull request runs nothing, and gets no preview back.
    if pr.state == PrState::Closed {
        return Ok(Decision::Nothing(format!("pull request #{} is closed: commands do nothing", pr.number)));
    }
    match command {
        Command::Cancel => {
            let cancelled =
                super::commands::cancel_for(ports, target, pr.number, comment.command_arg.as_deref()).await?;
            return Ok(Decision::Done(cancelled));
        }
        Command::Unknown => {
            let word = comment.command_arg.as_deref().unwrap_or_default();
            return Ok(Decision::Done(note(super::commands::unknown(word))));
        }
        Command::Retest | Command::OkToTest | Command::Test => {}
    }
    let approves = command == Command::OkToTest;
    if approves && let Err(why) = trust::approval(comment.command_arg.as_deref(), &pr.head_sha, pr.head_at, at) {
        return Ok(Decision::Nothing(format!("#{}: {why}", pr.number)));
    }
    let head = head_facts(ports, target, &pr).await?;
    let (_, failed) = runs_of(ports.state, repo, &pr.head_sha).await?;
    let changed = changed_files(ports, target, pr.number).await;
    let request = if comment.id != 0 {
        request_id(&["comment", &comment.id.to_string()])
    } else {
        request_id(&["comment", &comment.author, &at.map_or(0, Timestamp::unix).to_string()])
    };
    Ok(Decision::go(Situation {
        happening: Happening::Command {
            command,
            unit: comment.command_arg.clone().filter(|_| command != Command::OkToTest),
            pr: PrFacts { draft: pr.draft, labels: pr.labels.clone() },
            failed,
        },
        subject: Subject::Command { by_trusted, approves, head },
        happened_at: at,
        sha: Some(pr.head_sha.clone()),
        // Asked to run again: new runs, whatever ran before.
        cause: match command {
            Command::Retest | Command::Test => Cause::Retry(request),
            Command::OkToTest | Command::Cancel | Command::Unknown => Cause::PullRequest(pr.number),
        },
        lane: format!("pull/{}", pr.number),
        pr: Some(PullRequest { approved_by: Some(comment.author.clone()), ..pr }),
        changed_paths: changed,
        tag: None,
    }))
}

async fn changed_files(ports: LaunchPorts<'_>, target: &Target, number: PrNumber) -> Option<Vec<String>> {
    match ports.forge.pull_request_files(target, number).await {
        Ok(files) => files,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the pull request's files; every path counts as changed");
            None
        }
    }
}

/// Whether Ferry ran anything on `sha`, and the units whose last run there
/// failed: what `/retest` runs again.
async fn runs_of(state: &dyn StateStore, repo: &RepoName, sha: &Sha) -> Result<(bool, Vec<UnitName>), StoreError> {
    let runs: Vec<Run> =
        state.runs(repo).await?.into_iter().map(|found| found.record).filter(|run| &run.sha == sha).collect();
    let ran = !runs.is_empty();
    let failed = runs
        .into_iter()
        .filter(|run| matches!(run.status, RunStatus::Failure | RunStatus::Error))
        .map(|run| run.unit)
        .collect();
    Ok((ran, failed))
}

enum Units {
    /// The units, and the file they came from.
    Found {
        units: Vec<Unit>,
        from: &'static str,
    },
    None,
    Broken {
        from: &'static str,
        problem: String,
    },
}

/// The repository's `.ferry.toml` at the cleared commit, else its
/// `kube-git-deploy.toml` there, else the operator's units for it. Only
/// the trust boundary makes a [`Cleared`].
async fn units(
    ports: LaunchPorts<'_>,
    target: &Target,
    cleared: &Cleared,
    template: &TemplateContext,
) -> Result<Units, LaunchError> {
    let mut found = None;
    for from in [file::FILE_NAME, kube_git_deploy::FILE_NAME] {
        if let Some(text) = ports.forge.file(target, cleared.sha(), from).await? {
            found = Some((from, text));
            break;
        }
    }
    let Some((from, text)) =
        found.or_else(|| Some((file::FILE_NAME, ports.operator.units_for(&target.repo)?.to_owned())))
    else {
        return Ok(Units::None);
    };
    let parsed = match from {
        kube_git_deploy::FILE_NAME => kube_git_deploy::parse_bounded(text, template.clone()).await,
        _ => file::parse_bounded(text, template.clone()).await,
    };
    let units = match parsed {
        Ok(units) => units,
        Err(problem) => return Ok(Units::Broken { from, problem: problem.to_string() }),
    };
    // What the repository claims, within what the operator allows.
    Ok(match ports.operator.check_units(&target.repo, &units) {
        Ok(()) => Units::Found { units, from },
        Err(violation) => Units::Broken { from, problem: format!("policy: {violation}") },
    })
}

async fn apply(
    ports: LaunchPorts<'_>,
    target: &Target,
    situation: &Situation,
    sha: &Sha,
    units: &[Unit],
    decided: &Plan,
    event: &GitEvent,
) -> Result<Launched, LaunchError> {
    let by_name: BTreeMap<&UnitName, &Unit> = units.iter().map(|u| (&u.name, u)).collect();
    let mut launched = Launched { actions: Vec::new(), reason: decided.reason(), decisions: decided.decisions() };
    let mut problems = Vec::new();
    let clone_url = match (&event.clone_url, &target.credential) {
        (Some(url), _) => url.clone(),
        // Never github.com for a repository of another host: its own entry's URL.
        (None, Credential::Host(repo)) => match ports.operator.hosted(repo) {
            Some((tracked, _)) => tracked.clone_url(),
            None => return Ok(note(format!("no [[poll]] entry names {repo} any more"))),
        },
        (None, _) => format!("https://github.com/{}.git", target.repo),
    };
    for change in &decided.changes {
        let done = match change {
            Change::Run { unit } => match by_name.get(unit) {
                Some(unit) => run(ports, target, situation, sha, unit, &clone_url, &mut launched).await,
                None => Ok(()),
            },
            Change::Preview { unit } => match by_name.get(unit) {
                Some(unit) => preview(ports, target, situation, sha, unit, &mut launched).await,
                None => Ok(()),
            },
            Change::RemovePreview { unit } => remove_preview(ports, target, situation, unit, &mut launched).await,
            Change::Approve => approve(ports, target, situation, sha, &mut launched).await,
        };
        if let Err(e) = done {
            tracing::warn!(error = %e, %change, "could not apply a change; the reconciler retries the event");
            problems.push(e.to_string());
        }
    }
    if !problems.is_empty() {
        return Err(LaunchError::Partly(problems.join("; ")));
    }
    Ok(launched)
}

/// Applies `run`'s clone Secret (uid `uid`), with a fresh token for its
/// repository, if it has a clone credential at all; without one the run
/// clones anonymously.
pub(super) async fn clone_secret(
    ports: LaunchPorts<'_>,
    target: &Target,
    run: &manifests::Manifest,
    uid: &str,
) -> Result<(), LaunchError> {
    let Some(clone) = CloneWith::of(ports, target) else { return Ok(()) };
    match clone.credential(ports, &target.repo).await {
        Ok((username, token)) => {
            use secrecy::ExposeSecret;
            ports.cluster.apply(&manifests::git_secret(run, uid, &username, token.expose_secret())).await?;
        }
        Err(e) => tracing::warn!(error = %e, "no clone token for the run; it clones anonymously"),
    }
    Ok(())
}

/// What a run clones with, read only: a token for this repository alone
/// minted from its installation, or the clone token its `[[poll]]` entry
/// names on another host. Without either it clones anonymously.
enum CloneWith<'a> {
    Installation(crate::domain::InstallationId),
    Host { provider: crate::report::Provider, secret: &'a str },
}

impl<'a> CloneWith<'a> {
    fn of(ports: LaunchPorts<'a>, target: &Target) -> Option<Self> {
        match &target.credential {
            Credential::Installation(id) => Some(CloneWith::Installation(*id)),
            Credential::Repository(_) => None,
            Credential::Host(repo) => {
                let (tracked, provider) = ports.operator.hosted(repo)?;
                Some(CloneWith::Host { provider, secret: tracked.clone_secret.as_deref()? })
            }
        }
    }

    /// The user name the host expects, and the token.
    async fn credential(
        &self,
        ports: LaunchPorts<'_>,
        repo: &RepoName,
    ) -> Result<(String, secrecy::SecretString), String> {
        match self {
            CloneWith::Installation(id) => {
                let token = ports.tokens.clone_token(ports.state, *id, repo).await.map_err(|e| e.to_string())?;
                Ok((manifests::GITHUB_CLONE_USER.to_owned(), token.token))
            }
            CloneWith::Host { provider, secret } => {
                let name = crate::secrets::SecretName::parse((*secret).to_owned()).map_err(|e| e.to_string())?;
                let token = ports.tokens.named(&name).await.map_err(|e| e.to_string())?;
                let token = token.ok_or_else(|| format!("the secret store has no {name}"))?;
                Ok(crate::report::clone_credential(*provider, token))
            }
        }
    }
}

async fn run(
    ports: LaunchPorts<'_>,
    target: &Target,
    situation: &Situation,
    sha: &Sha,
    unit: &Unit,
    clone_url: &str,
    launched: &mut Launched,
) -> Result<(), LaunchError> {
    let clone = CloneWith::of(ports, target);
    let name = manifests::run_name(&target.repo, &unit.name, sha, &situation.lane, situation.cause);
    let wait = admission(ports, target, situation, sha, unit, &name).await?;
    let input = RunInput {
        repo: &target.repo,
        unit,
        sha,
        cause: situation.cause,
        lane: &situation.lane,
        clone_url,
        defaults: &ports.operator.defaults,
        happened_at: situation.happened_at,
        // It waits for its clone token's Secret, which can only be created
        // (owned by the run) once the run exists, or for a slot.
        pending: clone.is_some() || wait.is_some(),
    };
    let manifest = manifests::run(&input);
    let namespace = manifest.namespace().to_owned();
    let lane = manifests::lane_label(&target.repo, &unit.name, &situation.lane);
    let in_lane = ports.cluster.runs(&namespace, &[Label::Is("ferry.dev/lane", &lane)]).await?;
    let ours = situation.happened_at;
    // A newer event already launched in this lane: this late one is moot.
    if let Some(newer) = in_lane.iter().find(|r| r.name != manifest.name() && is_newer(r.happened_at, ours)) {
        launched.actions.push(Action::in_namespace("run.superseded", namespace, manifest.name()));
        let why = format!("{}: superseded by {}, launched for a newer event", unit.name, newer.name);
        launched.reason = Some(launched.reason.take().map_or(why.clone(), |r| format!("{r}; {why}")));
        return Ok(());
    }
    let created = ports.cluster.create(&manifest).await?;
    let kind = manifest.kind().to_ascii_lowercase();
    let verb = if created.existed { "exists" } else { "created" };
    let kind = if kind == "taskrun" { leak_kind("taskrun", verb) } else { leak_kind("pipelinerun", verb) };
    launched.actions.push(Action::in_namespace(kind, namespace.clone(), manifest.name()));
    // Done again for a run that existed: an earlier attempt may have
    // stopped before its Secret, its start or its status. A run that waits
    // gets its Secret when it starts: a token minted now could expire first.
    if wait.is_none() {
        clone_secret(ports, target, &manifest, &created.uid).await?;
    }
    if manifest.0["spec"]["status"] == manifests::PENDING && wait.is_none() {
        ports.cluster.start(&RunState::of(&manifest)).await?;
    }
    // What still runs in the lane for an older event is superseded.
    for old in &in_lane {
        if old.running && old.name != manifest.name() && !is_newer(old.happened_at, ours) {
            ports.cluster.cancel(old).await?;
            launched.actions.push(Action::in_namespace("run.cancelled", old.namespace.clone(), old.name.clone()));
        }
    }
    let record = Run {
        repo: target.repo.clone(),
        unit: unit.name.clone(),
        sha: sha.clone(),
        namespace: namespace.clone(),
        name: manifest.name().to_owned(),
        status: RunStatus::Pending,
        reported: Some(RunStatus::Pending),
        run_kind: Some(manifest.kind().to_owned()),
        queued_at: wait.as_ref().map(|_| ports.clock.now()),
        unit_limit: unit.max_running,
        keep_runs: unit.keep_runs,
        launched_at: Some(ports.clock.now()),
        retain_until: None,
        pr: situation.pr.as_ref().map(|pr| pr.number),
    };
    record_run(ports, target, record, created.existed, wait.as_deref(), launched).await
}

/// Records a launched run and says so on the commit (started, or why it
/// waits). A run that existed keeps what was learnt of it since (a result,
/// or a later retry's record): its status never goes back to pending.
async fn record_run(
    ports: LaunchPorts<'_>,
    target: &Target,
    record: Run,
    existed: bool,
    wait: Option<&str>,
    launched: &mut Launched,
) -> Result<(), LaunchError> {
    let report = AtomicBool::new(true);
    let merge = |current: Run| {
        let keep =
            existed && (current.name != record.name || current.reported.is_some_and(|r| r != RunStatus::Pending));
        report.store(!keep, Ordering::Relaxed);
        match (keep, existed && current.name == record.name) {
            (true, _) => current,
            // A redelivery: the run keeps its place, waiting or started.
            (false, true) => Run { queued_at: current.queued_at, ..record.clone() },
            (false, false) => record.clone(),
        }
    };
    // A run the cluster did not have is usually a new record: created at once.
    if existed {
        ports.state.save(record.clone(), merge).await?
    } else {
        ports.state.save_new(record.clone(), merge).await?
    };
    if !report.load(Ordering::Relaxed) {
        return Ok(());
    }
    let said = match wait {
        Some(why) => format!("{} {} {why}", record.kind(), record.name),
        None => format!("{} {} started", record.kind(), record.name),
    };
    let mut status = CommitStatus::new(context(&ports, record.unit.as_str()), StatusState::Pending, said);
    status.target_url = ports.operator.dashboard_link(&record.namespace, &record.name);
    ports.forge.status(target, &record.sha, &status).await?;
    launched.actions.push(Action::new("status.pending", status.context));
    if wait.is_some() {
        // Older waiting runs may have room a missed result left free.
        if let Err(e) = super::waiting::start_waiting(ports, target).await {
            tracing::warn!(error = %e, "could not start waiting runs; the reconciler will");
        }
    }
    Ok(())
}

/// Why run `name` of `unit` must wait for a slot, if the operator or the
/// unit limit how many run at once and that many run (`domain::queue`).
async fn admission(
    ports: LaunchPorts<'_>,
    target: &Target,
    situation: &Situation,
    sha: &Sha,
    unit: &Unit,
    name: &str,
) -> Result<Option<String>, LaunchError> {
    let repo = &target.repo;
    let repo_limit = ports.operator.max_running(repo);
    // Tekton has no pending TaskRun: a task unit runs at once, and counts.
    let task = unit.run.as_ref().is_some_and(|r| r.kind == crate::units::RunKind::Task);
    if task || (repo_limit.is_none() && unit.max_running.is_none()) {
        return Ok(None);
    }
    let records: Vec<Run> = ports.state.runs(repo).await?.into_iter().map(|found| found.record).collect();
    let candidate = Run {
        repo: repo.clone(),
        unit: unit.name.clone(),
        sha: sha.clone(),
        namespace: String::new(),
        name: name.to_owned(),
        status: RunStatus::Pending,
        reported: None,
        run_kind: None,
        queued_at: None,
        unit_limit: unit.max_running,
        keep_runs: None,
        launched_at: None,
        pr: situation.pr.as_ref().map(|pr| pr.number),
        retain_until: None,
    };
    Ok(crate::domain::queue::must_wait(&records, &candidate, repo_limit, ports.clock.now()))
}

/// Whether a run launched for an event at `theirs` is newer than one at
/// `ours`; a run of unknown time is never newer.
fn is_newer(theirs: Option<Timestamp>, ours: Option<Timestamp>) -> bool {
    match (theirs, ours) {
        (Some(theirs), Some(ours)) => theirs > ours,
        _ => false,
    }
}

fn leak_kind(kind: &str, verb: &str) -> &'static str {
    match (kind, verb) {
        ("taskrun", "created") => "taskrun.created",
        ("taskrun", _) => "taskrun.exists",
        (_, "created") => "pipelinerun.created",
        _ => "pipelinerun.exists",
    }
}

/// How a preview's record names what it is of: `pr-<n>` or `release-<tag>`.
fn preview_key(of: &PreviewOf) -> String {
    match of {
        PreviewOf::PullRequest(n) => format!("pr-{n}"),
        PreviewOf::Release(tag) => format!("release-{tag}"),
    }
}

fn preview_of(situation: &Situation) -> Option<PreviewOf> {
    match (&situation.pr, &situation.tag) {
        (Some(pr), _) => Some(PreviewOf::PullRequest(pr.number)),
        (None, Some(tag)) => Some(PreviewOf::Release(tag.clone())),
        (None, None) => None,
    }
}

async fn preview(
    ports: LaunchPorts<'_>,
    target: &Target,
    situation: &Situation,
    sha: &Sha,
    unit: &Unit,
    launched: &mut Launched,
) -> Result<(), LaunchError> {
    let (Some(spec), Some(of)) = (&unit.preview, preview_of(situation)) else { return Ok(()) };
    let objects = manifests::preview(&target.repo, &unit.name, &of, sha, &spec.image, spec.port, &spec.host);
    for object in &objects {
        ports.cluster.apply(object).await?;
    }
    let namespace = manifests::preview_namespace(&target.repo, &unit.name, &of);
    launched.actions.push(Action::in_namespace("preview.applied", namespace.clone(), unit.name.to_string()));
    let url = format!("https://{}", spec.host);
    let environment = match &of {
        PreviewOf::PullRequest(n) => format!("preview/{}/pr-{n}", unit.name),
        PreviewOf::Release(tag) => format!("preview/{}/{tag}", unit.name),
    };
    // In progress until the reconciler sees it available (or failing).
    let deployment = ports.forge.deployment(target, sha, &environment, &url).await?;
    launched.actions.push(Action::new("deployment.created", &environment));
    let record = Preview {
        repo: target.repo.clone(),
        of: preview_key(&of),
        unit: unit.name.clone(),
        namespace: namespace.clone(),
        deployment: manifests::object_name(&unit.name, 63),
        sha: sha.clone(),
        environment: environment.clone(),
        github_deployment: Some(deployment),
        url: url.clone(),
        applied_at: ports.clock.now(),
        reported: None,
    };
    ports.state.save(record.clone(), |_| record.clone()).await?;
    if let PreviewOf::PullRequest(number) = of {
        let body = format!(
            "**Preview `{}`** is live at {url}\n\nBuilt from {} · updated on every push · removed when the pull request closes.",
            unit.name,
            sha.short()
        );
        ports.forge.comment(target, number, &format!("preview-{}", unit.name), &body).await?;
        launched.actions.push(Action::new("comment.preview", format!("#{number}")));
        let key = Key::PullRequest(target.repo.clone(), number);
        if let Some(mut found) = ports.state.load::<PullRequest>(&key).await? {
            found.record.preview_namespace = Some(namespace);
            ports.state.update(&found.record.into(), found.version).await?;
        }
    }
    Ok(())
}

async fn remove_preview(
    ports: LaunchPorts<'_>,
    target: &Target,
    situation: &Situation,
    unit: &UnitName,
    launched: &mut Launched,
) -> Result<(), LaunchError> {
    let Some(of) = preview_of(situation) else { return Ok(()) };
    let namespace = manifests::preview_namespace(&target.repo, unit, &of);
    ports.cluster.delete_namespace(&namespace).await?;
    let key = Key::Preview(target.repo.clone(), preview_key(&of), unit.clone());
    if let Some(found) = ports.state.load::<Preview>(&key).await? {
        if let Some(id) = found.record.github_deployment {
            let environment = &found.record.environment;
            let status = DeploymentStatus { id, environment, state: "inactive", url: None, description: "removed" };
            if let Err(e) = ports.forge.deployment_status(target, &status).await {
                tracing::warn!(error = %e, %environment, "could not mark the deployment inactive");
            }
        }
        ports.state.delete(&key).await?;
    }
    launched.actions.push(Action::in_namespace("preview.removed", namespace, unit));
    Ok(())
}

async fn approve(
    ports: LaunchPorts<'_>,
    target: &Target,
    situation: &Situation,
    sha: &Sha,
    launched: &mut Launched,
) -> Result<(), LaunchError> {
    let Some(pr) = &situation.pr else { return Ok(()) };
    let key = Key::PullRequest(target.repo.clone(), pr.number);
    let approver = pr.approved_by.clone();
    // Only the head the decision was made for: if a push moved it since,
    // the approval lapses with it.
    let Some(mut found) = ports.state.load::<PullRequest>(&key).await? else { return Ok(()) };
    if &found.record.head_sha != sha {
        launched.actions.push(Action::new("approval.lapsed", format!("#{}", pr.number)));
        return Ok(());
    }
    found.record.approved_sha = Some(sha.clone());
    found.record.approved_by = approver.clone();
    // Approved, the head's commits are reviewed, whoever pushed them.
    found.record.untrusted_push = false;
    ports.state.update(&found.record.into(), found.version).await?;
    let by = approver.unwrap_or_else(|| "a trusted user".into());
    let status = CommitStatus::new(
        context(&ports, "ok-to-test"),
        StatusState::Success,
        format!("Approved by {by} for {}", sha.short()),
    );
    ports.forge.status(target, sha, &status).await?;
    launched.actions.push(Action::new("approval.recorded", format!("#{}", pr.number)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail() -> PullRequestDetail {
        PullRequestDetail {
            number: PrNumber::new(7),
            head_sha: Sha::parse("a".repeat(40)).unwrap(),
            head_ref: "fix".into(),
            base_ref: "main".into(),
            author: "monalisa".into(),
            author_association: "MEMBER".into(),
            draft: true,
            merged: false,
            from_fork: false,
            labels: vec!["wip".into()],
        }
    }

    fn event() -> GitEvent {
        let mut event = GitEvent::new("pull_request", None, Detail::PullRequest(detail()));
        event.action = Some("synchronize".into());
        event.happened_at = Some(Timestamp::from_unix(1_800_000_000));
        event
    }

    fn decided(record: PullRequest, facts: PullRequestFacts) -> Decision {
        decide_pull_request(&event(), &detail(), record, facts)
    }

    /// Every kind of fact about a recorded pull request, decided.
    #[test]
    fn a_pull_request_event_is_decided_from_its_record_and_facts() {
        let record = heard(&RepoName::parse("acme/api").unwrap(), &event(), &detail(), Timestamp::from_unix(0));
        let moved = PullRequest { head_sha: Sha::parse("b".repeat(40)).unwrap(), ..record.clone() };
        let Decision::Nothing(reason) = decided(moved, PullRequestFacts::Moved) else { panic!("a moved head decides") };
        assert!(reason.contains("#7 moved to bbbbbbb"), "{reason}");

        let previews = vec![UnitName::parse("api").unwrap()];
        let Decision::Go(closed) = decided(record.clone(), PullRequestFacts::Closed { previews: previews.clone() })
        else {
            panic!("a closed pull request removes its previews")
        };
        assert_eq!(closed.happening, Happening::PullRequestClosed { previews });
        assert_eq!(closed.subject, Subject::PullRequestHead(HeadFacts::default()));

        let head = HeadFacts { author_trusted: true, ..HeadFacts::default() };
        let changed = Some(vec!["src/lib.rs".to_owned()]);
        let open = PullRequestFacts::Open { head, changed: changed.clone() };
        let Decision::Go(open) = decided(record.clone(), open) else { panic!("an open pull request goes on") };
        assert_eq!(open.happening, Happening::PullRequest(PrFacts { draft: true, labels: vec!["wip".into()] }));
        assert_eq!(open.subject, Subject::PullRequestHead(head));
        assert_eq!((open.changed_paths, open.lane.as_str()), (changed, "pull/7"));
        assert_eq!(
            (open.sha, open.cause, open.pr),
            (Some(detail().head_sha), Cause::PullRequest(PrNumber::new(7)), Some(record))
        );
        assert_eq!(open.happened_at, Some(Timestamp::from_unix(1_800_000_000)));
    }

    #[test]
    fn what_an_event_says_of_who_pushed_is_kept_only_for_the_actions_that_bring_a_head() {
        let repo = RepoName::parse("acme/api").unwrap();
        for (action, kept) in [("opened", true), ("synchronize", true), ("labeled", false), ("closed", false)] {
            let mut event = event();
            event.action = Some(action.into());
            event.sender = Some("octocat".into());
            let pr = heard(&repo, &event, &detail(), Timestamp::from_unix(0));
            assert_eq!(pr.head_pushed_by.is_some(), kept, "{action}");
            assert_eq!(pr.state == PrState::Closed, action == "closed", "{action}");
        }
    }
}
