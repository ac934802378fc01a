//! Binance request signing: HMAC-SHA256 of the exact query string plus request body, as
//! lowercase hex, sent as the last `signature` parameter (spot and USD-M alike).

use hmac::Mac;

use crate::model::{OrderRequest, OrderType, SelfTradePrevention, Side, TimeInForce};
use crate::secrets::HmacKey;

/// Binance's `selfTradePreventionMode` for ours; set on every order.
pub fn stp_mode(stp: SelfTradePrevention) -> &'static str {
    match stp {
        SelfTradePrevention::None => "NONE",
        SelfTradePrevention::ExpireTaker => "EXPIRE_TAKER",
        SelfTradePrevention::ExpireMaker => "EXPIRE_MAKER",
        SelfTradePrevention::ExpireBoth => "EXPIRE_BOTH",
    }
}

/// The parameters of `POST /api/v3/order` (spot) or `/fapi/v1/order` (USD-M), in the
/// order Binance documents them, ending with `recvWindow` and `timestamp`, ready to sign.
pub fn new_order_params(symbol: &str, request: &OrderRequest, stp: SelfTradePrevention, futures: bool, recv_window: u64, timestamp: i64) -> String {
    format!("{}&recvWindow={recv_window}&timestamp={timestamp}", order_fields(symbol, request, stp, futures))
}

/// The order's own parameters, without the signing ones (a `batchOrders` item, or what
/// is signed just before it is sent). A post-only order is spot's `LIMIT_MAKER` (USD-M:
/// `timeInForce=GTX`).
pub fn order_fields(symbol: &str, request: &OrderRequest, stp: SelfTradePrevention, futures: bool) -> String {
    use std::fmt::Write;
    let side = match request.side {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    };
    // Written into one string: this is on the way of every order.
    let mut params = String::with_capacity(256);
    let _ = write!(params, "symbol={symbol}&side={side}");
    match request.order_type {
        OrderType::Market => params.push_str("&type=MARKET"),
        OrderType::Limit { time_in_force: TimeInForce::PostOnly, .. } if !futures => params.push_str("&type=LIMIT_MAKER"),
        OrderType::Limit { time_in_force, .. } => {
            let tif = match time_in_force {
                TimeInForce::Gtc => "GTC",
                TimeInForce::Ioc => "IOC",
                TimeInForce::Fok => "FOK",
                TimeInForce::PostOnly => "GTX",
            };
            let _ = write!(params, "&type=LIMIT&timeInForce={tif}");
        }
    }
    // Binance takes plain decimals; trailing zeros are noise, exponents are refused.
    let _ = write!(params, "&quantity={}", request.qty.normalize());
    if let Some(price) = request.limit_price() {
        let _ = write!(params, "&price={}", price.normalize());
    }
    let _ = write!(params, "&newClientOrderId={}&selfTradePreventionMode={}", request.client_order_id, stp_mode(stp));
    if futures {
        // USD-M answers ACK by default: the state before matching, so an IOC's outcome
        // would be known only from the stream. RESULT gives the state after matching;
        // a final state is held until its fills arrive (see `venue::live`).
        params.push_str("&newOrderRespType=RESULT");
    }
    params
}

/// The signature of `payload` (query string, then body, as sent).
pub fn sign(key: &HmacKey, payload: &str) -> String {
    let mut mac = key.mac();
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The signed query string: `payload&signature=<hex>`.
pub fn signed_query(key: &HmacKey, payload: &str) -> String {
    let mut mac = key.mac();
    mac.update(payload.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut query = String::with_capacity(payload.len() + 11 + 2 * digest.len());
    query.push_str(payload);
    query.push_str("&signature=");
    query.push_str(&hex::encode(digest));
    query
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secret;

    /// binance-spot/rest-api.md, "SIGNED Endpoint Examples for POST /api/v3/order".
    #[test]
    fn spot_documented_example() {
        let secret = Secret::new("NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j");
        let payload = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559";
        assert_eq!(sign(&HmacKey::new(&secret), payload), "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71");
        assert!(signed_query(&HmacKey::new(&secret), payload).ends_with("&timestamp=1499827319559&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"));
    }

    #[test]
    fn new_orders_carry_the_documented_parameters() {
        use crate::model::InstrumentId;
        let limit = OrderRequest {
            client_order_id: "hedge-0a1b".into(),
            instrument: InstrumentId(0),
            side: Side::Buy,
            order_type: OrderType::Limit { price: "0.1000".parse().unwrap_or_default(), time_in_force: TimeInForce::Gtc },
            qty: "1.000".parse().unwrap_or_default(),
        };
        let params = new_order_params("LTCBTC", &limit, SelfTradePrevention::ExpireTaker, false, 5000, 1499827319559);
        assert_eq!(
            params,
            "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&newClientOrderId=hedge-0a1b&selfTradePreventionMode=EXPIRE_TAKER&recvWindow=5000&timestamp=1499827319559"
        );
        let post_only = OrderRequest { order_type: OrderType::Limit { price: "0.1".parse().unwrap_or_default(), time_in_force: TimeInForce::PostOnly }, ..limit.clone() };
        assert!(new_order_params("LTCBTC", &post_only, SelfTradePrevention::ExpireTaker, false, 5000, 1).contains("type=LIMIT_MAKER&quantity"));
        assert!(new_order_params("BTCUSDT", &post_only, SelfTradePrevention::ExpireTaker, true, 5000, 1).contains("type=LIMIT&timeInForce=GTX"));
        let market = OrderRequest { order_type: OrderType::Market, ..limit };
        let params = new_order_params("LTCBTC", &market, SelfTradePrevention::ExpireBoth, false, 5000, 1);
        assert!(params.contains("type=MARKET&quantity=1&newClientOrderId") && params.contains("selfTradePreventionMode=EXPIRE_BOTH"), "{params}");
    }

    /// binance-usdm/authentication.md, examples 1 and 2 (query string and body sign alike).
    #[test]
    fn usdm_documented_example() {
        let secret = Secret::new("2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9");
        let payload = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000&timestamp=1591702613943";
        assert_eq!(sign(&HmacKey::new(&secret), payload), "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9");
    }
}
