//! The address classifier: which IP addresses an outbound fetch may never reach.
//!
//! Deny-list for IPv4 (the IANA special-purpose registry), allow-list-shaped for IPv6: only
//! global unicast (`2000::/3`) passes, minus its special blocks, and the translation formats
//! that embed an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by that address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused. The `Display` text is shown to users, so it never contains the
/// address itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Blocked {
    #[error("unspecified address")]
    Unspecified,
    #[error("loopback address (localhost)")]
    Loopback,
    #[error("private address")]
    Private,
    #[error("link-local address")]
    LinkLocal,
    #[error("shared address space (CGNAT)")]
    SharedAddressSpace,
    #[error("multicast address")]
    Multicast,
    #[error("broadcast address")]
    Broadcast,
    #[error("reserved address")]
    Reserved,
    #[error("documentation address")]
    Documentation,
    #[error("benchmarking address")]
    Benchmarking,
    #[error("cloud metadata address")]
    CloudMetadata,
    #[error("site-local address")]
    SiteLocal,
    /// Teredo is refused outright: the client address is obfuscated, the server address is a
    /// relay, and no legitimate file host is reached that way.
    #[error("Teredo tunnel address")]
    Teredo,
}

/// `Ok(())` when `ip` is an ordinary public address an outbound fetch may connect to.
pub fn check_ip(ip: IpAddr) -> Result<(), Blocked> {
    match ip {
        IpAddr::V4(v4) => check_v4(v4),
        IpAddr::V6(v6) => check_v6(v6),
    }
}

fn in_v4(ip: u32, net: [u8; 4], len: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    ip & mask == u32::from_be_bytes(net) & mask
}

fn check_v4(ip: Ipv4Addr) -> Result<(), Blocked> {
    let n = u32::from(ip);
    // Most specific first: the metadata endpoints sit inside wider blocked ranges.
    let table: &[([u8; 4], u32, Blocked)] = &[
        ([169, 254, 169, 254], 32, Blocked::CloudMetadata),
        ([100, 100, 100, 200], 32, Blocked::CloudMetadata), // Alibaba Cloud
        ([255, 255, 255, 255], 32, Blocked::Broadcast),
        ([0, 0, 0, 0], 8, Blocked::Unspecified), // "this network"; 0.0.0.0 reaches localhost
        ([10, 0, 0, 0], 8, Blocked::Private),
        ([100, 64, 0, 0], 10, Blocked::SharedAddressSpace),
        ([127, 0, 0, 0], 8, Blocked::Loopback),
        ([169, 254, 0, 0], 16, Blocked::LinkLocal),
        ([172, 16, 0, 0], 12, Blocked::Private),
        ([192, 0, 0, 0], 24, Blocked::Reserved), // IETF protocol assignments
        ([192, 0, 2, 0], 24, Blocked::Documentation),
        ([192, 88, 99, 0], 24, Blocked::Reserved), // deprecated 6to4 relay anycast
        ([192, 168, 0, 0], 16, Blocked::Private),
        ([198, 18, 0, 0], 15, Blocked::Benchmarking),
        ([198, 51, 100, 0], 24, Blocked::Documentation),
        ([203, 0, 113, 0], 24, Blocked::Documentation),
        ([224, 0, 0, 0], 4, Blocked::Multicast),
        ([240, 0, 0, 0], 4, Blocked::Reserved),
    ];
    match table.iter().find(|(net, len, _)| in_v4(n, *net, *len)) {
        Some((_, _, why)) => Err(*why),
        None => Ok(()),
    }
}

fn in_v6(ip: u128, net: u128, len: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    ip & mask == net & mask
}

/// The IPv4 address in bits `from..from + 32` (counted from the most significant bit).
fn embedded_v4(ip: u128, from: u32) -> Ipv4Addr {
    // Truncation is the point: keep the 32 bits that end at `from + 32`.
    Ipv4Addr::from((ip >> (96 - from)) as u32)
}

fn check_v6(ip: Ipv6Addr) -> Result<(), Blocked> {
    let n = u128::from(ip);
    if ip.is_unspecified() {
        return Err(Blocked::Unspecified);
    }
    if ip.is_loopback() {
        return Err(Blocked::Loopback);
    }
    // Formats that carry an IPv4 address the packet may end up at: judge that address.
    let embeds: &[(u128, u32, u32)] = &[
        (0xffff_0000_0000, 96, 96),      // IPv4-mapped ::ffff:0:0/96
        (0xffff_0000_0000_0000, 96, 96), // IPv4-translated ::ffff:0:0:0/96
        (0, 96, 96),                     // IPv4-compatible ::/96 (deprecated)
        (0x0064_ff9b << 96, 96, 96),     // NAT64 well-known 64:ff9b::/96
        (0x2002 << 112, 16, 16),         // 6to4 2002::/16, v4 in bits 16..48
    ];
    if let Some((_, _, at)) = embeds.iter().find(|(net, len, _)| in_v6(n, *net, *len)) {
        return check_v4(embedded_v4(n, *at));
    }
    let table: &[(u128, u32, Blocked)] = &[
        // NAT64 local-use 64:ff9b:1::/48 is refused whole: the operator picks where the IPv4
        // address sits (RFC 6052 allows /48../96 layouts), so no one reading is safe.
        (0x0064_ff9b_0001 << 80, 48, Blocked::Private),
        (0x0100 << 112, 64, Blocked::Reserved), // discard-only 100::/64
        (0x2001 << 112, 32, Blocked::Teredo),   // 2001::/32
        (0x2001_0002 << 96, 48, Blocked::Benchmarking), // 2001:2::/48
        (0x2001 << 112, 23, Blocked::Reserved), // rest of IETF 2001::/23
        (0x2001_0db8 << 96, 32, Blocked::Documentation), // 2001:db8::/32
        (0x3fff << 112, 20, Blocked::Documentation), // 3fff::/20 (RFC 9637)
        (
            (0xfd00_0ec2_u128 << 96) | 0x254,
            128,
            Blocked::CloudMetadata,
        ), // AWS fd00:ec2::254
        (0xfc00 << 112, 7, Blocked::Private),   // unique local fc00::/7
        (0xfe80 << 112, 10, Blocked::LinkLocal), // fe80::/10
        (0xfec0 << 112, 10, Blocked::SiteLocal), // fec0::/10 (deprecated)
        (0xff00 << 112, 8, Blocked::Multicast), // ff00::/8
    ];
    if let Some((_, _, why)) = table.iter().find(|(net, len, _)| in_v6(n, *net, *len)) {
        return Err(*why);
    }
    // Nothing outside global unicast 2000::/3 is assigned for public use.
    if !in_v6(n, 0x2000 << 112, 3) {
        return Err(Blocked::Reserved);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Result<(), Blocked> {
        check_ip(s.parse().unwrap_or_else(|e| panic!("{s}: {e}")))
    }

    #[test]
    fn refuses_every_special_ipv4_range_at_both_edges() {
        use Blocked::*;
        let cases = [
            ("0.0.0.0", Unspecified),
            ("0.255.255.255", Unspecified),
            ("10.0.0.0", Private),
            ("10.255.255.255", Private),
            ("100.64.0.0", SharedAddressSpace),
            ("100.127.255.255", SharedAddressSpace),
            ("100.100.100.200", CloudMetadata),
            ("127.0.0.1", Loopback),
            ("127.255.255.255", Loopback),
            ("169.254.0.0", LinkLocal),
            ("169.254.255.255", LinkLocal),
            ("169.254.169.254", CloudMetadata),
            ("172.16.0.0", Private),
            ("172.31.255.255", Private),
            ("192.0.0.0", Reserved),
            ("192.0.0.255", Reserved),
            ("192.0.2.0", Documentation),
            ("192.0.2.255", Documentation),
            ("192.88.99.1", Reserved),
            ("192.168.0.0", Private),
            ("192.168.255.255", Private),
            ("198.18.0.0", Benchmarking),
            ("198.19.255.255", Benchmarking),
            ("198.51.100.7", Documentation),
            ("203.0.113.255", Documentation),
            ("224.0.0.1", Multicast),
            ("239.255.255.255", Multicast),
            ("240.0.0.0", Reserved),
            ("255.255.255.254", Reserved),
            ("255.255.255.255", Broadcast),
        ];
        for (ip, why) in cases {
            assert_eq!(v(ip), Err(why), "{ip}");
        }
    }

    #[test]
    fn passes_public_ipv4_including_neighbours_of_blocked_ranges() {
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "1.0.0.0",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "192.0.3.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
        ] {
            assert_eq!(v(ip), Ok(()), "{ip}");
        }
    }

    #[test]
    fn refuses_special_ipv6_ranges() {
        use Blocked::*;
        let cases = [
            ("::", Unspecified),
            ("::1", Loopback),
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:10.1.2.3", Private),
            ("::ffff:169.254.169.254", CloudMetadata),
            ("::ffff:0:192.168.1.1", Private),
            ("::127.0.0.1", Loopback),
            ("::10.0.0.1", Private),
            ("::0.0.0.2", Unspecified),
            ("64:ff9b::7f00:1", Loopback),
            ("64:ff9b::a9fe:a9fe", CloudMetadata),
            ("64:ff9b:1::808:808", Private), // local-use NAT64, refused whole
            ("64:ff9b:1:c0a8:1:100::", Private),
            ("2002:7f00:1::", Loopback),
            ("2002:a00:1::", Private),
            ("2002:a9fe:a9fe::1", CloudMetadata),
            ("2001::1", Teredo),
            ("2001:0:ffff:ffff:ffff:ffff:ffff:ffff", Teredo),
            ("2001:2::1", Benchmarking),
            ("2001:1ff:ffff::", Reserved),
            ("2001:db8::", Documentation),
            ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", Documentation),
            ("3fff::1", Documentation),
            ("100::", Reserved),
            ("100::ffff:ffff:ffff:ffff", Reserved),
            ("fd00:ec2::254", CloudMetadata),
            ("fc00::", Private),
            ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Private),
            ("fe80::", LinkLocal),
            ("febf:ffff::1", LinkLocal),
            ("fec0::", SiteLocal),
            ("feff:ffff::1", SiteLocal),
            ("ff00::", Multicast),
            ("ff02::1", Multicast),
            ("::2:0:0:0", Reserved), // in ::/8 but none of the embedding formats
            ("4000::1", Reserved),   // unassigned, outside 2000::/3
        ];
        for (ip, why) in cases {
            assert_eq!(v(ip), Err(why), "{ip}");
        }
    }

    #[test]
    fn passes_public_ipv6_and_public_addresses_inside_translation_formats() {
        for ip in [
            "2606:2800:220:1::1",
            "2a00:1450:4001:80b::200e",
            "2001:200::1", // first block after the IETF 2001::/23
            "2001:db9::1",
            "::ffff:93.184.216.34",
            "::8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "3fff:1000::1",
        ] {
            assert_eq!(v(ip), Ok(()), "{ip}");
        }
    }
}
