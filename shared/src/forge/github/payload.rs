//! GitHub webhook payloads into `GitEvent`s.
//!
//! Our own structs, reading only the fields Ferry uses in one pass over the
//! body, rather than octocrab's webhook models: those build the whole payload
//! (a 25 KB push is hundreds of fields) and reject deliveries whose shape
//! drifts from the model. Serde skips what is not named here.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::domain::event::{
    Command, CommentDetail, Detail, GitEvent, InstallationDetail, PullRequestDetail, Push, ReleaseDetail,
    RepositoriesDetail,
};
use crate::domain::{InstallationId, InvalidId, PrNumber, RefName, RepoName, Sha, Tag, Timestamp};

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("the body is not UTF-8 text, so not JSON: {0}")]
    NotText(std::str::Utf8Error),
    #[error("the body is not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("not a valid {event} payload: {problem}")]
    Shape { event: String, problem: String },
}

/// Parses the body of a delivery of event `name`.
pub fn parse(name: &str, body: &[u8]) -> Result<GitEvent, ParseError> {
    // Checking all of the body at once (SIMD-fast) lets serde_json read
    // strings without checking each again: parse 7% faster than
    // `from_slice` on a 25 KB push (`cargo bench -p ferry --bench intake`).
    let body = std::str::from_utf8(body).map_err(ParseError::NotText)?;
    if !super::events::handles(name) {
        return parse_other(name, body);
    }
    let payload: Payload = serde_json::from_str(body).map_err(|e| classify(name, e))?;
    payload.into_event(name).map_err(|problem| ParseError::Shape { event: name.to_owned(), problem })
}

fn classify(name: &str, err: serde_json::Error) -> ParseError {
    if err.is_syntax() || err.is_eof() {
        ParseError::NotJson(err)
    } else {
        ParseError::Shape { event: name.to_owned(), problem: err.to_string() }
    }
}

/// Events Ferry ignores: the envelope if it reads, and the JSON checked.
fn parse_other(name: &str, body: &str) -> Result<GitEvent, ParseError> {
    let envelope = serde_json::from_str::<Envelope>(body).ok();
    if envelope.is_none() {
        serde_json::from_str::<IgnoredAny>(body).map_err(ParseError::NotJson)?;
    }
    let envelope = envelope.unwrap_or_default();
    Ok(GitEvent {
        name: name.to_owned(),
        action: envelope.action,
        installation: envelope.installation.map(|i| InstallationId::new(i.id)),
        repo: envelope.repository.and_then(|r| RepoName::parse(r.full_name).ok()),
        clone_url: None,
        sender: envelope.sender.map(|s| s.login),
        happened_at: None,
        detail: Detail::Other,
    })
}

#[derive(Debug, Default, Deserialize)]
struct Envelope {
    action: Option<String>,
    installation: Option<Id>,
    repository: Option<RepoRef>,
    sender: Option<Login>,
}

#[derive(Debug, Deserialize)]
struct Id {
    id: u64,
}

#[derive(Debug, Deserialize)]
struct Login {
    login: String,
}

#[derive(Debug, Deserialize)]
struct RepoRef {
    full_name: String,
}

/// GitHub lists at most this many commits in a push payload.
const GITHUB_MAX_PUSH_COMMITS: usize = 2048;

/// Every field the handled events carry that Ferry reads.
#[derive(Debug, Deserialize)]
struct Payload<'a> {
    action: Option<String>,
    installation: Option<InstallationPayload>,
    repository: Option<RepositoryPayload>,
    sender: Option<Login>,
    // push
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    before: Option<String>,
    after: Option<String>,
    created: Option<bool>,
    deleted: Option<bool>,
    forced: Option<bool>,
    #[serde(borrow)]
    commits: Option<Vec<CommitPayload<'a>>>,
    // pull_request
    pull_request: Option<PullRequestPayload>,
    // release
    release: Option<ReleasePayload>,
    // issue_comment
    issue: Option<IssuePayload>,
    comment: Option<CommentPayload>,
    // check_suite, check_run
    check_suite: Option<Check>,
    check_run: Option<Check>,
    // installation, installation_repositories
    repositories: Option<Vec<RepoRef>>,
    repositories_added: Option<Vec<RepoRef>>,
    repositories_removed: Option<Vec<RepoRef>>,
}

#[derive(Debug, Deserialize)]
struct InstallationPayload {
    id: u64,
    account: Option<Login>,
    repository_selection: Option<String>,
    suspended_at: Option<String>,
    updated_at: Option<Moment>,
}

#[derive(Debug, Deserialize)]
struct RepositoryPayload {
    full_name: String,
    clone_url: Option<String>,
    /// Seconds since the epoch in a push, RFC 3339 elsewhere.
    pushed_at: Option<Moment>,
}

/// A time as GitHub writes it: a Unix timestamp or RFC 3339 text.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Moment {
    Unix(i64),
    Text(String),
}

impl Moment {
    fn timestamp(&self) -> Option<Timestamp> {
        match self {
            Moment::Unix(seconds) => Some(Timestamp::from_unix(*seconds)),
            Moment::Text(text) => Timestamp::parse_rfc3339(text).ok(),
        }
    }
}

fn moment(text: Option<&String>) -> Option<Timestamp> {
    text.and_then(|t| Timestamp::parse_rfc3339(t).ok())
}

#[derive(Debug, Deserialize)]
struct CommitPayload<'a> {
    #[serde(default, borrow)]
    added: Vec<PathRef<'a>>,
    #[serde(default, borrow)]
    modified: Vec<PathRef<'a>>,
    #[serde(default, borrow)]
    removed: Vec<PathRef<'a>>,
}

/// A changed path, borrowed from the body unless it holds escapes: a push
/// lists hundreds, most repeat across commits, and only the distinct ones
/// are kept. (Serde's own `Cow` inside a `Vec` always allocates.)
#[derive(Debug)]
struct PathRef<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for PathRef<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = PathRef<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a path")
            }
            fn visit_borrowed_str<E>(self, path: &'de str) -> Result<Self::Value, E> {
                Ok(PathRef(Cow::Borrowed(path)))
            }
            fn visit_str<E>(self, path: &str) -> Result<Self::Value, E> {
                Ok(PathRef(Cow::Owned(path.to_owned())))
            }
        }
        deserializer.deserialize_str(Visitor(std::marker::PhantomData))
    }
}

#[derive(Debug, Deserialize)]
struct PullRequestPayload {
    number: u64,
    head: Branch,
    base: Branch,
    user: Option<Login>,
    author_association: Option<String>,
    draft: Option<bool>,
    merged: Option<bool>,
    #[serde(default)]
    labels: Vec<Label>,
    updated_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Branch {
    #[serde(rename = "ref")]
    git_ref: String,
    sha: String,
    repo: Option<RepoRef>,
}

#[derive(Debug, Deserialize)]
struct Label {
    name: String,
}

#[derive(Debug, Deserialize)]
struct ReleasePayload {
    tag_name: String,
    prerelease: bool,
    draft: bool,
    target_commitish: Option<String>,
    published_at: Option<String>,
    created_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct IssuePayload {
    number: u64,
    pull_request: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
struct CommentPayload {
    #[serde(default)]
    id: u64,
    body: Option<String>,
    user: Option<Login>,
    author_association: Option<String>,
    created_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Check {
    #[serde(default)]
    id: u64,
    head_sha: String,
    updated_at: Option<String>,
}

fn id_problem(e: InvalidId) -> String {
    e.to_string()
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("missing {field}"))
}

/// The installation of an installation event, as GitHub always describes
/// it there: with its account and when it changed. Other events carry only
/// `{"id": …}`, so a signed body of another event sent under this name
/// (the event header is not signed) is refused rather than taken for one.
fn installed(installation: Option<&InstallationPayload>) -> Result<&InstallationPayload, String> {
    let installation = required(installation, "installation")?;
    required(installation.account.as_ref(), "installation.account")?;
    required(installation.updated_at.as_ref(), "installation.updated_at")?;
    Ok(installation)
}

fn repos(list: Option<Vec<RepoRef>>) -> Result<Vec<RepoName>, String> {
    list.unwrap_or_default().into_iter().map(|r| RepoName::parse(r.full_name).map_err(id_problem)).collect()
}

impl Payload<'_> {
    fn into_event(mut self, name: &str) -> Result<GitEvent, String> {
        let happened_at = self.happened_at(name);
        let detail = self.detail(name)?;
        let repository = self.repository.take();
        let repo = repository.as_ref().map(|r| RepoName::parse(r.full_name.clone())).transpose().map_err(id_problem)?;
        Ok(GitEvent {
            name: name.to_owned(),
            action: self.action,
            installation: self.installation.map(|i| InstallationId::new(i.id)),
            repo,
            clone_url: repository.and_then(|r| r.clone_url),
            sender: self.sender.map(|s| s.login),
            happened_at,
            detail,
        })
    }

    /// When the event happened at GitHub, as exactly as its payload says.
    fn happened_at(&self, name: &str) -> Option<Timestamp> {
        match name {
            "push" => self.repository.as_ref()?.pushed_at.as_ref()?.timestamp(),
            "pull_request" => moment(self.pull_request.as_ref()?.updated_at.as_ref()),
            "release" => {
                let release = self.release.as_ref()?;
                moment(release.published_at.as_ref().or(release.created_at.as_ref()))
            }
            "issue_comment" => moment(self.comment.as_ref()?.created_at.as_ref()),
            "check_suite" => moment(self.check_suite.as_ref()?.updated_at.as_ref()),
            "check_run" => moment(self.check_run.as_ref()?.updated_at.as_ref()),
            // Only `updated_at`: GitHub's own examples show an unsuspension
            // keeping the suspension's `updated_at`, so `suspended_at` would
            // make every later unsuspension look older.
            "installation" | "installation_repositories" => {
                self.installation.as_ref()?.updated_at.as_ref().and_then(Moment::timestamp)
            }
            _ => None,
        }
    }

    fn detail(&mut self, name: &str) -> Result<Detail, String> {
        Ok(match name {
            "ping" => Detail::Ping,
            "installation" => {
                let installation = installed(self.installation.as_ref())?;
                Detail::Installation(InstallationDetail {
                    account: account(installation),
                    repository_selection: installation.repository_selection.clone().unwrap_or_default(),
                    suspended: installation.suspended_at.is_some(),
                    repositories: repos(self.repositories.take())?,
                })
            }
            "installation_repositories" => {
                let installation = installed(self.installation.as_ref())?;
                Detail::InstallationRepositories(RepositoriesDetail {
                    account: account(installation),
                    repository_selection: installation.repository_selection.clone().unwrap_or_default(),
                    added: repos(Some(required(self.repositories_added.take(), "repositories_added")?))?,
                    removed: repos(Some(required(self.repositories_removed.take(), "repositories_removed")?))?,
                })
            }
            "push" => Detail::Push(self.push()?),
            "pull_request" => Detail::PullRequest(self.pull_request()?),
            "release" => {
                let release = required(self.release.take(), "release")?;
                Detail::Release(ReleaseDetail {
                    tag: Tag::parse(release.tag_name).map_err(id_problem)?,
                    prerelease: release.prerelease,
                    draft: release.draft,
                    target_commitish: release.target_commitish.unwrap_or_default(),
                })
            }
            "issue_comment" => {
                let issue = required(self.issue.take(), "issue")?;
                let comment = required(self.comment.take(), "comment")?;
                let command = comment.body.as_deref().and_then(Command::find_with_arg);
                Detail::Comment(CommentDetail {
                    id: comment.id,
                    number: PrNumber::new(issue.number),
                    on_pull_request: issue.pull_request.is_some(),
                    author: comment.user.map(|u| u.login).unwrap_or_default(),
                    author_association: comment.author_association.unwrap_or_default(),
                    command: command.as_ref().map(|(command, _)| *command),
                    command_arg: command.and_then(|(_, arg)| arg),
                })
            }
            "check_suite" | "check_run" => {
                let check = if name == "check_suite" { self.check_suite.take() } else { self.check_run.take() };
                let check = required(check, name)?;
                Detail::Rerequested { head_sha: Sha::parse(check.head_sha).map_err(id_problem)?, check_id: check.id }
            }
            _ => Detail::Other,
        })
    }

    fn push(&mut self) -> Result<Push, String> {
        let commits = self.commits.take().unwrap_or_default();
        // Each path once, in the order the payload first names it. A set
        // of borrowed paths, not a sort: sorting 200 paths that share long
        // prefixes took a fifth of the parse (`cargo bench --bench intake`).
        let listed = commits.iter().map(|c| c.added.len() + c.modified.len() + c.removed.len()).sum();
        // Seeded at random per process: whoever names the paths cannot
        // aim them at one bucket.
        let mut seen = HashSet::with_capacity_and_hasher(listed, foldhash::fast::RandomState::default());
        let paths: Vec<String> = commits
            .iter()
            .flat_map(|c| c.added.iter().chain(&c.modified).chain(&c.removed))
            .map(|path| path.0.as_ref())
            .filter(|path| seen.insert(*path))
            .map(str::to_owned)
            .collect();
        let mut push = Push {
            git_ref: RefName::parse(required(self.git_ref.take(), "ref")?).map_err(id_problem)?,
            before: Sha::parse(required(self.before.take(), "before")?).map_err(id_problem)?,
            after: Sha::parse(required(self.after.take(), "after")?).map_err(id_problem)?,
            deleted: self.deleted.unwrap_or(false),
            forced: self.forced.unwrap_or(false),
            changed_paths: paths,
            paths_truncated: false,
        };
        // The payload's commits do not tell every changed path when the
        // branch is new (compared with nothing), was force-pushed (commits
        // that left it changed paths too), lists no commits, or hit GitHub's
        // cap of 2048 commits: path filters must then see everything changed.
        let partial = self.created.unwrap_or(false)
            || push.before.is_zero()
            || push.forced
            || (commits.is_empty() && !push.deleted)
            || commits.len() >= GITHUB_MAX_PUSH_COMMITS;
        if partial || push.changed_paths.iter().map(String::len).sum::<usize>() > Push::MAX_PATH_BYTES {
            push.truncate_paths();
        }
        Ok(push)
    }

    fn pull_request(&mut self) -> Result<PullRequestDetail, String> {
        let pr = required(self.pull_request.take(), "pull_request")?;
        let base_repo = pr.base.repo.as_ref().map(|r| r.full_name.as_str());
        // A head repository that is gone was a fork that got deleted.
        let from_fork = pr.head.repo.as_ref().map(|r| r.full_name.as_str()) != base_repo;
        Ok(PullRequestDetail {
            number: PrNumber::new(pr.number),
            head_sha: Sha::parse(pr.head.sha).map_err(id_problem)?,
            head_ref: pr.head.git_ref,
            base_ref: pr.base.git_ref,
            author: pr.user.map(|u| u.login).unwrap_or_default(),
            author_association: pr.author_association.unwrap_or_default(),
            draft: pr.draft.unwrap_or(false),
            merged: pr.merged.unwrap_or(false),
            from_fork,
            labels: pr.labels.into_iter().map(|l| l.name).collect(),
        })
    }
}

fn account(installation: &InstallationPayload) -> String {
    installation.account.as_ref().map(|a| a.login.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse_json(name: &str, value: serde_json::Value) -> Result<GitEvent, ParseError> {
        parse(name, value.to_string().as_bytes())
    }

    const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const SHA_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn each_event_says_when_it_happened_at_github() {
        let repository = json!({"full_name": "acme/api", "pushed_at": 1_790_000_000});
        let push = parse_json(
            "push",
            json!({"ref": "refs/heads/main", "before": SHA_A, "after": SHA_B, "commits": [], "repository": repository}),
        )
        .unwrap();
        assert_eq!(push.happened_at, Some(Timestamp::from_unix(1_790_000_000)));
        let pr = parse_json(
            "pull_request",
            json!({"action": "synchronize", "repository": {"full_name": "acme/api", "pushed_at": "2026-11-22T09:00:00Z"},
                   "pull_request": {"number": 7, "updated_at": "2026-11-22T10:00:00Z",
                                    "head": {"ref": "f", "sha": SHA_A}, "base": {"ref": "main", "sha": SHA_B}}}),
        )
        .unwrap();
        assert_eq!(pr.happened_at, Timestamp::parse_rfc3339("2026-11-22T10:00:00Z").ok());
        let comment = parse_json(
            "issue_comment",
            json!({"action": "created", "issue": {"number": 7, "pull_request": {}},
                   "comment": {"id": 99, "body": "/ok-to-test 2222222", "created_at": "2026-11-22T10:05:00Z",
                               "user": {"login": "m"}, "author_association": "MEMBER"}}),
        )
        .unwrap();
        assert_eq!(comment.happened_at, Timestamp::parse_rfc3339("2026-11-22T10:05:00Z").ok());
        let Detail::Comment(detail) = comment.detail else { panic!("a comment") };
        assert_eq!(
            (detail.id, detail.command, detail.command_arg.as_deref()),
            (99, Some(Command::OkToTest), Some("2222222"))
        );
        let check = parse_json(
            "check_suite",
            json!({"action": "rerequested", "check_suite": {"id": 5, "head_sha": SHA_A, "updated_at": "2026-11-22T11:00:00Z"}}),
        )
        .unwrap();
        assert!(matches!(check.detail, Detail::Rerequested { check_id: 5, .. }));
        assert!(check.happened_at.is_some());
    }

    #[test]
    fn a_push_keeps_its_changed_paths_once_each() {
        let event = parse_json(
            "push",
            json!({
                "ref": "refs/heads/main", "before": SHA_A, "after": SHA_B,
                "commits": [
                    {"added": ["api/new.rs"], "modified": ["README.md"], "removed": []},
                    {"added": [], "modified": ["api/new.rs"], "removed": ["old.txt"]}
                ],
                "repository": {"full_name": "acme/api", "clone_url": "https://github.com/acme/api.git"},
                "installation": {"id": 5}, "sender": {"login": "octocat"}
            }),
        )
        .unwrap();
        assert_eq!(event.repo.unwrap().full_name(), "acme/api");
        assert_eq!(event.installation, Some(InstallationId::new(5)));
        assert_eq!(event.sender.as_deref(), Some("octocat"));
        let Detail::Push(push) = event.detail else { panic!("not a push") };
        assert_eq!(push.changed_paths, ["api/new.rs", "README.md", "old.txt"]);
        assert_eq!(push.branch(), Some("main"));
        assert!(!push.paths_truncated);
    }

    #[test]
    fn a_push_whose_commits_cannot_tell_every_path_counts_as_touching_everything() {
        let one = json!([{"added": ["a.rs"], "modified": [], "removed": []}]);
        let cap: Vec<serde_json::Value> =
            (0..GITHUB_MAX_PUSH_COMMITS).map(|_| json!({"added": [], "modified": ["a.rs"], "removed": []})).collect();
        let zero = "0".repeat(40);
        let cases = [
            ("ordinary push", json!({"before": SHA_A, "commits": one}), false),
            ("new branch", json!({"before": zero, "created": true, "commits": one}), true),
            ("new branch, no created flag", json!({"before": zero, "commits": one}), true),
            ("new branch at an existing commit", json!({"before": SHA_A, "created": true, "commits": []}), true),
            ("force push", json!({"before": SHA_A, "forced": true, "commits": one}), true),
            ("no commits listed", json!({"before": SHA_A, "commits": []}), true),
            ("commits at GitHub's cap", json!({"before": SHA_A, "commits": cap}), true),
        ];
        for (case, fields, truncated) in cases {
            let mut body = json!({"ref": "refs/heads/main", "after": SHA_B, "repository": {"full_name": "acme/api"}});
            body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
            let Detail::Push(push) = parse_json("push", body).unwrap().detail else { panic!("not a push") };
            assert_eq!(push.paths_truncated, truncated, "{case}");
            assert_eq!(push.changed_paths.is_empty(), truncated, "{case}");
        }
    }

    #[test]
    fn a_push_with_too_many_paths_is_marked_truncated() {
        let paths: Vec<String> = (0..20_000).map(|i| format!("src/module_{i:05}/file.rs")).collect();
        let body = json!({
            "ref": "refs/heads/main", "before": SHA_A, "after": SHA_B,
            "commits": [{"added": paths, "modified": [], "removed": []}],
            "repository": {"full_name": "acme/api"}
        });
        let Detail::Push(push) = parse_json("push", body).unwrap().detail else { panic!() };
        assert!(push.paths_truncated && push.changed_paths.is_empty());
    }

    #[test]
    fn a_pull_request_from_a_fork_is_known_as_one() {
        let event = parse_json(
            "pull_request",
            json!({
                "action": "opened",
                "pull_request": {
                    "number": 7, "draft": true, "author_association": "CONTRIBUTOR",
                    "user": {"login": "outsider"}, "labels": [{"name": "ferry/skip"}],
                    "head": {"ref": "fix", "sha": SHA_A, "repo": {"full_name": "outsider/api"}},
                    "base": {"ref": "main", "sha": SHA_B, "repo": {"full_name": "acme/api"}}
                },
                "repository": {"full_name": "acme/api"}
            }),
        )
        .unwrap();
        let Detail::PullRequest(pr) = event.detail else { panic!() };
        assert!(pr.from_fork && pr.draft);
        assert_eq!((pr.number, pr.author_association.as_str()), (PrNumber::new(7), "CONTRIBUTOR"));
        assert_eq!(pr.labels, ["ferry/skip"]);
    }

    #[test]
    fn a_comment_keeps_only_its_command() {
        let event = parse_json(
            "issue_comment",
            json!({
                "action": "created",
                "issue": {"number": 3, "pull_request": {"url": "x"}},
                "comment": {"body": "thanks!\n/ok-to-test", "user": {"login": "maintainer"}, "author_association": "MEMBER"},
                "repository": {"full_name": "acme/api"}
            }),
        )
        .unwrap();
        let Detail::Comment(comment) = event.detail else { panic!() };
        assert_eq!(comment.command, Some(Command::OkToTest));
        assert!(comment.on_pull_request);
        assert!(!serde_json::to_string(&comment).unwrap().contains("thanks"));
    }

    #[test]
    fn installations_list_their_repositories() {
        let event = parse_json(
            "installation",
            json!({
                "action": "created",
                "installation": {"id": 9, "account": {"login": "acme"}, "repository_selection": "selected",
                                 "suspended_at": null, "updated_at": "2026-11-19T08:00:00Z"},
                "repositories": [{"full_name": "acme/api"}, {"full_name": "acme/web"}]
            }),
        )
        .unwrap();
        let Detail::Installation(detail) = event.detail else { panic!() };
        assert_eq!(detail.account, "acme");
        assert_eq!(detail.repositories.len(), 2);
        assert!(!detail.suspended);
    }

    /// The event header is not signed: another event's signed body sent
    /// as an installation event is refused, not taken for one.
    #[test]
    fn another_events_body_is_no_installation_event() {
        let comment = json!({
            "action": "deleted",
            "issue": {"number": 1}, "comment": {"id": 1, "body": "x", "user": {"login": "e"}},
            "repository": {"full_name": "acme/api"}, "installation": {"id": 9}, "sender": {"login": "e"}
        });
        for name in ["installation", "installation_repositories"] {
            let refused = parse_json(name, comment.clone()).unwrap_err();
            assert!(refused.to_string().contains("installation.account"), "{name}: {refused}");
        }
    }

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        assert!(matches!(parse("push", b"not json"), Err(ParseError::NotJson(_))));
        assert!(matches!(parse("star", b"{"), Err(ParseError::NotJson(_))));
        // Invalid UTF-8 inside a string: serde_json's `from_slice` would
        // skip it unchecked in a field it ignores.
        let broken = b"{\"zen\": \"\xff\xfe\", \"ref\": \"refs/heads/main\"}";
        for event in ["push", "star"] {
            let refused = parse(event, broken).unwrap_err();
            assert!(matches!(refused, ParseError::NotText(_)), "{refused}");
            assert!(refused.to_string().contains("not UTF-8"), "{refused}");
        }
        let missing = parse_json("push", json!({"ref": "refs/heads/main"})).unwrap_err();
        assert!(missing.to_string().contains("before"), "{missing}");
        let wrong = parse_json("release", json!({"release": {"tag_name": 5}})).unwrap_err();
        assert!(matches!(wrong, ParseError::Shape { .. }), "{wrong}");
    }

    #[test]
    fn other_events_are_read_for_their_envelope_only() {
        let event =
            parse_json("star", json!({"action": "created", "repository": {"full_name": "acme/api"}, "starred_at": 5}))
                .unwrap();
        assert_eq!((event.detail, event.action.as_deref()), (Detail::Other, Some("created")));
        let odd = parse_json("meta", json!({"repository": "not an object"})).unwrap();
        assert_eq!((odd.detail, odd.repo), (Detail::Other, None));
    }
}
