//! Unit tests of `ip` (in their own file once past about a hundred lines: see the crate's
//! `//!`).

use super::*;

fn text(ip: IpAddr) -> String {
    let mut out = String::new();
    text_into(ip, &mut out);
    out
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn host_port_is_stripped() {
    assert_eq!(host_without_port("example.com:8080"), "example.com");
    assert_eq!(host_without_port("example.com"), "example.com");
    assert_eq!(host_without_port("example.com:"), "example.com");
    assert_eq!(host_without_port("[::1]:443"), "[::1]");
    assert_eq!(host_without_port("[::1]"), "[::1]");
    assert_eq!(host_without_port("[::1"), "[::1");
    assert_eq!(host_without_port("2001:db8::1"), "2001:db8::1");
    assert_eq!(host_without_port("a:b"), "a:b");
    assert_eq!(host_without_port(""), "");
}

#[test]
fn addresses_parse_in_every_form_envoy_uses() {
    assert_eq!(parse_addr("203.0.113.7"), Some(ip("203.0.113.7")));
    assert_eq!(parse_addr("203.0.113.7:51234"), Some(ip("203.0.113.7")));
    assert_eq!(parse_addr(" 203.0.113.7 "), Some(ip("203.0.113.7")));
    assert_eq!(parse_addr("2001:db8::1"), Some(ip("2001:db8::1")));
    assert_eq!(parse_addr("[2001:db8::1]:443"), Some(ip("2001:db8::1")));
    assert_eq!(parse_addr("[2001:db8::1]"), Some(ip("2001:db8::1")));
    assert_eq!(parse_addr("::ffff:198.51.100.9"), Some(ip("198.51.100.9")));
    for bad in [
        "",
        "unknown",
        "/tmp/envoy.sock",
        "1.2.3",
        "999.1.1.1",
        "[1.2.3.4]",
        "fe80::1%eth0",
        "[::1",
    ] {
        assert_eq!(parse_addr(bad), None, "{bad:?}");
    }
}

#[test]
fn xff_with_trusted_hops() {
    let xff = Some("198.51.100.1, 198.51.100.2,198.51.100.3");
    let peer = Some("10.0.0.1:4444");
    assert_eq!(client_addr(xff, 1, peer), Some(ip("198.51.100.3")));
    assert_eq!(client_addr(xff, 2, peer), Some(ip("198.51.100.2")));
    assert_eq!(client_addr(xff, 3, peer), Some(ip("198.51.100.1")));
    // Fewer entries than hops: the leftmost.
    assert_eq!(client_addr(xff, 5, peer), Some(ip("198.51.100.1")));
    // No hops trusted: XFF is client-controlled and ignored.
    assert_eq!(client_addr(xff, 0, peer), Some(ip("10.0.0.1")));
    // No (or blank) XFF: the peer.
    assert_eq!(client_addr(None, 2, peer), Some(ip("10.0.0.1")));
    assert_eq!(client_addr(Some("  "), 2, peer), Some(ip("10.0.0.1")));
    // The chosen entry is garbage: absent, not the proxy's address.
    assert_eq!(client_addr(Some("198.51.100.1, junk"), 1, peer), None);
    assert_eq!(
        client_addr(Some("[2001:db8::5]:80"), 1, peer),
        Some(ip("2001:db8::5"))
    );
    assert_eq!(client_addr(None, 0, None), None);
    assert_eq!(client_addr(None, 0, Some("envoy://internal")), None);
    assert_eq!(client_addr(Some(",,,,"), u32::MAX, peer), None);
}

#[test]
fn truncation_v4_24_and_v6_48() {
    assert_eq!(truncate(ip("203.0.113.77")).to_string(), "203.0.113.0");
    assert_eq!(
        truncate(ip("2001:db8:1:2:3:4:5:6")).to_string(),
        "2001:db8:1::"
    );
    assert_eq!(truncate(ip("2001:db8:1::")).to_string(), "2001:db8:1::");
}

#[test]
fn hash_is_salted_stable_and_32_hex() {
    let a = hash("s1", ip("203.0.113.7"));
    assert_eq!(a.len(), 32);
    assert!(a
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(a, hash("s1", ip("203.0.113.7")));
    assert_ne!(a, hash("s2", ip("203.0.113.7")));
    assert_ne!(a, hash("s1", ip("203.0.113.8")));
    // Known answers, from `printf 's1\x00203.0.113.7' | sha256sum | cut -c1-32`.
    assert_eq!(a, "7072d6a841de093ac5ca922aa30c8915");
    assert_eq!(
        hash("k", ip("2001:db8::1")),
        "b90dd17aeb02aa9754659599d92f0b2e"
    );
}

#[test]
fn ipv4_text_is_display() {
    for ip in [
        "0.0.0.0",
        "1.2.3.4",
        "10.100.9.255",
        "203.0.113.77",
        "255.255.255.255",
    ] {
        let ip: IpAddr = ip.parse().unwrap();
        assert_eq!(text(ip), ip.to_string());
    }
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    assert_eq!(text(v6), v6.to_string());
}

#[test]
fn render_per_mode() {
    let v4 = ip("203.0.113.77");
    assert_eq!(
        render(IpMode::Full, None, v4).as_deref(),
        Some("203.0.113.77")
    );
    assert_eq!(
        render(IpMode::Truncate, None, v4).as_deref(),
        Some("203.0.113.0")
    );
    assert_eq!(render(IpMode::Hash, Some("k"), v4), Some(hash("k", v4)));
    assert_eq!(render(IpMode::Omit, Some("k"), v4), None);
}
