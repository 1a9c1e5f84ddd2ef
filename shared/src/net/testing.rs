//! Test doubles for the fetcher: a resolver that maps names to chosen (loopback) addresses and a
//! raw HTTP/1.1 server that only ever listens on loopback.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use super::Resolve;

/// Maps names to addresses; unknown names fail to resolve. Counts lookups.
#[derive(Default)]
pub(crate) struct FakeResolver {
    names: HashMap<String, Vec<IpAddr>>,
    lookups: AtomicUsize,
}

impl FakeResolver {
    pub(crate) fn with(mut self, name: &str, ips: &[&str]) -> Self {
        let ips = ips.iter().map(|ip| ip.parse().unwrap()).collect();
        self.names.insert(name.to_owned(), ips);
        self
    }

    pub(crate) fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Resolve for FakeResolver {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let ips = self
            .names
            .get(host)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "unknown name"))?;
        Ok(ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect())
    }
}

/// What the server saw of one request.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) path: String,
    pub(crate) host: Option<String>,
}

/// What the server does with a request.
pub(crate) enum Reply {
    /// Write these bytes, then close.
    Raw(Vec<u8>),
    /// Write these bytes, then keep the connection open without sending more.
    RawThenStall(Vec<u8>),
}

pub(crate) fn ok(content_type: &str, body: &[u8]) -> Reply {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    Reply::Raw([head.as_bytes(), body].concat())
}

pub(crate) fn redirect(location: &str) -> Reply {
    let head = format!(
        "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    );
    Reply::Raw(head.into_bytes())
}

pub(crate) fn status(code: u16) -> Reply {
    let head =
        format!("HTTP/1.1 {code} Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    Reply::Raw(head.into_bytes())
}

pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    pub(crate) requests: Arc<Mutex<Vec<Request>>>,
    pub(crate) connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// Serves on `ip` (which must be a loopback address) on a free port.
    pub(crate) async fn start(
        ip: &str,
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let ip: IpAddr = ip.parse().unwrap();
        assert!(ip.is_loopback(), "test servers listen on loopback only");
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let handler = Arc::new(handler);
        let (seen, count) = (requests.clone(), connections.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let (seen, handler) = (seen.clone(), handler.clone());
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut socket).await else {
                        return;
                    };
                    seen.lock().unwrap().push(request.clone());
                    match handler(&request) {
                        Reply::Raw(bytes) => {
                            let _ = socket.write_all(&bytes).await;
                            let _ = socket.shutdown().await;
                        }
                        Reply::RawThenStall(bytes) => {
                            let _ = socket.write_all(&bytes).await;
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            requests,
            connections,
            task,
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 16 * 1024 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_owned();
    let host = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("host"))
        .map(|(_, value)| value.trim().to_owned());
    Some(Request { path, host })
}
