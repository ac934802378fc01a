"""The `hello` strategy in Python: the same logic as examples/hello (Rust), order for order.

It quotes one small bid and one small ask a few ticks around the last trade, moves its
quotes when the market moves, keeps its position from its own fills, and while halted
quotes only the side that reduces the position.

Built with componentize-py (see build.sh). Two things differ from writing Rust:

- componentize-py may hand each export call a fresh `Strategy` object, so nothing may live
  on `self`: everything the strategy knows is in the module-level `STATE` and `SETUP`.
- Decimals cross the contract as sign, 96-bit mantissa and scale; `to_decimal` and
  `from_decimal` turn them into Python's exact `decimal.Decimal` and back. Never floats.
"""

import decimal
import hashlib
import json
from decimal import Decimal

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import log, market
from wit_world.imports import types as t

# Enough digits for any product of two contract decimals (29 digits each).
decimal.getcontext().prec = 60

FINAL = (t.OrderStatus.FILLED, t.OrderStatus.CANCELED, t.OrderStatus.EXPIRED, t.OrderStatus.REJECTED)


def to_decimal(value: t.Decimal) -> Decimal:
    mantissa = (value.hi << 64) | value.lo
    return Decimal((1 if value.negative else 0, tuple(int(c) for c in str(mantissa)), -value.scale))


def from_decimal(value: Decimal) -> t.Decimal:
    sign, digits, exponent = value.as_tuple()
    mantissa = int("".join(map(str, digits)) or "0")
    if exponent > 0:
        mantissa *= 10**exponent
        exponent = 0
    scale = -exponent
    if scale > 28 or mantissa >= 1 << 96:
        raise ValueError(f"{value} does not fit the contract's decimal")
    return t.Decimal(lo=mantissa & ((1 << 64) - 1), hi=mantissa >> 64, negative=bool(sign) and mantissa != 0, scale=scale)


def client_order_id(prefix: str, parts: list) -> str:
    """The SDK's deterministic id: the same intent always gets the same id."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode()
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    clean = "".join(c for c in prefix if c.isascii() and c.isalnum())[:7]
    return (clean + "-" if clean else "") + digest.digest()[:12].hex()


def fresh_state() -> dict:
    return {"position": Decimal(0), "generation": 0, "live_quotes": [], "anchor": None, "halted": None, "cancelling": False}


# What `init` learned (params and the instrument's rules), and what decides what happens
# next (carried over a hot swap by snapshot/restore).
SETUP = {}
STATE = fresh_state()


def requote(last: Decimal) -> list:
    info, qty_param, offset_ticks = SETUP["info"], SETUP["qty"], SETUP["offset_ticks"]
    tick = to_decimal(info.tick_size)
    if STATE["halted"] is not None and STATE["live_quotes"]:
        # Halted, an order passes only if it reduces the position with our open orders
        # counted as filled: the old quote must be gone before its replacement goes.
        if STATE["cancelling"]:
            return []
        STATE["cancelling"] = True
        return [t.Action_Cancel(t.CancelRequest(instrument=info.id, client_order_id=i)) for i in STATE["live_quotes"]]
    STATE["cancelling"] = False
    offset = tick * offset_ticks
    actions = [t.Action_Cancel(t.CancelRequest(instrument=info.id, client_order_id=i)) for i in STATE["live_quotes"]]
    STATE["live_quotes"] = []
    STATE["generation"] += 1
    STATE["anchor"] = last
    generation = str(STATE["generation"])
    position = STATE["position"]
    for side in (t.Side.BUY, t.Side.SELL):
        qty = qty_param
        sign = 1 if side == t.Side.BUY else -1
        if STATE["halted"] is not None:
            # Halted: only the side that brings the position back to zero, no further.
            reduces = sign * position < 0
            qty = min(qty, abs(position))
            if not STATE["halted"] or not reduces or qty < to_decimal(info.min_qty):
                continue
        raw = last - offset if side == t.Side.BUY else last + offset
        # Round away from the market so a quote never crosses by rounding.
        rounding = decimal.ROUND_FLOOR if side == t.Side.BUY else decimal.ROUND_CEILING
        price = ((raw / tick).quantize(Decimal(1), rounding=rounding) * tick).normalize()
        order_id = client_order_id("hello", [generation, "b" if side == t.Side.BUY else "a"])
        STATE["live_quotes"].append(order_id)
        limit = t.OrderType_Limit(t.Limit(price=from_decimal(price), time_in_force=t.TimeInForce.POST_ONLY))
        actions.append(t.Action_Place(t.OrderRequest(client_order_id=order_id, instrument=info.id, side=side, order_type=limit, qty=from_decimal(qty))))
    log.write(log.Level.DEBUG, f"requoted around {last:f} (generation {generation})")
    return actions


class Strategy(exports.Strategy):
    def init(self, params: str) -> t.Subscriptions:
        try:
            raw = json.loads(params)
            unknown = set(raw) - {"venue", "symbol", "qty", "offset_ticks"}
            if unknown:
                raise ValueError(f"unknown field {sorted(unknown)[0]}")
            qty = Decimal(str(raw["qty"]))
            offset_ticks = int(raw.get("offset_ticks", 5))
            venue, symbol = str(raw["venue"]), str(raw["symbol"])
        except (ValueError, KeyError, TypeError, decimal.InvalidOperation) as e:
            raise Err(f"bad params: {e!r}")
        try:
            info = market.lookup(venue, symbol)
        except Err as e:
            raise Err(str(e.value))
        if qty < to_decimal(info.min_qty):
            raise Err(f"qty {qty} is below the instrument's minimum {to_decimal(info.min_qty)}")
        SETUP.update(info=info, qty=qty, offset_ticks=offset_ticks)
        STATE.clear()
        STATE.update(fresh_state())
        log.write(log.Level.INFO, f"quoting {info.symbol} on {info.venue_name}")
        return t.Subscriptions(trades=[info.id], books=[], account_fills=[], timer_interval_ms=None, orders_on=[], self_trading=False)

    def on_events(self, events: list) -> list:
        last = None
        for event in events:
            if isinstance(event, t.Event_Trade):
                last = to_decimal(event.value.price)
            elif isinstance(event, t.Event_Fill) and event.value.own_order:
                fill = event.value
                qty = to_decimal(fill.qty)
                STATE["position"] += qty if fill.side == t.Side.BUY else -qty
                done = "bought" if fill.side == t.Side.BUY else "sold"
                log.write(log.Level.DEBUG, f"filled {done} {qty:f} at {to_decimal(fill.price):f}; position {STATE['position']:f}")
            elif isinstance(event, t.Event_Order) and event.value.status in FINAL:
                gone = event.value.client_order_id
                STATE["live_quotes"] = [i for i in STATE["live_quotes"] if i != gone]
                if STATE["halted"] is not None and not STATE["live_quotes"]:
                    # Whatever was being replaced is gone: quote at the next trade.
                    STATE["anchor"] = None
        # Requote only when the market moved past our offset: fewer orders, same job.
        if last is None:
            return []
        threshold = to_decimal(SETUP["info"].tick_size) * SETUP["offset_ticks"]
        anchor = STATE["anchor"]
        if anchor is not None and abs(last - anchor) < threshold:
            return []
        return requote(last)

    def snapshot(self) -> bytes:
        shown = dict(STATE, position=str(STATE["position"]), anchor=None if STATE["anchor"] is None else str(STATE["anchor"]))
        return json.dumps(shown).encode()

    def restore(self, state: bytes) -> None:
        try:
            raw = json.loads(state)
            restored = fresh_state()
            restored.update(raw)
            restored["position"] = Decimal(str(raw["position"]))
            restored["anchor"] = None if raw.get("anchor") is None else Decimal(str(raw["anchor"]))
        except (ValueError, KeyError, TypeError, decimal.InvalidOperation) as e:
            raise Err(f"unreadable state: {e!r}")
        STATE.clear()
        STATE.update(restored)


class Standing(exports.Standing):
    def halted(self, reason: str, reducing_allowed: bool) -> list:
        # The host cancels our quotes itself at a halt; the next trade requotes.
        log.write(log.Level.WARN, f"halted by the host: {reason}")
        STATE["halted"] = reducing_allowed
        STATE["anchor"] = None
        return []

    def resumed(self) -> list:
        log.write(log.Level.INFO, "resumed by the host: quoting both sides again")
        STATE["halted"] = None
        STATE["anchor"] = None
        return []
