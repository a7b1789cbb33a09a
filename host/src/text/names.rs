//! Machine-name validation, exactly as Docker Machine 0.16 does it.
//!
//! Docker Machine checks names against the Go regexp `^[a-zA-Z0-9][a-zA-Z0-9\-\.]*$`
//! (`libmachine/host/host.go: validHostNamePattern`). There is no length limit and
//! `_` is rejected. Go's `$` (without the `m` flag) matches only at the very end of the
//! text, so a trailing newline is rejected too. The rule alone excludes the empty name,
//! `.`, `..`, anything with `/`, and every non-ASCII character.

use std::fmt;

/// The error for a name that Docker Machine would refuse (its `mcnerror.ErrInvalidHostname`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidName {
    /// The rejected name, kept for callers that want to log it.
    pub name: String,
}

impl fmt::Display for InvalidName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(INVALID_NAME_MESSAGE)
    }
}

impl std::error::Error for InvalidName {}

/// Docker Machine's exact message for an invalid machine name.
pub const INVALID_NAME_MESSAGE: &str =
    "Invalid hostname specified. Allowed hostname chars are: 0-9a-zA-Z . -";

/// Whether `name` matches `^[a-zA-Z0-9][a-zA-Z0-9\-\.]*$`.
pub fn is_valid(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(first) if first.is_ascii_alphanumeric() => {
            bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        }
        _ => false,
    }
}

/// Checks a machine name with Docker Machine's rule; the error displays DM's message.
pub fn validate(name: &str) -> Result<(), InvalidName> {
    if is_valid(name) {
        Ok(())
    } else {
        Err(InvalidName {
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_names() {
        for name in [
            "default",
            "h1",
            "a",
            "0",
            "9lives",
            "My-Machine.example.com",
            "dev-1.2",
            "a-",
            "a.",
            "a..b",
            "A",
        ] {
            assert!(validate(name).is_ok(), "{name:?} should be valid");
        }
        // No length limit, as in Docker Machine.
        let long = "a".repeat(300);
        assert!(validate(&long).is_ok());
    }

    #[test]
    fn rejects_invalid_names() {
        for name in [
            "",
            ".",
            "..",
            "-",
            "-abc",
            ".abc",
            "my_machine",
            "_x",
            "a/b",
            "../etc",
            "a b",
            " a",
            "a\n",
            "a\t",
            "∞",
            "é",
            "ab∞",
            "a:b",
            "a@b",
        ] {
            assert!(validate(name).is_err(), "{name:?} should be invalid");
        }
    }

    #[test]
    fn error_message_is_docker_machines() {
        let err = validate("bad_name").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid hostname specified. Allowed hostname chars are: 0-9a-zA-Z . -"
        );
        assert_eq!(err.name, "bad_name");
    }
}
