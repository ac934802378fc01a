//! Builds a live venue from its config section: the adapter for its kind, its URLs and
//! credentials, then [`LiveVenue::start`].

use std::time::Duration;

use crate::config::{RateLimitCounts, SecretRef, VenueConfig, VenueKind};
use crate::model::{Decimal, InstrumentId, InstrumentInfo, VenueId};
use crate::venue::binance::rest::{Binance, Endpoints as BinanceEndpoints, Flavor};
use crate::venue::okx::rest::{Credentials, Endpoints as OkxEndpoints, Okx};
use crate::secrets::Secret;

use super::live::limits::{Counted, Window};
use super::live::driver::Driver;
use super::live::{LiveSettings, LiveVenue, VenueSpec};

/// A started live venue and its instruments, with the venue's own rules.
pub struct Connected {
    pub venue: LiveVenue,
    pub instruments: Vec<InstrumentInfo>,
}

fn secret(config: &VenueConfig, field: &str, value: &Option<String>) -> Result<Secret, String> {
    let at = format!("venue {}: connection.{field}", config.name);
    let reference = SecretRef::parse(&at, value.as_deref().unwrap_or_default())?;
    reference.load().map_err(|e| format!("{at}: {e}"))
}

/// The configured URLs (REST, private, public) in place of the defaults.
fn override_urls(c: &crate::config::ConnectionConfig, urls: [&mut String; 3]) {
    for (url, configured) in urls.into_iter().zip([&c.rest_url, &c.private_ws_url, &c.public_ws_url]) {
        if let Some(u) = configured {
            *url = u.clone();
        }
    }
}

/// `first_instrument` is the handle of this venue's first instrument; the rest follow in
/// config order.
pub fn connect(driver: &Driver, config: &VenueConfig, venue: VenueId, first_instrument: u32) -> Result<Connected, String> {
    let c = &config.connection;
    let symbols: Vec<(String, InstrumentId)> =
        config.instruments.iter().enumerate().map(|(i, ic)| (ic.symbol.clone(), InstrumentId(first_instrument + i as u32))).collect();
    let mut settings = LiveSettings::default();
    if let Some(age) = c.max_connection_age_s {
        settings.max_connection_age = Duration::from_secs(age);
    }
    settings.reconcile_interval = Duration::from_millis(c.reconcile_interval_ms);
    let windows: Option<Vec<Window>> = c.rate_limits.as_ref().map(|windows| {
        windows
            .iter()
            .map(|w| Window {
                counted: match w.counts {
                    RateLimitCounts::Weight => Counted::Weight,
                    RateLimitCounts::Orders => Counted::Orders,
                },
                span: Duration::from_secs(w.seconds),
                max: w.max,
            })
            .collect()
    });
    let name = config.name.as_str();
    let started = match config.kind {
        VenueKind::BinanceSpot | VenueKind::BinanceUsdm => {
            let flavor = if config.kind == VenueKind::BinanceSpot { Flavor::Spot } else { Flavor::UsdM };
            let mut endpoints = BinanceEndpoints::production(flavor);
            override_urls(c, [&mut endpoints.rest, &mut endpoints.private_ws, &mut endpoints.public_ws]);
            let mut exchange = Binance::new(flavor, endpoints, secret(config, "api_key", &c.api_key)?, secret(config, "api_secret", &c.api_secret)?, c.recv_window_ms)?;
            if let Some(windows) = &windows {
                exchange = exchange.with_rate_limits(windows);
            }
            LiveVenue::start(driver, exchange, VenueSpec { venue, name, symbols: &symbols, map_id: |id| id.to_string() }, settings)
        }
        VenueKind::Okx => {
            let mut endpoints = OkxEndpoints::default();
            override_urls(c, [&mut endpoints.rest, &mut endpoints.private_ws, &mut endpoints.public_ws]);
            let credentials = Credentials {
                api_key: secret(config, "api_key", &c.api_key)?,
                secret: secret(config, "api_secret", &c.api_secret)?,
                passphrase: secret(config, "passphrase", &c.passphrase)?,
            };
            let mut exchange = Okx::new(endpoints, credentials, c.trade_mode.as_deref().unwrap_or("cash"))?;
            if let Some(windows) = &windows {
                exchange = exchange.with_rate_limits(windows);
            }
            LiveVenue::start(driver, exchange, VenueSpec { venue, name, symbols: &symbols, map_id: crate::venue::okx::common::client_order_id }, settings)
        }
        VenueKind::Paper => return Err(format!("venue {name} is a paper venue")),
    }
    .map_err(|e| e.to_string())?;
    let mut instruments = Vec::new();
    for ((ic, (_, id)), rules) in config.instruments.iter().zip(&symbols).zip(&started.rules) {
        for (what, ours, theirs) in [("tick_size", ic.tick_size, rules.tick_size), ("lot_size", ic.lot_size, rules.lot_size)] {
            if ours != Decimal::ZERO && ours.normalize() != theirs {
                return Err(format!("venue {name} instrument {}: {what} {ours} in config, but the venue says {theirs}", ic.symbol));
            }
        }
        instruments.push(InstrumentInfo {
            id: *id,
            venue,
            venue_name: name.to_string(),
            symbol: ic.symbol.clone(),
            base_asset: ic.base.clone(),
            quote_asset: ic.quote.clone(),
            tick_size: rules.tick_size,
            lot_size: rules.lot_size,
            min_qty: rules.min_qty.max(ic.min_qty),
            min_notional: rules.min_notional.max(ic.min_notional),
            paper: false,
        });
        tracing::info!(venue = name, symbol = %ic.symbol, tick = %rules.tick_size, lot = %rules.lot_size, min_qty = %rules.min_qty, min_notional = %rules.min_notional, "instrument rules loaded from the venue");
    }
    Ok(Connected { venue: started.venue, instruments })
}
