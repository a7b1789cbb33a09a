//! The text wing: the words that come in and go out. [`names`] machine-name rules and
//! [`natsort`] their order, as Docker Machine; [`sanitize`] plugin text made inert and
//! bounded, secrets redacted; [`validate`] checks on values that cross the plugin
//! boundary; [`report`] progress lines and the provisioning log; [`personality`] which
//! program the user ran (dmw or docker-machine) and its texts.

pub mod names;
pub mod natsort;
pub mod personality;
pub mod report;
pub mod sanitize;
pub mod validate;
