//! The token rotator's use case (README.md, "Tokens"): every active
//! installation keeps a stored token with more than 45 minutes of life.

use futures::StreamExt;
use serde::Serialize;

use crate::domain::tokens::ROTATE_WITHIN;
use crate::domain::{Installation, InstallationId};
use crate::forge::MintError;
use crate::store::{Collection, StateStore, StoreError};

use super::tokens::{Need, Refreshed, TokenError, Tokens};

/// How many installations are rotated at once.
pub const CONCURRENCY: usize = 8;

/// What one rotation did, installation by installation: logged and returned
/// as the Lambda's result.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct RotationReport {
    pub minted: Vec<InstallationId>,
    pub fresh: usize,
    pub suspended: usize,
    /// Another rotation was minting for these.
    pub leased: Vec<InstallationId>,
    pub failed: Vec<Failure>,
    /// Installations queued for the queue's workers (a planner's cycle).
    #[serde(skip_serializing_if = "super::is_zero")]
    pub queued: usize,
    /// Installations given back on the queue: GitHub rate-limits minting,
    /// or the deadline came first.
    #[serde(skip_serializing_if = "super::is_zero")]
    pub left: usize,
    /// What failed beside any one installation (listing them, queueing them,
    /// an unreadable item).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub installation: InstallationId,
    pub problem: String,
}

impl RotationReport {
    /// Installations looked at.
    pub fn total(&self) -> usize {
        self.minted.len() + self.fresh + self.suspended + self.leased.len() + self.failed.len()
    }

    /// Adds another part of the rotation's report to this one.
    pub fn add(&mut self, other: RotationReport) {
        self.minted.extend(other.minted);
        self.fresh += other.fresh;
        self.suspended += other.suspended;
        self.leased.extend(other.leased);
        self.failed.extend(other.failed);
        self.queued += other.queued;
        self.left += other.left;
        self.problems.extend(other.problems);
    }
}

/// One rotation over every installation. A failure for one installation is
/// recorded and the others go on; only failing to list them is an error.
#[tracing::instrument(skip_all)]
pub async fn rotate(tokens: &Tokens, state: &dyn StateStore) -> Result<RotationReport, StoreError> {
    let found = state.list::<Installation>(&Collection::Installations).await?;
    let installations: Vec<Installation> = found.into_iter().map(|installation| installation.record).collect();
    let results: Vec<(InstallationId, Result<Refreshed, TokenError>)> = futures::stream::iter(installations)
        .map(|installation| async move {
            let id = installation.id;
            (id, tokens.refresh(state, id, Need::Within(ROTATE_WITHIN)).await)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut report = RotationReport::default();
    for (installation, result) in results {
        note(&mut report, installation, result);
    }
    report.minted.sort();
    report.leased.sort();
    report.failed.sort_by_key(|f| f.installation);
    tracing::info!(
        installations = report.total(),
        minted = report.minted.len(),
        fresh = report.fresh,
        suspended = report.suspended,
        leased = report.leased.len(),
        failed = report.failed.len(),
        "rotation done"
    );
    Ok(report)
}

/// Notes what refreshing `installation`'s token did.
pub(crate) fn note(report: &mut RotationReport, installation: InstallationId, result: Result<Refreshed, TokenError>) {
    match result {
        Ok(Refreshed::Minted(_)) => report.minted.push(installation),
        Ok(Refreshed::Fresh(expires_at)) => {
            tracing::debug!(%installation, expires_at = %expires_at.to_rfc3339(), "token is fresh");
            report.fresh += 1;
        }
        Ok(Refreshed::Suspended) => report.suspended += 1,
        Ok(Refreshed::Leased(_)) => {
            tracing::info!(%installation, "another rotation is minting; skipped");
            report.leased.push(installation);
        }
        Err(error) => {
            let retry = match &error {
                TokenError::Mint { source: MintError::RateLimited { retry_after: Some(wait) }, .. } => {
                    format!("; GitHub asks to wait {}s, the next cycle retries", wait.as_secs())
                }
                _ => "; the next cycle retries".to_owned(),
            };
            tracing::error!(%installation, %error, "could not rotate the token{retry}");
            report.failed.push(Failure { installation, problem: error.to_string() });
        }
    }
}
