//! Where webhooks may go. A collector sits inside a network: a webhook URL pointing at loopback,
//! a private range or a link-local address (a cloud's metadata service) would make it POST there
//! on an alert. Such targets are refused unless `monitoring.webhook_allow_private` says they are
//! meant: by address in the URL when the config is read, and by what a name resolves to when a
//! webhook is sent (so a public name cannot be pointed at a private address later).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Loopback, private, shared (CGNAT), link-local, unspecified, broadcast, documentation,
/// multicast, and the IPv6 equivalents (IPv4-mapped addresses judged as IPv4).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => private_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => private_v4(v4),
            None => private_v6(v6),
        },
    }
}

fn private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || a == 0
}

fn private_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
}

/// An `http(s)` URL whose host, if an address, is public (or private ones are allowed).
pub fn check_url(url: &str, allow_private: bool) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("webhook {url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("webhook {url:?} is not http or https"));
    }
    // The URL parser writes every address form (`2130706433`, `0x7f.1`) as dotted or bracketed.
    let host = parsed.host_str().ok_or_else(|| format!("webhook {url:?} has no host"))?;
    let address = match host {
        "localhost" => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        _ => host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok(),
    };
    match address {
        Some(ip) if !allow_private && is_private(ip) => Err(format!(
            "webhook {url:?} points at {ip}, a loopback, private or link-local address: set \
             monitoring.webhook_allow_private = true if that receiver is meant"
        )),
        _ => Ok(()),
    }
}

/// A resolver that keeps only public addresses: a name that resolves to nothing else fails the
/// send (retried: names change).
#[derive(Debug, Clone, Copy)]
pub struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all.iter().copied().filter(|a| !is_private(a.ip())).collect();
            if public.is_empty() {
                let message = format!(
                    "{host} resolves only to loopback, private or link-local addresses ({all:?}); \
                     set monitoring.webhook_allow_private = true if that receiver is meant"
                );
                return Err(message.into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges_are_known() {
        let private =
            ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0", "100.64.0.1"];
        for ip in private.into_iter().chain(["::1", "fd00::1", "fe80::1", "::ffff:127.0.0.1", "::"]) {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls_are_judged_by_their_address() {
        assert!(check_url("https://alerts.example.com/hook", false).is_ok());
        assert!(check_url("http://93.184.216.34/hook", false).is_ok());
        let private =
            ["http://127.0.0.1:9/hook", "http://localhost/x", "http://[::1]/x", "http://169.254.169.254/latest"];
        for url in private.into_iter().chain(["http://2130706433/x"]) {
            let refused = check_url(url, false).unwrap_err();
            assert!(refused.contains("webhook_allow_private"), "{refused}");
            assert!(check_url(url, true).is_ok(), "{url} when allowed");
        }
        assert!(check_url("ftp://example.com/x", true).unwrap_err().contains("not http or https"));
    }

    #[tokio::test]
    async fn a_name_that_resolves_only_to_private_addresses_is_not_resolved() {
        use reqwest::dns::Resolve;
        let name = "localhost".parse().unwrap();
        let refused = PublicOnly.resolve(name).await.err().expect("localhost is loopback").to_string();
        assert!(refused.contains("resolves only to loopback"), "{refused}");
    }
}
