//! `GitEvent`: what Ferry keeps of a delivery. Parsed once at the edge from
//! the host's payload, compact enough for one DynamoDB item, and enough to
//! act on again later (the reconciler retries from it).

use serde::{Deserialize, Serialize};

use super::{InstallationId, PrNumber, RefName, RepoName, Sha, Tag, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitEvent {
    /// The event name, e.g. `push` (GitHub's `X-GitHub-Event`).
    pub name: String,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub installation: Option<InstallationId>,
    #[serde(default)]
    pub repo: Option<RepoName>,
    #[serde(default)]
    pub clone_url: Option<String>,
    #[serde(default)]
    pub sender: Option<String>,
    /// When it happened at the host (the push, the pull request's update,
    /// the comment), so a late delivery never undoes a newer one.
    #[serde(default)]
    pub happened_at: Option<Timestamp>,
    pub detail: Detail,
}

impl GitEvent {
    /// Event `name` about `repo` carrying `detail`, and nothing else known
    /// (no action, installation, clone URL, sender or time).
    pub fn new(name: &str, repo: Option<RepoName>, detail: Detail) -> Self {
        Self {
            name: name.to_owned(),
            action: None,
            installation: None,
            repo,
            clone_url: None,
            sender: None,
            happened_at: None,
            detail,
        }
    }
}

/// What each kind of event carries that Ferry acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detail {
    Ping,
    Installation(InstallationDetail),
    InstallationRepositories(RepositoriesDetail),
    Push(Push),
    PullRequest(PullRequestDetail),
    Release(ReleaseDetail),
    Comment(CommentDetail),
    /// A check suite or run a user asked to run again.
    Rerequested {
        head_sha: Sha,
        /// The check suite's or run's id: with `happened_at`, what tells
        /// one request apart from the next.
        #[serde(default)]
        check_id: u64,
    },
    /// An event Ferry does not act on.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationDetail {
    pub account: String,
    pub repository_selection: String,
    pub suspended: bool,
    pub repositories: Vec<RepoName>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoriesDetail {
    pub account: String,
    pub repository_selection: String,
    pub added: Vec<RepoName>,
    pub removed: Vec<RepoName>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Push {
    #[serde(rename = "ref")]
    pub git_ref: RefName,
    pub before: Sha,
    pub after: Sha,
    pub deleted: bool,
    pub forced: bool,
    /// Every path the pushed commits added, modified or removed, once each,
    /// in the order the payload first names it.
    pub changed_paths: Vec<String>,
    /// The list was too long to keep: path filters treat every path as changed.
    pub paths_truncated: bool,
}

impl Push {
    /// `git_ref` moved from `before` to `after`: not deleted, not forced,
    /// and no changed paths listed.
    pub fn to(git_ref: RefName, before: Sha, after: Sha) -> Self {
        Self {
            git_ref,
            before,
            after,
            deleted: false,
            forced: false,
            changed_paths: Vec::new(),
            paths_truncated: false,
        }
    }

    /// Past this many bytes of paths the list is dropped, keeping the
    /// delivery well inside DynamoDB's 400 KB item.
    pub const MAX_PATH_BYTES: usize = 256 * 1024;

    pub fn branch(&self) -> Option<&str> {
        self.git_ref.as_str().strip_prefix("refs/heads/")
    }

    pub fn tag(&self) -> Option<&str> {
        self.git_ref.as_str().strip_prefix("refs/tags/")
    }

    /// Forgets the paths, marking the push as touching everything.
    pub fn truncate_paths(&mut self) {
        self.changed_paths = Vec::new();
        self.paths_truncated = true;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestDetail {
    pub number: PrNumber,
    pub head_sha: Sha,
    pub head_ref: String,
    pub base_ref: String,
    pub author: String,
    /// OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, … as GitHub says.
    pub author_association: String,
    pub draft: bool,
    pub merged: bool,
    pub from_fork: bool,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseDetail {
    pub tag: Tag,
    pub prerelease: bool,
    pub draft: bool,
    pub target_commitish: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentDetail {
    /// The comment's id: a `/retest` names its runs after it.
    #[serde(default)]
    pub id: u64,
    pub number: PrNumber,
    pub on_pull_request: bool,
    pub author: String,
    pub author_association: String,
    /// The command the comment gives, if any; the text itself is not kept.
    pub command: Option<Command>,
    /// The command's argument (`/ok-to-test 1a2b3c4`, `/test api`), if any.
    #[serde(default, alias = "command_sha")]
    pub command_arg: Option<String>,
}

/// Commands a trusted user can give in a pull request comment, each on a
/// line of its own, with at most one argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// `/retest`: run again the units that failed on the head SHA;
    /// `/retest <unit>`: run that one again.
    Retest,
    /// `/ok-to-test`: approve an outside contributor's head SHA.
    OkToTest,
    /// `/test`: run every unit the pull request would run, now;
    /// `/test <unit>`: run that one, whatever its paths or `on` say.
    Test,
    /// `/cancel`: cancel the pull request's running runs; `/cancel <unit>`: that unit's.
    Cancel,
    /// A `/word` Ferry does not know: answered with the commands it does.
    Unknown,
}

/// Other bots' commands (Prow's, mostly), left to them: Ferry answers an
/// unknown command only when it could have been meant for Ferry.
const OTHERS: [&str; 20] = [
    "lgtm",
    "approve",
    "hold",
    "unhold",
    "cc",
    "uncc",
    "assign",
    "unassign",
    "label",
    "remove-label",
    "kind",
    "remove-kind",
    "close",
    "reopen",
    "retitle",
    "priority",
    "lifecycle",
    "remove-lifecycle",
    "area",
    "triage",
];

impl Command {
    /// The first line of `body` that is exactly a command.
    pub fn find(body: &str) -> Option<Command> {
        Self::find_with_arg(body).map(|(command, _)| command)
    }

    /// The name a person types.
    pub fn name(self) -> &'static str {
        match self {
            Command::Retest => "/retest",
            Command::OkToTest => "/ok-to-test",
            Command::Test => "/test",
            Command::Cancel => "/cancel",
            Command::Unknown => "an unknown command",
        }
    }

    /// The first command line of `body`, and its argument: the commit
    /// `/ok-to-test` approves (7 to 40 hex digits, lowercased), the unit
    /// of `/test`, `/retest` or `/cancel`, or the word of an unknown one.
    pub fn find_with_arg(body: &str) -> Option<(Command, Option<String>)> {
        // A command inside a fenced code block is quoted, not given.
        let mut fenced = false;
        body.lines().find_map(|line| {
            if line.trim_start().starts_with("```") || line.trim_start().starts_with("~~~") {
                fenced = !fenced;
                return None;
            }
            if fenced {
                return None;
            }
            let mut words = line.split_whitespace();
            let word = words.next()?.strip_prefix('/')?;
            let (arg, extra) = (words.next(), words.next());
            if extra.is_some() {
                return None;
            }
            let command = match word {
                "retest" => Command::Retest,
                "ok-to-test" => Command::OkToTest,
                "test" => Command::Test,
                "cancel" => Command::Cancel,
                other if plausible(other) && !OTHERS.contains(&other) => {
                    return Some((Command::Unknown, Some(other.to_owned())));
                }
                _ => return None,
            };
            match (command, arg) {
                (_, None) => Some((command, None)),
                (Command::OkToTest, Some(sha))
                    if (7..=40).contains(&sha.len()) && sha.chars().all(|c| c.is_ascii_hexdigit()) =>
                {
                    Some((command, Some(sha.to_ascii_lowercase())))
                }
                (Command::OkToTest, Some(_)) => None,
                // Only a name a unit can have: the answer echoes it.
                (_, Some(unit)) if super::UnitName::parse(unit).is_ok() => Some((command, Some(unit.to_owned()))),
                _ => None,
            }
        })
    }
}

/// A word that looks like a command someone meant: short, lowercase.
fn plausible(word: &str) -> bool {
    (2..=20).contains(&word.len())
        && word.starts_with(|c: char| c.is_ascii_lowercase())
        && word.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_stand_on_a_line_of_their_own() {
        assert_eq!(Command::find("/retest"), Some(Command::Retest));
        assert_eq!(Command::find("looks good\r\n  /ok-to-test  \n"), Some(Command::OkToTest));
        assert_eq!(Command::find("please /retest this"), None);
        assert_eq!(Command::find("/retest all of it"), None);
        assert_eq!(Command::find(""), None);
        assert_eq!(Command::find("/test"), Some(Command::Test));
        assert_eq!(Command::find("/cancel\n"), Some(Command::Cancel));
        assert_eq!(Command::find_with_arg("/retest api"), Some((Command::Retest, Some("api".into()))));
        assert_eq!(Command::find_with_arg("/test docs"), Some((Command::Test, Some("docs".into()))));
        assert_eq!(Command::find_with_arg("/cancel web"), Some((Command::Cancel, Some("web".into()))));
        assert_eq!(Command::find_with_arg(&format!("/test {}", "u".repeat(64))), None, "no unit is that long");
        // An unknown command someone may have meant for Ferry; others' are theirs.
        assert_eq!(Command::find_with_arg("/retesting"), Some((Command::Unknown, Some("retesting".into()))));
        assert_eq!(Command::find_with_arg("/tset"), Some((Command::Unknown, Some("tset".into()))));
        for not_ours in ["/lgtm", "/approve", "/cc @octocat", "/assign", "/Test", "/x", "/usr/bin/env", "//"] {
            assert_eq!(Command::find(not_ours), None, "{not_ours}");
        }
        // Quoted in a code block: not given.
        assert_eq!(Command::find("type this:\n```\n/retest\n```\n"), None);
        assert_eq!(Command::find("```\n/retest\n```\n/cancel"), Some(Command::Cancel));
        // A unit argument is a unit name or nothing: never markup to echo.
        assert_eq!(Command::find("/test x`[phish](https://evil)`"), None);
        assert_eq!(Command::find("/retest a@org/team"), None);
        assert_eq!(Command::find("/test api\r\n"), Some(Command::Test));
    }

    #[test]
    fn ok_to_test_may_name_the_commit_it_approves() {
        assert_eq!(Command::find_with_arg("/ok-to-test"), Some((Command::OkToTest, None)));
        assert_eq!(Command::find_with_arg("/ok-to-test 1A2b3c4"), Some((Command::OkToTest, Some("1a2b3c4".into()))));
        assert_eq!(Command::find_with_arg("/ok-to-test 1a2b3c"), None, "too short to name a commit");
        assert_eq!(Command::find_with_arg("/ok-to-test main"), None);
        assert_eq!(Command::find_with_arg("/ok-to-test 1a2b3c4 extra"), None);
    }

    #[test]
    fn pushes_name_their_branch_or_tag() {
        let sha = Sha::parse("a".repeat(40)).unwrap();
        let mut push = Push {
            git_ref: RefName::parse("refs/heads/release/1.x").unwrap(),
            before: sha.clone(),
            after: sha,
            deleted: false,
            forced: false,
            changed_paths: vec!["a".into()],
            paths_truncated: false,
        };
        assert_eq!((push.branch(), push.tag()), (Some("release/1.x"), None));
        push.git_ref = RefName::parse("refs/tags/v1").unwrap();
        assert_eq!((push.branch(), push.tag()), (None, Some("v1")));
        push.truncate_paths();
        assert!(push.paths_truncated && push.changed_paths.is_empty());
    }
}
