//! The fetcher: GET with every hop vetted and pinned, redirects followed by hand, and the body
//! capped in bytes and time while it streams.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt as _;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use tokio::time::{Instant, Sleep};
use url::{Host, Url};

use super::{vet, AllowList, FetchError, Resolve};
use crate::storage::{ByteStream, StorageError};

/// Limits for one kind of outbound fetch (URL import, webhook delivery).
#[derive(Debug, Clone)]
pub struct FetchPolicy {
    /// Hosts and networks reachable even though the classifier refuses them.
    pub allow: AllowList,
    /// Redirects followed before giving up (each target vetted like the first URL).
    pub max_redirects: u8,
    /// Per connection attempt.
    pub connect_timeout: Duration,
    /// From the start of [`Fetcher::get`] to the last byte of the body, redirects included.
    pub total_timeout: Duration,
    /// Body size cap, checked against `Content-Length` and again while streaming.
    pub max_bytes: u64,
}

impl Default for FetchPolicy {
    /// Nothing allow-listed, 3 redirects, 10 s to connect, 60 s in all, 100 MiB (the default
    /// `BOARDS_MAX_UPLOAD_SIZE`).
    fn default() -> Self {
        Self {
            allow: AllowList::default(),
            max_redirects: 3,
            connect_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(60),
            max_bytes: 104_857_600,
        }
    }
}

/// A successful (2xx) response whose body has not been read yet.
pub struct Fetched {
    /// The URL that answered, after redirects.
    pub final_url: Url,
    pub status: u16,
    pub content_type: Option<String>,
    /// The announced length (already checked against the cap).
    pub content_length: Option<u64>,
    /// Fails with [`StorageError::TooLarge`] past the cap, and with [`StorageError::Source`]
    /// when the connection breaks or the total deadline passes.
    pub body: ByteStream,
}

impl std::fmt::Debug for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetched")
            .field("final_url", &self.final_url.as_str())
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .field("content_length", &self.content_length)
            .finish_non_exhaustive()
    }
}

/// The answer to [`Fetcher::post`].
#[derive(Debug, Clone, PartialEq)]
pub struct Posted {
    pub status: u16,
    /// The first 1 KiB of the response body (lossy UTF-8), for the delivery record.
    pub body: String,
}

/// Fetches URLs under a [`FetchPolicy`]. Cheap to share; builds one pinned client per hop.
pub struct Fetcher {
    policy: FetchPolicy,
    resolver: Arc<dyn Resolve>,
}

impl Fetcher {
    pub fn new(policy: FetchPolicy, resolver: Arc<dyn Resolve>) -> Self {
        Self { policy, resolver }
    }

    pub fn policy(&self) -> &FetchPolicy {
        &self.policy
    }

    /// GETs `url`, following up to `max_redirects` redirects. Returns once the headers of a
    /// 2xx response are in; the body streams from [`Fetched::body`].
    pub async fn get(&self, url: &str) -> Result<Fetched, FetchError> {
        let deadline = Instant::now() + self.policy.total_timeout;
        let mut url = parse(url)?;
        let mut redirects = 0u8;
        let response = loop {
            let hop = tokio::time::timeout_at(deadline, self.hop(&url, redirects > 0));
            let response = hop.await.map_err(|_| FetchError::Timeout)??;
            let status = response.status().as_u16();
            let location = response.headers().get(LOCATION);
            match (status, location) {
                (301 | 302 | 303 | 307 | 308, Some(location)) => {
                    if redirects >= self.policy.max_redirects {
                        return Err(FetchError::TooManyRedirects);
                    }
                    let location = location.to_str().map_err(|_| {
                        FetchError::Network("redirect Location is not ASCII".into())
                    })?;
                    url = url.join(location).map_err(|e| {
                        FetchError::Network(format!("redirect Location {location:?}: {e}"))
                    })?;
                    redirects += 1;
                }
                _ if response.status().is_success() => break response,
                _ => return Err(FetchError::Status(status)),
            }
        };
        let content_length = response.content_length();
        let limit = self.policy.max_bytes;
        if let Some(size) = content_length.filter(|size| *size > limit) {
            return Err(FetchError::TooLarge {
                size: Some(size),
                limit,
            });
        }
        Ok(Fetched {
            final_url: url,
            status: response.status().as_u16(),
            content_type: response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            content_length,
            body: capped(response.bytes_stream().boxed(), limit, deadline),
        })
    }

    /// POSTs `body` to `url` with `headers`: one vetted request to exactly the vetted address,
    /// within `total_timeout` (to the response's first 1 KiB). Redirects are not followed: a
    /// redirect is an answer like any other status. Any status is `Ok`; the caller decides.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Posted, FetchError> {
        let url = parse(url)?;
        let send = async {
            let addr = vet(&url, &self.policy.allow, &*self.resolver).await?;
            let client = pinned_client(&url, addr, &self.policy)?;
            let mut request = client
                .post(url.clone())
                .header(CONTENT_TYPE, "application/json");
            for (name, value) in headers {
                request = request.header(*name, value);
            }
            let mut response = request.body(body).send().await.map_err(network)?;
            let status = response.status().as_u16();
            let mut excerpt = Vec::new();
            while excerpt.len() < 1024 {
                match response.chunk().await {
                    Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                    Ok(None) | Err(_) => break,
                }
            }
            excerpt.truncate(1024);
            Ok(Posted {
                status,
                body: String::from_utf8_lossy(&excerpt).into_owned(),
            })
        };
        tokio::time::timeout(self.policy.total_timeout, send)
            .await
            .map_err(|_| FetchError::Timeout)?
    }

    /// One request: vet, then send to exactly the vetted address.
    async fn hop(&self, url: &Url, redirected: bool) -> Result<reqwest::Response, FetchError> {
        let addr = vet(url, &self.policy.allow, &*self.resolver)
            .await
            .map_err(|e| match e {
                FetchError::NotAllowed(reason) if redirected => {
                    FetchError::NotAllowed(format!("redirect target: {reason}"))
                }
                e => e,
            })?;
        let client = pinned_client(url, addr, &self.policy)?;
        client.get(url.clone()).send().await.map_err(network)
    }
}

fn parse(url: &str) -> Result<Url, FetchError> {
    Url::parse(url).map_err(|_| {
        FetchError::NotAllowed("not a valid URL (an http or https scheme and a host)".into())
    })
}

/// A client that can only reach `addr`: the URL's name is pinned to it, any other name fails
/// to resolve, environment proxies are ignored and redirects are returned, not followed.
fn pinned_client(
    url: &Url,
    addr: SocketAddr,
    policy: &FetchPolicy,
) -> Result<reqwest::Client, FetchError> {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(policy.connect_timeout)
        .dns_resolver(Arc::new(NoLookups))
        .pool_max_idle_per_host(0)
        .user_agent(concat!("boards/", env!("CARGO_PKG_VERSION")));
    if let Some(Host::Domain(name)) = url.host() {
        builder = builder.resolve(name, addr);
    }
    builder
        .build()
        .map_err(|e| FetchError::Network(format!("building the HTTP client: {e}")))
}

/// The fallback resolver behind the pin: refuses every lookup, so nothing unvetted is reached.
struct NoLookups;

impl reqwest::dns::Resolve for NoLookups {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_owned();
        Box::pin(async move { Err(format!("{name} was not vetted; lookups refused").into()) })
    }
}

/// The error and its causes on one line, without the URL (it may hold a redirect target).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn network(e: reqwest::Error) -> FetchError {
    if e.is_timeout() {
        FetchError::Timeout
    } else {
        FetchError::Network(describe(e))
    }
}

struct Capped {
    inner: BoxStream<'static, reqwest::Result<Bytes>>,
    deadline: Pin<Box<Sleep>>,
    seen: u64,
    limit: u64,
    done: bool,
}

/// The body, failing once more than `limit` bytes arrive or `deadline` passes, then ending.
fn capped(
    inner: BoxStream<'static, reqwest::Result<Bytes>>,
    limit: u64,
    deadline: Instant,
) -> ByteStream {
    let state = Capped {
        inner,
        deadline: Box::pin(tokio::time::sleep_until(deadline)),
        seen: 0,
        limit,
        done: false,
    };
    futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        let next = tokio::select! {
            biased;
            () = &mut st.deadline => Some(Err(StorageError::Source("download timed out".into()))),
            chunk = st.inner.next() => chunk.map(|chunk| {
                chunk.map_err(|e| StorageError::Source(format!("download failed: {}", describe(e))))
            }),
        };
        let item = match next? {
            Ok(bytes) => {
                st.seen += bytes.len() as u64;
                if st.seen > st.limit {
                    Err(StorageError::TooLarge { limit: st.limit })
                } else {
                    Ok(bytes)
                }
            }
            Err(e) => Err(e),
        };
        st.done = item.is_err();
        Some((item, st))
    })
    .boxed()
}
