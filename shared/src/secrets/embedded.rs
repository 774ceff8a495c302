//! The embedded adapter: one JSON file under the data dir, mode 0600,
//! replaced atomically on every change.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use super::{SecretError, SecretName, SecretStore};

#[derive(Debug, Clone)]
pub struct EmbeddedSecrets {
    path: PathBuf,
    // Serialises read-modify-write within this process.
    lock: Arc<Mutex<()>>,
}

impl EmbeddedSecrets {
    /// The store's file in a data dir, as `ferry serve` lays it out.
    pub const FILE: &str = "secrets.json";

    pub fn open(path: &Path) -> Result<Self, SecretError> {
        let store = Self { path: path.to_owned(), lock: Arc::new(Mutex::new(())) };
        let _file = store.file_lock()?;
        if !path.exists() {
            store.write(&BTreeMap::new())?;
        }
        Ok(store)
    }

    /// An exclusive lock on `<file>.lock`, held while it lives: other
    /// processes on the same data dir (`ferry serve`, `ferry rotate`) wait.
    fn file_lock(&self) -> Result<std::fs::File, SecretError> {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.path.with_extension("lock"))
            .map_err(|e| self.failed(e))?;
        lock.lock().map_err(|e| self.failed(e))?;
        Ok(lock)
    }

    fn failed(&self, problem: impl std::fmt::Display) -> SecretError {
        SecretError::Other(format!("{}: {problem}", self.path.display()).into())
    }

    /// Reads the file each time, so `ferry rotate` and `ferry serve` see each other's writes.
    fn read(&self) -> Result<BTreeMap<String, SecretString>, SecretError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(self.failed(e)),
        };
        // serde_json's error names a line and column, never the text.
        serde_json::from_str(&text).map_err(|e| self.failed(e))
    }

    fn write(&self, secrets: &BTreeMap<String, SecretString>) -> Result<(), SecretError> {
        let plain: BTreeMap<&str, &str> = secrets.iter().map(|(k, v)| (k.as_str(), v.expose_secret())).collect();
        let text = serde_json::to_vec_pretty(&plain).map_err(|e| self.failed(e))?;
        // A name of its own, so two writers never share a half-written file.
        let temporary = self.path.with_extension(format!("{}.{}.tmp", std::process::id(), uuid_like()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary).map_err(|e| self.failed(e))?;
        file.write_all(&text).and_then(|()| file.sync_all()).map_err(|e| self.failed(e))?;
        std::fs::rename(&temporary, &self.path).map_err(|e| self.failed(e))
    }
}

/// A short random suffix.
fn uuid_like() -> String {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    hex::encode(bytes)
}

#[async_trait]
impl SecretStore for EmbeddedSecrets {
    async fn get(&self, name: &SecretName) -> Result<Option<SecretString>, SecretError> {
        let _guard = self.lock.lock().await;
        Ok(self.read()?.remove(name.as_str()))
    }

    async fn put(&self, name: &SecretName, value: &SecretString) -> Result<(), SecretError> {
        let _guard = self.lock.lock().await;
        let _file = self.file_lock()?;
        let mut secrets = self.read()?;
        secrets.insert(name.as_str().to_owned(), value.clone());
        self.write(&secrets)
    }

    /// Atomic across processes: under the file lock.
    async fn put_if_absent(&self, name: &SecretName, value: &SecretString) -> Result<SecretString, SecretError> {
        let _guard = self.lock.lock().await;
        let _file = self.file_lock()?;
        let mut secrets = self.read()?;
        if let Some(found) = secrets.get(name.as_str()) {
            return Ok(found.clone());
        }
        secrets.insert(name.as_str().to_owned(), value.clone());
        self.write(&secrets)?;
        Ok(value.clone())
    }

    async fn delete(&self, name: &SecretName) -> Result<(), SecretError> {
        let _guard = self.lock.lock().await;
        let _file = self.file_lock()?;
        let mut secrets = self.read()?;
        if secrets.remove(name.as_str()).is_some() {
            self.write(&secrets)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two handles on one file in `dir`, standing for two processes (each
    /// has its own in-process lock).
    fn two_handles(dir: &Path) -> (PathBuf, EmbeddedSecrets, EmbeddedSecrets) {
        let path = dir.join("secrets.json");
        let (a, b) = (EmbeddedSecrets::open(&path).unwrap(), EmbeddedSecrets::open(&path).unwrap());
        (path, a, b)
    }

    /// The file lock keeps every write of two processes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_writers_on_one_file_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (_, a, b) = two_handles(dir.path());
        let write = |store: EmbeddedSecrets, prefix: &'static str| {
            tokio::spawn(async move {
                for i in 0..20 {
                    let name = SecretName::parse(format!("{prefix}/{i}")).unwrap();
                    store.put(&name, &SecretString::from(format!("value-{i}"))).await.unwrap();
                }
            })
        };
        let (one, two) = (write(a.clone(), "a"), write(b, "b"));
        one.await.unwrap();
        two.await.unwrap();
        assert_eq!(a.read().unwrap().len(), 40, "no write was lost");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary file left behind");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn of_two_first_writers_one_wins_and_both_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let (path, a, b) = two_handles(dir.path());
        let name = SecretName::webhook_secret();
        let (name_a, name_b) = (name.clone(), name.clone());
        let one = tokio::spawn(async move { a.put_if_absent(&name_a, &SecretString::from("one".to_owned())).await });
        let two = tokio::spawn(async move { b.put_if_absent(&name_b, &SecretString::from("two".to_owned())).await });
        let (one, two) = (one.await.unwrap().unwrap(), two.await.unwrap().unwrap());
        assert_eq!(one.expose_secret(), two.expose_secret(), "both use the one stored");
        let stored = EmbeddedSecrets::open(&path).unwrap().get(&name).await.unwrap().unwrap();
        assert_eq!(stored.expose_secret(), one.expose_secret());
    }
}
