//! The installation lifecycle, as GitHub reports it: which installations and
//! repositories Ferry acts for.

use crate::domain::event::{Detail, GitEvent};
use crate::domain::route::InstallationChange;
use crate::domain::tokens::ROTATE_WITHIN;
use crate::domain::{Installation, InstallationId, RepoMode, RepoName, Repository, Timestamp};
use crate::forge::MintError;
use crate::store::{Collection, Key, StateStore, StoreError};

use super::Action;
use super::tokens::{Need, Refreshed, TokenError, Tokens};

#[derive(Debug, thiserror::Error)]
pub enum InstallationError {
    #[error("the event names no installation")]
    NoInstallation,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// What an installation event did, and why it did nothing if it did not.
#[derive(Debug, Default)]
pub struct Applied {
    pub actions: Vec<Action>,
    pub reason: Option<String>,
}

/// The installation an event is about, or, when the event is older than
/// what Ferry knows of it, the nothing it does.
async fn current(
    state: &dyn StateStore,
    event: &GitEvent,
) -> Result<Result<InstallationId, Applied>, InstallationError> {
    let id = event.installation.ok_or(InstallationError::NoInstallation)?;
    Ok(match outdated(state, id, event).await? {
        Some(reason) => Err(Applied { actions: Vec::new(), reason: Some(reason) }),
        None => Ok(id),
    })
}

impl From<Vec<Action>> for Applied {
    fn from(actions: Vec<Action>) -> Self {
        Applied { actions, reason: None }
    }
}

/// Why an event about installation `id` must change nothing: GitHub changed
/// the installation after it happened (a late or replayed event).
async fn outdated(state: &dyn StateStore, id: InstallationId, event: &GitEvent) -> Result<Option<String>, StoreError> {
    let Some(at) = event.happened_at else { return Ok(None) };
    let known = state.load::<Installation>(&Key::Installation(id)).await?.and_then(|f| f.record.updated_at);
    Ok(known.filter(|known| *known > at).map(|known| {
        format!(
            "installation {id} changed at {} after this event ({}): it changes nothing",
            known.to_rfc3339(),
            at.to_rfc3339()
        )
    }))
}

/// Records what an `installation` event says, and keeps its token in step:
/// minted when it is created, unsuspended or given new permissions (tokens
/// minted before carry the old ones, or were revoked), deleted with it.
pub async fn apply_installation(
    state: &dyn StateStore,
    tokens: &Tokens,
    event: &GitEvent,
    change: InstallationChange,
    now: Timestamp,
) -> Result<Applied, InstallationError> {
    let id = match current(state, event).await? {
        Ok(id) => id,
        Err(outdated) => return Ok(outdated),
    };
    let Detail::Installation(detail) = &event.detail else { return Err(InstallationError::NoInstallation) };
    let mut actions = Vec::new();
    if change == InstallationChange::Deleted {
        state.delete(&Key::Installation(id)).await?;
        tokens.forget(id).await?;
        actions.push(Action::new("installation.removed", id));
        actions.push(Action::new("token.deleted", id));
        // With `all` repositories selected the event lists none: what the
        // store knows of this installation goes.
        let mut repositories: Vec<RepoName> = detail.repositories.clone();
        for found in state.list::<Repository>(&Collection::Repositories).await? {
            let repo = found.record;
            if repo.installation == Some(id) && !repositories.contains(&repo.name) {
                repositories.push(repo.name);
            }
        }
        for repo in &repositories {
            if remove_repository(state, id, repo).await? {
                actions.push(Action::new("repository.removed", repo));
            }
        }
        return Ok(actions.into());
    }
    let suspended = match change {
        InstallationChange::Suspended => true,
        InstallationChange::Unsuspended => false,
        _ => detail.suspended,
    };
    let fresh = Installation {
        suspended,
        updated_at: event.happened_at,
        ..Installation::new(id, detail.account.clone(), detail.repository_selection.clone())
    };
    state
        .save(fresh.clone(), |current| Installation {
            // What Ferry knows of the token is not the event's to change.
            token_expires_at: current.token_expires_at,
            minting_until: current.minting_until,
            token_error: current.token_error,
            updated_at: fresh.updated_at.max(current.updated_at),
            ..fresh.clone()
        })
        .await?;
    actions.push(Action::new(if suspended { "installation.suspended" } else { "installation.recorded" }, id));
    if change == InstallationChange::Created {
        for repo in &detail.repositories {
            record_repository(state, id, repo, now).await?;
            actions.push(Action::new("repository.recorded", repo));
        }
    }
    let need = match change {
        InstallationChange::Created => Some(Need::Within(ROTATE_WITHIN)),
        InstallationChange::Unsuspended | InstallationChange::PermissionsAccepted => Some(Need::Replace),
        InstallationChange::Suspended | InstallationChange::Deleted => None,
    };
    if let Some(need) = need.filter(|_| !suspended) {
        match tokens.refresh(state, id, need).await {
            Ok(Refreshed::Minted(_)) => actions.push(Action::new("token.minted", id)),
            Ok(_) => {}
            // Without App credentials (a local run) there is nothing to mint;
            // any other failure is the rotator's to retry within 30 minutes.
            Err(TokenError::Mint { source: MintError::NotConfigured, .. }) => {}
            Err(e) => {
                tracing::warn!(error = %e, "no token minted yet; the rotator retries");
                actions.push(Action::new("token.deferred", id));
            }
        }
    }
    Ok(actions.into())
}

/// Records what an `installation_repositories` event says.
pub async fn apply_repositories(
    state: &dyn StateStore,
    event: &GitEvent,
    now: Timestamp,
) -> Result<Applied, InstallationError> {
    let id = match current(state, event).await? {
        Ok(id) => id,
        Err(outdated) => return Ok(outdated),
    };
    let Detail::InstallationRepositories(detail) = &event.detail else {
        return Err(InstallationError::NoInstallation);
    };
    if let (Some(at), Some(mut found)) = (event.happened_at, state.load::<Installation>(&Key::Installation(id)).await?)
    {
        found.record.updated_at = Some(at);
        state.update(&found.record.into(), found.version).await?;
    }
    let mut actions = Vec::new();
    for repo in &detail.added {
        record_repository(state, id, repo, now).await?;
        actions.push(Action::new("repository.recorded", repo));
    }
    for repo in &detail.removed {
        if remove_repository(state, id, repo).await? {
            actions.push(Action::new("repository.removed", repo));
        }
    }
    Ok(actions.into())
}

async fn record_repository(
    state: &dyn StateStore,
    id: InstallationId,
    repo: &RepoName,
    now: Timestamp,
) -> Result<(), StoreError> {
    let fresh = Repository {
        name: repo.clone(),
        mode: RepoMode::App,
        installation: Some(id),
        hook_id: None,
        last_event_at: None,
        last_error: None,
        tracked_since: Some(now),
    };
    state
        .save(fresh, |mut current| {
            // A repository tracked with its own token keeps its mode.
            current.installation = Some(id);
            current
        })
        .await?;
    Ok(())
}

/// Removes the repository if this installation is what Ferry reaches it by:
/// a repository tracked with its own token stays.
async fn remove_repository(state: &dyn StateStore, id: InstallationId, repo: &RepoName) -> Result<bool, StoreError> {
    let key = Key::Repository(repo.clone());
    match state.load::<Repository>(&key).await? {
        Some(found) if found.record.installation == Some(id) && found.record.mode == RepoMode::App => {
            state.delete(&key).await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}
