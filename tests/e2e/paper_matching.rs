//! Property tests of the paper venue's matching engine against a deliberately simple
//! reference model: a flat list of resting orders searched for the best price and the
//! earliest arrival. Every operation must produce exactly the events the model predicts,
//! and the book and balances must keep their invariants throughout.

use std::collections::BTreeMap;

use proptest::prelude::*;
use runtime::model::{
    BookLevel, Decimal, Fill, InstrumentId, InstrumentInfo, Liquidity, OrderRequest, OrderStatus, OrderType, SelfTradePrevention, Side, StrategyId, TimeInForce,
    VenueId,
};
use runtime::venue::paper::book::Account;
use runtime::venue::paper::{LiquidityProfile, MarketPrint, PaperVenue, PaperVenueConfig, Settlement};
use runtime::venue::{Venue, VenueEvent};

const INST: InstrumentId = InstrumentId(0);

fn d(s: &str) -> Decimal {
    s.parse().unwrap_or_default()
}

fn venue(settlement: Settlement, balances: &[(&str, &str)]) -> PaperVenue {
    venue_with(settlement, balances, false)
}

fn venue_with(settlement: Settlement, balances: &[(&str, &str)], fees_in_received: bool) -> PaperVenue {
    venue_liquid(settlement, balances, fees_in_received, None)
}

/// The background liquidity of the tests that have one: three levels a side, 2 apart,
/// 0.3 each (smaller than most orders, so they walk through it).
fn ladder() -> LiquidityProfile {
    LiquidityProfile { levels: 3, step: d("2"), qty: d("0.3") }
}

fn venue_liquid(settlement: Settlement, balances: &[(&str, &str)], fees_in_received: bool, liquidity: Option<LiquidityProfile>) -> PaperVenue {
    let mut v = PaperVenue::new(PaperVenueConfig {
        id: VenueId(0),
        name: "p".into(),
        settlement,
        maker_fee: d("0.001"),
        taker_fee: d("0.002"),
        balances: balances.iter().map(|(a, b)| (a.to_string(), d(b))).collect(),
        fees_in_received,
        faults: Default::default(),
    });
    v.add_instrument(
        InstrumentInfo {
            id: INST,
            venue: VenueId(0),
            venue_name: "p".into(),
            symbol: "BTCUSDT".into(),
            base_asset: "BTC".into(),
            quote_asset: "USDT".into(),
            tick_size: d("1"),
            lot_size: d("0.1"),
            min_qty: d("0.1"),
            min_notional: Decimal::ZERO,
            paper: true,
        },
        liquidity,
    );
    v
}

#[derive(Debug, Clone)]
enum Op {
    Submit { owner: u32, side: Side, price: i64, lots: i64, tif: Option<TimeInForce>, stp: SelfTradePrevention },
    Cancel { nth: usize },
    Print { aggressor: Side, price: i64, lots: i64 },
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell)]
}

fn op() -> impl Strategy<Value = Op> {
    let tif = prop_oneof![
        3 => Just(Some(TimeInForce::Gtc)),
        1 => Just(Some(TimeInForce::Ioc)),
        1 => Just(Some(TimeInForce::Fok)),
        1 => Just(Some(TimeInForce::PostOnly)),
        1 => Just(None),
    ];
    let stp = prop_oneof![
        4 => Just(SelfTradePrevention::None),
        1 => Just(SelfTradePrevention::ExpireTaker),
        1 => Just(SelfTradePrevention::ExpireMaker),
        1 => Just(SelfTradePrevention::ExpireBoth),
    ];
    prop_oneof![
        6 => (0u32..2, side(), 95i64..=105, 1i64..=6, tif, stp).prop_map(|(owner, side, price, lots, tif, stp)| Op::Submit { owner, side, price, lots, tif, stp }),
        2 => (0usize..64).prop_map(|nth| Op::Cancel { nth }),
        2 => (side(), 95i64..=105, 1i64..=6).prop_map(|(aggressor, price, lots)| Op::Print { aggressor, price, lots }),
    ]
}

fn qty(lots: i64) -> Decimal {
    Decimal::new(lots, 1)
}

/// What the tests compare: every fill and status change, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Fill { id: String, side: Side, price: Decimal, qty: Decimal, liquidity: Liquidity },
    Status { id: String, status: OrderStatus },
}

#[derive(Debug, Clone)]
struct RefOrder {
    id: String,
    account: Account,
    side: Side,
    price: Decimal,
    remaining: Decimal,
    seq: u64,
}

/// The reference model: obviously correct, not fast.
#[derive(Default)]
struct Model {
    orders: Vec<RefOrder>,
    seq: u64,
    last_price: Option<Decimal>,
    seen: Vec<Seen>,
    /// The venue's background liquidity, quoted again around every print.
    liquidity: Option<LiquidityProfile>,
}

impl Model {
    fn best(&self, taker: Side, limit: Option<Decimal>) -> Option<usize> {
        let crosses = |o: &RefOrder| match (taker, limit) {
            (_, None) => true,
            (Side::Buy, Some(l)) => o.price <= l,
            (Side::Sell, Some(l)) => o.price >= l,
        };
        self.orders
            .iter()
            .enumerate()
            .filter(|(_, o)| o.side != taker && crosses(o))
            .min_by(|(_, a), (_, b)| {
                let by_price = if taker == Side::Buy { a.price.cmp(&b.price) } else { b.price.cmp(&a.price) };
                by_price.then(a.seq.cmp(&b.seq))
            })
            .map(|(i, _)| i)
    }

    /// Walks like an exchange; returns the unfilled remainder and whether STP ended it.
    fn walk(&mut self, id: &str, account: Account, side: Side, limit: Option<Decimal>, mut remaining: Decimal, stp: SelfTradePrevention) -> (Decimal, bool) {
        while remaining > Decimal::ZERO {
            let Some(i) = self.best(side, limit) else { break };
            if self.orders[i].account == account && stp != SelfTradePrevention::None {
                if stp == SelfTradePrevention::ExpireTaker {
                    return (remaining, true);
                }
                let maker = self.orders.remove(i);
                self.seen.push(Seen::Status { id: maker.id, status: OrderStatus::Expired });
                if stp == SelfTradePrevention::ExpireBoth {
                    return (remaining, true);
                }
                continue;
            }
            let q = remaining.min(self.orders[i].remaining);
            let maker = &mut self.orders[i];
            maker.remaining -= q;
            remaining -= q;
            let (maker_id, maker_side, price, done, maker_account) = (maker.id.clone(), maker.side, maker.price, maker.remaining.is_zero(), maker.account);
            if maker_account == Account::Main {
                self.seen.push(Seen::Fill { id: maker_id.clone(), side: maker_side, price, qty: q, liquidity: Liquidity::Maker });
            }
            if account == Account::Main {
                self.seen.push(Seen::Fill { id: id.to_string(), side, price, qty: q, liquidity: Liquidity::Taker });
            }
            if done {
                self.orders.remove(i);
                if maker_account == Account::Main {
                    self.seen.push(Seen::Status { id: maker_id, status: OrderStatus::Filled });
                }
            }
        }
        (remaining, false)
    }

    fn executable(&self, side: Side, limit: Option<Decimal>, stp: SelfTradePrevention) -> Decimal {
        let mut sorted: Vec<&RefOrder> = self.orders.iter().filter(|o| o.side != side).collect();
        sorted.sort_by(|a, b| {
            let by_price = if side == Side::Buy { a.price.cmp(&b.price) } else { b.price.cmp(&a.price) };
            by_price.then(a.seq.cmp(&b.seq))
        });
        let mut total = Decimal::ZERO;
        for o in sorted {
            let crosses = match (side, limit) {
                (_, None) => true,
                (Side::Buy, Some(l)) => o.price <= l,
                (Side::Sell, Some(l)) => o.price >= l,
            };
            if !crosses {
                break;
            }
            if o.account == Account::Main && stp != SelfTradePrevention::None {
                if stp == SelfTradePrevention::ExpireMaker {
                    continue;
                }
                break;
            }
            total += o.remaining;
        }
        total
    }

    fn submit(&mut self, id: &str, side: Side, price: Decimal, qty: Decimal, tif: Option<TimeInForce>, stp: SelfTradePrevention) {
        let limit = tif.map(|_| price);
        let tif = tif.unwrap_or(TimeInForce::Ioc);
        let has_reference = self.last_price.is_some() || !self.orders.is_empty();
        if limit.is_none() && !has_reference {
            return self.seen.push(Seen::Status { id: id.into(), status: OrderStatus::Rejected });
        }
        if tif == TimeInForce::PostOnly && self.best(side, limit).is_some() {
            return self.seen.push(Seen::Status { id: id.into(), status: OrderStatus::Rejected });
        }
        self.seen.push(Seen::Status { id: id.into(), status: OrderStatus::Accepted });
        if tif == TimeInForce::Fok && self.executable(side, limit, stp) < qty {
            return self.seen.push(Seen::Status { id: id.into(), status: OrderStatus::Expired });
        }
        let (remaining, stp_expired) = self.walk(id, Account::Main, side, limit, qty, stp);
        if remaining.is_zero() {
            self.seen.push(Seen::Status { id: id.into(), status: OrderStatus::Filled });
        } else if stp_expired || !matches!(tif, TimeInForce::Gtc | TimeInForce::PostOnly) {
            self.seen.push(Seen::Status { id: id.into(), status: OrderStatus::Expired });
        } else {
            self.seq += 1;
            self.orders.push(RefOrder { id: id.into(), account: Account::Main, side, price, remaining, seq: self.seq });
        }
    }

    fn cancel(&mut self, id: &str) {
        if let Some(i) = self.orders.iter().position(|o| o.id == id) {
            self.orders.remove(i);
            self.seen.push(Seen::Status { id: id.into(), status: OrderStatus::Canceled });
        }
    }

    fn print(&mut self, aggressor: Side, price: Decimal, qty: Decimal) {
        // The background quoted at the last print is withdrawn first.
        self.orders.retain(|o| o.account == Account::Main);
        self.walk("", Account::Market, aggressor, Some(price), qty, SelfTradePrevention::ExpireTaker);
        self.last_price = Some(price);
        let Some(ladder) = self.liquidity.clone() else { return };
        for k in 1..=ladder.levels {
            let offset = ladder.step * Decimal::from(k);
            for (side, at) in [(Side::Buy, price - offset), (Side::Sell, price + offset)] {
                if at <= Decimal::ZERO {
                    continue;
                }
                let (remaining, _) = self.walk("", Account::Market, side, Some(at), ladder.qty, SelfTradePrevention::ExpireTaker);
                if remaining > Decimal::ZERO {
                    self.seq += 1;
                    self.orders.push(RefOrder { id: String::new(), account: Account::Market, side, price: at, remaining, seq: self.seq });
                }
            }
        }
    }

    /// Every resting order as the book lists them: bids then asks, best price first, then
    /// by arrival.
    fn book(&self) -> Vec<(Account, Side, Decimal, Decimal)> {
        let mut sorted: Vec<&RefOrder> = self.orders.iter().collect();
        sorted.sort_by(|a, b| {
            let by_side = (a.side == Side::Sell).cmp(&(b.side == Side::Sell));
            let by_price = if a.side == Side::Buy { b.price.cmp(&a.price) } else { a.price.cmp(&b.price) };
            by_side.then(by_price).then(a.seq.cmp(&b.seq))
        });
        sorted.into_iter().map(|o| (o.account, o.side, o.price, o.remaining)).collect()
    }

    /// The book's aggregated levels on `side`, best first.
    fn depth(&self, side: Side) -> Vec<BookLevel> {
        let mut out: Vec<BookLevel> = Vec::new();
        for (_, s, price, remaining) in self.book() {
            if s != side {
                continue;
            }
            match out.last_mut() {
                Some(level) if level.price == price => level.qty += remaining,
                _ => out.push(BookLevel { price, qty: remaining }),
            }
        }
        out
    }
}

fn observe(v: &mut PaperVenue) -> Vec<Seen> {
    let mut events = Vec::new();
    v.drain_events(&mut events);
    events
        .into_iter()
        .filter_map(|e| match e {
            VenueEvent::Fill(Fill { client_order_id, side, price, qty, liquidity, .. }) => Some(Seen::Fill { id: client_order_id, side, price, qty, liquidity }),
            VenueEvent::Order(u) => Some(Seen::Status { id: u.client_order_id, status: u.status }),
            VenueEvent::Trade(_) | VenueEvent::Book(_) => None,
        })
        .collect()
}

fn apply(v: &mut PaperVenue, op: &Op, n: usize, ids: &[String]) -> Option<String> {
    match op {
        Op::Submit { owner, side, price, lots, tif, stp } => {
            let id = format!("o{n}");
            let order_type = match tif {
                Some(tif) => OrderType::Limit { price: Decimal::from(*price), time_in_force: *tif },
                None => OrderType::Market,
            };
            let request = OrderRequest { client_order_id: id.clone(), instrument: INST, side: *side, order_type, qty: qty(*lots) };
            v.submit(StrategyId(*owner), &request, *stp, n as i64, None);
            Some(id)
        }
        Op::Cancel { nth } => {
            if let Some(id) = ids.get(nth % ids.len().max(1)) {
                v.cancel(StrategyId(0), INST, id, n as i64);
            }
            None
        }
        Op::Print { aggressor, price, lots } => {
            v.replay_print(INST, &MarketPrint { trade_id: n as u64, price: Decimal::from(*price), qty: qty(*lots), aggressor: *aggressor, ts_ms: n as i64 });
            None
        }
    }
}

fn check_book(v: &PaperVenue) -> Result<(), TestCaseError> {
    let book = v.order_book(INST).ok_or_else(|| TestCaseError::fail("no book"))?;
    if let (Some(bid), Some(ask)) = (book.best_bid(), book.best_ask()) {
        prop_assert!(bid < ask, "crossed book at rest: bid {bid} ask {ask}");
    }
    for o in book.orders() {
        prop_assert!(o.remaining > Decimal::ZERO && o.remaining <= o.original_qty);
    }
    Ok(())
}

/// Every asset is only moved, never made or lost: accounts plus collected fees add up
/// to what the accounts started with.
fn check_conservation(v: &PaperVenue, initial: &BTreeMap<String, Decimal>) -> Result<(), TestCaseError> {
    let mut totals: BTreeMap<String, Decimal> = BTreeMap::new();
    for ((_, asset), balance) in v.all_balances() {
        *totals.entry(asset.clone()).or_default() += balance.total;
    }
    for (asset, fee) in v.fees_collected() {
        *totals.entry(asset.clone()).or_default() += *fee;
    }
    for (asset, total) in totals {
        prop_assert_eq!(total, initial.get(&asset).copied().unwrap_or_default(), "asset {} not conserved", asset);
    }
    Ok(())
}

fn matches_the_model(ops: &[Op], liquidity: Option<LiquidityProfile>) -> Result<(), TestCaseError> {
    let mut v = venue_liquid(Settlement::Perpetual, &[], false, liquidity.clone());
    let mut model = Model { liquidity, ..Model::default() };
    let mut ids = Vec::new();
    for (n, op) in ops.iter().enumerate() {
        let placed = apply(&mut v, op, n, &ids);
        match op {
            Op::Submit { side, price, lots, tif, stp, .. } => model.submit(&format!("o{n}"), *side, Decimal::from(*price), qty(*lots), *tif, *stp),
            Op::Cancel { nth } => {
                if let Some(id) = ids.get(nth % ids.len().max(1)) {
                    model.cancel(id);
                }
            }
            Op::Print { aggressor, price, lots } => model.print(*aggressor, Decimal::from(*price), qty(*lots)),
        }
        ids.extend(placed);
        let seen = observe(&mut v);
        prop_assert_eq!(&seen, &model.seen, "after op {} {:?}", n, op);
        model.seen.clear();
        // Post-only never takes; IOC, FOK and market never rest.
        for s in &seen {
            if let Seen::Fill { id, liquidity: Liquidity::Taker, .. } = s {
                let taker = id.trim_start_matches('o').parse::<usize>().ok().and_then(|i| ops.get(i));
                prop_assert!(!matches!(taker, Some(Op::Submit { tif: Some(TimeInForce::PostOnly), .. })), "post-only order {} took liquidity", id);
            }
        }
        let book = v.order_book(INST).ok_or_else(|| TestCaseError::fail("no book"))?;
        let mut resting: Vec<(String, Side, Decimal, Decimal)> = book.orders().filter(|o| o.account == Account::Main).map(|o| (o.client_order_id.clone(), o.side, o.price, o.remaining)).collect();
        let mut expected: Vec<(String, Side, Decimal, Decimal)> = model.orders.iter().filter(|o| o.account == Account::Main).map(|o| (o.id.clone(), o.side, o.price, o.remaining)).collect();
        resting.sort_by(|a, b| a.0.cmp(&b.0));
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        prop_assert_eq!(&resting, &expected);
        for (id, ..) in &resting {
            let i = id.trim_start_matches('o').parse::<usize>().unwrap_or(usize::MAX);
            prop_assert!(matches!(ops.get(i), Some(Op::Submit { tif: Some(TimeInForce::Gtc | TimeInForce::PostOnly), .. })), "{} rests but is not GTC or post-only", id);
        }
        let whole: Vec<(Account, Side, Decimal, Decimal)> = book.orders().map(|o| (o.account, o.side, o.price, o.remaining)).collect();
        prop_assert_eq!(&whole, &model.book(), "the whole book, background included, in book order");
        let depth = v.book(INST, 100).ok_or_else(|| TestCaseError::fail("no book"))?;
        prop_assert_eq!(&depth.bids, &model.depth(Side::Buy));
        prop_assert_eq!(&depth.asks, &model.depth(Side::Sell));
        // A checkpoint restores the same book, the background in its place among ours.
        let mut restored = venue_liquid(Settlement::Perpetual, &[], false, model.liquidity.clone());
        restored.load_state(v.save_state());
        prop_assert_eq!(restored.save_state(), v.save_state());
        let again: Vec<(Account, Side, Decimal, Decimal)> = restored.order_book(INST).map(|b| b.orders().map(|o| (o.account, o.side, o.price, o.remaining)).collect()).unwrap_or_default();
        prop_assert_eq!(&again, &whole);
        check_book(&v)?;
        check_conservation(&v, &BTreeMap::new())?;
    }
    Ok(())
}


proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Price-time priority, partial fills, IOC/FOK/post-only/market, STP and cancels all
    /// produce exactly the model's events, and the resting book equals the model's.
    #[test]
    fn matches_the_reference_model(ops in proptest::collection::vec(op(), 1..80)) {
        matches_the_model(&ops, None)?;
    }

    /// The same with background liquidity quoted around every print: our orders meet it
    /// and it meets ours in price-time priority with them, as one book.
    #[test]
    fn matches_the_reference_model_with_background_liquidity(ops in proptest::collection::vec(op(), 1..80)) {
        matches_the_model(&ops, Some(ladder()))?;
    }

    /// On a spot venue the account never spends what it does not have: funds held for
    /// open orders match those orders exactly, and nothing is created or lost.
    #[test]
    fn spot_balances_hold_and_conserve(ops in proptest::collection::vec(op(), 1..80), fees_in_received in any::<bool>()) {
        let initial = [("USDT", "500"), ("BTC", "1.5")];
        let mut v = venue_with(Settlement::Spot, &initial, fees_in_received);
        let initial: BTreeMap<String, Decimal> = initial.iter().map(|(a, b)| (a.to_string(), d(b))).collect();
        let mut ids = Vec::new();
        for (n, op) in ops.iter().enumerate() {
            ids.extend(apply(&mut v, op, n, &ids));
            observe(&mut v);
            check_book(&v)?;
            check_conservation(&v, &initial)?;
            let book = v.order_book(INST).ok_or_else(|| TestCaseError::fail("no book"))?;
            let mut held: BTreeMap<&str, Decimal> = BTreeMap::new();
            for o in book.orders().filter(|o| o.account == Account::Main) {
                *held.entry(if o.side == Side::Buy { "USDT" } else { "BTC" }).or_default() += o.lock_per_unit * o.remaining;
            }
            for (asset, balance) in v.balances() {
                prop_assert!(balance.total >= Decimal::ZERO, "{} overdrawn: {:?}", asset, balance);
                prop_assert!(balance.locked >= Decimal::ZERO && balance.locked <= balance.total, "{} lock out of range: {:?}", asset, balance);
                prop_assert_eq!(balance.locked, held.get(asset.as_str()).copied().unwrap_or_default(), "{} held funds differ from open orders", asset);
            }
        }
    }
}

/// Fees in the received asset, as Binance and OKX spot charge: the buyer pays in the
/// base asset (less of it arrives), the seller in the quote asset; each fill says which.
#[test]
fn a_spot_buyer_pays_its_fee_in_the_base_asset_when_fees_are_in_the_received_asset() {
    let mut v = venue_with(Settlement::Spot, &[("USDT", "1000"), ("BTC", "1")], true);
    let sell = OrderRequest { client_order_id: "s".into(), instrument: INST, side: Side::Sell, order_type: OrderType::Limit { price: d("100"), time_in_force: TimeInForce::Gtc }, qty: d("1") };
    v.submit(StrategyId(0), &sell, SelfTradePrevention::None, 0, None);
    let buy = OrderRequest { client_order_id: "b".into(), instrument: INST, side: Side::Buy, order_type: OrderType::Limit { price: d("100"), time_in_force: TimeInForce::Gtc }, qty: d("1") };
    v.submit(StrategyId(1), &buy, SelfTradePrevention::None, 0, None);
    let mut events = Vec::new();
    v.drain_events(&mut events);
    let fees: Vec<(Side, Decimal, String)> = events.iter().filter_map(|e| match e {
        VenueEvent::Fill(f) => Some((f.side, f.fee, f.fee_asset.clone())),
        _ => None,
    }).collect();
    // The seller rested (maker, 0.001 of 100 USDT); the buyer took (taker, 0.002 of 1 BTC).
    assert_eq!(fees, vec![(Side::Sell, d("0.1"), "USDT".to_string()), (Side::Buy, d("0.002"), "BTC".to_string())]);
    // One account both sides here: BTC 1 - 1 + 0.998, USDT 1000 + 99.9 - 100.
    assert_eq!(v.balances().get("BTC").map(|b| b.total), Some(d("0.998")));
    assert_eq!(v.balances().get("USDT").map(|b| b.total), Some(d("999.9")));
    assert_eq!(v.fees_collected().get("BTC"), Some(&d("0.002")));
}

#[test]
fn post_only_that_would_take_is_rejected_with_binances_words() {
    let mut v = venue(Settlement::Perpetual, &[]);
    let sell = OrderRequest { client_order_id: "s".into(), instrument: INST, side: Side::Sell, order_type: OrderType::Limit { price: d("100"), time_in_force: TimeInForce::Gtc }, qty: d("1") };
    v.submit(StrategyId(0), &sell, SelfTradePrevention::None, 0, None);
    let buy = OrderRequest { client_order_id: "b".into(), instrument: INST, side: Side::Buy, order_type: OrderType::Limit { price: d("100"), time_in_force: TimeInForce::PostOnly }, qty: d("1") };
    v.submit(StrategyId(1), &buy, SelfTradePrevention::None, 0, None);
    let mut events = Vec::new();
    v.drain_events(&mut events);
    let reason = events.iter().find_map(|e| match e {
        VenueEvent::Order(u) if u.client_order_id == "b" => u.reason.clone(),
        _ => None,
    });
    assert_eq!(reason.as_deref(), Some("Order would immediately match and take."));
}

#[test]
fn filters_reject_off_grid_prices_and_sizes() {
    let mut v = venue(Settlement::Spot, &[("USDT", "1000")]);
    let mut reasons = Vec::new();
    for (id, price, qty) in [("tick", "100.5", "1"), ("lot", "100", "0.15"), ("funds", "100", "20")] {
        let r = OrderRequest { client_order_id: id.into(), instrument: INST, side: Side::Buy, order_type: OrderType::Limit { price: d(price), time_in_force: TimeInForce::Gtc }, qty: d(qty) };
        v.submit(StrategyId(0), &r, SelfTradePrevention::ExpireTaker, 0, None);
        let mut events = Vec::new();
        v.drain_events(&mut events);
        reasons.extend(events.into_iter().filter_map(|e| match e {
            VenueEvent::Order(u) if u.status == OrderStatus::Rejected => u.reason,
            _ => None,
        }));
    }
    assert_eq!(reasons, vec!["Filter failure: PRICE_FILTER", "Filter failure: LOT_SIZE", "Account has insufficient balance for requested action."]);
}
