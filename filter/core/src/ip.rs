//! Network address helpers for capture: hosts without their port, lenient IP parsing of what
//! Envoy and proxies hand us, choosing the client address behind trusted proxies, and the
//! privacy modes of the client IP (full, truncated, salted hash).
//!
//! The configuration's `client_ip` section ([`ClientIpConfig`], [`IpMode`]) is defined here,
//! next to the code that applies it; [`crate::config`] uses it, and nothing here depends on
//! the configuration module (so there is no `config -> ip -> config` cycle).
//!
//! Everything here is total: malformed input gives `None` (or the input unchanged), never a
//! panic, because it runs on attacker-controlled headers.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::fmt;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// How the client IP appears in events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IpMode {
    /// The address as seen.
    Full,
    /// IPv4 truncated to /24, IPv6 to /48.
    #[default]
    Truncate,
    /// Salted hash (hex), stable for a given salt: usable as a key, not reversible.
    Hash,
    /// No client IP in the event.
    Omit,
}

/// Client IP settings. `Debug` shows the salt as `<redacted>`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientIpConfig {
    /// How the IP is written.
    pub mode: IpMode,
    /// Salt for `hash` mode (required there).
    pub salt: Option<String>,
    /// Trusted proxies in front of Envoy: 0 uses the peer address; N takes the N-th address
    /// from the right of `X-Forwarded-For` (falling back to the peer address).
    pub trusted_hops: u32,
}

impl fmt::Debug for ClientIpConfig {
    // The salt is a secret (it makes hashed IPs reversible by brute force over IPv4).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIpConfig")
            .field("mode", &self.mode)
            .field("salt", &self.salt.as_ref().map(|_| "<redacted>"))
            .field("trusted_hops", &self.trusted_hops)
            .finish()
    }
}

impl Default for ClientIpConfig {
    fn default() -> Self {
        ClientIpConfig {
            mode: IpMode::Truncate,
            salt: None,
            trusted_hops: 0,
        }
    }
}

/// `host` without a trailing `:port`: `example.com:8080` → `example.com`, `[::1]:80` → `[::1]`.
/// A bare IPv6 address (several colons, no brackets) is returned unchanged. Allocation-free.
pub fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        // `[v6]` or `[v6]:port`: everything up to the closing bracket.
        return match host.find(']') {
            Some(end) => host.get(..=end).unwrap_or(host),
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// Parses an address as Envoy or a proxy writes it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:5678`, with surrounding whitespace ignored. IPv4-mapped
/// IPv6 addresses (`::ffff:1.2.3.4`) become IPv4 so that truncation and hashing treat one client
/// the same whichever socket family it arrived on. Anything else (unix socket paths, `unknown`,
/// zone ids, garbage) is `None`.
pub fn parse_addr(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let ip = if let Ok(ip) = s.parse::<IpAddr>() {
        ip
    } else if let Ok(sa) = s.parse::<SocketAddr>() {
        sa.ip()
    } else {
        s.strip_prefix('[')?
            .strip_suffix(']')?
            .parse::<Ipv6Addr>()
            .ok()?
            .into()
    };
    Some(canonical(ip))
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The client address of a request.
///
/// With `trusted_hops = N > 0` and a non-blank `X-Forwarded-For`, it is the N-th entry from
/// the right (N = 1: the rightmost, the address the one trusted proxy saw), or the leftmost
/// entry when there are fewer than N. An entry that is not an IP address gives `None`: the
/// peer is then a proxy, and reporting the proxy's address as the client would be wrong.
/// Otherwise it is the peer address (`source.address`).
pub fn client_addr(xff: Option<&str>, trusted_hops: u32, peer: Option<&str>) -> Option<IpAddr> {
    if trusted_hops > 0 {
        if let Some(xff) = xff.filter(|x| !x.trim().is_empty()) {
            let n = usize::try_from(trusted_hops).unwrap_or(usize::MAX);
            let entry = xff
                .rsplit(',')
                .nth(n.saturating_sub(1))
                .or_else(|| xff.split(',').next())?;
            return parse_addr(entry);
        }
    }
    parse_addr(peer?)
}

/// Whether the client IP of an event needs the peer address (`source.address`, one host call):
/// not in `omit` mode, nor when a non-blank `X-Forwarded-For` gives it behind trusted hops.
pub fn needs_peer_address(cfg: &ClientIpConfig, xff: Option<&str>) -> bool {
    cfg.mode != IpMode::Omit && (cfg.trusted_hops == 0 || xff.is_none_or(|x| x.trim().is_empty()))
}

/// IPv4 cut to its /24 and IPv6 to its /48 (host bits zeroed): `203.0.113.77` → `203.0.113.0`,
/// `2001:db8:1:2::5` → `2001:db8:1::`.
pub fn truncate(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & 0xFFFF_FF00)),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (!0u128 << 80))),
    }
}

/// Salted hash of an address: SHA-256 over `salt`, one zero byte, and the address in its
/// canonical text form (as `full` mode writes it); the first 16 bytes of the digest as 32
/// lower-case hex characters. Stable for a given salt (usable as a record key), not reversible
/// without the salt; with it, the IPv4 space is small enough to enumerate, so the salt is a
/// secret. The zero byte keeps `salt + ip` boundaries unambiguous.
pub fn hash(salt: &str, ip: IpAddr) -> String {
    let mut out = String::with_capacity(32);
    hash_into(salt, ip, &mut out);
    out
}

/// [`hash`], written at the end of `out`.
fn hash_into(salt: &str, ip: IpAddr, out: &mut String) {
    let start = out.len();
    text_into(ip, out);
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0u8]);
    h.update(out.get(start..).unwrap_or_default().as_bytes());
    out.truncate(start);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in h.finalize().iter().take(16) {
        for nibble in [b >> 4, b & 0xf] {
            out.push(char::from(
                HEX.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
}

/// An address in its canonical text form at the end of `out`; IPv4 written by hand
/// (`Display` costs several times as much, on every event).
fn text_into(ip: IpAddr, out: &mut String) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + (octet / 10) % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
        }
        // Writing to a String cannot fail.
        IpAddr::V6(_) => {
            let _ = write!(out, "{ip}");
        }
    }
}

/// The client IP as written into an event for `mode` (`None` in `omit` mode).
pub fn render(mode: IpMode, salt: Option<&str>, ip: IpAddr) -> Option<String> {
    let mut out = String::new();
    render_into(mode, salt, ip, &mut out).then_some(out)
}

/// [`render`] at the end of `out`, without allocating once `out` has room; false (and
/// nothing written) in `omit` mode.
pub fn render_into(mode: IpMode, salt: Option<&str>, ip: IpAddr, out: &mut String) -> bool {
    match mode {
        IpMode::Full => text_into(ip, out),
        IpMode::Truncate => text_into(truncate(ip), out),
        IpMode::Hash => hash_into(salt.unwrap_or(""), ip, out),
        IpMode::Omit => return false,
    }
    true
}

#[cfg(test)]
mod tests;
