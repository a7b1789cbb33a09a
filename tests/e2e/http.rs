//! A tiny HTTP/1.1 file server for the tests: Docker's repository and install script
//! stand-ins are served from a directory on the testbed's side of a host's link (the
//! tests' one HTTP server, `clouds::server`, with a handler that reads files).

use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::clouds::server::{Handler, Request, Response, Server};

/// Serves the files under a directory until dropped.
pub struct FileServer {
    /// `http://ip:port`
    pub url: String,
    server: Server,
}

impl FileServer {
    /// Serve `root` on `ip` (an ephemeral port).
    pub fn start(root: &Path, ip: IpAddr) -> FileServer {
        let root = root.to_path_buf();
        let handler: Handler = Arc::new(move |req: &Request| {
            match resolve(&root, &req.path).and_then(|p| std::fs::read(p).ok()) {
                Some(body) => Response::bytes(200, body),
                None => Response::empty(404),
            }
        });
        let server = Server::start_on(&ip.to_string(), handler);
        FileServer {
            url: server.url.clone(),
            server,
        }
    }

    /// The paths requested so far.
    pub fn requests(&self) -> Vec<String> {
        self.server
            .requests()
            .into_iter()
            .map(|(r, _)| r.path)
            .collect()
    }
}

fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let rel = Path::new(path.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let p = root.join(rel);
    p.is_file().then_some(p)
}
