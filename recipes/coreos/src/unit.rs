//! Reading the stock docker.service: which dockerd it runs and which options to keep.

/// The stock unit's engine command line.
#[derive(Debug, PartialEq, Eq)]
pub struct ExecStart {
    /// The program the unit runs (after any `/usr/bin/env VAR=...` prefix).
    pub program: String,
    /// Its options minus the `-H`/`--host` ones, as they appear in the unit (systemd syntax).
    pub kept: Vec<String>,
}

/// Split a command line into words, keeping quotes (the words are re-emitted verbatim).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in line.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match (c, quote) {
            ('\\', _) => {
                cur.push(c);
                escaped = true;
            }
            ('"' | '\'', None) => {
                quote = Some(c);
                cur.push(c);
            }
            (c, Some(q)) if c == q => {
                quote = None;
                cur.push(c);
            }
            (c, None) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The last non-empty `ExecStart=` of the `[Service]` section of `unit` (continuation
/// lines joined), split into program and kept options; none when there is no such line.
pub fn exec_start(unit: &str) -> Option<ExecStart> {
    let mut joined: Vec<String> = Vec::new();
    let mut pending = String::new();
    for line in unit.lines() {
        let trimmed = line.trim_end();
        if let Some(head) = trimmed.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        joined.push(std::mem::take(&mut pending));
    }
    if !pending.is_empty() {
        joined.push(pending);
    }
    let mut section = String::new();
    let mut value: Option<String> = None;
    for line in &joined {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.to_string();
        } else if section == "[Service]"
            && let Some(v) = line.strip_prefix("ExecStart=")
        {
            let v = v.trim();
            value = (!v.is_empty()).then(|| v.to_string());
        }
    }
    let mut it = words(&value?).into_iter().peekable();
    let mut program = it
        .next()?
        .trim_start_matches(['-', '@', '+', '!', ':'])
        .to_string();
    if program.rsplit('/').next() == Some("env") {
        while it
            .peek()
            .is_some_and(|w| w.contains('=') && !w.starts_with('-'))
        {
            it.next();
        }
        program = it.next()?;
    }
    let mut kept = Vec::new();
    while let Some(w) = it.next() {
        if w == "-H" || w == "--host" {
            it.next();
        } else if w.starts_with("-H") || w.starts_with("--host=") {
            // -H=fd://, -Hfd://, --host=fd://: dmw sets the listeners itself.
        } else {
            kept.push(w);
        }
    }
    Some(ExecStart { program, kept })
}
