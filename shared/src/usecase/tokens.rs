//! Credentials for acting on a repository: installation tokens kept fresh in
//! the secret store, repository tokens as the operator put them there, and
//! an in-memory cache in front of both that lives across warm invocations.
//!
//! Minting is guarded by a lease on the installation's record: of two
//! rotations (or a rotation and a function whose token ran short) that meet,
//! one mints and the other skips or waits for its result.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

pub use crate::domain::tokens::Credential;
use crate::domain::tokens::{MINT_LEASE, REFRESH_WITHIN, Rotation, StoredToken, rotation};
use crate::domain::{Clock, Installation, InstallationId, RepoName, Timestamp};
use crate::forge::{MintError, TokenMinter, TokenScope};
use crate::secrets::{SecretError, SecretName, SecretStore};
use crate::store::{Key, StateStore, StoreError, Versioned};

/// Where `credential`'s token is kept.
fn secret_name(credential: &Credential) -> Result<SecretName, TokenError> {
    match credential {
        Credential::Installation(id) => Ok(SecretName::installation(*id)),
        Credential::Repository(repo) => SecretName::repository(repo)
            .map_err(|e| TokenError::Unreadable { credential: credential.clone(), problem: e.to_string() }),
        // Its token is its `[[poll]]` entry's, read where it is used.
        Credential::Host(_) => Err(TokenError::Missing(credential.clone())),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("installation {0} is suspended: no tokens until it is unsuspended")]
    Suspended(InstallationId),
    #[error("no token is stored for {0}")]
    Missing(Credential),
    #[error("the token stored for {credential} {problem}")]
    Unreadable { credential: Credential, problem: String },
    #[error("GitHub refused the token stored for {0}: replace it")]
    Refused(Credential),
    #[error("another rotation is minting for installation {0}; try again shortly")]
    Busy(InstallationId),
    #[error("minting a token for installation {installation}: {source}")]
    Mint { installation: InstallationId, source: MintError },
    #[error(transparent)]
    Secrets(#[from] SecretError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a refresh did for one installation.
#[derive(Debug, Clone)]
pub enum Refreshed {
    /// A new token is in the secret store.
    Minted(StoredToken),
    /// The stored one lives long enough.
    Fresh(Timestamp),
    /// Another rotation holds the lease.
    Leased(Timestamp),
    Suspended,
}

/// When a refresh must mint.
#[derive(Debug, Clone, Copy)]
pub enum Need {
    /// The stored token expires within this.
    Within(Duration),
    /// Whatever is stored: it was revoked or lacks new permissions.
    Replace,
}

/// The token service every function shares.
pub struct Tokens {
    secrets: Arc<dyn SecretStore>,
    minter: Arc<dyn TokenMinter>,
    clock: Arc<dyn Clock>,
    cache: Mutex<HashMap<Credential, StoredToken>>,
    /// Fingerprints of tokens GitHub answered 401 to: never handed out again.
    refused: Mutex<HashMap<Credential, [u8; 32]>>,
}

impl Tokens {
    pub fn new(secrets: Arc<dyn SecretStore>, minter: Arc<dyn TokenMinter>, clock: Arc<dyn Clock>) -> Self {
        Self { secrets, minter, clock, cache: Mutex::default(), refused: Mutex::default() }
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// A token for `credential` with more than ten minutes of life. Warm:
    /// from memory, no call. Otherwise from the secret store, minting a new
    /// installation token first when the stored one runs short.
    pub async fn token(&self, state: &dyn StateStore, credential: &Credential) -> Result<SecretString, TokenError> {
        let now = self.clock.now();
        if let Some(cached) = self.cached(credential).filter(|t| t.usable_at(now)) {
            return Ok(cached.token);
        }
        if let Some(stored) = self.stored(credential).await?
            && stored.usable_at(now)
            && !self.was_refused(credential, &stored.token)
        {
            return Ok(self.remember(credential, stored));
        }
        let Credential::Installation(id) = credential else {
            return match self.stored(credential).await? {
                Some(_) => Err(TokenError::Refused(credential.clone())),
                None => Err(TokenError::Missing(credential.clone())),
            };
        };
        let need = if self.refused.lock().expect("not poisoned").contains_key(credential) {
            Need::Replace
        } else {
            Need::Within(REFRESH_WITHIN)
        };
        // Another caller may be minting: wait for its token a little.
        for _ in 0..WAIT_FOR_LEASE_TRIES {
            match self.refresh(state, *id, need).await? {
                Refreshed::Minted(minted) => return Ok(self.remember(credential, minted)),
                Refreshed::Fresh(_) => {
                    if let Some(stored) = self.stored(credential).await? {
                        return Ok(self.remember(credential, stored));
                    }
                }
                Refreshed::Suspended => return Err(TokenError::Suspended(*id)),
                Refreshed::Leased(_) => tokio::time::sleep(WAIT_FOR_LEASE_STEP).await,
            }
        }
        Err(TokenError::Busy(*id))
    }

    /// GitHub answered 401 to `token`: forget it, so the next
    /// [`Tokens::token`] reads or mints another (once per refused token).
    pub fn refused(&self, credential: &Credential, token: &SecretString) {
        let mut cache = self.cache.lock().expect("not poisoned");
        if cache.get(credential).is_some_and(|c| c.token.expose_secret() == token.expose_secret()) {
            cache.remove(credential);
        }
        self.refused.lock().expect("not poisoned").insert(credential.clone(), fingerprint(token));
        tracing::warn!(%credential, "GitHub refused a token; the next call replaces it");
    }

    /// A token the operator keeps under a name of their own (a host's clone
    /// token, say): read as stored, never cached or minted.
    pub async fn named(&self, name: &SecretName) -> Result<Option<SecretString>, SecretError> {
        self.secrets.get(name).await
    }

    /// A token for one pipeline run: that repository's contents, read only,
    /// minted fresh and never stored. The installation-wide token stays here.
    pub async fn clone_token(
        &self,
        state: &dyn StateStore,
        installation: InstallationId,
        repo: &RepoName,
    ) -> Result<StoredToken, TokenError> {
        if let Some(found) = state.load::<Installation>(&Key::Installation(installation)).await?
            && found.record.suspended
        {
            return Err(TokenError::Suspended(installation));
        }
        self.minter
            .mint(installation, &TokenScope::CloneOnly(repo.clone()))
            .await
            .map_err(|source| TokenError::Mint { installation, source })
    }

    /// Mints and stores a new installation token when `need` says so,
    /// holding the installation's lease meanwhile.
    #[tracing::instrument(skip(self, state), fields(installation = %id))]
    pub async fn refresh(
        &self,
        state: &dyn StateStore,
        id: InstallationId,
        need: Need,
    ) -> Result<Refreshed, TokenError> {
        if !self.minter.configured() {
            return Err(TokenError::Mint { installation: id, source: MintError::NotConfigured });
        }
        let key = Key::Installation(id);
        let current = match state.load::<Installation>(&key).await? {
            Some(found) => found,
            None => {
                // Its `installation` event was lost: keep a placeholder the
                // next event or the reconciler fills in.
                tracing::warn!("no record of this installation; recording a placeholder");
                let placeholder = Installation::new(id, "", "");
                match state.create(&placeholder.clone().into()).await {
                    Ok(version) => Versioned { record: placeholder, version },
                    Err(StoreError::AlreadyExists { .. }) => return Ok(Refreshed::Leased(self.clock.now())),
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let now = self.clock.now();
        let (expiry, within) = match need {
            Need::Within(within) => (self.stored_expiry(id).await, within),
            Need::Replace => (None, Duration::ZERO),
        };
        match rotation(&current.record, expiry, now, within) {
            Rotation::Suspended => return Ok(Refreshed::Suspended),
            Rotation::Fresh { expires_at } => return Ok(Refreshed::Fresh(expires_at)),
            Rotation::Leased { until } => return Ok(Refreshed::Leased(until)),
            Rotation::Mint => {}
        }
        let mut leased = current.record;
        leased.minting_until = Some(now.plus(MINT_LEASE));
        let version = match state.update(&leased.clone().into(), current.version).await {
            Ok(version) => version,
            // Someone else changed it first: most likely a rotation taking the lease.
            Err(StoreError::StaleVersion { .. }) => return Ok(Refreshed::Leased(now)),
            Err(StoreError::NotFound { .. }) => return Ok(Refreshed::Suspended),
            Err(e) => return Err(e.into()),
        };
        let minted = match self.minter.mint(id, &TokenScope::Installation).await {
            Ok(minted) => minted,
            Err(source) => {
                let problem = source.to_string();
                self.release(state, Versioned { record: leased, version }, |i| i.token_error = Some(problem.clone()))
                    .await;
                return Err(TokenError::Mint { installation: id, source });
            }
        };
        if let Err(e) = self.secrets.put(&SecretName::installation(id), &minted.to_secret()).await {
            let problem = format!("storing the token failed: {e}");
            self.release(state, Versioned { record: leased, version }, |i| i.token_error = Some(problem.clone())).await;
            return Err(e.into());
        }
        let expires_at = minted.expires_at;
        let kept = self
            .release(state, Versioned { record: leased, version }, |i| {
                i.token_expires_at = expires_at;
                i.token_error = None;
            })
            .await;
        if !kept {
            // Deleted while minting: the token must not outlive it.
            tracing::info!("the installation was removed while minting; deleting the new token");
            self.secrets.delete(&SecretName::installation(id)).await?;
            return Ok(Refreshed::Suspended);
        }
        self.refused.lock().expect("not poisoned").remove(&Credential::Installation(id));
        self.cache.lock().expect("not poisoned").insert(Credential::Installation(id), minted.clone());
        tracing::info!(expires_at = %expires_at.map(Timestamp::to_rfc3339).unwrap_or_default(), "minted a token");
        Ok(Refreshed::Minted(minted))
    }

    /// Removes the installation's token from the secret store and memory.
    pub async fn forget(&self, id: InstallationId) -> Result<(), TokenError> {
        self.cache.lock().expect("not poisoned").remove(&Credential::Installation(id));
        self.secrets.delete(&SecretName::installation(id)).await?;
        Ok(())
    }

    /// Drops the lease and applies `change`, retrying over concurrent edits
    /// (an installation event may land meanwhile). False when the record is gone.
    async fn release(
        &self,
        state: &dyn StateStore,
        mut current: Versioned<Installation>,
        change: impl Fn(&mut Installation),
    ) -> bool {
        for _ in 0..5 {
            let mut record = current.record.clone();
            record.minting_until = None;
            change(&mut record);
            match state.update(&record.into(), current.version).await {
                Ok(_) => return true,
                Err(StoreError::NotFound { .. }) => return false,
                Err(StoreError::StaleVersion { .. }) => {}
                Err(e) => {
                    // The lease lapses by itself.
                    tracing::warn!(error = %e, "could not release the lease");
                    return true;
                }
            }
            match state.load::<Installation>(&Key::Installation(current.record.id)).await {
                Ok(Some(found)) => current = found,
                Ok(None) => return false,
                Err(e) => {
                    tracing::warn!(error = %e, "could not release the lease");
                    return true;
                }
            }
        }
        true
    }

    fn cached(&self, credential: &Credential) -> Option<StoredToken> {
        self.cache.lock().expect("not poisoned").get(credential).cloned()
    }

    fn remember(&self, credential: &Credential, token: StoredToken) -> SecretString {
        let value = token.token.clone();
        self.cache.lock().expect("not poisoned").insert(credential.clone(), token);
        value
    }

    fn was_refused(&self, credential: &Credential, token: &SecretString) -> bool {
        self.refused.lock().expect("not poisoned").get(credential).is_some_and(|f| *f == fingerprint(token))
    }

    async fn stored(&self, credential: &Credential) -> Result<Option<StoredToken>, TokenError> {
        let name = secret_name(credential)?;
        match self.secrets.get(&name).await? {
            None => Ok(None),
            Some(value) => StoredToken::from_secret(&value)
                .map(Some)
                .map_err(|problem| TokenError::Unreadable { credential: credential.clone(), problem }),
        }
    }

    /// When the stored installation token expires; an unreadable one counts
    /// as none (it gets replaced), a store failure as none too (minting is
    /// then the safe side: a token too many, never a moment without one).
    async fn stored_expiry(&self, id: InstallationId) -> Option<Timestamp> {
        match self.stored(&Credential::Installation(id)).await {
            Ok(stored) => stored.and_then(|s| s.expires_at),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the stored token; minting a new one");
                None
            }
        }
    }
}

const WAIT_FOR_LEASE_TRIES: usize = 6;
const WAIT_FOR_LEASE_STEP: Duration = Duration::from_millis(500);

fn fingerprint(token: &SecretString) -> [u8; 32] {
    Sha256::digest(token.expose_secret().as_bytes()).into()
}

/// [`Tokens`] with the state store it needs: what forge adapters take.
pub struct TokenSource {
    pub tokens: Arc<Tokens>,
    pub state: Arc<dyn StateStore>,
}

#[async_trait::async_trait]
impl crate::forge::Credentials for TokenSource {
    async fn token(&self, credential: &Credential) -> Result<SecretString, String> {
        self.tokens.token(self.state.as_ref(), credential).await.map_err(|e| e.to_string())
    }

    fn refused(&self, credential: &Credential, token: &SecretString) {
        self.tokens.refused(credential, token);
    }

    async fn app_login(&self) -> Result<String, crate::forge::ForgeError> {
        self.tokens.minter.app_login().await
    }
}
