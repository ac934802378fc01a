//! The types strategy code works with: the runtime's own domain types (the `trading-model`
//! crate the host uses too), seen from inside a strategy. A strategy learns whether it
//! placed an order ([`Whose`]), never which other strategy did.

pub use trading_model::{
    validate_client_order_id, Action, AssetBalance, BookLevel, BookSnapshot, Halt, InstrumentId, InstrumentInfo, Liquidity, OrderStatus, OrderRequest, OrderType, PublicTrade, QuietBand, RestingOrder, Side,
    Subscriptions, TimeInForce, VenueId, Whose,
};

/// An execution of an order of the account; [`Fill::is_mine`] says whether this strategy
/// placed it.
pub type Fill = trading_model::Fill<Whose>;
/// A change of state of one of this strategy's orders.
pub type OrderUpdate = trading_model::OrderUpdate<Whose>;
/// What a strategy is handed, in the order things happened.
pub type Event = trading_model::Event<Whose>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}
