//! The `dmw` command.

fn main() {
    std::process::exit(dmw::cli::main());
}
