//! self-trade: drives realistic flow on a **paper** venue by following a reference
//! market's trades. For demos and tests only.
//!
//! Crossing one's own orders on a real market is wash trading, a form of market
//! manipulation. This strategy declares `self_trading` and the single paper instrument it
//! trades on; the host refuses to start it against anything that is not a paper venue, and
//! it refuses by itself as well.
//!
//! Each interval: the base price is the followed market's last trade price, nudged by one
//! tick if it equals the previous one, its change clamped to `price_divergence` of the
//! previous price, and kept strictly inside the paper venue's best bid and ask. The
//! quantity is the followed quantity × `qty_multiplier` × a random factor in
//! [0.9995, 1.0005], at least `min_qty`, at most `max_amount_per_order` / price, nudged if
//! it equals the previous one. A post-only maker order on a random side, then an IOC taker
//! order against it; a maker order left over is cancelled, with up to 3 tries.

use serde::{Deserialize, Serialize};
use strategy_sdk::decimal::{round_dp, Rounding};
use strategy_sdk::{
    export_strategy, ids, Action, Decimal, Event, Host, InstrumentInfo, LogLevel, OrderRequest, Side, Strategy, Subscriptions, TimeInForce,
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(alias = "Follow Exchange")]
    pub follow_venue: String,
    #[serde(alias = "Follow Symbol")]
    pub follow_symbol: String,
    /// The paper venue the flow is made on.
    #[serde(alias = "Maker Exchange")]
    pub maker_venue: String,
    #[serde(alias = "Maker Symbol")]
    pub maker_symbol: String,
    #[serde(alias = "Price Decimals")]
    pub price_decimals: u32,
    #[serde(alias = "Qty Decimals")]
    pub qty_decimals: u32,
    /// Milliseconds between trades.
    #[serde(alias = "Interval")]
    pub interval: u64,
    #[serde(alias = "Qty Multiplier", default = "one")]
    pub qty_multiplier: Decimal,
    /// Largest change of price from one trade to the next, as a fraction (0.01 = 1%).
    #[serde(alias = "Price Divergence")]
    pub price_divergence: Decimal,
    /// Largest notional of one order, in quote units.
    #[serde(alias = "Max Amt Per Order")]
    pub max_amount_per_order: Decimal,
    #[serde(alias = "Min Qty")]
    pub min_qty: Decimal,
    /// Smallest notional of one order, in quote units.
    #[serde(alias = "Min Amt", default)]
    pub min_amount: Decimal,
    #[serde(default = "default_prefix")]
    pub id_prefix: String,
}

fn one() -> Decimal {
    Decimal::ONE
}
fn default_prefix() -> String {
    "self".into()
}

/// How many times a leftover maker order is cancelled before giving up on it.
const CANCEL_TRIES: u32 = 3;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub follow_last: Option<(Decimal, Decimal)>,
    pub prev_price: Option<Decimal>,
    pub prev_qty: Option<Decimal>,
    /// The maker order of the current round, and how often its cancel was sent.
    pub maker: Option<(String, u32)>,
    /// The taker order of the current round, until it is done.
    pub taker: Option<String>,
    pub rounds: u64,
    pub skipped: u64,
}

pub struct SelfTrade {
    params: Params,
    follow: InstrumentInfo,
    maker: InstrumentInfo,
    tick: Decimal,
    step: Decimal,
    pub state: State,
}

impl SelfTrade {
    /// The price of this round, or why there is none.
    pub fn price(&mut self, host: &mut dyn Host) -> Result<Decimal, String> {
        let (followed, _) = self.state.follow_last.ok_or("no trade of the followed market yet")?;
        let mut price = round_dp(followed, self.params.price_decimals, Rounding::Nearest);
        if let Some(prev) = self.state.prev_price {
            if price == prev {
                price = if host.random_below(2) == 0 { prev + self.tick } else { prev - self.tick };
            }
            let limit = prev * self.params.price_divergence;
            price = price.min(round_dp(prev + limit, self.params.price_decimals, Rounding::Down));
            price = price.max(round_dp(prev - limit, self.params.price_decimals, Rounding::Up));
        }
        if let Some(book) = host.book(self.maker.id, 1) {
            if let (Some(bid), Some(ask)) = (book.best_bid(), book.best_ask()) {
                let (low, high) = (bid + self.tick, ask - self.tick);
                if low > high {
                    return Err(format!("no room inside the spread {bid} / {ask}"));
                }
                price = price.max(low).min(high);
            } else if let Some(bid) = book.best_bid() {
                price = price.max(bid + self.tick);
            } else if let Some(ask) = book.best_ask() {
                price = price.min(ask - self.tick);
            }
        }
        if price <= Decimal::ZERO {
            return Err("price would not be positive".into());
        }
        Ok(price)
    }

    pub fn qty(&mut self, price: Decimal, host: &mut dyn Host) -> Result<Decimal, String> {
        let (_, followed_qty) = self.state.follow_last.ok_or("no trade of the followed market yet")?;
        // A factor in [0.9995, 1.0005], in steps of 0.000001.
        let factor = Decimal::new(9995, 4) + Decimal::new(host.random_below(1001) as i64, 6);
        let mut qty = round_dp(followed_qty * self.params.qty_multiplier * factor, self.params.qty_decimals, Rounding::Down);
        let max = round_dp(self.params.max_amount_per_order / price, self.params.qty_decimals, Rounding::Down);
        let min_for_amount = round_dp(self.params.min_amount / price, self.params.qty_decimals, Rounding::Up);
        qty = qty.max(self.params.min_qty).max(min_for_amount).min(max);
        if self.state.prev_qty == Some(qty) {
            qty = if qty + self.step <= max { qty + self.step } else { qty - self.step };
        }
        if qty < self.params.min_qty || qty.is_zero() || qty * price < self.params.min_amount {
            return Err(format!("no quantity fits: min_qty {}, max {max}, min amount {}", self.params.min_qty, self.params.min_amount));
        }
        Ok(qty)
    }

    /// Cancels a maker order that is still open; false once the tries are used up.
    fn cancel_leftover(&mut self, actions: &mut Vec<Action>) -> bool {
        let Some((id, tries)) = self.state.maker.as_mut() else { return false };
        if *tries >= CANCEL_TRIES {
            return false;
        }
        *tries += 1;
        actions.push(Action::Cancel { instrument: self.maker.id, client_order_id: id.clone() });
        true
    }

    fn round(&mut self, now: i64, host: &mut dyn Host) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.state.maker.is_some() {
            // A maker order of an earlier round is still open: cancel it before trading.
            if self.cancel_leftover(&mut actions) {
                return actions;
            }
            let id = self.state.maker.take().map(|(id, _)| id).unwrap_or_default();
            host.log(LogLevel::Warn, &format!("maker order {id} still open after {CANCEL_TRIES} cancels; moving on"));
        }
        let (price, qty) = match self.price(host).and_then(|p| self.qty(p, host).map(|q| (p, q))) {
            Ok(pq) => pq,
            Err(why) => {
                self.state.skipped += 1;
                host.log(LogLevel::Debug, &format!("no self-trade this interval: {why}"));
                return actions;
            }
        };
        let side = if host.random_below(2) == 0 { Side::Buy } else { Side::Sell };
        let round = now.to_string();
        let maker_id = ids::client_order_id(&self.params.id_prefix, &[&round, "m"]);
        let taker_id = ids::client_order_id(&self.params.id_prefix, &[&round, "t"]);
        self.state.prev_price = Some(price);
        self.state.prev_qty = Some(qty);
        self.state.rounds += 1;
        self.state.maker = Some((maker_id.clone(), 0));
        self.state.taker = Some(taker_id.clone());
        actions.push(Action::Place(OrderRequest::limit(maker_id, self.maker.id, side, price, qty, TimeInForce::PostOnly)));
        actions.push(Action::Place(OrderRequest::limit(taker_id, self.maker.id, side.opposite(), price, qty, TimeInForce::Ioc)));
        actions
    }
}

impl Strategy for SelfTrade {
    fn init(params: &str, host: &mut dyn Host) -> Result<(Self, Subscriptions), String> {
        let params: Params = serde_json::from_str(params).map_err(|e| format!("bad params: {e}"))?;
        let follow = host.lookup(&params.follow_venue, &params.follow_symbol)?;
        let maker = host.lookup(&params.maker_venue, &params.maker_symbol)?;
        if !maker.paper {
            return Err(format!(
                "refused: {} is a live venue; self-trade crosses its own orders, which on a real market is wash trading",
                maker.venue_name
            ));
        }
        if params.interval == 0 || params.price_divergence <= Decimal::ZERO {
            return Err("interval and price_divergence must be positive".into());
        }
        let subscriptions = Subscriptions {
            trades: vec![follow.id],
            timer_interval_ms: Some(params.interval),
            orders_on: vec![maker.id],
            self_trading: true,
            ..Default::default()
        };
        let tick = Decimal::new(1, params.price_decimals);
        let step = Decimal::new(1, params.qty_decimals);
        Ok((SelfTrade { params, follow, maker, tick, step, state: State::default() }, subscriptions))
    }

    fn on_events(&mut self, events: &[Event], host: &mut dyn Host) -> Vec<Action> {
        let mut actions = Vec::new();
        for event in events {
            match event {
                Event::Trade(t) if t.instrument == self.follow.id => self.state.follow_last = Some((t.price, t.qty)),
                Event::Order(u) if u.status.is_final() && self.state.maker.as_ref().is_some_and(|(id, _)| *id == u.client_order_id) => {
                    self.state.maker = None;
                }
                Event::Order(u) if u.status.is_final() && self.state.taker.as_deref() == Some(u.client_order_id.as_str()) => {
                    // The taker is done; whatever of the maker it did not take is cancelled.
                    self.state.taker = None;
                    self.cancel_leftover(&mut actions);
                }
                Event::Timer(ts) => actions.extend(self.round(*ts, host)),
                _ => {}
            }
        }
        actions
    }

    fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(&self.state).unwrap_or_default()
    }

    fn restore(&mut self, state: &[u8], _host: &mut dyn Host) -> Result<(), String> {
        self.state = serde_json::from_slice(state).map_err(|e| format!("unreadable self-trade state: {e}"))?;
        Ok(())
    }
}

export_strategy!(SelfTrade);

#[cfg(test)]
mod tests {
    use super::*;
    use strategy_sdk::harness::{trade, Harness, TestHost};
    use strategy_sdk::{BookLevel, BookSnapshot, InstrumentId, Whose};

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    const PARAMS: &str = r#"{"Follow Exchange":"a","Follow Symbol":"BTCUSDT","Maker Exchange":"c","Maker Symbol":"BTCUSDT","Price Decimals":2,"Qty Decimals":3,
        "Interval":1000,"Qty Multiplier":"1","Price Divergence":"0.01","Max Amt Per Order":"5000","Min Qty":"0.001","Min Amt":"10"}"#;

    fn harness() -> Harness<SelfTrade> {
        let mut host = TestHost::new();
        host.add_instrument("a", "BTCUSDT", "BTC", "USDT", d("0.01"), d("0.001"), d("0.001"), d("5"));
        host.add_instrument("c", "BTCUSDT", "BTC", "USDT", d("0.01"), d("0.001"), d("0.001"), d("5"));
        Harness::init(host, PARAMS).unwrap_or_else(|e| panic!("{e}"))
    }

    fn orders(actions: &[Action]) -> Vec<(Side, Decimal, Decimal, Option<TimeInForce>)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Place(o) => Some((
                    o.side,
                    o.limit_price().unwrap_or_default(),
                    o.qty,
                    match o.order_type {
                        strategy_sdk::OrderType::Limit { time_in_force, .. } => Some(time_in_force),
                        strategy_sdk::OrderType::Market => None,
                    },
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn declares_self_trading_on_its_paper_instrument_only() {
        let h = harness();
        assert!(h.subscriptions.self_trading);
        assert_eq!(h.subscriptions.orders_on, vec![InstrumentId(1)]);
    }

    #[test]
    fn refuses_a_live_maker_venue() {
        let mut host = TestHost::new();
        host.add_instrument("a", "BTCUSDT", "BTC", "USDT", d("0.01"), d("0.001"), d("0.001"), d("5"));
        let mut live = host.add_instrument("c", "BTCUSDT", "BTC", "USDT", d("0.01"), d("0.001"), d("0.001"), d("5"));
        live.paper = false;
        host.instruments[1] = live;
        let err = Harness::<SelfTrade>::init(host, PARAMS).err().unwrap_or_default();
        assert!(err.contains("wash trading"), "{err}");
    }

    #[test]
    fn a_maker_then_a_taker_at_the_followed_price() {
        let mut h = harness();
        h.feed(vec![trade(InstrumentId(0), 1, d("10000.004"), d("0.05"), Side::Buy, 500)]);
        let actions = h.feed(vec![Event::Timer(1000)]);
        let o = orders(&actions);
        assert_eq!(o.len(), 2);
        let (maker_side, price, qty, tif) = o[0];
        assert_eq!((price, tif), (d("10000.00"), Some(TimeInForce::PostOnly)));
        assert!(qty >= d("0.049") && qty <= d("0.05"), "{qty}");
        assert_eq!(o[1], (maker_side.opposite(), price, qty, Some(TimeInForce::Ioc)));
    }

    #[test]
    fn equal_prices_are_nudged_and_changes_clamped_to_the_divergence() {
        let mut h = harness();
        h.feed(vec![trade(InstrumentId(0), 1, d("10000"), d("0.05"), Side::Buy, 500)]);
        h.feed(vec![Event::Timer(1000)]);
        h.strategy.state.maker = None;
        let nudged = orders(&h.feed(vec![Event::Timer(2000)]))[0].1;
        assert!(nudged == d("10000.01") || nudged == d("9999.99"), "{nudged}");
        h.strategy.state.maker = None;
        // The followed market jumps 5%: clamped to 1% from the previous price.
        h.feed(vec![trade(InstrumentId(0), 2, d("10500"), d("0.05"), Side::Buy, 2500)]);
        let clamped = orders(&h.feed(vec![Event::Timer(3000)]))[0].1;
        assert_eq!(clamped, round_dp(nudged * d("1.01"), 2, Rounding::Down));
    }

    #[test]
    fn stays_inside_the_paper_book_and_respects_amount_limits() {
        let mut h = harness();
        h.host.books.insert(InstrumentId(1), BookSnapshot {
            instrument: InstrumentId(1),
            bids: vec![BookLevel { price: d("9990"), qty: d("1") }],
            asks: vec![BookLevel { price: d("9995"), qty: d("1") }],
            ts_ms: 0,
        });
        h.feed(vec![trade(InstrumentId(0), 1, d("10000"), d("5"), Side::Buy, 500)]);
        let o = orders(&h.feed(vec![Event::Timer(1000)]));
        assert_eq!(o[0].1, d("9994.99"));
        // 5 BTC is worth far more than 5000 USDT: capped at 5000 / 9994.99.
        assert_eq!(o[0].2, d("0.500"));
    }

    #[test]
    fn a_leftover_maker_order_is_cancelled_up_to_three_times() {
        let mut h = harness();
        h.feed(vec![trade(InstrumentId(0), 1, d("10000"), d("0.05"), Side::Buy, 500)]);
        h.feed(vec![Event::Timer(1000)]);
        let maker = h.strategy.state.maker.clone().map(|(id, _)| id).unwrap_or_default();
        let taker = h.strategy.state.taker.clone().unwrap_or_default();
        let cancel = vec![Action::Cancel { instrument: InstrumentId(1), client_order_id: maker.clone() }];
        // The taker expires having taken nothing: the maker is cancelled at once.
        let expired = strategy_sdk::OrderUpdate {
            instrument: InstrumentId(1),
            owner: Whose::Mine,
            client_order_id: taker,
            status: strategy_sdk::OrderStatus::Expired,
            filled_qty: Decimal::ZERO,
            remaining_qty: Decimal::ZERO,
            reason: None,
            ts_ms: 1000,
        };
        assert_eq!(h.feed(vec![Event::Order(expired)]), cancel);
        for round in 0..2 {
            assert_eq!(h.feed(vec![Event::Timer(2000 + round * 1000)]), cancel);
        }
        let next = h.feed(vec![Event::Timer(5000)]);
        assert_eq!(orders(&next).len(), 2, "gives up on the stuck order and trades again");
    }
}
