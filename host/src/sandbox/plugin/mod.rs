//! The plugin host: where plugins come from (`source`), the runtime that compiles, grants
//! and instantiates them (`runtime`, `cache`), one instance's store data and views
//! (`state`), its limits (`limits`) and its calls' deadlines and wording (`calls`), the API
//! versions it loads (`api`), one running plugin (`instance`) with the driver's and the
//! recipe's typed calls on it, the plugin's declaration (and `declare`, which writes one
//! into a component another language built), the grants policy and `dmw plugin inspect`.

mod api;
pub mod builtin;
mod cache;
mod calls;
pub mod declaration;
pub mod declare;
pub mod driver;
pub mod flag_policy;
pub mod grants;
pub mod inspect;
mod instance;
mod limits;
pub mod recipe;
mod runtime;
mod source;
mod state;

pub use api::{API_VERSION, api_compatible};
pub use calls::CALL_TIMEOUT_ENV;
pub(crate) use calls::{describe_error, with_deadline};
pub use driver::Driver;
pub use instance::Instance;
pub use limits::PluginLimiter;
pub use recipe::Recipe;
pub use runtime::Runtime;
pub use source::{Kind, Source};
pub use state::HostState;
