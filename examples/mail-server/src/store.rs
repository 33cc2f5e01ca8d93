//! Opening and closing the durable store in the data directory.

use std::sync::Arc;

use mailstore_core::{DiskStore, StoreConfig, StoreError};

use crate::config::Config;

/// The store type the server runs on.
pub type Store = DiskStore;

/// Opens the durable store in `<data_dir>/store`; fails with [`StoreError::Locked`] when a
/// running server holds it.
///
/// # Errors
/// Whatever the store reports.
pub async fn open(config: &Config) -> Result<Store, StoreError> {
    let mut store_config = StoreConfig::default().with_inline_body_max(config.inline_body_max);
    store_config.limits.max_message_size = config.max_message_size;
    DiskStore::open_async(config.store_dir(), store_config).await
}

/// Releases the store (and its lock) once every session is gone.
pub async fn close(store: Arc<Store>) {
    drop(store);
}
