//! Typed access to the plugin's private per-machine store.

use crate::{Error, Result, host};
use std::fmt::Display;
use std::str::FromStr;

/// The text stored under `key`.
pub fn get(key: &str) -> Option<String> {
    host::store_get(key)
}

/// Store `value` (any displayable value) under `key`.
pub fn set(key: &str, value: impl Display) {
    host::store_set(key, &value.to_string());
}

/// Store a secret (a token, a password) under `secret:KEY`: the host shows every value under
/// a `secret:` key as `<redacted>` (`dmw inspect`); the machine record is mode 0600.
pub fn set_secret(key: &str, value: &str) {
    host::store_set(&format!("secret:{key}"), value);
}

/// The secret stored with [`set_secret`] under `key`.
pub fn get_secret(key: &str) -> Option<String> {
    host::store_get(&format!("secret:{key}"))
}

/// Remove `key`.
pub fn delete(key: &str) {
    host::store_delete(key);
}

/// The text stored under `key`, or an error saying the machine's configuration lacks it.
pub fn require(key: &str) -> Result<String> {
    get(key).ok_or_else(|| {
        Error::Failed(format!(
            "the machine's configuration has no `{key}`; it was not created by this plugin \
             or its record is damaged (remove it and create it again)"
        ))
    })
}

/// The value stored under `key` parsed as `T` (none when absent).
pub fn get_parsed<T: FromStr>(key: &str) -> Result<Option<T>> {
    match get(key) {
        None => Ok(None),
        Some(text) => text.trim().parse().map(Some).map_err(|_| {
            Error::Failed(format!(
                "the machine's configuration has an invalid `{key}`: {text:?}"
            ))
        }),
    }
}

/// The value stored under `key` parsed as `T`, or `default` when absent.
pub fn get_or<T: FromStr>(key: &str, default: T) -> Result<T> {
    Ok(get_parsed(key)?.unwrap_or(default))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::mock;

    #[test]
    fn typed_round_trip() {
        mock::reset();
        set("port", 2222u16);
        assert_eq!(get_parsed::<u16>("port").ok().flatten(), Some(2222));
        assert_eq!(get_or("missing", 7u16).ok(), Some(7));
        set("port", "x");
        assert!(get_parsed::<u16>("port").is_err());
        delete("port");
        assert!(matches!(require("port"), Err(Error::Failed(m)) if m.contains("`port`")));
    }
}
