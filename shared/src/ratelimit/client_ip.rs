//! The client's address behind reverse proxies: `X-Forwarded-For` and `Forwarded` are believed
//! only when they arrive from a configured trusted proxy (`BOARDS_TRUSTED_PROXIES`), and only as
//! far back as the chain of trusted hops goes, so a client cannot choose its own address.

use std::net::{IpAddr, Ipv6Addr};

use ipnet::{IpNet, Ipv6Net};
use serde::{Deserialize, Serialize};

/// The networks whose forwarding headers are believed. Empty (the default): none, the peer
/// address is the client.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Parses IP addresses and CIDR networks (`10.0.0.0/8`, `192.168.1.5`, `fd00::/8`); blank
    /// entries are skipped, anything else is an error naming the entry.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut nets = vec![];
        for raw in entries {
            let entry = raw.trim();
            if entry.is_empty() {
                continue;
            }
            if let Ok(net) = entry.parse::<IpNet>() {
                nets.push(net.trunc());
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                nets.push(IpNet::from(ip.to_canonical()));
            } else {
                return Err(format!(
                    "trusted proxy {entry:?}: expected an IP address or a CIDR network \
                     (e.g. 10.0.0.0/8)"
                ));
            }
        }
        Ok(Self { nets })
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request that reached us from `peer`, given its `X-Forwarded-For` and
    /// `Forwarded` header values (each header line in order).
    ///
    /// From `peer` the hops are walked right to left (each proxy appends the address it received
    /// the request from): the first one that is not a trusted proxy is the client. Headers from
    /// an untrusted peer are ignored. `X-Forwarded-For` is used when present (what nginx,
    /// ingress-nginx, Envoy and cloud load balancers append), else `Forwarded`'s `for=`. A hop
    /// that cannot be read (`unknown`, an obfuscated name, garbage) ends the walk at the last
    /// trusted address.
    pub fn client_ip(&self, peer: IpAddr, forwarded_for: &[&str], forwarded: &[&str]) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<&str> = if !forwarded_for.is_empty() {
            forwarded_for
                .iter()
                .flat_map(|line| line.split(','))
                .collect()
        } else {
            forwarded
                .iter()
                .flat_map(|line| line.split(','))
                .filter_map(forwarded_for_param)
                .collect()
        };
        let mut current = peer;
        for hop in hops.iter().rev() {
            match parse_node(hop) {
                Some(ip) => {
                    current = ip;
                    if !self.contains(ip) {
                        return ip;
                    }
                }
                None => return current,
            }
        }
        current
    }
}

impl TryFrom<Vec<String>> for TrustedProxies {
    type Error = String;
    fn try_from(entries: Vec<String>) -> Result<Self, String> {
        Self::parse(&entries)
    }
}

impl From<TrustedProxies> for Vec<String> {
    fn from(t: TrustedProxies) -> Self {
        t.nets.iter().map(ToString::to_string).collect()
    }
}

/// The `for=` value of one `Forwarded` element (`for=192.0.2.60;proto=http;by=203.0.113.43`).
fn forwarded_for_param(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then(|| value.trim())
    })
}

/// One hop: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`, optionally
/// quoted. `unknown` and obfuscated identifiers (`_hidden`) are not addresses.
fn parse_node(raw: &str) -> Option<IpAddr> {
    let s = raw.trim().trim_matches('"').trim();
    if let Some(rest) = s.strip_prefix('[') {
        let (inside, _port) = rest.split_once(']')?;
        return inside
            .parse::<Ipv6Addr>()
            .ok()
            .map(|ip| IpAddr::V6(ip).to_canonical());
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    // IPv4 with a port (an IPv6 address with a port must be bracketed).
    let (host, port) = s.split_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The key under which a client address is limited: an IPv4 address itself, an IPv6 address
/// its /64 network (one subscriber usually holds a whole /64, so single addresses would let a
/// client rotate through its own network freely).
pub fn ip_bucket(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => Ipv6Net::new(v6, 64)
            .map(|n| n.trunc().to_string())
            .unwrap_or_else(|_| v6.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_headers_say() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_ip(ip("203.0.113.9"), &["1.2.3.4"], &["for=5.6.7.8"]),
            ip("203.0.113.9")
        );
        let t = trusted(&["10.0.0.0/8"]);
        assert_eq!(
            t.client_ip(ip("203.0.113.9"), &["1.2.3.4"], &[]),
            ip("203.0.113.9"),
            "headers from an untrusted peer are ignored"
        );
    }

    #[test]
    fn the_first_untrusted_hop_from_the_right_is_the_client() {
        let t = trusted(&["10.0.0.0/8", "192.168.1.5"]);
        // The client's own (spoofed) entry on the left is never reached.
        assert_eq!(
            t.client_ip(
                ip("10.1.2.3"),
                &["6.6.6.6, 198.51.100.7", "192.168.1.5"],
                &[]
            ),
            ip("198.51.100.7")
        );
        assert_eq!(
            t.client_ip(ip("10.1.2.3"), &["198.51.100.7:5555"], &[]),
            ip("198.51.100.7")
        );
        // Only trusted hops: the leftmost is the best we know.
        assert_eq!(
            t.client_ip(ip("10.1.2.3"), &["10.9.9.9"], &[]),
            ip("10.9.9.9")
        );
        // No header: the proxy itself.
        assert_eq!(t.client_ip(ip("10.1.2.3"), &[], &[]), ip("10.1.2.3"));
        // Garbage ends the walk at the last trusted address.
        assert_eq!(
            t.client_ip(ip("10.1.2.3"), &["1.1.1.1, nonsense"], &[]),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn forwarded_is_read_when_there_is_no_x_forwarded_for() {
        let t = trusted(&["10.0.0.0/8", "::1"]);
        assert_eq!(
            t.client_ip(
                ip("::1"),
                &[],
                &[r#"for=6.6.6.6, For="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.2"#]
            ),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(
            t.client_ip(ip("10.0.0.1"), &[], &["for=unknown"]),
            ip("10.0.0.1")
        );
        // Present X-Forwarded-For wins.
        assert_eq!(
            t.client_ip(ip("10.0.0.1"), &["198.51.100.7"], &["for=6.6.6.6"]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4() {
        let t = trusted(&["127.0.0.1"]);
        assert!(t.contains(ip("::ffff:127.0.0.1")));
        assert_eq!(
            t.client_ip(ip("::ffff:127.0.0.1"), &["::ffff:198.51.100.7"], &[]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn entries_must_be_addresses_or_networks() {
        let t = trusted(&[" 10.0.0.0/8 ", "", "2001:db8::/32", "192.168.1.5"]);
        assert_eq!(
            Vec::<String>::from(t),
            vec!["10.0.0.0/8", "2001:db8::/32", "192.168.1.5/32"]
        );
        for bad in ["ingress.local", "10.0.0.0/33", "10.0.0.1:80", "*"] {
            let e = TrustedProxies::parse(&[bad.to_string()]).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn ipv6_clients_are_limited_by_their_64_network() {
        assert_eq!(ip_bucket(ip("198.51.100.7")), "198.51.100.7");
        assert_eq!(ip_bucket(ip("::ffff:198.51.100.7")), "198.51.100.7");
        assert_eq!(
            ip_bucket(ip("2001:db8:1:2:3:4:5:6")),
            ip_bucket(ip("2001:db8:1:2::ffff"))
        );
        assert_eq!(ip_bucket(ip("2001:db8:1:2:3:4:5:6")), "2001:db8:1:2::/64");
    }
}
