//! The sandbox wing: the plugin host and its guards. [`contract`] the WIT bindings (the
//! plugin contract as the host sees it); [`plugin`] the runtime (sources, engine and
//! cache, grants, instances, limits and deadlines); [`capabilities`] the WIT interfaces
//! lent to plugins, each a thin adapter over a service; and the guards around what a
//! plugin may touch on this computer: [`beneath`] opens a file inside a plugin's directory
//! without following a link the plugin planted, [`quota`] caps that directory's size,
//! [`user_file`] is the one bounded reader of a file the user named.

pub mod beneath;
pub mod capabilities;
pub mod contract;
pub mod plugin;
pub mod quota;
pub mod user_file;
