//! Output rendering that must match Docker Machine 0.16 byte for byte.
//!
//! - [`mod@env`]: `dmw env` shell snippets, shell detection, `--no-proxy` handling;
//! - [`table`]: Go `text/tabwriter` layout and the default `dmw ls` table;
//! - [`natsort`]: the natural order `dmw ls` sorts machine names in.

pub mod env;
pub mod natsort;
pub mod table;

pub use env::{EnvSet, Shell, ShellError, hint_cmdline, render_set, render_unset};
pub use natsort::natural_cmp;
pub use table::{LS_HEADERS, LsRow, render_ls_table, tabwrite};
