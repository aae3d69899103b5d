//! Network access policy: who may connect from where, and which forwarded headers to
//! believe.

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

/// Parses an IP address or CIDR range; a bare address is a /32 or /128.
pub fn parse_ip_or_cidr(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

/// The server-wide part of the policy.
#[derive(Clone, Debug, Default)]
pub struct NetworkPolicy {
    /// Global allowed ranges (empty: no global restriction).
    pub allowed: Vec<IpNet>,
    /// Peers whose `X-Forwarded-For` / `X-Real-IP` are believed.
    pub trusted_proxies: Vec<IpNet>,
}

impl NetworkPolicy {
    /// The client's address: the TCP peer, or, when the peer is a trusted proxy, the
    /// nearest address in `X-Forwarded-For` that is not itself a trusted proxy
    /// (then `X-Real-IP`).
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        if !self.is_trusted_proxy(peer) {
            return Some(peer);
        }
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        if let Some(chain) = header("x-forwarded-for") {
            let hops: Vec<IpAddr> = chain
                .split(',')
                .map(|hop| hop.trim().parse::<IpAddr>())
                .collect::<Result<_, _>>()
                .unwrap_or_default();
            if let Some(client) = hops.iter().rev().find(|ip| !self.is_trusted_proxy(**ip)) {
                return Some(*client);
            }
        }
        if let Some(real) = header("x-real-ip").and_then(|v| v.trim().parse().ok()) {
            return Some(real);
        }
        Some(peer)
    }

    fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// Whether a client may use a token with these `allowedIps`: the union of the
    /// token's list and the global one; if both are empty, everyone may.
    pub fn allows(&self, client: Option<IpAddr>, token_allowed: &[String]) -> bool {
        if self.allowed.is_empty() && token_allowed.is_empty() {
            return true;
        }
        let Some(ip) = client else { return false };
        let ip = canonical(ip);
        self.allowed.iter().any(|net| net.contains(&ip))
            || token_allowed
                .iter()
                .filter_map(|entry| parse_ip_or_cidr(entry))
                .any(|net| net.contains(&ip))
    }
}

/// IPv4 clients reaching an IPv6 socket appear as `::ffff:a.b.c.d`; rules are written
/// for `a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| parse_ip_or_cidr(s).unwrap()).collect()
    }

    #[test]
    fn union_of_global_and_token_lists() {
        let policy = NetworkPolicy {
            allowed: nets(&["10.0.0.0/8"]),
            trusted_proxies: vec![],
        };
        let token = vec!["192.168.1.7".to_string()];
        assert!(policy.allows(Some("10.1.2.3".parse().unwrap()), &token));
        assert!(policy.allows(Some("192.168.1.7".parse().unwrap()), &token));
        assert!(!policy.allows(Some("192.168.1.8".parse().unwrap()), &token));
        assert!(NetworkPolicy::default().allows(None, &[]));
    }

    #[test]
    fn cidr_edges_and_ipv6() {
        let policy = NetworkPolicy::default();
        let token = vec!["192.168.0.0/30".to_string(), "2001:db8::/126".to_string()];
        for ok in [
            "192.168.0.0",
            "192.168.0.3",
            "2001:db8::3",
            "::ffff:192.168.0.2",
        ] {
            assert!(policy.allows(Some(ok.parse().unwrap()), &token), "{ok}");
        }
        for refused in ["192.168.0.4", "2001:db8::4", "::1"] {
            assert!(
                !policy.allows(Some(refused.parse().unwrap()), &token),
                "{refused}"
            );
        }
    }

    #[test]
    fn parses_addresses_and_ranges() {
        assert!(parse_ip_or_cidr("::1").is_some());
        assert!(parse_ip_or_cidr("10.0.0.0/33").is_none());
        assert!(parse_ip_or_cidr("banana").is_none());
    }
}
