//! Go `text/tabwriter` layout and the default `dmw ls` table.
//!
//! `docker-machine ls` writes its table through
//! `tabwriter.NewWriter(os.Stdout, 5, 1, 3, ' ', 0)`: minwidth 5, tabwidth 1, padding 3,
//! space padding, no flags. [`tabwrite`] reproduces that filter's algorithm exactly
//! (elastic tabstops):
//!
//! - input is split into cells terminated by `\t` (or `\v`), lines end at `\n` (or `\f`);
//! - only *tab-terminated* cells form columns; the last cell of a line (the text after the
//!   last tab) is written unpadded and never affects a width;
//! - a column is a block of *contiguous* lines that all have a tab-terminated cell at
//!   that index; its width is `max(minwidth, max(cell width) + padding)`, widths counted
//!   in chars (Go runes);
//! - `\f` (and, as in Go, a line with no tab at all) ends every column block;
//! - a text that ends without a newline keeps no trailing newline.
//!
//! Go's HTML filtering and `0xff` escapes are off with flags 0 (and `0xff` cannot occur
//! in a `&str`), so they are not modelled.

/// Column headers of the default `ls` table (`NAME ACTIVE DRIVER STATE URL SWARM DOCKER ERRORS`).
pub const LS_HEADERS: [&str; 8] = [
    "NAME", "ACTIVE", "DRIVER", "STATE", "URL", "SWARM", "DOCKER", "ERRORS",
];

/// `minwidth` of Docker Machine's `ls` tabwriter.
pub const LS_MIN_WIDTH: usize = 5;

/// `padding` of Docker Machine's `ls` tabwriter.
pub const LS_PADDING: usize = 3;

/// One row of the default `ls` table, each field already formatted as DM prints it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LsRow {
    /// Machine name.
    pub name: String,
    /// `-`, `*`, `* (swarm)`, or empty for a timed-out row.
    pub active: String,
    /// Driver name (`not found` for a host whose config failed to load).
    pub driver: String,
    /// State string (`Running`, `Stopped`, `Timeout`, `Error`, or empty for `None`).
    pub state: String,
    /// Docker URL, possibly empty.
    pub url: String,
    /// Swarm master name, with ` (master)` on masters; usually empty.
    pub swarm: String,
    /// `v<version>`, `Unknown`, or empty.
    pub docker: String,
    /// Error text, empty when none.
    pub error: String,
}

impl LsRow {
    /// The row's cells in column order (the same order as [`LS_HEADERS`]).
    pub fn cells(&self) -> [&str; 8] {
        [
            &self.name,
            &self.active,
            &self.driver,
            &self.state,
            &self.url,
            &self.swarm,
            &self.docker,
            &self.error,
        ]
    }
}

/// Renders DM's default `ls` table (header plus one line per row, in the given order).
///
/// Equivalent to executing
/// `{{ .Name }}\t{{ .Active }}\t{{ .DriverName}}\t{{ .State }}\t{{ .URL }}\t{{ .Swarm }}\t{{ .DockerVersion }}\t{{ .Error}}\n`
/// for the header map and each row, through [`tabwrite`]. Like DM, field values are not
/// sanitised: a tab or newline inside a value would shift the columns, so callers should
/// strip newlines from error texts (DM does so for hosts that failed to load).
pub fn render_ls_table(rows: &[LsRow]) -> String {
    let mut text = String::new();
    push_line(&mut text, &LS_HEADERS);
    for row in rows {
        push_line(&mut text, &row.cells());
    }
    tabwrite(&text)
}

fn push_line(text: &mut String, cells: &[&str]) {
    text.push_str(&cells.join("\t"));
    text.push('\n');
}

/// Lays out tab-terminated cells exactly like Go's `tabwriter.NewWriter(w, 5, 1, 3, ' ', 0)`.
pub fn tabwrite(text: &str) -> String {
    tabwrite_with(text, LS_MIN_WIDTH, LS_PADDING, ' ')
}

/// Go's tabwriter with flags 0 and a non-tab `padchar`, for any `minwidth` and `padding`.
pub fn tabwrite_with(text: &str, minwidth: usize, padding: usize, padchar: char) -> String {
    tabwrite_go(text, minwidth, 8, padding, padchar)
}

/// Go's `tabwriter.NewWriter(w, minwidth, tabwidth, padding, padchar, 0)`: with `'\t'` as
/// `padchar` a cell is padded with tabs to the next multiple of `tabwidth`, as urfave/cli's
/// help printer (`0, 8, 1, '\t'`) laid out Docker Machine's help.
pub fn tabwrite_go(
    text: &str,
    minwidth: usize,
    tabwidth: usize,
    padding: usize,
    padchar: char,
) -> String {
    let mut w = Writer {
        minwidth,
        tabwidth,
        padding,
        padchar,
        lines: vec![Vec::new()],
        widths: Vec::new(),
        cell_start: 0,
        out: String::with_capacity(text.len() * 2),
    };
    w.write(text);
    w.flush(text);
    w.out
}

#[derive(Debug, Clone, Copy)]
struct Cell<'a> {
    text: &'a str,
    /// Width in chars (Go: runes).
    width: usize,
}

struct Writer<'a> {
    minwidth: usize,
    /// The width a `'\t'` pad counts for (Go's `tabwidth`; used only with `'\t'` padding).
    tabwidth: usize,
    padding: usize,
    padchar: char,
    /// Completed cells per line; the last entry is the line being filled.
    lines: Vec<Vec<Cell<'a>>>,
    /// Widths of the enclosing columns while formatting (Go's `widths` stack).
    widths: Vec<usize>,
    /// Byte offset in the input where the current, unterminated cell starts.
    cell_start: usize,
    out: String,
}

impl<'a> Writer<'a> {
    /// Go's `Write`, fed the whole text at once.
    fn write(&mut self, text: &'a str) {
        for (i, ch) in text.char_indices() {
            if matches!(ch, '\t' | '\x0b' | '\n' | '\x0c') {
                let ncells = self.terminate_cell(&text[self.cell_start..i]);
                self.cell_start = i + 1;
                if ch == '\n' || ch == '\x0c' {
                    self.lines.push(Vec::new());
                    if ch == '\x0c' || ncells == 1 {
                        // A line with one cell cannot affect later lines: flush now.
                        self.format_all();
                    }
                }
            }
        }
    }

    /// Go's `Flush`: terminate a non-empty pending cell, then format everything.
    fn flush(&mut self, text: &'a str) {
        let pending = &text[self.cell_start..];
        if !pending.is_empty() {
            self.terminate_cell(pending);
            self.cell_start = text.len();
        }
        self.format_all();
    }

    fn terminate_cell(&mut self, text: &'a str) -> usize {
        let cell = Cell {
            text,
            width: text.chars().count(),
        };
        match self.lines.last_mut() {
            Some(line) => {
                line.push(cell);
                line.len()
            }
            None => {
                self.lines.push(vec![cell]);
                1
            }
        }
    }

    /// Formats all buffered lines and resets the buffer (the text of the pending
    /// cell, if any, is still unread input and stays where it is).
    fn format_all(&mut self) {
        let n = self.lines.len();
        self.format(0, n);
        self.lines.clear();
        self.lines.push(Vec::new());
        self.widths.clear();
    }

    /// Go's `format(pos, line0, line1)`.
    fn format(&mut self, mut line0: usize, line1: usize) {
        let column = self.widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 < self.lines[this].len() {
                // This line has a tab-terminated cell in `column`: a block starts here.
                self.write_lines(line0, this);
                line0 = this;

                let mut width = self.minwidth;
                while this < line1 {
                    let line = &self.lines[this];
                    if column + 1 < line.len() {
                        width = width.max(line[column].width + self.padding);
                        this += 1;
                    } else {
                        break;
                    }
                }

                self.widths.push(width);
                self.format(line0, this);
                self.widths.pop();
                line0 = this;
                // Go's loop increments `this` here, skipping the line that ended the
                // block; that line has no cell in this column, so nothing is lost.
                this += 1;
            } else {
                this += 1;
            }
        }
        self.write_lines(line0, line1);
    }

    /// Go's `writePadding`: spaces (or `padchar`) up to `cellw`; tabs up to the smallest
    /// multiple of `tabwidth` at or above `cellw` when `padchar` is a tab.
    fn pad(&mut self, textw: usize, cellw: usize) {
        if self.padchar == '\t' {
            if self.tabwidth == 0 {
                return;
            }
            let cellw = cellw.div_ceil(self.tabwidth) * self.tabwidth;
            let n = cellw.saturating_sub(textw);
            for _ in 0..n.div_ceil(self.tabwidth) {
                self.out.push('\t');
            }
            return;
        }
        for _ in 0..cellw.saturating_sub(textw) {
            self.out.push(self.padchar);
        }
    }

    /// Go's `writeLines`.
    fn write_lines(&mut self, line0: usize, line1: usize) {
        for i in line0..line1 {
            for j in 0..self.lines[i].len() {
                let cell = self.lines[i][j];
                self.out.push_str(cell.text);
                if let Some(&cellw) = self.widths.get(j) {
                    self.pad(cell.width, cellw);
                }
            }
            if i + 1 < self.lines.len() {
                self.out.push('\n');
            }
            // The last buffered line has no newline yet; Go writes the pending
            // cell's bytes here, which are always empty at a flush point.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: [&str; 8]) -> LsRow {
        let [name, active, driver, state, url, swarm, docker, error] = cells.map(str::to_owned);
        LsRow {
            name,
            active,
            driver,
            state,
            url,
            swarm,
            docker,
            error,
        }
    }

    #[test]
    fn empty_listing_is_header_only() {
        // Column widths: NAME 4+3=7, ACTIVE 6+3=9, DRIVER 9, STATE 5+3=8, URL max(3+3,5)=6,
        // SWARM 8, DOCKER 9; ERRORS is the last cell and is not padded.
        assert_eq!(
            render_ls_table(&[]),
            "NAME   ACTIVE   DRIVER   STATE   URL   SWARM   DOCKER   ERRORS\n"
        );
    }

    #[test]
    fn two_machines_one_error_one_empty_url() {
        let rows = [
            row([
                "dev",
                "*",
                "generic",
                "Running",
                "tcp://192.168.99.100:2376",
                "",
                "v19.03.12",
                "",
            ]),
            row([
                "h10",
                "-",
                "virtualbox",
                "Stopped",
                "",
                "",
                "Unknown",
                "Unable to query docker version: Cannot connect to the docker engine endpoint",
            ]),
        ];
        // NAME:   max(4,3,3)+3 = 7
        // ACTIVE: max(6,1,1)+3 = 9
        // DRIVER: max(6,7,10)+3 = 13
        // STATE:  max(5,7,7)+3 = 10
        // URL:    max(3,25,0)+3 = 28
        // SWARM:  max(5,0,0)+3 = 8
        // DOCKER: max(6,9,7)+3 = 12
        let expected = concat!(
            "NAME   ACTIVE   DRIVER       STATE     URL                         SWARM   DOCKER      ERRORS\n",
            "dev    *        generic      Running   tcp://192.168.99.100:2376           v19.03.12   \n",
            "h10    -        virtualbox   Stopped                                       Unknown     Unable to query docker version: Cannot connect to the docker engine endpoint\n",
        );
        assert_eq!(render_ls_table(&rows), expected);
        // Width checks by hand, independent of the literal above.
        let out = render_ls_table(&rows);
        let header = out.lines().next().unwrap_or_default();
        assert_eq!(header.find("ACTIVE"), Some(7));
        assert_eq!(header.find("DRIVER"), Some(7 + 9));
        assert_eq!(header.find("STATE"), Some(7 + 9 + 13));
        assert_eq!(header.find("URL"), Some(7 + 9 + 13 + 10));
        assert_eq!(header.find("SWARM"), Some(7 + 9 + 13 + 10 + 28));
        assert_eq!(header.find("DOCKER"), Some(7 + 9 + 13 + 10 + 28 + 8));
        assert_eq!(header.find("ERRORS"), Some(7 + 9 + 13 + 10 + 28 + 8 + 12));
    }

    #[test]
    fn timeout_row_and_wide_unicode_name() {
        let rows = [
            row([
                "ünïcödé-machine",
                "",
                "amazonec2",
                "Timeout",
                "",
                "",
                "",
                "",
            ]),
            row([
                "m1",
                "-",
                "none",
                "Running",
                "tcp://10.0.0.1:2376",
                "",
                "v20.10.7",
                "",
            ]),
        ];
        // NAME: 15 chars (not bytes) + 3 = 18; ACTIVE 9; DRIVER 9+3 = 12; STATE 7+3 = 10;
        // URL 19+3 = 22; SWARM 8; DOCKER 8+3 = 11.
        let expected = concat!(
            "NAME              ACTIVE   DRIVER      STATE     URL                   SWARM   DOCKER     ERRORS\n",
            "ünïcödé-machine            amazonec2   Timeout                                            \n",
            "m1                -        none        Running   tcp://10.0.0.1:2376           v20.10.7   \n",
        );
        assert_eq!(render_ls_table(&rows), expected);
    }

    /// Go's own tests (`text/tabwriter/tabwriter_test.go`) for flags 0 and a non-tab padchar.
    #[test]
    fn go_tabwriter_vectors() {
        let cases: &[(&str, usize, usize, char, &str, &str)] = &[
            ("1a", 8, 1, '.', "", ""),
            ("2", 8, 1, '.', "\n\n\n", "\n\n\n"),
            ("3", 8, 1, '.', "a\nb\nc", "a\nb\nc"),
            ("4a", 8, 1, '.', "\t", ""),
            ("5", 8, 1, '.', "*\t*", "*.......*"),
            ("5b", 8, 1, '.', "*\t*\n", "*.......*\n"),
            ("5c", 8, 1, '.', "*\t*\t", "*.......*"),
            ("6", 8, 1, '.', "\t\n", "........\n"),
            ("7a", 8, 1, '.', "a) foo", "a) foo"),
            ("7b", 8, 1, ' ', "b) foo\tbar", "b) foo  bar"),
            ("7c", 8, 1, '.', "c) foo\tbar\t", "c) foo..bar"),
            ("7d", 8, 1, '.', "d) foo\tbar\n", "d) foo..bar\n"),
            ("7e", 8, 1, '.', "e) foo\tbar\t\n", "e) foo..bar.....\n"),
            ("8", 8, 1, '*', "Hello, world!\n", "Hello, world!\n"),
            (
                "9a",
                1,
                0,
                '.',
                "1\t2\t3\t4\n11\t222\t3333\t44444\n",
                "1.2..3...4\n11222333344444\n",
            ),
            (
                "9c",
                1,
                0,
                '.',
                "1\t2\t3\t4\x0c11\t222\t3333\t44444\n",
                "1234\n11222333344444\n",
            ),
            ("10a", 5, 0, '.', "1\t2\t3\t4\n", "1....2....3....4\n"),
            ("10b", 5, 0, '.', "1\t2\t3\t4\t\n", "1....2....3....4....\n"),
            (
                "11",
                8,
                1,
                '.',
                "本\tb\tc\naa\t\u{672c}\u{672c}\u{672c}\tcccc\tddddd\naaa\tbbbb\n",
                "本.......b.......c\naa......本本本.....cccc....ddddd\naaa.....bbbb\n",
            ),
            (
                "12b",
                2,
                0,
                ' ',
                "a\tb\tc\naa\tbbb\tcccc\naaa\tbbbb\n",
                "a  b  c\naa bbbcccc\naaabbbb\n",
            ),
            (
                "12c",
                8,
                1,
                '_',
                "a\tb\tc\naa\tbbb\tcccc\naaa\tbbbb\n",
                "a_______b_______c\naa______bbb_____cccc\naaa_____bbbb\n",
            ),
            (
                "13a",
                4,
                1,
                '-',
                concat!(
                    "4444\t日本語\t22\t1\t333\n",
                    "999999999\t22\n",
                    "7\t22\n",
                    "\t\t\t88888888\n",
                    "\n",
                    "666666\t666666\t666666\t4444\n",
                    "1\t1\t999999999\t0000000000\n",
                ),
                concat!(
                    "4444------日本語-22--1---333\n",
                    "999999999-22\n",
                    "7---------22\n",
                    "------------------88888888\n",
                    "\n",
                    "666666-666666-666666----4444\n",
                    "1------1------999999999-0000000000\n",
                ),
            ),
            (
                "13b",
                4,
                3,
                '.',
                concat!(
                    "4444\t333\t22\t1\t333\n",
                    "999999999\t22\n",
                    "7\t22\n",
                    "\t\t\t88888888\n",
                    "\n",
                    "666666\t666666\t666666\t4444\n",
                    "1\t1\t999999999\t0000000000\n",
                ),
                concat!(
                    "4444........333...22...1...333\n",
                    "999999999...22\n",
                    "7...........22\n",
                    "....................88888888\n",
                    "\n",
                    "666666...666666...666666......4444\n",
                    "1........1........999999999...0000000000\n",
                ),
            ),
            ("15a", 4, 0, '.', "a\t\tb", "a.......b"),
        ];
        for &(name, minwidth, padding, padchar, src, expected) in cases {
            assert_eq!(
                tabwrite_with(src, minwidth, padding, padchar),
                expected,
                "Go tabwriter test {name}"
            );
        }
    }

    #[test]
    fn columns_are_per_contiguous_block() {
        // The doc example of Go's tabwriter: b and c are in distinct columns.
        let src = "aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee\n";
        let expected = concat!(
            "aaaa   bbb   d\n", // col0 = 4+3 = 7, col1 (lines 1-2) = max(5, 3+3) = 6
            "aa     b     dd\n",
            "a      \n",
            "aa     cccc   eee\n", // col1 (line 4 alone) = 4+3 = 7
        );
        assert_eq!(tabwrite(src), expected);
    }

    #[test]
    fn minwidth_applies_to_short_columns() {
        // minwidth 5 beats 1+3.
        assert_eq!(tabwrite("a\tb\nc\td\n"), "a    b\nc    d\n");
        // Lines without tabs break blocks.
        assert_eq!(
            tabwrite("abcdef\tx\nplain\nab\ty\n"),
            "abcdef   x\nplain\nab   y\n"
        );
    }
}
