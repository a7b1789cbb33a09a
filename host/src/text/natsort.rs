//! Natural ordering of machine names, as `docker-machine ls` sorts its rows.
//!
//! Docker Machine lower-cases each name and sorts with `skarademir/naturalsort`:
//! spaces are removed, the name is split into runs of ASCII digits and runs of
//! non-digits, and the runs are compared pairwise:
//!
//! - two digit runs compare numerically (leading zeros stripped; on a tie the run with
//!   fewer leading zeros comes first, so `a1` < `a01`);
//! - a digit run sorts before a non-digit run;
//! - two non-digit runs compare bytewise.
//!
//! Deliberate difference: when one name's runs are a prefix of the other's (`m1` vs
//! `m1a`), the Go code's fallback is not a consistent ordering (it answers "less" both
//! ways), which Rust's sort may reject. Here the name with fewer runs comes first, then
//! names still tied are compared bytewise, lower-cased first and then as given, so the
//! ordering is total and deterministic. (DM keys rows by lower-cased name, so two
//! machines whose names differ only by case collide there; here both rows are kept.)

use std::cmp::Ordering;

/// Compares two machine names the way `dmw ls` orders rows (case-insensitive natural order).
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let la = a.to_lowercase();
    let lb = b.to_lowercase();
    natural_cmp_case_sensitive(&la, &lb).then_with(|| a.cmp(b))
}

/// The same natural order without lower-casing first (DM's comparator on already-lowered names).
pub fn natural_cmp_case_sensitive(a: &str, b: &str) -> Ordering {
    let sa: String = a.chars().filter(|&c| c != ' ').collect();
    let sb: String = b.chars().filter(|&c| c != ' ').collect();
    let ra = runs(&sa);
    let rb = runs(&sb);
    for (x, y) in ra.iter().zip(rb.iter()) {
        if x == y {
            continue;
        }
        return compare_runs(x, y);
    }
    ra.len().cmp(&rb.len()).then_with(|| a.cmp(b))
}

/// Sorts names in place in `dmw ls` order.
pub fn sort_names<S: AsRef<str>>(names: &mut [S]) {
    names.sort_by(|a, b| natural_cmp(a.as_ref(), b.as_ref()));
}

fn is_digit_run(run: &str) -> bool {
    run.as_bytes().first().is_some_and(u8::is_ascii_digit)
}

fn compare_runs(x: &str, y: &str) -> Ordering {
    match (is_digit_run(x), is_digit_run(y)) {
        (true, true) => {
            let tx = x.trim_start_matches('0');
            let ty = y.trim_start_matches('0');
            tx.len()
                .cmp(&ty.len())
                .then_with(|| tx.cmp(ty))
                .then_with(|| x.len().cmp(&y.len()))
        }
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => x.cmp(y),
    }
}

/// Splits into maximal runs of ASCII digits and of everything else (`[^0-9]+|[0-9]+`).
fn runs(s: &str) -> Vec<&str> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=bytes.len() {
        if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
            // Digits are ASCII, so a change of class is always on a char boundary.
            out.push(&s[start..i]);
            start = i;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::{Equal, Greater, Less};

    #[test]
    fn numeric_runs_compare_numerically() {
        assert_eq!(natural_cmp("h2", "h10"), Less);
        assert_eq!(natural_cmp("h10", "h2"), Greater);
        assert_eq!(natural_cmp("h9", "h10"), Less);
        assert_eq!(natural_cmp("node100", "node20"), Greater);
        assert_eq!(natural_cmp("a1b2", "a1b10"), Less);
        assert_eq!(natural_cmp("v1.9", "v1.10"), Less);
    }

    #[test]
    fn case_insensitive() {
        assert_eq!(natural_cmp("a", "B"), Less);
        assert_eq!(natural_cmp("B", "a"), Greater);
        assert_eq!(natural_cmp("Dev2", "dev10"), Less);
        // Names equal but for case still get a deterministic order.
        assert_eq!(natural_cmp("A", "a"), Less);
        assert_eq!(natural_cmp("a", "a"), Equal);
    }

    #[test]
    fn prefixes_first() {
        assert_eq!(natural_cmp("m1", "m1a"), Less);
        assert_eq!(natural_cmp("m1a", "m1"), Greater);
        assert_eq!(natural_cmp("a", "a1"), Less);
        assert_eq!(natural_cmp("ab", "abc"), Less);
        assert_eq!(natural_cmp("1", "1a"), Less);
    }

    #[test]
    fn digits_before_letters_and_leading_zeros() {
        assert_eq!(natural_cmp("1x", "ax"), Less);
        assert_eq!(natural_cmp("a1", "ab"), Less);
        assert_eq!(natural_cmp("a01", "a1"), Greater);
        assert_eq!(natural_cmp("a1", "a01"), Less);
        assert_eq!(natural_cmp("a01", "a2"), Less);
        assert_eq!(natural_cmp("a007", "a7"), Greater);
    }

    #[test]
    fn huge_numbers_do_not_overflow() {
        assert_eq!(
            natural_cmp("n99999999999999999999999", "n100000000000000000000000"),
            Less
        );
    }

    #[test]
    fn sorts_a_listing() {
        let mut names = vec![
            "h10", "default", "H2", "h1", "dev", "Dev-2", "h1a", "m01", "m1", "a",
        ];
        sort_names(&mut names);
        assert_eq!(
            names,
            vec![
                "a", "default", "dev", "Dev-2", "h1", "h1a", "H2", "h10", "m1", "m01"
            ]
        );
    }

    #[test]
    fn ordering_is_total_on_a_sample() {
        let sample = [
            "", "a", "A", "a1", "a01", "a1a", "a 1", "1", "01", "1a", "b", "b2", "b10", "x y",
            "xy", "m1", "m1a", "é1", "É2",
        ];
        for x in sample {
            assert_eq!(natural_cmp(x, x), Equal);
            for y in sample {
                assert_eq!(
                    natural_cmp(x, y),
                    natural_cmp(y, x).reverse(),
                    "{x:?} {y:?}"
                );
                for z in sample {
                    if natural_cmp(x, y) == Less && natural_cmp(y, z) == Less {
                        assert_eq!(natural_cmp(x, z), Less, "{x:?} {y:?} {z:?}");
                    }
                }
            }
        }
    }
}
