//! Text from plugins (log messages, error texts, names) is hostile input: before it reaches
//! a terminal, a log file or the machine record it is made inert and bounded here.
//!
//! [`plugin_text`] turns every C0 and C1 control character (ESC, CSI `0x9b`, BEL, `\r`,
//! `\n`, …) and every Unicode bidi control into visible text (`\x1b`, `\u{9b}`, `\r`,
//! `\n`, `\u{202e}`), a tab into a space, and cuts the text to a byte limit. The result is
//! one line that cannot move the cursor, set a window title, write the clipboard (OSC 52),
//! clear a line, or reorder what is shown around it.

/// The limit for one plugin message or error text.
pub const MESSAGE_LIMIT: usize = 4096;
/// The limit for a plugin's name (shown as a prefix of its messages).
pub const NAME_LIMIT: usize = 64;

/// Whether `c` is a Unicode bidirectional-formatting character (embeddings, overrides,
/// isolates and the invisible direction marks).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

/// Push the inert form of one character.
fn push_char(out: &mut String, c: char) {
    match c {
        '\t' => out.push(' '),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\u{0}'..='\u{1f}' | '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
        '\u{80}'..='\u{9f}' => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        c if is_bidi_control(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        c => out.push(c),
    }
}

/// `text` made safe for a terminal and a one-line log entry, at most `max_len` bytes of it
/// kept (cut at a character boundary, followed by `…(N bytes cut)`).
pub fn plugin_text(text: &str, max_len: usize) -> String {
    let mut end = text.len().min(max_len);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let kept = &text[..end];
    let mut out = String::with_capacity(kept.len() + 16);
    for c in kept.chars() {
        push_char(&mut out, c);
    }
    if end < text.len() {
        out.push_str(&format!("…({} bytes cut)", text.len() - end));
    }
    out
}

/// `text` made safe for a terminal like [`plugin_text`], without a length limit; for text
/// already stored (records written before the host sanitised plugin output).
pub fn stored_text(text: &str) -> String {
    plugin_text(text, usize::MAX)
}

/// Whether `text` is free of control characters (tabs included) and bidi controls.
pub fn is_inert(text: &str) -> bool {
    !text.chars().any(|c| c.is_control() || is_bidi_control(c))
}

/// What a secret is shown as.
pub const REDACTED: &str = "<redacted>";

/// Words in a flag's name or a plugin's store key that make its value a secret (a
/// password, a token, a key).
pub const SECRET_WORDS: &[&str] = &[
    "password",
    "passphrase",
    "token",
    "secret",
    "access-key",
    "api-key",
    "credential",
];

/// Whether a plugin's store key holds a secret: it starts with `secret:` (the SDK's
/// `store::set_secret`) or its name says so ([`SECRET_WORDS`], case-insensitive, `_` as `-`).
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace('_', "-");
    k.starts_with("secret:") || SECRET_WORDS.iter().any(|w| k.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_inert(s: &str) {
        assert!(
            !s.chars().any(|c| c.is_control() || is_bidi_control(c)),
            "{s:?} still holds control characters"
        );
    }

    #[test]
    fn osc52_clipboard_write_is_inert() {
        let s = plugin_text("\x1b]52;c;ZWNobyBoaQ==\x07done", MESSAGE_LIMIT);
        assert_eq!(s, "\\x1b]52;c;ZWNobyBoaQ==\\x07done");
        assert_inert(&s);
    }

    #[test]
    fn window_title_is_inert() {
        let s = plugin_text("\x1b]0;title\x07", MESSAGE_LIMIT);
        assert_eq!(s, "\\x1b]0;title\\x07");
        assert_inert(&s);
    }

    #[test]
    fn line_forging_is_inert() {
        let s = plugin_text(
            "ok\r\x1b[2KDocker is up and running!\n2026-01-01T00:00:00Z STEP forged",
            MESSAGE_LIMIT,
        );
        assert_eq!(
            s,
            "ok\\r\\x1b[2KDocker is up and running!\\n2026-01-01T00:00:00Z STEP forged"
        );
        assert_inert(&s);
        assert!(!s.contains('\n') && !s.contains('\r'));
    }

    #[test]
    fn c1_and_bidi_are_inert() {
        let s = plugin_text(
            "a\u{9b}2Kb\u{85}c\u{202e}d\u{2066}e\tf\u{7f}",
            MESSAGE_LIMIT,
        );
        assert_eq!(s, "a\\u{9b}2Kb\\u{85}c\\u{202e}d\\u{2066}e f\\x7f");
        assert_inert(&s);
    }

    #[test]
    fn long_text_is_cut_at_a_char_boundary() {
        let text = "é".repeat(3000); // 6000 bytes
        let s = plugin_text(&text, MESSAGE_LIMIT);
        assert!(s.starts_with("éé"));
        assert!(s.ends_with("…(1904 bytes cut)"), "{}", &s[s.len() - 30..]);
        let odd = plugin_text("aé", 2);
        assert_eq!(odd, "a…(2 bytes cut)");
        assert_eq!(plugin_text("plain text", MESSAGE_LIMIT), "plain text");
    }

    #[test]
    fn inert_check() {
        assert!(is_inert("Docker is up and running!"));
        assert!(!is_inert("a\x1bb"));
        assert!(!is_inert("a\u{202e}b"));
    }
}
