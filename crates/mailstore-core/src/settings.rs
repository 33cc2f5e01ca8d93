//! Typed access to the settings area: any serde type, stored as TOML text.
//!
//! ```
//! use mailstore_core::{settings, MailStore, MemoryStore, NewAccount, SettingsScope};
//! #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
//! struct Pop3Policy { keep_days: u32, include_imported: bool }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let a = store.create_account(NewAccount::new("a@example.org", None)).await?;
//! let scope = SettingsScope::Account(a.id);
//! let p = Pop3Policy { keep_days: 30, include_imported: false };
//! settings::save(&store, &scope, "pop3", &p).await?;
//! assert_eq!(settings::load::<_, Pop3Policy>(&store, &scope, "pop3").await?, Some(p));
//! # Ok::<(), mailstore_core::StoreError>(())
//! # }).unwrap();
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StoreError;
use crate::store::MailStore;
use crate::types::SettingsScope;

/// Reads the setting `key` of `scope` as a `T` (`None` if absent).
pub async fn load<S: MailStore, T: DeserializeOwned>(
    store: &S,
    scope: &SettingsScope,
    key: &str,
) -> Result<Option<T>, StoreError> {
    let Some(bytes) = store.get_setting(scope, key).await? else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| StoreError::Corrupt(format!("setting {key:?} is not UTF-8 text")))?;
    toml::from_str(text)
        .map(Some)
        .map_err(|e| StoreError::Corrupt(format!("setting {key:?} does not parse: {e}")))
}

/// Stores `value` as the setting `key` of `scope` (TOML; the value must serialise to a
/// table, e.g. a struct or a map).
pub async fn save<S: MailStore, T: Serialize + Sync>(
    store: &S,
    scope: &SettingsScope,
    key: &str,
    value: &T,
) -> Result<(), StoreError> {
    let text = toml::to_string(value).map_err(|e| {
        StoreError::InvalidArgument(format!("setting {key:?} cannot be stored as TOML: {e}"))
    })?;
    store.put_setting(scope, key, text.into_bytes()).await
}
