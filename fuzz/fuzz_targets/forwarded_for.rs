//! `X-Forwarded-For` from a trusted proxy (and from an untrusted peer).
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use portcullis_server::parsers::client_ip;

fn trusted() -> &'static [ipnet::IpNet] {
    static T: OnceLock<Vec<ipnet::IpNet>> = OnceLock::new();
    T.get_or_init(|| vec!["127.0.0.0/8".parse().unwrap(), "10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()])
}

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append("x-forwarded-for", v);
        }
    }
    for peer in [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)),
    ] {
        let ip = client_ip(peer, &headers, trusted());
        let _ = portcullis_core::rate_limit::client_key(&ip.to_string());
    }
});
