//! A one-line progress meter on stderr for large copies (only when stderr is a terminal).

use std::io::Write;
use std::time::{Duration, Instant};

/// Files smaller than this get no meter.
const MIN_SIZE: u64 = 1 << 20;

/// Progress of one file's copy.
pub struct Progress {
    label: String,
    total: u64,
    done: u64,
    started: Instant,
    last: Option<Instant>,
    enabled: bool,
}

impl Progress {
    /// A meter for `label` of `total` bytes; draws only if `enabled` and the file is large.
    pub fn new(label: &str, total: u64, enabled: bool) -> Progress {
        Progress {
            label: label.to_string(),
            total,
            done: 0,
            started: Instant::now(),
            last: None,
            enabled: enabled && total >= MIN_SIZE,
        }
    }

    /// Count `n` more bytes, redrawing at most ten times a second.
    pub fn add(&mut self, n: u64) {
        self.done += n;
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(now);
        self.draw();
    }

    fn draw(&self) {
        let pct = (self.done * 100).checked_div(self.total).unwrap_or(100);
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = self.done as f64 / secs;
        let mut err = std::io::stderr();
        let _ = write!(
            err,
            "\r{}  {pct:3}%  {} / {}  {}/s\x1b[K",
            self.label,
            human(self.done as f64),
            human(self.total as f64),
            human(rate)
        );
        let _ = err.flush();
    }

    /// Draw the final state and end the line.
    pub fn finish(&mut self) {
        if self.enabled {
            self.draw();
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// Bytes in binary units, e.g. `12.3 MiB`.
pub fn human(n: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn human_units() {
        assert_eq!(human(512.0), "512 B");
        assert_eq!(human(1536.0), "1.5 KiB");
        assert_eq!(human(50.0 * 1024.0 * 1024.0), "50.0 MiB");
    }
}
