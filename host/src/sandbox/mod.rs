//! The host's guards around what a plugin may touch on this computer, used by the
//! capabilities that lend it files and programs (and by the runtime's checks between
//! calls): [`beneath`] opens a file inside a plugin's directory without following a link
//! the plugin planted; [`quota`] caps the size of that directory (and parses and shows
//! sizes for the other caps).

pub mod beneath;
pub mod quota;
