//! The installation lifecycle, as GitHub reports it: which installations and
//! repositories Ferry acts for.

use crate::domain::event::{Detail, GitEvent};
use crate::domain::route::InstallationChange;
use crate::domain::{Installation, InstallationId, RepoMode, RepoName, Repository};
use crate::store::{Key, StateStore, StoreError};

use super::Action;

#[derive(Debug, thiserror::Error)]
pub enum InstallationError {
    #[error("the event names no installation")]
    NoInstallation,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Records what an `installation` event says.
pub async fn apply_installation(
    state: &dyn StateStore,
    event: &GitEvent,
    change: InstallationChange,
) -> Result<Vec<Action>, InstallationError> {
    let (id, Detail::Installation(detail)) =
        (event.installation.ok_or(InstallationError::NoInstallation)?, &event.detail)
    else {
        return Err(InstallationError::NoInstallation);
    };
    let mut actions = Vec::new();
    if change == InstallationChange::Deleted {
        state.delete(&Key::Installation(id)).await?;
        actions.push(Action::new("installation.removed", id));
        for repo in &detail.repositories {
            if remove_repository(state, id, repo).await? {
                actions.push(Action::new("repository.removed", repo));
            }
        }
        return Ok(actions);
    }
    let installation = Installation {
        id,
        account: detail.account.clone(),
        suspended: match change {
            InstallationChange::Suspended => true,
            InstallationChange::Unsuspended => false,
            _ => detail.suspended,
        },
        repository_selection: detail.repository_selection.clone(),
    };
    let kind = if installation.suspended { "installation.suspended" } else { "installation.recorded" };
    state.save(installation.clone(), |_| installation.clone()).await?;
    actions.push(Action::new(kind, id));
    if change == InstallationChange::Created {
        for repo in &detail.repositories {
            record_repository(state, id, repo).await?;
            actions.push(Action::new("repository.recorded", repo));
        }
    }
    Ok(actions)
}

/// Records what an `installation_repositories` event says.
pub async fn apply_repositories(state: &dyn StateStore, event: &GitEvent) -> Result<Vec<Action>, InstallationError> {
    let (id, Detail::InstallationRepositories(detail)) =
        (event.installation.ok_or(InstallationError::NoInstallation)?, &event.detail)
    else {
        return Err(InstallationError::NoInstallation);
    };
    let mut actions = Vec::new();
    for repo in &detail.added {
        record_repository(state, id, repo).await?;
        actions.push(Action::new("repository.recorded", repo));
    }
    for repo in &detail.removed {
        if remove_repository(state, id, repo).await? {
            actions.push(Action::new("repository.removed", repo));
        }
    }
    Ok(actions)
}

async fn record_repository(state: &dyn StateStore, id: InstallationId, repo: &RepoName) -> Result<(), StoreError> {
    let fresh = Repository {
        name: repo.clone(),
        mode: RepoMode::App,
        installation: Some(id),
        hook_id: None,
        last_event_at: None,
        last_error: None,
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
