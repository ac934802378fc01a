//! The exchange's books and accounts: the paper venue's matching engine, plus the order
//! and trade records a real exchange keeps (ids, statuses, quote amounts) for its queries
//! and pushes. Protocol modules turn what happens here into their own JSON.

use std::collections::HashMap;

use trading_model::{Decimal, InstrumentId, InstrumentInfo, OrderRequest, OrderStatus, OrderType, SelfTradePrevention, Side, StrategyId, TimeInForce, VenueId};
use runtime::venue::paper::{Faults, LiquidityProfile, MarketPrint, PaperVenue, PaperVenueConfig, Settlement};
use runtime::venue::{Venue, VenueEvent};

/// One instrument as the exchange lists it.
#[derive(Debug, Clone)]
pub struct Listing {
    pub symbol: String,
    pub base: String,
    pub quote: String,
    pub tick_size: Decimal,
    pub lot_size: Decimal,
    pub min_qty: Decimal,
    pub min_notional: Decimal,
    /// Background liquidity re-quoted around every print.
    pub liquidity: Option<LiquidityProfile>,
    /// OKX swaps: base units per contract.
    pub contract_value: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub order_id: i64,
    pub client_order_id: String,
    pub symbol: String,
    pub side: Side,
    pub order_type: OrderType,
    pub qty: Decimal,
    pub executed: Decimal,
    pub quote: Decimal,
    pub status: OrderStatus,
    pub stp: SelfTradePrevention,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub reason: Option<String>,
}

impl Order {
    /// Binance's status word.
    pub fn binance_status(&self) -> &'static str {
        match self.status {
            OrderStatus::Accepted if self.executed > Decimal::ZERO => "PARTIALLY_FILLED",
            OrderStatus::Accepted => "NEW",
            OrderStatus::Filled => "FILLED",
            OrderStatus::Canceled => "CANCELED",
            OrderStatus::Expired if self.reason.as_deref() == Some(runtime::venue::paper::reasons::STP_EXPIRED) => "EXPIRED_IN_MATCH",
            OrderStatus::Expired => "EXPIRED",
            OrderStatus::Rejected => "REJECTED",
        }
    }

    pub fn price(&self) -> Decimal {
        match self.order_type {
            OrderType::Limit { price, .. } => price,
            OrderType::Market => Decimal::ZERO,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trade {
    pub trade_id: i64,
    pub order_id: i64,
    pub client_order_id: String,
    pub symbol: String,
    pub side: Side,
    pub price: Decimal,
    pub qty: Decimal,
    pub fee: Decimal,
    pub fee_asset: String,
    pub maker: bool,
    pub ts_ms: i64,
}

/// Something to push: an order changed (with the trade that changed it), or a trade
/// printed on the public tape.
#[derive(Debug, Clone)]
pub enum Happening {
    Order { order: Box<Order>, trade: Option<Trade>, kind: ExecKind },
    Public { symbol: String, trade_id: i64, price: Decimal, qty: Decimal, buyer_is_maker: bool, ts_ms: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecKind {
    New,
    Trade,
    Canceled,
    Expired,
    Rejected,
}

impl ExecKind {
    pub fn binance(self) -> &'static str {
        match self {
            ExecKind::New => "NEW",
            ExecKind::Trade => "TRADE",
            ExecKind::Canceled => "CANCELED",
            ExecKind::Expired => "EXPIRED",
            ExecKind::Rejected => "REJECTED",
        }
    }
}

/// Why an order or cancel was refused, in the paper venue's (Binance's) words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

pub struct Market {
    venue: PaperVenue,
    listings: Vec<Listing>,
    orders: HashMap<String, Order>,
    by_order_id: HashMap<i64, String>,
    trades: Vec<Trade>,
    /// Indexes of `trades` by order id, and the net position per symbol, kept as trades
    /// come: a busy account (the tick-to-trade benchmark's 100,000 hedges) would otherwise
    /// scan every trade on each placement answer and account push.
    trades_by_order: HashMap<i64, Vec<usize>>,
    net: HashMap<String, Decimal>,
    next_order_id: i64,
    /// Orders whose acceptance was already pushed.
    announced: std::collections::HashSet<String>,
    /// A fault: the next immediate-or-cancel or market order finds only this much
    /// liquidity, fills that and expires (a thin book).
    pub fill_cap: Option<Decimal>,
    /// Binance spot: a client id is taken again only after its order FILLED.
    pub reuse_only_after_fill: bool,
    /// Orders whose client id was taken again, by order id.
    earlier: HashMap<i64, Order>,
    /// Leverage set per symbol (OKX `set-leverage`); unset: [`DEFAULT_LEVERAGE`].
    pub leverage: HashMap<String, Decimal>,
}

/// The leverage of a symbol nobody set.
pub const DEFAULT_LEVERAGE: Decimal = Decimal::ONE;

const ACCOUNT: StrategyId = StrategyId(0);

impl Market {
    pub fn new(name: &str, perpetual: bool, listings: Vec<Listing>, balances: std::collections::BTreeMap<String, Decimal>, maker_fee: Decimal, taker_fee: Decimal) -> Market {
        let mut venue = PaperVenue::new(PaperVenueConfig {
            id: VenueId(0),
            name: name.to_string(),
            settlement: if perpetual { Settlement::Perpetual } else { Settlement::Spot },
            maker_fee,
            taker_fee,
            balances,
            // Binance and OKX spot charge each side in the asset it receives.
            fees_in_received: !perpetual,
            faults: Faults::default(),
        });
        for (i, l) in listings.iter().enumerate() {
            venue.add_instrument(
                InstrumentInfo {
                    id: InstrumentId(i as u32),
                    venue: VenueId(0),
                    venue_name: name.to_string(),
                    symbol: l.symbol.clone(),
                    base_asset: l.base.clone(),
                    quote_asset: l.quote.clone(),
                    tick_size: l.tick_size,
                    lot_size: l.lot_size,
                    min_qty: l.min_qty,
                    min_notional: l.min_notional,
                    paper: true,
                },
                l.liquidity.clone(),
            );
            if l.contract_value != Decimal::ONE {
                // An OKX swap beside the spot pairs: fees in its settlement asset.
                venue.set_fees_in_received(InstrumentId(i as u32), false);
            }
        }
        Market { venue, listings, orders: HashMap::new(), by_order_id: HashMap::new(), trades: Vec::new(), trades_by_order: HashMap::new(), net: HashMap::new(), next_order_id: 1_000_001, announced: Default::default(), fill_cap: None, reuse_only_after_fill: false, earlier: HashMap::new(), leverage: HashMap::new() }
    }

    pub fn listings(&self) -> &[Listing] {
        &self.listings
    }

    fn instrument(&self, symbol: &str) -> Option<InstrumentId> {
        self.listings.iter().position(|l| l.symbol == symbol).map(|i| InstrumentId(i as u32))
    }

    pub fn listing(&self, symbol: &str) -> Option<&Listing> {
        self.listings.iter().find(|l| l.symbol == symbol)
    }

    pub fn order(&self, client_order_id: &str) -> Option<&Order> {
        self.orders.get(client_order_id)
    }

    pub fn order_by_id(&self, order_id: i64) -> Option<&Order> {
        self.earlier.get(&order_id).or_else(|| self.by_order_id.get(&order_id).and_then(|c| self.orders.get(c)).filter(|o| o.order_id == order_id))
    }

    /// Forgets an order the venue refused after all (a USD-M fill-or-kill it could not fill).
    pub fn forget(&mut self, client_order_id: &str) {
        if let Some(order) = self.orders.remove(client_order_id) {
            self.by_order_id.remove(&order.order_id);
        }
        self.announced.remove(client_order_id);
    }

    pub fn open_orders(&self, symbol: Option<&str>) -> Vec<&Order> {
        let mut open: Vec<&Order> = self.orders.values().filter(|o| o.status == OrderStatus::Accepted && symbol.is_none_or(|s| s == o.symbol)).collect();
        open.sort_by_key(|o| o.order_id);
        open
    }

    /// Every order of `symbol` the venue knows, oldest first (those whose client id was
    /// taken again included).
    pub fn all_orders(&self, symbol: &str) -> Vec<&Order> {
        let mut all: Vec<&Order> = self.orders.values().chain(self.earlier.values()).filter(|o| o.symbol == symbol).collect();
        all.sort_by_key(|o| o.order_id);
        all
    }

    /// The trades of one order, oldest first.
    pub fn trades_of_order(&self, order_id: i64) -> Vec<&Trade> {
        self.trades_by_order.get(&order_id).into_iter().flatten().filter_map(|&i| self.trades.get(i)).collect()
    }

    /// The account's trades of `symbol` from `since_ms` and from trade id `from_id` on,
    /// oldest first, lazily. Trades are appended in the order of their ids, so a `fromId`
    /// page starts at a binary search, not at a scan of the whole history: a
    /// reconciliation pages through thousands while the market lock is held.
    pub fn trades_from<'a>(&'a self, symbol: &'a str, since_ms: i64, from_id: Option<i64>) -> impl Iterator<Item = &'a Trade> + 'a {
        let start = from_id.map_or(0, |from| self.trades.partition_point(|t| t.trade_id < from));
        self.trades[start..].iter().filter(move |t| t.symbol == symbol && t.ts_ms >= since_ms)
    }

    pub fn trades_since(&self, symbol: &str, since_ms: i64) -> Vec<&Trade> {
        self.trades.iter().filter(|t| t.symbol == symbol && t.ts_ms >= since_ms).collect()
    }

    pub fn balances(&self) -> Vec<(String, Decimal, Decimal)> {
        self.venue.balances().into_iter().map(|(asset, b)| (asset, b.available(), b.locked)).collect()
    }

    /// The net position of one symbol and its average entry price: the weighted price of
    /// the fills that built it since it was last flat (reducing fills leave it as it is).
    pub fn position(&self, symbol: &str) -> (Decimal, Decimal) {
        let (mut pos, mut avg) = (Decimal::ZERO, Decimal::ZERO);
        for t in self.trades.iter().filter(|t| t.symbol == symbol) {
            let signed = if t.side == Side::Buy { t.qty } else { -t.qty };
            let after = pos + signed;
            if pos.is_zero() || (pos.is_sign_positive() == signed.is_sign_positive()) {
                avg = (avg * pos.abs() + t.price * t.qty) / after.abs();
            } else if after.is_sign_positive() != pos.is_sign_positive() && !after.is_zero() {
                avg = t.price;
            }
            pos = after;
            if pos.is_zero() {
                avg = Decimal::ZERO;
            }
        }
        (pos, avg)
    }

    /// Net position per symbol from our trades (perpetuals).
    pub fn positions(&self) -> Vec<(String, Decimal)> {
        let mut out: Vec<(String, Decimal)> = self.listings.iter().map(|l| (l.symbol.clone(), self.net.get(&l.symbol).copied().unwrap_or_default())).collect();
        out.sort();
        out
    }

    pub fn last_price(&self, symbol: &str) -> Option<Decimal> {
        self.instrument(symbol).and_then(|i| self.venue.last_price(i))
    }

    pub fn depth(&self, symbol: &str, levels: usize) -> Option<trading_model::BookSnapshot> {
        self.instrument(symbol).and_then(|i| self.venue.book(i, levels))
    }

    /// Places an order. An order the engine refuses is still an order the exchange saw:
    /// it is recorded as REJECTED and the refusal returned.
    #[allow(clippy::too_many_arguments)] // the fields of one order
    pub fn place(&mut self, symbol: &str, client_order_id: &str, side: Side, order_type: OrderType, qty: Decimal, stp: SelfTradePrevention, now_ms: i64) -> Result<(Order, Vec<Happening>), Refusal> {
        let Some(instrument) = self.instrument(symbol) else { return Err(Refusal("Invalid symbol.".into())) };
        // A client id may be used again once its order is done, on Binance spot only once
        // it FILLED; the order it named stays reachable by its order id.
        if let Some(previous) = self.orders.get(client_order_id) {
            let reusable = match previous.status {
                OrderStatus::Accepted => false,
                OrderStatus::Filled => true,
                _ => !self.reuse_only_after_fill,
            };
            if !reusable {
                return Err(Refusal(runtime::venue::paper::reasons::DUPLICATE.into()));
            }
            self.earlier.insert(previous.order_id, previous.clone());
        }
        let order_id = self.next_order_id;
        self.next_order_id += 1;
        let order = Order {
            order_id,
            client_order_id: client_order_id.to_string(),
            symbol: symbol.to_string(),
            side,
            order_type,
            qty,
            executed: Decimal::ZERO,
            quote: Decimal::ZERO,
            status: OrderStatus::Accepted,
            stp,
            created_ms: now_ms,
            updated_ms: now_ms,
            reason: None,
        };
        self.orders.insert(client_order_id.to_string(), order);
        self.by_order_id.insert(order_id, client_order_id.to_string());
        let immediate = matches!(order_type, OrderType::Market | OrderType::Limit { time_in_force: TimeInForce::Ioc, .. });
        let cap = if immediate { self.fill_cap.take() } else { None };
        let request = OrderRequest { client_order_id: client_order_id.to_string(), instrument, side, order_type, qty: cap.map_or(qty, |c| c.min(qty)) };
        self.venue.submit(ACCOUNT, &request, stp, now_ms, None);
        let mut happenings = self.drain(now_ms);
        if cap.is_some() {
            if let Some(order) = self.orders.get_mut(client_order_id).filter(|o| o.status == OrderStatus::Accepted) {
                // What the thin book could not fill expires, as an IOC's rest does.
                order.status = OrderStatus::Expired;
                order.updated_ms = now_ms;
                happenings.push(Happening::Order { order: Box::new(order.clone()), trade: None, kind: ExecKind::Expired });
            }
        }
        let order = self.orders.get(client_order_id).cloned().ok_or_else(|| Refusal("lost order".into()))?;
        if order.status == OrderStatus::Rejected {
            // A refused order never existed, as far as queries go.
            self.orders.remove(client_order_id);
            self.by_order_id.remove(&order_id);
            self.announced.remove(client_order_id);
            return Err(Refusal(order.reason.clone().unwrap_or_default()));
        }
        Ok((order, happenings))
    }

    pub fn cancel(&mut self, symbol: &str, client_order_id: &str, now_ms: i64) -> Result<(Order, Vec<Happening>), Refusal> {
        let Some(instrument) = self.instrument(symbol) else { return Err(Refusal("Invalid symbol.".into())) };
        match self.orders.get(client_order_id) {
            Some(o) if o.status == OrderStatus::Accepted => {}
            _ => return Err(Refusal("Unknown order sent.".into())),
        }
        self.venue.cancel(ACCOUNT, instrument, client_order_id, now_ms);
        let happenings = self.drain(now_ms);
        let order = self.orders.get(client_order_id).cloned().ok_or_else(|| Refusal("Unknown order sent.".into()))?;
        Ok((order, happenings))
    }

    /// A trade by the rest of the market: it goes through our resting orders it reaches.
    ///
    /// On the tape, each execution against one of our orders is a trade of its own, with
    /// the id our fill carries, and what is left of the print trades among others under
    /// a new id: a client matches its fills to the tape by trade id.
    pub fn print(&mut self, symbol: &str, price: Decimal, qty: Decimal, aggressor: Side, now_ms: i64) -> Result<Vec<Happening>, Refusal> {
        let Some(instrument) = self.instrument(symbol) else { return Err(Refusal("Invalid symbol.".into())) };
        let trade_id = self.venue.take_trade_id();
        self.venue.replay_print(instrument, &MarketPrint { trade_id, price, qty, aggressor, ts_ms: now_ms });
        Ok(self.drain_print(now_ms, Some(trade_id)))
    }

    fn drain(&mut self, now_ms: i64) -> Vec<Happening> {
        self.drain_print(now_ms, None)
    }

    /// What the venue reported, as the exchange's records and pushes. Trade ids are the
    /// venue's execution ids, one id space for the tape and the accounts' trades.
    fn drain_print(&mut self, now_ms: i64, print: Option<u64>) -> Vec<Happening> {
        let mut events = Vec::new();
        self.venue.drain_events(&mut events);
        let mut out = Vec::new();
        // Executions against our orders that the venue put on no tape (a print's), and
        // the ids it did publish.
        let mut unpublished: Vec<(i64, InstrumentId, Decimal, Decimal, Side, i64)> = Vec::new();
        let mut published = std::collections::HashSet::new();
        let mut print_trade = None;
        for event in events {
            match event {
                VenueEvent::Book(_) => {}
                VenueEvent::Trade(t) if Some(t.trade_id) == print => print_trade = Some(t),
                VenueEvent::Trade(t) => {
                    let symbol = self.listings[t.instrument.0 as usize].symbol.clone();
                    published.insert(t.trade_id as i64);
                    out.push(Happening::Public { symbol, trade_id: t.trade_id as i64, price: t.price, qty: t.qty, buyer_is_maker: t.aggressor == Side::Sell, ts_ms: t.ts_ms });
                }
                VenueEvent::Fill(f) => {
                    // The venue's execution id ends its fill ids (`<venue>-<n>`).
                    let Some(trade_id) = f.trade_id.rsplit('-').next().and_then(|n| n.parse::<i64>().ok()) else { continue };
                    if !unpublished.iter().any(|u| u.0 == trade_id) {
                        unpublished.push((trade_id, f.instrument, f.price, f.qty, f.side, f.ts_ms));
                    }
                    let Some(order) = self.orders.get_mut(&f.client_order_id) else { continue };
                    order.executed += f.qty;
                    order.quote += f.qty * f.price;
                    order.updated_ms = now_ms;
                    let trade = Trade {
                        trade_id,
                        order_id: order.order_id,
                        client_order_id: f.client_order_id.clone(),
                        symbol: order.symbol.clone(),
                        side: f.side,
                        price: f.price,
                        qty: f.qty,
                        fee: f.fee,
                        fee_asset: f.fee_asset.clone(),
                        maker: f.liquidity == trading_model::Liquidity::Maker,
                        ts_ms: now_ms,
                    };
                    self.trades_by_order.entry(trade.order_id).or_default().push(self.trades.len());
                    *self.net.entry(trade.symbol.clone()).or_default() += if trade.side == Side::Buy { trade.qty } else { -trade.qty };
                    self.trades.push(trade.clone());
                    if order.executed >= order.qty {
                        order.status = OrderStatus::Filled;
                    }
                    out.push(Happening::Order { order: Box::new(order.clone()), trade: Some(trade), kind: ExecKind::Trade });
                }
                VenueEvent::Order(u) => {
                    let Some(order) = self.orders.get_mut(&u.client_order_id) else { continue };
                    order.updated_ms = now_ms;
                    let kind = match u.status {
                        OrderStatus::Accepted if self.announced.insert(u.client_order_id.clone()) => ExecKind::New,
                        OrderStatus::Accepted => continue,
                        // A fill already said FILLED, with its trade.
                        OrderStatus::Filled => continue,
                        OrderStatus::Canceled => ExecKind::Canceled,
                        OrderStatus::Expired => ExecKind::Expired,
                        OrderStatus::Rejected => ExecKind::Rejected,
                    };
                    order.status = u.status;
                    order.reason = u.reason.clone();
                    out.push(Happening::Order { order: Box::new(order.clone()), trade: None, kind });
                }
            }
        }
        // A print's executions against our resting orders, then the rest of the print.
        let mut executed = Decimal::ZERO;
        for (trade_id, instrument, price, qty, ours, ts_ms) in unpublished.into_iter().filter(|u| !published.contains(&u.0)) {
            executed += qty;
            let symbol = self.listings[instrument.0 as usize].symbol.clone();
            out.push(Happening::Public { symbol, trade_id, price, qty, buyer_is_maker: ours == Side::Buy, ts_ms });
        }
        if let Some(t) = print_trade.filter(|t| t.qty > executed) {
            let symbol = self.listings[t.instrument.0 as usize].symbol.clone();
            out.push(Happening::Public { symbol, trade_id: t.trade_id as i64, price: t.price, qty: t.qty - executed, buyer_is_maker: t.aggressor == Side::Sell, ts_ms: t.ts_ms });
        }
        out
    }
}

/// Our order type from Binance's `type` and `timeInForce`.
pub fn binance_order_type(kind: &str, tif: Option<&str>, price: Option<Decimal>) -> Result<OrderType, String> {
    let tif = match (kind, tif) {
        ("MARKET", _) => return Ok(OrderType::Market),
        ("LIMIT_MAKER", _) => TimeInForce::PostOnly,
        ("LIMIT", Some("GTC")) => TimeInForce::Gtc,
        ("LIMIT", Some("IOC")) => TimeInForce::Ioc,
        ("LIMIT", Some("FOK")) => TimeInForce::Fok,
        ("LIMIT", Some("GTX")) => TimeInForce::PostOnly,
        ("LIMIT", None) => return Err("Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.".into()),
        (other, _) => return Err(format!("Invalid orderType {other}")),
    };
    let price = price.ok_or("Mandatory parameter 'price' was not sent, was empty/null, or malformed.")?;
    Ok(OrderType::Limit { price, time_in_force: tif })
}
