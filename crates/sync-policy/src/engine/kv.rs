//! Small helpers over the store's per-account settings area (the engines' ledgers and
//! journals live there, one key per record, so each record is one durable write).

use mailstore_core::{AccountId, MailStore, SettingsScope};

use super::EngineError;

pub(crate) fn scope(account: AccountId) -> SettingsScope {
    SettingsScope::Account(account)
}

pub(crate) async fn get<S: MailStore>(
    store: &S,
    account: AccountId,
    key: &str,
) -> Result<Option<String>, EngineError> {
    Ok(store
        .get_setting(&scope(account), key)
        .await?
        .map(|v| String::from_utf8_lossy(&v).into_owned()))
}

pub(crate) async fn put<S: MailStore>(
    store: &S,
    account: AccountId,
    key: &str,
    value: &str,
) -> Result<(), EngineError> {
    store
        .put_setting(&scope(account), key, value.as_bytes().to_vec())
        .await?;
    Ok(())
}

pub(crate) async fn delete<S: MailStore>(
    store: &S,
    account: AccountId,
    key: &str,
) -> Result<(), EngineError> {
    store.delete_setting(&scope(account), key).await?;
    Ok(())
}

/// Every key starting with `prefix`, with its value.
pub(crate) async fn scan<S: MailStore>(
    store: &S,
    account: AccountId,
    prefix: &str,
) -> Result<Vec<(String, String)>, EngineError> {
    let keys = store.list_settings(&scope(account)).await?;
    let mut out = Vec::new();
    for k in keys.into_iter().filter(|k| k.starts_with(prefix)) {
        if let Some(v) = get(store, account, &k).await? {
            out.push((k, v));
        }
    }
    Ok(out)
}
