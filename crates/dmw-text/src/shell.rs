//! POSIX shell quoting for commands sent over SSH.

/// Bytes that never need quoting in a POSIX shell word.
const SAFE: &[u8] = b"-_./=:,+@%";

/// Quote `s` as one word for a POSIX shell: safe words stay bare, anything else goes in
/// single quotes with `'` written as `'\''`.
pub fn sh_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || SAFE.contains(&b));
    if safe {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::sh_quote;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(sh_quote("/etc/docker"), "/etc/docker");
        assert_eq!(sh_quote("abc-1.2/x"), "abc-1.2/x");
        assert_eq!(sh_quote("k=v,a:b+c@d%e"), "k=v,a:b+c@d%e");
        assert_eq!(sh_quote(""), "''");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote("$(reboot)"), "'$(reboot)'");
        assert_eq!(sh_quote("a\nb"), "'a\nb'");
        assert_eq!(sh_quote("~root"), "'~root'");
        assert_eq!(sh_quote("*"), "'*'");
        assert_eq!(sh_quote("ü"), "'ü'");
    }
}
