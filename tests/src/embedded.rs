//! The embedded adapters in a test's own directory, laid out as `ferry
//! serve` lays out its data dir.

use std::path::Path;

use ferry::secrets::EmbeddedSecrets;
use ferry::store::{Durability, EmbeddedStore};

/// The state store in `dir`, with the default durability.
pub fn state_in(dir: &Path) -> EmbeddedStore {
    EmbeddedStore::open(&dir.join(EmbeddedStore::FILE), Durability::default()).expect("open the embedded state store")
}

/// The secret store in `dir`.
pub fn secrets_in(dir: &Path) -> EmbeddedSecrets {
    EmbeddedSecrets::open(&dir.join(EmbeddedSecrets::FILE)).expect("open the embedded secret store")
}
