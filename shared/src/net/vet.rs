//! Vetting one URL before connecting: scheme, credentials, and every address its host resolves to.

use std::net::{IpAddr, SocketAddr};

use async_trait::async_trait;
use url::{Host, Url};

use super::{check_ip, AllowList, FetchError};

/// Name resolution, behind a trait so tests can map names to loopback addresses of their choice.
#[async_trait]
pub trait Resolve: Send + Sync {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>>;
}

/// The operating system's resolver (`getaddrinfo` through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

#[async_trait]
impl Resolve for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
}

fn refuse(reason: impl Into<String>) -> FetchError {
    FetchError::NotAllowed(reason.into())
}

fn check_literal(ip: IpAddr, allow: &AllowList) -> Result<(), FetchError> {
    if allow.allows_ip(ip) {
        return Ok(());
    }
    check_ip(ip).map_err(|blocked| refuse(blocked.to_string()))
}

/// Checks `url` and returns the one address the request must go to.
///
/// Refused: schemes other than http/https, URLs without a host, URLs with credentials, IP
/// literals the classifier blocks, `localhost` and `*.localhost`, and names for which ANY
/// resolved address is blocked. The allow-list overrides the classifier: a listed hostname
/// passes whatever it resolves to, a resolved address inside a listed network passes. A name is
/// resolved exactly once; the caller pins the returned address so that the connection cannot
/// go anywhere else. Resolution failures are [`FetchError::Network`] (nothing to connect to).
/// Reasons never include resolved addresses.
pub async fn vet(
    url: &Url,
    allow: &AllowList,
    resolver: &dyn Resolve,
) -> Result<SocketAddr, FetchError> {
    let scheme = url.scheme();
    if scheme != "http" && scheme != "https" {
        return Err(refuse(format!(
            "scheme \"{scheme}\" is not allowed (only http and https)"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("credentials in the URL are not allowed"));
    }
    let port = url
        .port_or_known_default()
        .ok_or_else(|| refuse("the URL has no port"))?;
    let name = match url.host() {
        None => return Err(refuse("the URL has no host")),
        Some(Host::Ipv4(ip)) => {
            check_literal(IpAddr::V4(ip), allow)?;
            return Ok(SocketAddr::new(IpAddr::V4(ip), port));
        }
        Some(Host::Ipv6(ip)) => {
            check_literal(IpAddr::V6(ip), allow)?;
            return Ok(SocketAddr::new(IpAddr::V6(ip), port));
        }
        Some(Host::Domain(name)) => name,
    };
    let by_name = allow.allows_host(name);
    let bare = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if !by_name && (bare == "localhost" || bare.ends_with(".localhost")) {
        return Err(refuse("localhost is not allowed (loopback)"));
    }
    let addrs = resolver
        .resolve(name, port)
        .await
        .map_err(|e| FetchError::Network(format!("resolving {name}: {e}")))?;
    let first = *addrs
        .first()
        .ok_or_else(|| FetchError::Network(format!("resolving {name}: no addresses")))?;
    if !by_name {
        for addr in &addrs {
            let ip = addr.ip();
            if allow.allows_ip(ip) {
                continue;
            }
            if let Err(blocked) = check_ip(ip) {
                return Err(refuse(format!(
                    "host resolves to a blocked address: {blocked}"
                )));
            }
        }
    }
    Ok(SocketAddr::new(first.ip(), port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::testing::FakeResolver;

    fn allow(entries: &[&str]) -> AllowList {
        AllowList::parse(&entries.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>()).unwrap()
    }

    fn resolver() -> FakeResolver {
        FakeResolver::default()
            .with("public.example", &["127.0.0.1"])
            .with("mixed.example", &["8.8.8.8", "10.0.0.1"])
            .with("good.example", &["93.184.216.34", "2606:2800:220:1::1"])
            .with("files.internal", &["10.20.0.5"])
            .with("localhost", &["127.0.0.1"])
    }

    async fn refused(url: &str, list: &AllowList) -> String {
        let url = Url::parse(url).unwrap();
        match vet(&url, list, &resolver()).await {
            Err(FetchError::NotAllowed(reason)) => reason,
            other => panic!("{url}: expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn refuses_urls_in_every_disguise_with_the_reason() {
        let none = AllowList::default();
        let cases = [
            ("http://public.example/", "loopback"),
            ("http://mixed.example/", "private"),
            ("http://127.1/", "loopback"),
            ("http://2130706433/", "loopback"),
            ("http://0x7f000001/", "loopback"),
            ("http://[::ffff:127.0.0.1]/", "loopback"),
            ("http://[::1]:8080/", "localhost"),
            ("http://localhost/", "localhost"),
            ("http://api.LOCALHOST./", "localhost"),
            ("http://10.0.0.1/", "private"),
            ("http://172.16.0.1/", "private"),
            ("http://192.168.0.1/", "private"),
            ("http://169.254.169.254/latest/meta-data/", "metadata"),
            ("http://169.254.1.1/", "link-local"),
            ("http://[fe80::1]/", "link-local"),
            ("http://[fd00:ec2::254]/", "metadata"),
            ("http://[fc00::1]/", "private"),
            ("http://[2002:7f00:1::]/", "loopback"),
            ("http://[64:ff9b::7f00:1]/", "loopback"),
            ("http://0.0.0.0/", "unspecified"),
            ("ftp://files.example/a.png", "scheme"),
            ("file:///etc/passwd", "scheme"),
            ("data:text/plain,hello", "scheme"),
            ("http://user:pw@good.example/", "credentials"),
            ("http://user@good.example/", "credentials"),
        ];
        for (url, keyword) in cases {
            let reason = refused(url, &none).await;
            assert!(reason.contains(keyword), "{url}: {reason}");
            assert!(
                !reason.contains("10.0.0.1") || url.contains("10.0.0.1"),
                "{reason}"
            );
            assert!(!reason.contains("127.0.0.1"), "{url}: {reason}");
        }
    }

    #[tokio::test]
    async fn public_names_resolve_once_and_return_the_first_address_to_pin() {
        let resolver = resolver();
        let url = Url::parse("https://good.example/a.png").unwrap();
        let addr = vet(&url, &AllowList::default(), &resolver).await.unwrap();
        assert_eq!(addr, "93.184.216.34:443".parse().unwrap());
        assert_eq!(resolver.lookups(), 1);
    }

    #[tokio::test]
    async fn public_ip_literals_pass_without_a_lookup() {
        let resolver = resolver();
        let url = Url::parse("http://[2606:2800:220:1::1]:8080/").unwrap();
        let addr = vet(&url, &AllowList::default(), &resolver).await.unwrap();
        assert_eq!(addr, "[2606:2800:220:1::1]:8080".parse().unwrap());
        assert_eq!(resolver.lookups(), 0);
    }

    #[tokio::test]
    async fn unresolvable_names_are_a_network_error() {
        let url = Url::parse("http://nowhere.example/").unwrap();
        let err = vet(&url, &AllowList::default(), &resolver()).await;
        assert!(matches!(err, Err(FetchError::Network(_))), "{err:?}");
    }

    #[tokio::test]
    async fn allow_listed_hosts_and_networks_are_accepted() {
        let by_name = allow(&["FILES.internal"]);
        let url = Url::parse("http://files.internal/x").unwrap();
        let addr = vet(&url, &by_name, &resolver()).await.unwrap();
        assert_eq!(addr, "10.20.0.5:80".parse().unwrap());

        let by_net = allow(&["10.20.0.0/16"]);
        assert!(vet(&url, &by_net, &resolver()).await.is_ok());
        let literal = Url::parse("http://10.20.9.9:81/").unwrap();
        assert_eq!(
            vet(&literal, &by_net, &resolver()).await.unwrap(),
            "10.20.9.9:81".parse().unwrap()
        );

        // A listed network covers only its own addresses.
        assert!(refused("http://10.21.0.1/", &by_net)
            .await
            .contains("private"));
        assert!(refused("http://mixed.example/", &by_net)
            .await
            .contains("private"));
        // Listing a name does not list the addresses it resolves to for other names.
        assert!(refused("http://public.example/", &by_name)
            .await
            .contains("loopback"));
    }
}
