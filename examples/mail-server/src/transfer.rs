//! `export` and `import` of plain Maildir and mbox, through the store's functions.

use std::path::Path;

use mailstore_core::{AccountInfo, MailStore};

use crate::admin::MailFormat;
use crate::error::ServerError;

/// Exports every folder of `account` to `path`.
///
/// # Errors
/// The store's error, naming the path.
pub async fn export<S: MailStore>(
    store: &S,
    account: &AccountInfo,
    format: MailFormat,
    path: &Path,
) -> Result<Vec<String>, ServerError> {
    let _ = (store, account, path);
    Err(ServerError::Usage(format!(
        "export to {} is not available in this build yet (the store's export functions have not landed)",
        format.as_str()
    )))
}

/// Imports `path` into `account`.
///
/// # Errors
/// The store's error, naming the path.
pub async fn import<S: MailStore>(
    store: &S,
    account: &AccountInfo,
    format: MailFormat,
    path: &Path,
) -> Result<Vec<String>, ServerError> {
    let _ = (store, account, path);
    Err(ServerError::Usage(format!(
        "import from {} is not available in this build yet (the store's import functions have not landed)",
        format.as_str()
    )))
}
