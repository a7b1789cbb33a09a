//! The `dmw` command.

fn main() {
    // Die quietly on a closed pipe (`dmw inspect | head`), as command-line tools do,
    // instead of panicking on the failed write.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(dmw::cli::main());
}
