//! Output rendering that must match Docker Machine 0.16 byte for byte.
//!
//! - [`mod@env`]: `dmw env` shell snippets, shell detection, `--no-proxy` handling;
//! - [`table`]: Go `text/tabwriter` layout and the default `dmw ls` table;
//! - [`natsort`]: the natural order `dmw ls` sorts machine names in (`crate::text::natsort`, a
//!   leaf the store sorts with too);
//! - [`template`]: Go templates (`ls --format`, `inspect --format`) with Docker Machine's functions;
//! - [`dm_view`]: Docker Machine-shaped views of a record (`inspect` aliases, `EngineOptions`);
//! - [`filter`]: `ls --filter` parsing and matching;
//! - [`listing`]: `ls` items (the `--format` fields), their table, template and JSON output;
//! - [`swarm_ls`]: the `dmw swarm ls` table;
//! - [`urfave_help`]: help in Docker Machine's layout (the `docker-machine` personality).

pub mod dm_view;
pub mod env;
pub mod filter;
pub mod listing;
pub mod swarm_ls;
pub mod table;
pub mod template;
pub mod urfave_help;

pub use crate::text::natsort::{self, natural_cmp};
pub use env::{EnvSet, Shell, ShellError, hint_cmdline, render_set, render_unset};
pub use swarm_ls::swarm_table;
pub use table::{LS_HEADERS, LsRow, render_ls_table, tabwrite};
