//! A QMP client (QEMU Machine Protocol) for one command per connection: read the greeting,
//! enter command mode with `qmp_capabilities`, send the command, and return its reply,
//! skipping the asynchronous events QEMU sends in between. Used by the `vm` capability
//! for a machine's VM and by `files` for a socket in a driver's directory; only the
//! commands of [`ALLOWED`] are sent, every line is bounded and the command is re-encoded
//! (no newline or second command can ride along).

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// Longest reply line kept.
pub const MAX_REPLY: usize = 64 * 1024;
/// Longest command accepted.
pub const MAX_COMMAND: usize = 16 * 1024;
/// Most events skipped while waiting for one reply.
const MAX_EVENTS: usize = 256;

/// The QMP commands sent to a VM's QEMU: its state, the power button, pause and resume,
/// reset and quit — none that names a file, a program or a device. (`migrate` with an
/// `exec:` URI, `human-monitor-command`, `blockdev-add`, `getfd`, `screendump` and the
/// rest of QMP never reach QEMU.)
pub const ALLOWED: &[&str] = &[
    "query-status",
    "query-name",
    "query-version",
    "system_powerdown",
    "system_reset",
    "stop",
    "cont",
    "quit",
];

/// Check a command: a JSON object with an `execute` name of [`ALLOWED`], no arguments (or
/// empty ones), optionally an `id`; returns it re-encoded on one line.
pub fn check_command(command: &str) -> Result<String> {
    if command.len() > MAX_COMMAND {
        bail!("the QMP command is longer than {MAX_COMMAND} bytes");
    }
    let v: Value = serde_json::from_str(command).context("the QMP command is not JSON")?;
    let obj = v
        .as_object()
        .ok_or_else(|| anyhow!("the QMP command is not a JSON object"))?;
    let Some(name) = obj.get("execute").and_then(Value::as_str) else {
        bail!("the QMP command has no \"execute\" name");
    };
    if !ALLOWED.contains(&name) {
        bail!(
            "the QMP command {:?} is not one dmw sends (only {})",
            crate::text::sanitize::plugin_text(name, 60),
            ALLOWED.join(", ")
        );
    }
    if obj
        .get("arguments")
        .is_some_and(|a| a.as_object().is_none_or(|a| !a.is_empty()))
    {
        bail!("the QMP command {name} takes no arguments here");
    }
    if let Some(k) = obj
        .keys()
        .find(|k| !["execute", "arguments", "id"].contains(&k.as_str()))
    {
        bail!("the QMP command has an unknown member {k:?}");
    }
    Ok(serde_json::to_string(&v)?)
}

/// One line of at most [`MAX_REPLY`] bytes, parsed.
async fn read_message<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> Result<Value> {
    let mut line = Vec::new();
    loop {
        let buf = reader.fill_buf().await.context("reading from QMP")?;
        if buf.is_empty() {
            bail!("QEMU closed the QMP connection");
        }
        let (take, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if line.len() + take > MAX_REPLY {
            bail!("a QMP message is longer than {MAX_REPLY} bytes");
        }
        line.extend_from_slice(&buf[..take]);
        reader.consume(take);
        if done {
            break;
        }
    }
    serde_json::from_slice(&line).context("QEMU sent a QMP message that is not JSON")
}

/// The reply to the last command: the first message with `return` or `error`.
async fn read_reply<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> Result<Value> {
    for _ in 0..=MAX_EVENTS {
        let msg = read_message(reader).await?;
        if msg.get("return").is_some() || msg.get("error").is_some() {
            return Ok(msg);
        }
        if msg.get("event").is_none() {
            bail!("QEMU sent an unexpected QMP message");
        }
    }
    bail!("QEMU sent more than {MAX_EVENTS} events and no reply")
}

/// Run one command over a fresh QMP connection; the reply (`{"return": ...}` or
/// `{"error": ...}`) as one JSON line. The caller bounds the time.
pub async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    command: &str,
) -> Result<String> {
    let command = check_command(command)?;
    let (read, mut write) = tokio::io::split(stream);
    let mut reader = BufReader::new(read);
    let greeting = read_message(&mut reader).await?;
    if greeting.get("QMP").is_none() {
        bail!("the socket does not speak QMP (no greeting)");
    }
    write
        .write_all(b"{\"execute\":\"qmp_capabilities\"}\n")
        .await
        .context("writing to QMP")?;
    let caps = read_reply(&mut reader).await?;
    if let Some(e) = caps.get("error") {
        bail!("QEMU refused qmp_capabilities: {e}");
    }
    write
        .write_all(format!("{command}\n").as_bytes())
        .await
        .context("writing to QMP")?;
    let reply = read_reply(&mut reader).await?;
    Ok(serde_json::to_string(&reply)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncBufReadExt;
    use tokio::net::{UnixListener, UnixStream};

    /// Recorded from qemu-system-x86_64 7.2 (`-machine none -qmp stdio`): greeting, then
    /// the answers to qmp_capabilities, query-status, stop (whose STOP event comes before
    /// its return), query-status, an unknown command and quit.
    const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}"#;
    const CAPS: &str = r#"{"return": {}}"#;
    const STATUS_RUNNING: &str =
        r#"{"return": {"status": "running", "singlestep": false, "running": true}}"#;
    const STOP_EVENT: &str =
        r#"{"timestamp": {"seconds": 1796122074, "microseconds": 237360}, "event": "STOP"}"#;
    const NOT_FOUND: &str =
        r#"{"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}"#;

    /// A unix-socket server replaying `script`: for each expected command line, the lines
    /// to send back. Returns the commands it received.
    async fn replay(
        dir: &std::path::Path,
        script: Vec<(&'static str, Vec<&'static str>)>,
    ) -> (UnixStream, tokio::task::JoinHandle<Vec<String>>) {
        let path = dir.join("qmp.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        let server = tokio::spawn(async move {
            let (sock, _) = listener.accept().await.expect("accept");
            let (r, mut w) = tokio::io::split(sock);
            let mut lines = BufReader::new(r).lines();
            w.write_all(format!("{GREETING}\r\n").as_bytes())
                .await
                .expect("greet");
            let mut got = Vec::new();
            for (expect, answers) in script {
                let Ok(Some(line)) = lines.next_line().await else {
                    break;
                };
                assert_eq!(line, expect);
                got.push(line);
                for a in answers {
                    w.write_all(format!("{a}\r\n").as_bytes())
                        .await
                        .expect("answer");
                }
            }
            got
        });
        let client = UnixStream::connect(&path).await.expect("connect");
        (client, server)
    }

    #[tokio::test]
    async fn a_command_gets_its_reply_after_the_handshake() {
        let dir = tempfile::tempdir().expect("tmp");
        let (client, server) = replay(
            dir.path(),
            vec![
                (r#"{"execute":"qmp_capabilities"}"#, vec![CAPS]),
                (r#"{"execute":"query-status"}"#, vec![STATUS_RUNNING]),
            ],
        )
        .await;
        let reply = command(client, r#"{ "execute": "query-status" }"#)
            .await
            .expect("reply");
        let v: Value = serde_json::from_str(&reply).expect("json");
        assert_eq!(v["return"]["status"], "running");
        assert_eq!(server.await.expect("server").len(), 2);
    }

    #[tokio::test]
    async fn events_before_the_reply_are_skipped_and_errors_are_replies() {
        let dir = tempfile::tempdir().expect("tmp");
        let (client, _server) = replay(
            dir.path(),
            vec![
                (r#"{"execute":"qmp_capabilities"}"#, vec![CAPS]),
                (r#"{"execute":"stop"}"#, vec![STOP_EVENT, CAPS]),
            ],
        )
        .await;
        let reply = command(client, r#"{"execute":"stop"}"#)
            .await
            .expect("reply");
        assert_eq!(reply, r#"{"return":{}}"#);
        let dir = tempfile::tempdir().expect("tmp");
        let (client, _server) = replay(
            dir.path(),
            vec![
                (r#"{"execute":"qmp_capabilities"}"#, vec![CAPS]),
                (r#"{"execute":"system_reset"}"#, vec![NOT_FOUND]),
            ],
        )
        .await;
        let reply = command(client, r#"{"execute":"system_reset"}"#)
            .await
            .expect("reply");
        assert!(reply.contains("CommandNotFound"), "{reply}");
    }

    #[tokio::test]
    async fn bad_commands_and_floods_are_refused() {
        for bad in [
            "query-status",
            "[1]",
            r#"{"arguments":{}}"#,
            r#"{"execute":"quit","exec-oob":"y"}"#,
            // What a hostile driver sent through QMP (issue 18, proof 2), and its kin.
            r#"{"execute":"migrate","arguments":{"uri":"exec:touch /tmp/x"}}"#,
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"info"}}"#,
            r#"{"execute":"blockdev-add","arguments":{"driver":"file","filename":"/etc/shadow"}}"#,
            r#"{"execute":"quit","arguments":{"x":1}}"#,
            r#"{"execute":"quit","arguments":[]}"#,
        ] {
            assert!(check_command(bad).is_err(), "{bad}");
        }
        // A newline inside the command cannot smuggle a second one: it is re-encoded.
        let one = check_command("{\"execute\":\n\"quit\"}").expect("ok");
        assert!(check_command(r#"{"execute":"query-status","arguments":{},"id":1}"#).is_ok());
        assert!(!one.contains('\n'));
        // A server that never ends its line is cut at the bound.
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("flood.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.expect("accept");
            let chunk = vec![b'x'; 8192];
            while sock.write_all(&chunk).await.is_ok() {}
        });
        let client = UnixStream::connect(&path).await.expect("connect");
        let err = command(client, r#"{"execute":"quit"}"#)
            .await
            .expect_err("flood");
        assert!(format!("{err}").contains("longer than"), "{err}");
    }
}
