//! Outbound HTTP that cannot be aimed at our own network (SSRF-safe fetching), for URL imports
//! (`uploadArtifact`) and webhook deliveries.
//!
//! Every hop is vetted before any connection: the scheme, the absence of credentials, and each
//! address the host resolves to (resolved once, see [`vet`]). The request then goes to exactly
//! the vetted address (pinned in the HTTP client), so a DNS answer that changes between the check
//! and the connection (rebinding) cannot redirect it. Redirects are followed by hand, each target
//! vetted again; proxies from the environment are ignored.

mod addr;
mod allow;
mod fetch;
#[cfg(test)]
mod fetch_tests;
#[cfg(test)]
mod testing;
mod vet;

pub use addr::{check_ip, Blocked};
pub use allow::AllowList;
pub use fetch::{FetchPolicy, Fetched, Fetcher, Posted};
pub use vet::{vet, Resolve, SystemResolver};

/// Why a fetch failed. `Display` is the user-facing message (wording from the contract, §2.7);
/// it never contains an address the user did not type. [`FetchError::Network`] keeps the cause
/// for logs only.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL, or a redirect target, is refused before any connection is made.
    #[error("URL not allowed: {0}")]
    NotAllowed(String),
    /// The server answered with a status other than 2xx (or a redirect without a target).
    #[error("Failed to download from URL: HTTP {0}")]
    Status(u16),
    /// `size` is the announced `Content-Length`, when there was one.
    #[error("{}", too_large(*.size, *.limit))]
    TooLarge { size: Option<u64>, limit: u64 },
    #[error("Failed to download file from URL: too many redirects")]
    TooManyRedirects,
    #[error("Failed to download file from URL: timed out")]
    Timeout,
    /// Resolution, connection, TLS or protocol failure; the detail is for logs.
    #[error("Failed to download file from URL")]
    Network(String),
}

fn too_large(size: Option<u64>, limit: u64) -> String {
    match size {
        Some(size) => {
            format!("File size ({size} bytes) exceeds maximum allowed size ({limit} bytes)")
        }
        None => format!("File size exceeds maximum allowed size ({limit} bytes)"),
    }
}

impl FetchError {
    /// The cause worth logging next to the user-facing message, if any.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Self::Network(detail) => Some(detail),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FetchError;

    #[test]
    fn messages_follow_the_contract_and_hide_network_detail() {
        let cases = [
            (
                FetchError::NotAllowed("scheme \"ftp\" is not http or https".into()),
                "URL not allowed: scheme \"ftp\" is not http or https",
            ),
            (
                FetchError::Status(404),
                "Failed to download from URL: HTTP 404",
            ),
            (
                FetchError::TooLarge {
                    size: Some(200),
                    limit: 100,
                },
                "File size (200 bytes) exceeds maximum allowed size (100 bytes)",
            ),
            (
                FetchError::TooLarge {
                    size: None,
                    limit: 100,
                },
                "File size exceeds maximum allowed size (100 bytes)",
            ),
            (
                FetchError::Network("connect to 10.1.2.3:80 refused".into()),
                "Failed to download file from URL",
            ),
        ];
        for (err, message) in cases {
            assert_eq!(err.to_string(), message);
        }
    }
}
