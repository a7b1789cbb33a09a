//! `dmw image build`: a cloud-style Debian image built from a package mirror (see
//! [`crate::vm::image`]); `dmw image prune`: empty the cache of downloaded images (see
//! [`crate::vm::download`]).

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
    /// Empty the cache of downloaded images (those a machine's disk is made over are kept)
    Prune,
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
        ImageCommand::Prune => prune(app),
    }
}

fn prune(app: &App) -> CliResult {
    use crate::sandbox::quota::show_size;
    use crate::vm::download;
    let cache = app.store.images_dir();
    let done = download::prune(&cache, &app.store.machines_dir())
        .map_err(|e| CliError::new(format!("Error: cannot prune the image cache: {e:#}")))?;
    let freed: u64 = done.removed.iter().map(|e| e.bytes).sum();
    println!(
        "Removed {} downloaded image{} from {}: {} freed",
        done.removed.len(),
        if done.removed.len() == 1 { "" } else { "s" },
        cache.join(download::DOWNLOADS).display(),
        show_size(freed)
    );
    for e in &done.kept {
        println!(
            "Kept {} ({}): a machine's disk is made over it (dmw rm the machine first)",
            e.file.as_deref().unwrap_or(&e.dir).display(),
            show_size(e.bytes)
        );
    }
    Ok(())
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
