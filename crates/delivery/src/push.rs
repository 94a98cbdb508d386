//! Web Push delivery (RFC 8030) to the companion app's subscriptions:
//! messages encrypted for the subscription (RFC 8291, `aes128gcm`, by the
//! `web-push-native` crate) and signed for the push service with the
//! server's VAPID key (RFC 8292). Any RFC 8030 push service works: the
//! browsers' own, or a self-hosted one (UnifiedPush, ntfy).
//!
//! The endpoint comes from a phone, so it is treated as untrusted: only
//! `https`, no redirects, and (unless the operator allows private push
//! services) no address that is loopback, private, link-local or otherwise
//! not globally reachable, checked on the addresses the name resolves to
//! at the moment of sending (a DNS answer cannot point it inside).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
use portcullis_core::factors::push::{PushDelivery, PushError, PushSender, PushSubscription};
use portcullis_core::io::BoxFuture;

/// How long a VAPID token is valid (RFC 8292 §2: at most 24 hours).
const VAPID_SECONDS: u64 = 12 * 3600;

/// A VAPID key pair: the server's identity toward push services.
#[derive(Clone)]
pub struct VapidKey {
    signing: p256::ecdsa::SigningKey,
}

impl VapidKey {
    /// The key whose secret scalar is `secret` (32 bytes from the server's secrets).
    pub fn from_secret(secret: &[u8; 32]) -> Result<Self, String> {
        p256::ecdsa::SigningKey::from_slice(secret).map(|signing| Self { signing }).map_err(|_| "not a P-256 secret key".to_owned())
    }

    /// The public key, uncompressed, base64url: the companion subscribes with
    /// it (`applicationServerKey`), and `k=` of the `Authorization` header names it.
    pub fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.signing.verifying_key().to_encoded_point(false).as_bytes())
    }

    /// The `Authorization` header for a push service at `audience` (the
    /// endpoint's origin): `vapid t=<ES256 JWT>, k=<public key>` (RFC 8292 §3).
    pub fn authorization(&self, audience: &str, contact: &str, now: u64) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({ "aud": audience, "exp": now + VAPID_SECONDS, "sub": contact });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{header}.{claims}");
        let signature: p256::ecdsa::Signature = self.signing.sign(signed.as_bytes());
        format!("vapid t={signed}.{}, k={}", URL_SAFE_NO_PAD.encode(signature.to_bytes()), self.public_key())
    }
}

/// Sends Web Push messages with reqwest.
pub struct WebPushSender {
    client: reqwest::Client,
    vapid: VapidKey,
    contact: String,
    allow_private: bool,
}

impl WebPushSender {
    /// A sender signing with `vapid`; `contact` (a `mailto:` or `https:` URI)
    /// is the `sub` push services may reach the operator at. With
    /// `allow_private`, endpoints on private and loopback addresses are
    /// allowed (a push service on the operator's own network, and tests).
    pub fn new(vapid: VapidKey, contact: String, allow_private: bool) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the phone's host itself, past the check below.
            .no_proxy()
            .dns_resolver(Arc::new(PublicAddresses { allow_private }))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { client, vapid, contact, allow_private })
    }

    async fn deliver(&self, to: &PushSubscription, payload: &[u8], ttl_seconds: u32) -> Result<PushDelivery, PushError> {
        let fail = |what: &str| PushError(what.to_owned());
        let url = url::Url::parse(&to.endpoint).map_err(|_| fail("the endpoint is not a URL"))?;
        let https = url.scheme() == "https" || (self.allow_private && url.scheme() == "http");
        if !https {
            return Err(fail("the endpoint is not https"));
        }
        // Addresses written in the URL are not resolved, so they are checked here.
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(fail("the endpoint has no host")),
        };
        if literal.is_some_and(|ip| !self.allow_private && !is_public(ip)) {
            return Err(fail("the endpoint is not a public address"));
        }
        let key = URL_SAFE_NO_PAD.decode(&to.p256dh).map_err(|_| fail("the subscription key is not base64url"))?;
        let key = p256::PublicKey::from_sec1_bytes(&key).map_err(|_| fail("the subscription key is not a P-256 point"))?;
        let auth =
            URL_SAFE_NO_PAD.decode(&to.auth).ok().filter(|a| a.len() == 16).ok_or_else(|| fail("the auth secret is not 16 bytes"))?;
        let auth = web_push_native::Auth::clone_from_slice(&auth);
        let body = web_push_native::encrypt(payload.to_vec(), &key, &auth).map_err(|e| PushError(e.to_string()))?;
        let audience = url.origin().ascii_serialization();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let response = self
            .client
            .post(url)
            .header("TTL", ttl_seconds.to_string())
            // RFC 8030 §5.3: a sign-in is waiting; wake the device.
            .header("Urgency", "high")
            .header(reqwest::header::CONTENT_ENCODING, "aes128gcm")
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::AUTHORIZATION, self.vapid.authorization(&audience, &self.contact, now))
            .body(body)
            .send()
            .await
            .map_err(|e| PushError(format!("the push service could not be reached: {e}")))?;
        match response.status().as_u16() {
            200..=202 => Ok(PushDelivery::Accepted),
            404 | 410 => Ok(PushDelivery::Gone),
            status => Err(PushError(format!("the push service answered {status}"))),
        }
    }
}

impl PushSender for WebPushSender {
    fn send<'a>(&'a self, to: &'a PushSubscription, payload: &'a [u8], ttl_seconds: u32) -> BoxFuture<'a, Result<PushDelivery, PushError>> {
        Box::pin(self.deliver(to, payload, ttl_seconds))
    }
}

/// Whether `ip` is reachable on the public internet (not loopback, private,
/// link-local, shared, documentation, unspecified or multicast).
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 192 && b == 88 && v4.octets()[2] == 99)
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            // Ranges that carry an IPv4 address (NAT64 64:ff9b::/96, 6to4
            // 2002::/16) reach what that address reaches; IPv4-compatible
            // ::/96 (deprecated) and the unspecified address are never public.
            let embedded = |hi: u16, lo: u16| {
                let ([a, b], [c, d]) = (hi.to_be_bytes(), lo.to_be_bytes());
                IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d))
            };
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                return is_public(embedded(s[6], s[7]));
            }
            // Local-use NAT64 (RFC 8215) may translate to any IPv4 address.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
                return false;
            }
            if s[0] == 0x2002 {
                return is_public(embedded(s[1], s[2]));
            }
            if s[..6] == [0, 0, 0, 0, 0, 0] {
                return false;
            }
            !(v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                // Teredo tunnels to an address of its choice.
                || (s[0] == 0x2001 && s[1] == 0)
                // Discard-only, benchmarking, ORCHIDv2, documentation (RFC 9637).
                || (s[0] == 0x100 && s[1..4] == [0, 0, 0])
                || (s[0] == 0x2001 && s[1] == 2 && s[2] == 0)
                || (s[0] == 0x2001 && (s[1] & 0xfff0) == 0x10)
                || (s[0] == 0x3fff && (s[1] & 0xf000) == 0))
        }
    }
}

/// Resolves names with the system resolver and keeps only public addresses.
struct PublicAddresses {
    allow_private: bool,
}

impl reqwest::dns::Resolve for PublicAddresses {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let usable: Vec<SocketAddr> = found.into_iter().filter(|a| allow_private || is_public(a.ip())).collect();
            if usable.is_empty() {
                return Err(format!("{} has no public address", name.as_str()).into());
            }
            Ok(Box::new(usable.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_count_as_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::",
            "fec0::1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2001:0:4136:e378::1",
            "64:ff9b:1::a00:1",
            "100::1",
            "2001:2::1",
            "2001:10::1",
            "3fff::1",
            "192.0.0.8",
            "192.88.99.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn the_vapid_header_is_an_es256_jwt_for_the_push_service_signed_by_the_named_key() {
        use p256::ecdsa::signature::Verifier;
        let vapid = VapidKey::from_secret(&[7u8; 32]).unwrap();
        let header = vapid.authorization("https://push.example.net", "mailto:ops@example.com", 1_000);
        let (t, k) = header.strip_prefix("vapid t=").unwrap().split_once(", k=").unwrap();
        assert_eq!(k, vapid.public_key());
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["aud"], "https://push.example.net");
        assert_eq!(claims["sub"], "mailto:ops@example.com");
        assert_eq!(claims["exp"], 1_000 + VAPID_SECONDS);
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&URL_SAFE_NO_PAD.decode(k).unwrap()).unwrap();
        let sig = p256::ecdsa::Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).unwrap();
        assert!(key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig).is_ok());
    }
}
