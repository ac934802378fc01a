"""The NautilusTrader side of the side-by-side benchmark: the same trades file through
NautilusTrader's BacktestEngine, one workload, and the time of `engine.run()` alone.

    python nautilus_side.py <trades.csv> <nothing|grid|grid-fine|hedger>

Prints `ticks=<n> seconds=<run time> orders=<orders submitted>`. Run by
tests/bench/vs_nautilus.sh with nautilus_trader==1.231.0 in target/nautilus.
"""

import sys
import time
from decimal import Decimal

import pandas as pd

from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig, StrategyConfig
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import AccountType, OmsType, OrderSide
from nautilus_trader.model.identifiers import TraderId, Venue
from nautilus_trader.model.objects import Money
from nautilus_trader.persistence.wranglers import TradeTickDataWrangler
from nautilus_trader.test_kit.providers import TestInstrumentProvider
from nautilus_trader.trading.strategy import Strategy


class Workload(StrategyConfig, frozen=True):
    kind: str = "nothing"
    levels: int = 10
    spacing: float = 0.001
    qty: str = "0.010"


class Bench(Strategy):
    """nothing: receives every trade. grid: 10 levels a side around the first price,
    refilled one level away when a level fills. hedger: a market order every 100th tick,
    as if each were a maker fill to hedge."""

    def __init__(self, config: Workload):
        super().__init__(config)
        self.instrument = None
        self.ticks = 0
        self.orders = 0

    def on_start(self):
        self.instrument = self.cache.instrument(TestInstrumentProvider.btcusdt_perp_binance().id)
        self.subscribe_trade_ticks(self.instrument.id)

    def limit(self, side, price):
        order = self.order_factory.limit(self.instrument.id, side, self.instrument.make_qty(Decimal(self.config.qty)), self.instrument.make_price(price))
        self.submit_order(order)
        self.orders += 1

    def on_trade_tick(self, tick: TradeTick):
        self.ticks += 1
        kind = self.config.kind
        if kind == "grid" or kind == "grid-fine":
            if self.ticks == 1:
                mid = float(tick.price)
                for i in range(1, self.config.levels + 1):
                    self.limit(OrderSide.BUY, mid * (1 - self.config.spacing * i))
                    self.limit(OrderSide.SELL, mid * (1 + self.config.spacing * i))
        elif kind == "hedger" and self.ticks % 100 == 0:
            side = OrderSide.SELL if (self.ticks // 100) % 2 else OrderSide.BUY
            self.submit_order(self.order_factory.market(self.instrument.id, side, self.instrument.make_qty(Decimal(self.config.qty))))
            self.orders += 1

    def on_order_filled(self, event):
        # A level is refilled once its order is done, so the grid keeps its 20 orders.
        order = self.cache.order(event.client_order_id)
        if self.config.kind in ("grid", "grid-fine") and order is not None and order.is_closed:
            price = float(event.last_px)
            step = price * self.config.spacing
            if event.order_side == OrderSide.BUY:
                self.limit(OrderSide.SELL, price + step)
            else:
                self.limit(OrderSide.BUY, price - step)


def main() -> None:
    path, kind = sys.argv[1], sys.argv[2]
    raw = pd.read_csv(path)
    frame = pd.DataFrame(
        {
            "price": raw["price"].to_numpy(),
            "quantity": raw["qty"].to_numpy(),
            "buyer_maker": raw["is_buyer_maker"].to_numpy(),
            "trade_id": raw["id"].astype(str).to_numpy(),
        },
        index=pd.DatetimeIndex(pd.to_datetime(raw["time"].to_numpy(), unit="ms", utc=True)),
    )
    instrument = TestInstrumentProvider.btcusdt_perp_binance()
    ticks = TradeTickDataWrangler(instrument).process(frame)
    engine = BacktestEngine(BacktestEngineConfig(trader_id=TraderId("BENCH-001"), logging=LoggingConfig(log_level="ERROR")))
    engine.add_venue(Venue("BINANCE"), oms_type=OmsType.NETTING, account_type=AccountType.MARGIN, base_currency=None, starting_balances=[Money(10_000_000, USDT)])
    engine.add_instrument(instrument)
    engine.add_data(ticks)
    spacing = 0.0001 if kind == "grid-fine" else 0.001
    strategy = Bench(Workload(kind=kind, spacing=spacing))
    engine.add_strategy(strategy)
    started = time.perf_counter()
    engine.run()
    seconds = time.perf_counter() - started
    print(f"ticks={strategy.ticks} seconds={seconds:.3f} orders={strategy.orders}")
    engine.dispose()


if __name__ == "__main__":
    main()
