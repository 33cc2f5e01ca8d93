//! Where mail for a domain goes (RFC 5321 section 5.1): its MX hosts in preference order,
//! random among equal preferences; the domain itself ("implicit MX") when it has no MX
//! record; nowhere when it publishes a null MX (RFC 7505, `MX 0 .`).
//!
//! DNS comes from `hickory-resolver`: the system configuration (`/etc/resolv.conf`) by
//! default, or the `[relay] dns_servers` of the configuration (how tests point it at a
//! fake DNS server).

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolverConfig,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

/// Most MX records looked at per domain (the rest, least preferred, are ignored).
pub const MAX_MX_HOSTS: usize = 10;
/// Most addresses returned for one host name.
pub const MAX_HOST_ADDRESSES: usize = 10;

/// The destinations of one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Host names to try, in order. `implicit`: the domain has no MX record and the list
    /// is the domain itself (its A/AAAA records).
    Hosts {
        /// In the order to try them.
        hosts: Vec<String>,
        /// True for the implicit MX.
        implicit: bool,
    },
    /// A literal address (`user@[192.0.2.1]`).
    Literal(IpAddr),
    /// RFC 7505 null MX: the domain accepts no mail.
    NullMx,
    /// NXDOMAIN: the domain does not exist.
    NoSuchDomain,
    /// This server is the domain's best MX (RFC 5321 section 5.1): relaying would loop.
    Loop,
    /// The lookup failed for now (timeout, SERVFAIL, no server reachable).
    Temporary(String),
}

/// Why the addresses of a host could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressError {
    /// The name does not exist or has no A/AAAA record.
    NotFound(String),
    /// The lookup failed for now.
    Temporary(String),
}

/// A DNS resolver for MX and address lookups.
#[derive(Clone)]
pub struct Resolver {
    inner: TokioResolver,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl Resolver {
    /// A resolver asking `servers` (UDP, then TCP for truncated answers), or the system's
    /// configured servers when `servers` is empty.
    ///
    /// # Errors
    /// When the system configuration cannot be read (a text that names the fix).
    pub fn new(servers: &[SocketAddr]) -> Result<Self, String> {
        let mut builder = if servers.is_empty() {
            TokioResolver::builder_tokio().map_err(|e| {
                format!("cannot read the system DNS configuration ({e}); set `[relay] dns_servers`")
            })?
        } else {
            let name_servers = servers
                .iter()
                .map(|a| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = a.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = a.port();
                    NameServerConfig::new(a.ip(), true, vec![udp, tcp])
                })
                .collect();
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(name_servers),
                TokioRuntimeProvider::default(),
            )
        };
        builder.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        let inner = builder
            .build()
            .map_err(|e| format!("cannot start the DNS resolver: {e}"))?;
        Ok(Self { inner })
    }

    /// Where mail for `domain` goes; `own` is this server's host name (MX records at or
    /// above its preference are dropped, RFC 5321 section 5.1).
    pub async fn destination(&self, domain: &str, own: &str) -> Destination {
        if let Some(lit) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
            let lit = lit.strip_prefix("IPv6:").unwrap_or(lit);
            return match lit.parse::<IpAddr>() {
                Ok(ip) => Destination::Literal(ip),
                Err(_) => Destination::NoSuchDomain,
            };
        }
        let fqdn = fqdn(domain);
        match self.inner.mx_lookup(fqdn.as_str()).await {
            Ok(lookup) => {
                let records: Vec<(u16, String)> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
                        _ => None,
                    })
                    .collect();
                if records.is_empty() {
                    // Only a CNAME chain without MX at its end: like no MX.
                    return implicit(domain);
                }
                order_mx(records, own, &mut rand::rng())
            }
            Err(e) if e.is_nx_domain() => Destination::NoSuchDomain,
            Err(e) if e.is_no_records_found() => implicit(domain),
            Err(e) => Destination::Temporary(describe(&e)),
        }
    }

    /// The addresses of `host` (A first, then AAAA), at most [`MAX_HOST_ADDRESSES`].
    ///
    /// # Errors
    /// [`AddressError`]: permanent (no such name / no address) or temporary.
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, AddressError> {
        if let Ok(ip) = host.trim_end_matches('.').parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        match self.inner.lookup_ip(fqdn(host).as_str()).await {
            Ok(ips) => {
                let v: Vec<IpAddr> = ips.iter().take(MAX_HOST_ADDRESSES).collect();
                if v.is_empty() {
                    Err(AddressError::NotFound(format!("{host}: no A/AAAA record")))
                } else {
                    Ok(v)
                }
            }
            Err(e) if e.is_nx_domain() => {
                Err(AddressError::NotFound(format!("{host}: no such host")))
            }
            Err(e) if e.is_no_records_found() => {
                Err(AddressError::NotFound(format!("{host}: no A/AAAA record")))
            }
            Err(e) => Err(AddressError::Temporary(format!("{host}: {}", describe(&e)))),
        }
    }
}

fn implicit(domain: &str) -> Destination {
    Destination::Hosts {
        hosts: vec![domain.trim_end_matches('.').to_ascii_lowercase()],
        implicit: true,
    }
}

fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

fn describe(e: &NetError) -> String {
    format!("DNS lookup failed: {e}")
}

/// Orders MX records (preference, exchange) for delivery: ascending preference, shuffled
/// among equal preferences (RFC 5321 section 5.1); a lone `MX 0 .` is a null MX (RFC
/// 7505), a `.` among other records is ignored. When `own` (this server's name) is among
/// the hosts, only the hosts with a better (lower) preference remain, and none left is a
/// [`Destination::Loop`].
pub fn order_mx(
    mut records: Vec<(u16, String)>,
    own: &str,
    rng: &mut impl rand::Rng,
) -> Destination {
    use rand::seq::SliceRandom as _;
    let is_root = |h: &str| h.is_empty() || h == ".";
    if !records.is_empty() && records.iter().all(|(_, h)| is_root(h)) {
        return Destination::NullMx;
    }
    records.retain(|(_, h)| !is_root(h));
    for r in &mut records {
        r.1 = r.1.trim_end_matches('.').to_ascii_lowercase();
    }
    let own = own.trim_end_matches('.').to_ascii_lowercase();
    if let Some(mine) = records
        .iter()
        .filter(|(_, h)| *h == own)
        .map(|(p, _)| *p)
        .min()
    {
        records.retain(|(p, _)| *p < mine);
        if records.is_empty() {
            return Destination::Loop;
        }
    }
    records.sort();
    records.dedup_by(|a, b| a.1 == b.1);
    // Shuffle each run of equal preference.
    let mut start = 0;
    while start < records.len() {
        let pref = records.get(start).map(|r| r.0);
        let end = records
            .iter()
            .skip(start)
            .position(|r| Some(r.0) != pref)
            .map_or(records.len(), |p| start + p);
        if let Some(run) = records.get_mut(start..end) {
            run.shuffle(rng);
        }
        start = end;
    }
    records.truncate(MAX_MX_HOSTS);
    Destination::Hosts {
        hosts: records.into_iter().map(|(_, h)| h).collect(),
        implicit: false,
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn hosts(d: Destination) -> Vec<String> {
        match d {
            Destination::Hosts { hosts, .. } => hosts,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn preference_order_and_null_mx() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let d = order_mx(
            vec![
                (20, "b.example.net.".into()),
                (10, "A.example.net.".into()),
                (30, "c.example.net.".into()),
            ],
            "out.example.net",
            &mut rng,
        );
        assert_eq!(
            hosts(d),
            ["a.example.net", "b.example.net", "c.example.net"]
        );
        assert_eq!(
            order_mx(vec![(0, ".".into())], "out.example.net", &mut rng),
            Destination::NullMx
        );
        // A root among real hosts is ignored (RFC 7505 section 3).
        assert_eq!(
            hosts(order_mx(
                vec![(0, ".".into()), (5, "mx.example.net.".into())],
                "out.example.net",
                &mut rng
            )),
            ["mx.example.net"]
        );
    }

    #[test]
    fn hosts_not_better_than_this_server_are_dropped() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let records = vec![
            (10, "primary.example.net".into()),
            (20, "Backup.Example.Net.".into()),
            (20, "other-backup.example.net".into()),
            (30, "last.example.net".into()),
        ];
        // We are the backup MX: only the primary remains.
        assert_eq!(
            hosts(order_mx(records.clone(), "backup.example.net", &mut rng)),
            ["primary.example.net"]
        );
        // We are the best MX: relaying would loop.
        assert_eq!(
            order_mx(records, "primary.example.net.", &mut rng),
            Destination::Loop
        );
    }

    #[test]
    fn equal_preferences_are_shuffled_but_stay_after_better_ones() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut first_of_equals = std::collections::BTreeSet::new();
        for _ in 0..64 {
            let h = hosts(order_mx(
                vec![
                    (10, "x.example.net".into()),
                    (10, "y.example.net".into()),
                    (10, "z.example.net".into()),
                    (5, "best.example.net".into()),
                    (50, "last.example.net".into()),
                ],
                "out.example.net",
                &mut rng,
            ));
            assert_eq!(h.len(), 5);
            assert_eq!(h[0], "best.example.net");
            assert_eq!(h[4], "last.example.net");
            first_of_equals.insert(h[1].clone());
        }
        assert_eq!(first_of_equals.len(), 3, "{first_of_equals:?}");
    }
}
