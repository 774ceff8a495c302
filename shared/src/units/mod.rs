//! Units: what a repository asks Ferry to run, from its `.ferry.toml` or the
//! operator's config, and the context their templates see.

pub mod file;
pub mod kube_git_deploy;
pub mod operator;
pub mod plan;
pub mod policy;
pub mod template;

use serde::Serialize;

use crate::domain::event::{Detail, GitEvent};
use crate::domain::{PrNumber, RepoName, Sha};

pub use file::{Docker, FileError, Helm, On, Preview, RunKind, RunSpec, SKIP_LABEL, Unit};
pub use operator::OperatorConfig;
pub use policy::{Policy, PolicyViolation};

/// What templates see (README.md, "Units"): absent parts are `none`, so
/// `{% if pr %}` works on a push and `{{ pr.number }}` there is an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateContext {
    pub git: GitContext,
    pub repo: RepoContext,
    pub pr: Option<PrContext>,
    pub release: Option<ReleaseContext>,
    /// `push`, `pull_request` or `release`.
    pub event: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GitContext {
    pub sha: String,
    pub short_sha: String,
    pub branch: Option<String>,
    pub tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoContext {
    pub owner: String,
    pub name: String,
    pub full_name: String,
    pub clone_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrContext {
    pub number: u64,
    pub head_sha: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseContext {
    pub tag: String,
    pub prerelease: bool,
}

impl TemplateContext {
    /// Every variable, for error messages.
    pub const VARIABLES: [&'static str; 13] = [
        "git.sha",
        "git.short_sha",
        "git.branch",
        "git.tag",
        "repo.owner",
        "repo.name",
        "repo.full_name",
        "repo.clone_url",
        "pr.number",
        "pr.head_sha",
        "release.tag",
        "release.prerelease",
        "event",
    ];

    /// The context for building `sha` of `repo` because of `event`.
    pub fn new(event: &GitEvent, repo: &RepoName, sha: &Sha) -> Self {
        let clone_url = event.clone_url.clone().unwrap_or_else(|| format!("https://github.com/{repo}.git"));
        let mut context = TemplateContext {
            git: GitContext { sha: sha.to_string(), short_sha: sha.short().to_owned(), branch: None, tag: None },
            repo: RepoContext {
                owner: repo.owner().to_owned(),
                name: repo.name().to_owned(),
                full_name: repo.full_name().to_owned(),
                clone_url,
            },
            pr: None,
            release: None,
            event: event.name.clone(),
        };
        match &event.detail {
            Detail::Push(push) => {
                context.git.branch = push.branch().map(str::to_owned);
                context.git.tag = push.tag().map(str::to_owned);
            }
            Detail::PullRequest(pr) => {
                context.git.branch = Some(pr.head_ref.clone());
                context.pr = Some(PrContext { number: pr.number.get(), head_sha: pr.head_sha.to_string() });
            }
            Detail::Release(release) => {
                context.git.tag = Some(release.tag.to_string());
                context.release = Some(ReleaseContext { tag: release.tag.to_string(), prerelease: release.prerelease });
            }
            _ => {}
        }
        context
    }

    /// The same context for a pull request known by number (commands, reruns).
    pub fn with_pr(mut self, number: PrNumber, head_ref: Option<&str>) -> Self {
        self.event = "pull_request".into();
        self.git.branch = head_ref.map(str::to_owned).or(self.git.branch);
        self.pr = Some(PrContext { number: number.get(), head_sha: self.git.sha.clone() });
        self
    }
}

/// The 1-based line of byte `at` in `text`: where the files people write
/// say their mistakes are.
pub(crate) fn line_at(text: &str, at: usize) -> usize {
    1 + text.as_bytes()[..at.min(text.len())].iter().filter(|b| **b == b'\n').count()
}

/// A push's template context for tests: `acme/api` at `sha` on `branch`.
#[cfg(test)]
pub(crate) fn push_context(branch: &str, sha: &str) -> TemplateContext {
    use crate::domain::event::{Detail, GitEvent, Push};
    use crate::domain::{RefName, RepoName, Sha};
    let sha = Sha::parse(sha).unwrap();
    let push = Push::to(RefName::parse(format!("refs/heads/{branch}")).unwrap(), sha.clone(), sha.clone());
    let event = GitEvent {
        clone_url: Some("https://github.com/acme/api.git".into()),
        ..GitEvent::new("push", Some(RepoName::parse("acme/api").unwrap()), Detail::Push(push))
    };
    TemplateContext::new(&event, &RepoName::parse("acme/api").unwrap(), &sha)
}
