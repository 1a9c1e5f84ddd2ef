//! The operator's allow-list (`BOARDS_URL_IMPORT_ALLOWED_HOSTS`): hosts and networks an outbound
//! fetch may reach even though the classifier would refuse them (an internal file server).

use std::net::IpAddr;

use ipnet::IpNet;

/// Hostnames (exact, case-insensitive, trailing dot ignored) and IP networks. Empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    hosts: Vec<String>,
    nets: Vec<IpNet>,
}

/// Lower-case, without the trailing dot of a fully qualified name.
fn normalise_host(host: &str) -> String {
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

fn is_hostname(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl AllowList {
    /// Parses entries such as `files.internal`, `10.20.0.0/16`, `192.168.1.5` or `fd00::/8`.
    /// Blank entries are skipped; anything else that is neither a hostname nor an IP/CIDR is an
    /// error naming the entry (wildcards, URLs and ports are not accepted).
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut list = Self::default();
        for raw in entries {
            let entry = raw.trim();
            if entry.is_empty() {
                continue;
            }
            let bare = entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .unwrap_or(entry);
            if let Ok(net) = bare.parse::<IpNet>() {
                list.nets.push(net.trunc());
            } else if let Ok(ip) = bare.parse::<IpAddr>() {
                list.nets.push(IpNet::from(ip.to_canonical()));
            } else if entry.contains('/') {
                return Err(format!("allowed host {entry:?}: not a valid IP network"));
            } else {
                let host = normalise_host(entry);
                if !is_hostname(&host) {
                    return Err(format!(
                        "allowed host {entry:?}: not a hostname, IP address or CIDR network"
                    ));
                }
                list.hosts.push(host);
            }
        }
        Ok(list)
    }

    /// Whether the list is empty (the default: only public addresses are reachable).
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.nets.is_empty()
    }

    /// Whether `host` (a DNS name as it appears in a URL) is listed by name.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = normalise_host(host);
        self.hosts.contains(&host)
    }

    /// Whether `ip` lies in a listed network. IPv4-mapped IPv6 addresses count as their IPv4
    /// address, since that is where the connection goes.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> Result<AllowList, String> {
        AllowList::parse(&entries.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn empty_list_allows_nothing() {
        let allow = list(&["", "  "]).unwrap();
        assert!(allow.is_empty());
        assert!(!allow.allows_host("localhost"));
        assert!(!allow.allows_ip("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn hostnames_match_exactly_ignoring_case_and_trailing_dot() {
        let allow = list(&["Files.Internal."]).unwrap();
        assert!(allow.allows_host("files.internal"));
        assert!(allow.allows_host("FILES.internal."));
        assert!(!allow.allows_host("sub.files.internal"));
        assert!(!allow.allows_host("files.internal.evil"));
    }

    #[test]
    fn addresses_and_networks_match_by_containment() {
        let allow = list(&["10.20.0.0/16", "192.168.1.5", "[fd00::1]", "fd12::/16"]).unwrap();
        for ip in [
            "10.20.255.1",
            "192.168.1.5",
            "::ffff:192.168.1.5",
            "fd00::1",
            "fd12::9",
        ] {
            assert!(allow.allows_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["10.21.0.1", "192.168.1.6", "fd00::2", "127.0.0.1"] {
            assert!(!allow.allows_ip(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn bad_entries_are_named_in_the_error() {
        for bad in [
            "10.0.0.0/33",
            "*.example.com",
            "http://files.internal",
            "host:8080",
            "a..b",
        ] {
            let err = list(&["ok.example", bad]).unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }
}
