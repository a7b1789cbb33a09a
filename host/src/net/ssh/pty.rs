//! Native interactive SSH: a remote shell or command on a PTY sized like the local terminal,
//! with the local terminal in raw mode, window changes forwarded and the exit status returned.

use std::io::Write;

use russh::ChannelMsg;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;

use super::{Session, SshError};

/// The terminal size of `fd` as (columns, rows), if it is a terminal.
pub fn terminal_size(fd: i32) -> Option<(u32, u32)> {
    // SAFETY: TIOCGWINSZ writes a `winsize` into the struct we pass; a non-tty fd fails cleanly.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col as u32, ws.ws_row as u32))
}

/// Whether `fd` is a terminal.
pub fn is_tty(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// The local terminal switched to raw mode; dropping it (also while unwinding from a panic)
/// restores the saved settings.
struct RawMode {
    fd: i32,
    saved: libc::termios,
}

impl RawMode {
    fn enable(fd: i32) -> Option<RawMode> {
        // SAFETY: tcgetattr/tcsetattr on a descriptor we checked is a terminal, with
        // properly sized termios structs.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut saved) != 0 {
                return None;
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            if libc::tcsetattr(fd, libc::TCSANOW, &raw) != 0 {
                return None;
            }
            Some(RawMode { fd, saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `enable` on the same descriptor.
        unsafe {
            libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved);
        }
    }
}

/// Read stdin on a plain thread (tokio's stdin would keep the runtime alive at exit, and
/// making the shared tty non-blocking would disturb the parent shell). `None` means EOF.
fn stdin_pump() -> mpsc::Receiver<Option<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            // SAFETY: reads into a buffer we own, at most its length.
            let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            if n <= 0 {
                let _ = tx.blocking_send(None);
                return;
            }
            if tx.blocking_send(Some(buf[..n as usize].to_vec())).is_err() {
                return;
            }
        }
    });
    rx
}

/// The next delivery of an optional signal stream (never, when there is none or it ended).
async fn recv_opt(s: &mut Option<Signal>) {
    if let Some(s) = s.as_mut()
        && s.recv().await.is_some()
    {
        return;
    }
    std::future::pending().await
}

/// Run `command` (or a login shell when `None`) on `session`, wired to this process's
/// stdin/stdout/stderr. With `pty`, a remote PTY is requested with the local terminal's
/// size (80x24 when there is none) and `$TERM` (else `xterm`), the local terminal is put in
/// raw mode and window changes are forwarded. Returns the remote exit status (255 when the
/// remote side ended without one, e.g. killed by a signal; 128+N when this process got
/// SIGTERM or SIGHUP).
pub async fn run(session: &Session, command: Option<&str>, pty: bool) -> Result<i32, SshError> {
    let err = |e: russh::Error| session.session_err(e);
    let mut channel = session.open_channel().await?;
    let mut winch = None;
    if pty {
        let (cols, rows) = terminal_size(0)
            .or_else(|| terminal_size(1))
            .unwrap_or((80, 24));
        let term = std::env::var("TERM")
            .ok()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "xterm".into());
        channel
            .request_pty(true, &term, cols, rows, 0, 0, &[])
            .await
            .map_err(err)?;
        winch = signal(SignalKind::window_change()).ok();
    }
    match command {
        Some(c) => channel.exec(true, c).await.map_err(err)?,
        None => channel.request_shell(true).await.map_err(err)?,
    }
    let _raw = if pty && is_tty(0) {
        RawMode::enable(0)
    } else {
        None
    };
    // SIGTERM/SIGHUP end the session cleanly, so the terminal leaves raw mode.
    let mut term = signal(SignalKind::terminate()).ok();
    let mut hup = signal(SignalKind::hangup()).ok();
    let mut input = stdin_pump();
    let mut input_open = true;
    let mut code = None;
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    loop {
        tokio::select! {
            msg = channel.wait() => match msg {
                Some(ChannelMsg::Data { data }) => {
                    let _ = stdout.write_all(&data);
                    let _ = stdout.flush();
                }
                Some(ChannelMsg::ExtendedData { data, .. }) => {
                    let _ = stderr.write_all(&data);
                    let _ = stderr.flush();
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => code = Some(exit_status as i32),
                Some(_) => {}
                None => break,
            },
            chunk = input.recv(), if input_open => match chunk {
                Some(Some(bytes)) => channel.data(&bytes[..]).await.map_err(err)?,
                _ => {
                    input_open = false;
                    // On a PTY, end of input is the user's business (Ctrl-D is just a byte).
                    if !pty {
                        channel.eof().await.map_err(err)?;
                    }
                }
            },
            sig = async {
                tokio::select! {
                    () = recv_opt(&mut term) => libc::SIGTERM,
                    () = recv_opt(&mut hup) => libc::SIGHUP,
                }
            } => {
                let _ = channel.close().await;
                code = Some(128 + sig);
                break;
            }
            () = recv_opt(&mut winch) => {
                if let Some((cols, rows)) = terminal_size(0).or_else(|| terminal_size(1)) {
                    let _ = channel.window_change(cols, rows, 0, 0).await;
                }
            }
        }
    }
    Ok(code.unwrap_or(255))
}
