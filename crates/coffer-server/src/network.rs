//! Network access policy: who may connect from where, and which forwarded headers to
//! believe. The client-IP rule is written once here ([`NetworkPolicy::client_ip`]) and
//! everything that needs the client's address (policies, rate limits, audit, logs)
//! takes it from there.

use std::net::{IpAddr, Ipv6Addr};

use actix_web::http::header::HeaderMap;
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
    /// Global allowed ranges (empty: no global restriction). A ceiling: a token's own
    /// list narrows it, never widens it.
    pub allowed: Vec<IpNet>,
    /// Peers whose `X-Forwarded-For` / `X-Real-IP` are believed.
    pub trusted_proxies: Vec<IpNet>,
}

impl NetworkPolicy {
    /// The client's address of a request (`None` only without a TCP peer).
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        Some(self.client_ip_from(req.peer_addr()?.ip(), req.headers()))
    }

    /// The client-IP rule (API.md, "Network access policies"):
    /// - the TCP peer, unless it is a trusted proxy;
    /// - from a trusted proxy, every `X-Forwarded-For` line joined in order, and the
    ///   right-most address that is not itself a trusted proxy (addresses left of it are
    ///   the client's own to forge);
    /// - an entry that does not parse makes the whole header untrusted: the peer is the
    ///   client, never `X-Real-IP`, which is read only when there is no
    ///   `X-Forwarded-For` at all;
    /// - IPv4-mapped IPv6 addresses are IPv4 throughout.
    pub fn client_ip_from(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.is_trusted_proxy(peer) {
            return peer;
        }
        let mut forwarded = headers.get_all("x-forwarded-for").peekable();
        if forwarded.peek().is_some() {
            let mut hops = Vec::new();
            for line in forwarded {
                let Ok(line) = line.to_str() else { return peer };
                for entry in line.split(',') {
                    match entry.trim().parse::<IpAddr>() {
                        Ok(ip) => hops.push(canonical(ip)),
                        Err(_) => return peer,
                    }
                }
            }
            // Every hop a trusted proxy: the left-most is as far as the chain goes.
            return hops
                .iter()
                .rev()
                .find(|ip| !self.is_trusted_proxy(**ip))
                .or(hops.first())
                .copied()
                .unwrap_or(peer);
        }
        let mut real = headers.get_all("x-real-ip");
        match (real.next(), real.next()) {
            (Some(value), None) => value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<IpAddr>().ok())
                .map_or(peer, canonical),
            _ => peer,
        }
    }

    fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// Whether a client may use a token with these `allowedIps`: inside the global
    /// ranges when there are any, and inside the token's list when it has one.
    pub fn allows(&self, client: Option<IpAddr>, token_allowed: &[String]) -> bool {
        if self.allowed.is_empty() && token_allowed.is_empty() {
            return true;
        }
        let Some(ip) = client.map(canonical) else {
            return false;
        };
        let in_global = self.allowed.is_empty() || self.allowed.iter().any(|n| n.contains(&ip));
        let in_token = token_allowed.is_empty()
            || token_allowed
                .iter()
                .filter_map(|entry| parse_ip_or_cidr(entry))
                .any(|net| net.contains(&ip));
        in_global && in_token
    }
}

/// IPv4 clients reaching an IPv6 socket appear as `::ffff:a.b.c.d`; rules are written
/// for `a.b.c.d`.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The unit a per-client limit counts by: an IPv4 address, or an IPv6 /64 (one
/// subscriber's allocation, which its holder can spread over 2^64 addresses).
pub fn client_bucket(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| parse_ip_or_cidr(s).unwrap()).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    /// Header lines of a case, in order.
    type Headers<'a> = &'a [(&'a str, &'a str)];

    #[test]
    fn the_client_ip_rule_as_a_table() {
        let policy = NetworkPolicy {
            allowed: vec![],
            trusted_proxies: nets(&["127.0.0.1", "10.0.0.0/8"]),
        };
        let xff = "x-forwarded-for";
        let real = "x-real-ip";
        let proxy = "127.0.0.1";
        #[rustfmt::skip]
        let table: &[(&str, Headers, &str)] = &[
            // An untrusted peer is the client, whatever it sends.
            ("192.0.2.1", &[(xff, "198.51.100.1")], "192.0.2.1"),
            ("192.0.2.1", &[(real, "198.51.100.1")], "192.0.2.1"),
            // A trusted peer without headers is the client.
            (proxy, &[], "127.0.0.1"),
            // The right-most untrusted hop decides.
            (proxy, &[(xff, "192.0.2.7")], "192.0.2.7"),
            (proxy, &[(xff, "198.51.100.9, 192.0.2.7")], "192.0.2.7"),
            (proxy, &[(xff, "192.0.2.7, 10.1.2.3")], "192.0.2.7"),
            // Every hop trusted: the left-most one.
            (proxy, &[(xff, "10.1.1.1, 10.2.2.2")], "10.1.1.1"),
            // Lines are joined in order: a client's own line before the proxy's loses.
            (proxy, &[(xff, "10.1.2.3"), (xff, "192.0.2.7")], "192.0.2.7"),
            (proxy, &[(xff, "198.51.100.1"), (xff, "192.0.2.7, 10.9.9.9")], "192.0.2.7"),
            // One entry that does not parse: the header is not believed, nor X-Real-IP.
            (proxy, &[(xff, "junk, 192.0.2.7"), (real, "10.5.5.5")], "127.0.0.1"),
            (proxy, &[(xff, "10.1.2.3:5555, 192.0.2.7"), (real, "10.5.5.5")], "127.0.0.1"),
            (proxy, &[(xff, ", 192.0.2.7"), (real, "10.5.5.5")], "127.0.0.1"),
            (proxy, &[(xff, "192.0.2.7,"), (real, "10.5.5.5")], "127.0.0.1"),
            (proxy, &[(xff, ""), (real, "10.5.5.5")], "127.0.0.1"),
            (proxy, &[(xff, "192.0.2.7"), (xff, "junk")], "127.0.0.1"),
            // X-Real-IP only without X-Forwarded-For, and only one of it.
            (proxy, &[(real, "192.0.2.8")], "192.0.2.8"),
            (proxy, &[(real, "junk")], "127.0.0.1"),
            (proxy, &[(real, "192.0.2.8"), (real, "192.0.2.9")], "127.0.0.1"),
            // IPv4-mapped addresses are IPv4: as peers (trusted) and as hops.
            ("::ffff:127.0.0.1", &[(xff, "192.0.2.7")], "192.0.2.7"),
            (proxy, &[(xff, "::ffff:192.0.2.7")], "192.0.2.7"),
            (proxy, &[(xff, "192.0.2.7, ::ffff:10.1.2.3")], "192.0.2.7"),
            ("::ffff:192.0.2.1", &[(xff, "198.51.100.1")], "192.0.2.1"),
            // IPv6 hops.
            (proxy, &[(xff, "2001:db8::7")], "2001:db8::7"),
        ];
        for (peer, pairs, want) in table {
            let got = policy.client_ip_from(ip(peer), &headers(pairs));
            assert_eq!(got, ip(want), "peer {peer}, headers {pairs:?}");
        }
    }

    #[test]
    fn the_global_list_is_a_ceiling_that_token_lists_narrow() {
        let policy = NetworkPolicy {
            allowed: nets(&["10.0.0.0/8"]),
            trusted_proxies: vec![],
        };
        let token = vec!["10.1.0.0/16".to_string(), "192.168.1.7".to_string()];
        assert!(policy.allows(Some(ip("10.1.2.3")), &token));
        assert!(
            !policy.allows(Some(ip("10.2.2.3")), &token),
            "outside the token"
        );
        assert!(
            !policy.allows(Some(ip("192.168.1.7")), &token),
            "outside the ceiling"
        );
        assert!(policy.allows(Some(ip("10.2.2.3")), &[]), "no token list");
        assert!(!policy.allows(Some(ip("11.0.0.1")), &[]));
        assert!(!policy.allows(None, &[]));
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
            assert!(policy.allows(Some(ip(ok)), &token), "{ok}");
        }
        for refused in ["192.168.0.4", "2001:db8::4", "::1"] {
            assert!(!policy.allows(Some(ip(refused)), &token), "{refused}");
        }
    }

    #[test]
    fn limits_count_ipv6_clients_by_slash_64() {
        assert_eq!(client_bucket(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client_bucket(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(
            client_bucket(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_ne!(
            client_bucket(ip("2001:db8:1:2::1")),
            client_bucket(ip("2001:db8:1:3::1"))
        );
    }

    #[test]
    fn parses_addresses_and_ranges() {
        assert!(parse_ip_or_cidr("::1").is_some());
        assert!(parse_ip_or_cidr("10.0.0.0/33").is_none());
        assert!(parse_ip_or_cidr("banana").is_none());
    }
}
