//! Request authentication as each venue documents it.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

fn hmac(secret: &str, parts: &[&str]) -> Vec<u8> {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return Vec::new() };
    for p in parts {
        mac.update(p.as_bytes());
    }
    mac.finalize().into_bytes().to_vec()
}

/// Binance: the payload (query string, then body, without the signature) signed as hex;
/// HMAC signatures are compared case-insensitively, as documented.
pub fn binance_signature_ok(secret: &str, payload: &str, signature: &str) -> bool {
    hex::encode(hmac(secret, &[payload])).eq_ignore_ascii_case(signature)
}

/// Removes `signature=...` from a query or form string, keeping the rest byte for byte.
pub fn strip_signature(text: &str) -> (String, Option<String>) {
    let mut signature = None;
    let kept: Vec<&str> = text
        .split('&')
        .filter(|kv| match kv.strip_prefix("signature=") {
            Some(sig) => {
                signature = Some(sig.to_string());
                false
            }
            None => true,
        })
        .collect();
    (kept.join("&"), signature)
}

/// OKX: Base64 of HMAC-SHA256 over timestamp + method + requestPath + body.
pub fn okx_signature(secret: &str, timestamp: &str, method: &str, path: &str, body: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(hmac(secret, &[timestamp, method, path, body]))
}

/// OKX's ISO timestamp (`2020-12-08T09:08:57.715Z`) in ms since the epoch.
pub fn parse_iso_ms(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 24 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'.' || b[23] != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| text.get(r).and_then(|s| s.parse::<i64>().ok());
    let (y, m, d, hh, mm, ss, ms) = (n(0..4)?, n(5..7)?, n(8..10)?, n(11..13)?, n(14..16)?, n(17..19)?, n(20..23)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trip_with_the_adapter() {
        for ms in [0, 1_607_418_537_715, 951_782_400_000, 1_790_000_000_123] {
            assert_eq!(parse_iso_ms(&runtime::venue::okx::rest::iso_ms(ms)), Some(ms));
        }
        assert_eq!(parse_iso_ms("2020-12-08 09:08:57"), None);
    }

    #[test]
    fn signature_is_found_anywhere_and_removed() {
        assert_eq!(strip_signature("a=1&signature=ff&b=2"), ("a=1&b=2".to_string(), Some("ff".to_string())));
        assert_eq!(strip_signature("a=1"), ("a=1".to_string(), None));
    }
}
