//! Tracking repositories (README.md, "Management API", and "Coming from one
//! of Ferry's seeds" for Kube Git Deploy's routes and repository-token
//! mode): list what Ferry acts for,
//! track a repository (in token mode, with its own webhook created through
//! the API), untrack it (the webhook, the records and the previews go).
//! Nothing half-done is left behind: a step that fails undoes what this
//! call did before it.

use secrecy::SecretString;
use serde::Serialize;

use crate::cluster::Cluster;
use crate::domain::tokens::Credential;
use crate::domain::{Clock, Login, Preview, RepoMode, RepoName, Repository, Timestamp};
use crate::forge::{Forge, ForgeError, Target};
use crate::secrets::{SecretError, SecretName, SecretStore};
use crate::store::{Collection, Key, StateStore, StoreError};

#[derive(Clone, Copy)]
pub struct Ports<'a> {
    pub state: &'a dyn StateStore,
    pub secrets: &'a dyn SecretStore,
    pub forge: &'a dyn Forge,
    pub cluster: &'a dyn Cluster,
    /// Where GitHub delivers (`FERRY_PUBLIC_URL`), for a token-mode webhook.
    pub public_url: Option<&'a str>,
    /// The webhook secret the created webhook signs with.
    pub webhook_secret: Option<&'a SecretString>,
    pub clock: &'a dyn Clock,
}

impl<'a> Ports<'a> {
    pub fn of(context: &'a crate::Context, webhook_secret: Option<&'a SecretString>) -> Self {
        Self {
            state: context.state.as_ref(),
            secrets: context.secrets.as_ref(),
            forge: context.forge.as_ref(),
            cluster: context.cluster.as_ref(),
            public_url: context.config.public_url.as_ref().map(url::Url::as_str),
            webhook_secret,
            clock: &crate::domain::SystemClock,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    /// The caller's mistake: 400.
    #[error("{0}")]
    Invalid(String),
    #[error("{0} is not tracked")]
    NotTracked(RepoName),
    /// GitHub refused or failed: its message, 502.
    #[error(transparent)]
    Forge(#[from] ForgeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secrets(#[from] SecretError),
}

/// A tracked repository, as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tracked {
    pub repository: String,
    pub mode: RepoMode,
    pub installation: Option<u64>,
    pub hook_id: Option<u64>,
    pub last_event_at: Option<Timestamp>,
    pub last_error: Option<String>,
}

impl From<Repository> for Tracked {
    fn from(r: Repository) -> Self {
        Self {
            repository: r.name.to_string(),
            mode: r.mode,
            installation: r.installation.map(|i| i.get()),
            hook_id: r.hook_id,
            last_event_at: r.last_event_at,
            last_error: r.last_error,
        }
    }
}

pub async fn list(state: &dyn StateStore) -> Result<Vec<Tracked>, StoreError> {
    let found = state.list::<Repository>(&Collection::Repositories).await?;
    let mut tracked: Vec<Tracked> = found.into_iter().map(|repo| repo.record.into()).collect();
    tracked.sort_by(|a, b| a.repository.cmp(&b.repository));
    Ok(tracked)
}

/// What tracking did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackOutcome {
    pub repository: Tracked,
    /// False when it was tracked already (the webhook reused).
    pub created: bool,
}

/// Tracks `repo`. In token mode, `token` (when given) is stored as the
/// repository's token, and a webhook to the public URL is created unless
/// one is there already: tracking twice leaves one webhook.
pub async fn track(
    ports: Ports<'_>,
    repo: &RepoName,
    mode: RepoMode,
    token: Option<SecretString>,
) -> Result<TrackOutcome, TrackError> {
    if !repo.is_githubs() {
        return Err(TrackError::Invalid(format!(
            "{repo} is not a GitHub repository: a repository of another host is tracked by its [[poll]] entry"
        )));
    }
    let key = Key::Repository(repo.clone());
    let known = ports.state.load::<Repository>(&key).await?.map(|found| found.record);
    if mode == RepoMode::App {
        let record = Repository {
            mode: RepoMode::App,
            tracked_since: known.as_ref().and_then(|k| k.tracked_since).or(Some(ports.clock.now())),
            ..known.clone().unwrap_or_else(|| fresh(repo))
        };
        ports.state.save(record.clone(), |_| record.clone()).await?;
        return Ok(TrackOutcome { repository: record.into(), created: known.is_none() });
    }
    let Some(url) = ports.public_url else {
        return Err(TrackError::Invalid(
            "FERRY_PUBLIC_URL is not set: the webhook needs the URL GitHub should deliver to".into(),
        ));
    };
    let Some(secret) = ports.webhook_secret else {
        return Err(TrackError::Invalid("no webhook secret is configured to sign the webhook with".into()));
    };
    let name = SecretName::repository(repo).map_err(|e| TrackError::Invalid(e.to_string()))?;
    let before = ports.secrets.get(&name).await?;
    let stored_here = match token {
        Some(token) => {
            ports.secrets.put(&name, &token).await?;
            true
        }
        None if before.is_some() => false,
        None => {
            return Err(TrackError::Invalid(format!(
                "token mode needs the repository's token: send {{\"token\": …}} or store it as {name}"
            )));
        }
    };
    let target = Target { repo: repo.clone(), credential: Credential::Repository(repo.clone()) };
    let hook = match existing_or_new_hook(ports, &target, url, secret).await {
        Ok(hook) => hook,
        Err(e) => {
            // Nothing half-done: the token this call stored goes again, and
            // the one it replaced comes back.
            if stored_here {
                let _ = match &before {
                    Some(previous) => ports.secrets.put(&name, previous).await,
                    None => ports.secrets.delete(&name).await,
                };
            }
            return Err(e.into());
        }
    };
    let record = Repository {
        mode: RepoMode::Token,
        hook_id: Some(hook),
        tracked_since: known.as_ref().and_then(|k| k.tracked_since).or(Some(ports.clock.now())),
        ..known.clone().unwrap_or_else(|| fresh(repo))
    };
    ports.state.save(record.clone(), |_| record.clone()).await?;
    Ok(TrackOutcome { repository: record.into(), created: known.is_none() })
}

/// Tracks `repo` in token mode with a GitHub login's token (`oauth/<login>`,
/// stored by the OAuth callback): the login named, or the only one stored.
/// The token is kept as the repository's token from then on, as if it had
/// been sent; logging in again and tracking again replaces it.
pub async fn track_with_login(
    ports: Ports<'_>,
    repo: &RepoName,
    named: Option<&str>,
) -> Result<TrackOutcome, TrackError> {
    let stored = logins(ports.state).await?;
    let login = choose_login(named, &stored).map_err(TrackError::Invalid)?;
    let name = SecretName::parse(format!("oauth/{login}")).map_err(|e| TrackError::Invalid(e.to_string()))?;
    let Some(token) = ports.secrets.get(&name).await? else {
        return Err(TrackError::Invalid(format!(
            "no token is stored for GitHub login {login}: log in with GitHub first (GET /api/v0/github/login_url)"
        )));
    };
    track(ports, repo, RepoMode::Token, Some(token)).await
}

/// The GitHub logins whose tokens the OAuth callback stored, sorted.
pub async fn logins(state: &dyn StateStore) -> Result<Vec<String>, StoreError> {
    let found = state.list::<Login>(&Collection::Logins).await?;
    let mut logins: Vec<String> = found.into_iter().map(|login| login.record.login).collect();
    logins.sort();
    Ok(logins)
}

/// Whose token tracking uses: the login named (a valid GitHub login), else
/// the only one stored; none stored, or several and none named, is the
/// caller's to fix, and the error says how.
pub fn choose_login(named: Option<&str>, stored: &[String]) -> Result<String, String> {
    match (named, stored) {
        (Some(login), _) if is_github_login(login) => Ok(login.to_owned()),
        (Some(login), _) => Err(format!("{:?} is not a GitHub login", login.chars().take(40).collect::<String>())),
        (None, [only]) => Ok(only.clone()),
        (None, []) => {
            Err("no GitHub login is stored: log in with GitHub first (GET /api/v0/github/login_url)".to_owned())
        }
        (None, several) => {
            Err(format!("several GitHub logins are stored ({}): name one with {{\"login\": …}}", several.join(", ")))
        }
    }
}

/// GitHub's rule: 1 to 39 letters, digits and single hyphens, not at either end.
fn is_github_login(login: &str) -> bool {
    (1..=39).contains(&login.len())
        && login.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !login.starts_with('-')
        && !login.ends_with('-')
        && !login.contains("--")
}

/// A repository as tracking first records it: App mode, nothing heard yet.
pub(crate) fn fresh(repo: &RepoName) -> Repository {
    Repository {
        name: repo.clone(),
        mode: RepoMode::App,
        installation: None,
        hook_id: None,
        last_event_at: None,
        last_error: None,
        tracked_since: None,
    }
}

async fn existing_or_new_hook(
    ports: Ports<'_>,
    target: &Target,
    url: &str,
    secret: &SecretString,
) -> Result<u64, ForgeError> {
    if let Some((id, _)) = ports.forge.hooks(target).await?.into_iter().find(|(_, to)| to == url) {
        return Ok(id);
    }
    ports.forge.create_hook(target, url, secret).await
}

/// Untracks `repo`: its webhook (token mode), its previews, its records and
/// its token go. If the webhook cannot be deleted, nothing else is.
pub async fn untrack(ports: Ports<'_>, repo: &RepoName) -> Result<(), TrackError> {
    let key = Key::Repository(repo.clone());
    let Some(found) = ports.state.load::<Repository>(&key).await? else {
        return Err(TrackError::NotTracked(repo.clone()));
    };
    let repository = found.record;
    if let (RepoMode::Token, Some(hook)) = (repository.mode, repository.hook_id) {
        let target = Target { repo: repo.clone(), credential: Credential::Repository(repo.clone()) };
        ports.forge.delete_hook(&target, hook).await?;
    }
    for preview in ports.state.list::<Preview>(&Collection::Previews(repo.clone())).await? {
        let preview = preview.record;
        if let Err(e) = ports.cluster.delete_namespace(&preview.namespace).await {
            tracing::warn!(error = %e, namespace = %preview.namespace, "could not remove a preview; delete it by hand");
        }
    }
    for collection in [
        Collection::Previews(repo.clone()),
        Collection::PullRequests(repo.clone()),
        Collection::Releases(repo.clone()),
        Collection::Runs(repo.clone()),
        Collection::Refs(repo.clone()),
    ] {
        for found in ports.state.query(&collection).await? {
            ports.state.delete(&found.record.key()).await?;
        }
    }
    // Kept, its listings' ETags would make a repository tracked again take
    // GitHub's 304 for "nothing to launch".
    ports.state.delete(&Key::ListingTags(repo.clone())).await?;
    ports.state.delete(&key).await?;
    if repository.mode == RepoMode::Token
        && let Ok(name) = SecretName::repository(repo)
    {
        ports.secrets.delete(&name).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_is_the_one_named_or_the_only_one() {
        let stored = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        // (named, stored, the login chosen or part of the error)
        type Case = (Option<&'static str>, Vec<String>, Result<&'static str, &'static str>);
        let cases: [Case; 9] = [
            (None, stored(&["octocat"]), Ok("octocat")),
            (None, stored(&[]), Err("no GitHub login is stored")),
            (None, stored(&["hubot", "octocat"]), Err("several GitHub logins are stored (hubot, octocat)")),
            (Some("hubot"), stored(&["hubot", "octocat"]), Ok("hubot")),
            // Named: its token is looked up even without a record (a login stored before records were kept).
            (Some("mona"), stored(&[]), Ok("mona")),
            (Some("mona-lisa"), stored(&["octocat"]), Ok("mona-lisa")),
            (Some("../webhook-secret"), stored(&["octocat"]), Err("is not a GitHub login")),
            (Some(""), stored(&["octocat"]), Err("is not a GitHub login")),
            (Some("-mona"), stored(&["octocat"]), Err("is not a GitHub login")),
        ];
        for (named, stored, expected) in cases {
            let chosen = choose_login(named, &stored);
            match (expected, &chosen) {
                (Ok(login), Ok(got)) => assert_eq!(got, login, "{named:?} {stored:?}"),
                (Err(part), Err(problem)) => assert!(problem.contains(part), "{named:?} {stored:?}: {problem}"),
                _ => panic!("{named:?} {stored:?}: {chosen:?}, expected {expected:?}"),
            }
        }
        assert!(!is_github_login(&"a".repeat(40)) && !is_github_login("a--b") && is_github_login(&"a".repeat(39)));
    }
}
