//! `dmw image build`: a cloud-style Debian image built from a package mirror (see
//! [`crate::vm::image`]).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{CliError, CliResult};
use crate::app::App;
use crate::vm::image::{self, ImageSpec};

/// `dmw image ...`.
#[derive(Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Build a Debian cloud-style image (qcow2 + kernel + initramfs) from a package mirror; cached
    Build(BuildArgs),
}

#[derive(Args)]
struct BuildArgs {
    /// Debian suite
    #[arg(long, default_value = image::DEFAULT_SUITE)]
    suite: String,
    /// Package mirror
    #[arg(long, default_value = image::DEFAULT_MIRROR, value_name = "URL")]
    mirror: String,
    /// Also install this Debian package in the image (repeatable; e.g. docker.io)
    #[arg(long = "package", value_name = "NAME")]
    packages: Vec<String>,
    /// Also copy the image's files (disk.qcow2, vmlinuz, initrd.img) into this directory
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    output: Option<PathBuf>,
}

/// Run `dmw image ...`.
pub fn run(app: &App, a: ImageArgs) -> CliResult {
    match a.command {
        ImageCommand::Build(b) => build(app, b),
    }
}

fn build(app: &App, b: BuildArgs) -> CliResult {
    let spec = ImageSpec {
        suite: b.suite,
        mirror: b.mirror,
        packages: b.packages,
    };
    let cache = app.store.images_dir();
    let built = image::build(&spec, &cache, &mut |line| eprintln!("image: {line}"))
        .map_err(|e| CliError::new(format!("Error: {e:#}")))?;
    let dir = match b.output {
        Some(out) => {
            image::export(&built, &out).map_err(|e| CliError::new(format!("Error: {e:#}")))?
        }
        None => built.dir,
    };
    println!("{}", dir.display());
    Ok(())
}
