//! URLs Gantry will call: parsed with the `url` crate and judged by their parsed host, never
//! by a prefix of the text. No user info (it would become credentials on the wire); `https`,
//! or `http` only to a host that parses as loopback. Where a URL's host resolves at delivery
//! time, [`forbidden_address`] says which addresses are not to be called.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

use crate::error::{DomainError, Result};

/// Whether the parsed host is loopback: `localhost`, 127.0.0.0/8 or ::1. A URL of a scheme
/// the parser does not know (`tcp://`) keeps an address as text, which is read as one here.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `raw` (trimmed) as a URL Gantry may call: `https://host…`, or `http://` to a loopback
/// host; no user info, no fragment, printable ASCII, at most `max` characters. `what` names
/// the field in the refusal.
pub fn parse(what: &str, raw: &str, max: usize) -> Result<Url> {
    let trimmed = raw.trim();
    let shown: String = trimmed.chars().take(80).collect();
    let refuse = |why: &str| DomainError::validation(format!("{what} {shown:?} {why}"));
    if trimmed.len() > max || !trimmed.chars().all(|c| c.is_ascii_graphic()) {
        return Err(refuse(&format!("must be a URL of at most {max} printable characters")));
    }
    let url = Url::parse(trimmed).map_err(|e| refuse(&format!("is not a URL ({e})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("must not carry user info (user:password@): give credentials separately"));
    }
    if url.fragment().is_some() {
        return Err(refuse("must not have a #fragment"));
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(refuse("must use https:// (http:// only to a loopback host: localhost, 127.0.0.1 or [::1])")),
        _ => Err(refuse("must be an https:// URL")),
    }
}

/// An address a webhook may not be delivered to unless its host is allowed by name:
/// loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local (169.254/16,
/// fe80::/10, which holds the cloud metadata service 169.254.169.254), the EC2 IPv6
/// metadata address fd00:ec2::254, unspecified, broadcast and multicast addresses, and
/// IPv4 written inside IPv6.
pub fn forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

fn forbidden_v4(v4: Ipv4Addr) -> bool {
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.octets()[0] == 0
        // Carrier-grade NAT, 100.64/10.
        || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
}

/// `raw` trimmed of spaces and trailing slashes when it parses (with the `url` crate) as
/// `http(s)://host[:port]…` with no user info, query or fragment, with what follows the host
/// (no leading slash; empty when nothing does).
pub fn http_url(raw: &str) -> Option<(&str, &str)> {
    let trimmed = raw.trim().trim_end_matches('/');
    let url = url::Url::parse(trimmed).ok()?;
    let plain = url.username().is_empty() && url.password().is_none() && url.query().is_none();
    let ok = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|h| !h.is_empty())
        && plain
        && url.fragment().is_none()
        && trimmed.chars().all(|c| c.is_ascii_graphic());
    if !ok {
        return None;
    }
    let rest = trimmed.split_once("://").map_or("", |(_, rest)| rest);
    Some((trimmed, rest.split_once('/').map_or("", |(_, path)| path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_judged_after_parsing() {
        for (raw, ok) in [
            ("https://hooks.example.com/x", true),
            ("http://127.0.0.1:9000/x", true),
            ("http://localhost/x", true),
            ("http://[::1]:80/x", true),
            ("http://127.0.0.1:1@10.0.0.1/x", false),
            ("http://localhost:80@example.com/x", false),
            ("https://user:pass@example.com/x", false),
            ("http://127.0.0.1.example.com/x", false),
            ("http://localhost.example.com/x", false),
            ("http://10.0.0.1/x", false),
            ("ftp://example.com/x", false),
            ("https://", false),
            ("https://example.com/x#f", false),
            ("not a url", false),
        ] {
            assert_eq!(parse("webhookUrl", raw, 500).is_ok(), ok, "{raw}");
        }
        let err = parse("webhookUrl", "http://127.0.0.1:1@10.0.0.1/x", 500).unwrap_err();
        assert!(err.to_string().contains("user info"), "{err}");
    }

    #[test]
    fn private_link_local_and_metadata_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:10.0.0.1",
            "100.64.0.1",
        ] {
            assert!(forbidden_address(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::248", "172.32.0.1"] {
            assert!(!forbidden_address(ip.parse().unwrap()), "{ip}");
        }
    }
}
