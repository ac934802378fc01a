//! Binance request signing: HMAC-SHA256 of the exact query string plus request body, as
//! lowercase hex, sent as the last `signature` parameter (spot and USD-M alike).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::venue::secrets::Secret;

/// The signature of `payload` (query string, then body, as sent).
pub fn sign(secret: &Secret, payload: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else {
        // HMAC takes keys of any length; this cannot fail.
        return String::new();
    };
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The signed query string: `payload&signature=<hex>`.
pub fn signed_query(secret: &Secret, payload: &str) -> String {
    format!("{payload}&signature={}", sign(secret, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// binance-spot/rest-api.md, "SIGNED Endpoint Examples for POST /api/v3/order".
    #[test]
    fn spot_documented_example() {
        let secret = Secret::new("NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j");
        let payload = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559";
        assert_eq!(sign(&secret, payload), "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71");
        assert!(signed_query(&secret, payload).ends_with("&timestamp=1499827319559&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"));
    }

    /// binance-usdm/authentication.md, examples 1 and 2 (query string and body sign alike).
    #[test]
    fn usdm_documented_example() {
        let secret = Secret::new("2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9");
        let payload = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000&timestamp=1591702613943";
        assert_eq!(sign(&secret, payload), "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9");
    }
}
