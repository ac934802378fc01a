"""ccxt (PyPI, pinned) against the local exchange: its binance, binanceusdm and okx classes,
pointed at the local exchange's URLs, load the markets and trade: balance, positions, book,
ticker, a limit order placed, queried, listed and cancelled, a market order, the fills,
leverage; and an order pushed on each private WebSocket (ccxt.pro's watch_orders).

Configuration beyond the URLs, all documented ccxt options: no currency list (it needs each
venue's wallet API, which the local exchange does not serve) and, on Binance spot, no margin
pairs.

Usage: ccxt_client.py <binance spot host:port> <usd-m host:port> <okx host:port> <key> <secret> <passphrase>
"""
import asyncio
import sys

import ccxt
import ccxt.pro

spot, usdm, okx_address, key, secret, passphrase = sys.argv[1:7]


def pointed(exchange, host, address):
    for name, url in list(exchange.urls["api"].items()):
        if isinstance(url, str) and host in url:
            exchange.urls["api"][name] = url.replace(f"https://{host}", f"http://{address}")
    exchange.has["fetchCurrencies"] = False
    return exchange


def scenario(exchange, symbol, qty, price, leverage):
    exchange.load_markets()
    assert symbol in exchange.markets, list(exchange.markets)
    market = exchange.market(symbol)
    assert market["precision"]["price"] == 0.1, market
    assert "USDT" in exchange.fetch_balance()["total"]
    if market["contract"]:
        assert isinstance(exchange.fetch_positions([symbol]), list)
        exchange.set_leverage(leverage, symbol)
    book = exchange.fetch_order_book(symbol)
    assert book["bids"] and book["asks"] and book["bids"][0][0] < book["asks"][0][0], book
    assert exchange.fetch_ticker(symbol)["last"] > 0
    order = exchange.create_order(symbol, "limit", "buy", qty, price)
    assert exchange.fetch_order(order["id"], symbol)["status"] == "open"
    assert [o["id"] for o in exchange.fetch_open_orders(symbol)] == [order["id"]]
    exchange.cancel_order(order["id"], symbol)
    assert exchange.fetch_order(order["id"], symbol)["status"] == "canceled"
    bought = exchange.create_order(symbol, "market", "buy", qty)
    trades = exchange.fetch_my_trades(symbol)
    assert trades and all(t["symbol"] == symbol for t in trades) and any(t["order"] == bought["id"] for t in trades), trades
    if market["contract"]:
        position = [p for p in exchange.fetch_positions([symbol]) if p["contracts"]]
        assert position and position[0]["side"] == "long", position
    print(f"ccxt {exchange.id} {symbol}: markets, balance, book, ticker, place, query, list, cancel, market order, fills" + (", leverage, positions" if market["contract"] else ""))


binance = pointed(ccxt.binance({"apiKey": key, "secret": secret, "options": {"fetchMargins": False, "fetchMarkets": {"types": ["spot"]}}}), "api.binance.com", spot)
scenario(binance, "BTC/USDT", 0.001, 29000, None)
binanceusdm = pointed(ccxt.binanceusdm({"apiKey": key, "secret": secret}), "fapi.binance.com", usdm)
scenario(binanceusdm, "BTC/USDT:USDT", 0.001, 29000, 5)
okx = ccxt.okx({"apiKey": key, "secret": secret, "password": passphrase})
okx.urls["api"] = {"rest": f"http://{okx_address}"}
okx.has["fetchCurrencies"] = False
scenario(okx, "BTC/USDT", 0.001, 29000, None)
scenario(okx, "BTC/USDT:USDT", 1, 29000, 3)


async def pushed(exchange, symbol, qty, id_param):
    """Orders until one is pushed on the private WebSocket (the first may be placed before
    the subscription is)."""
    exchange.has["fetchCurrencies"] = False
    await exchange.load_markets()
    watching = asyncio.ensure_future(exchange.watch_orders(symbol))
    try:
        for n in range(50):
            if watching.done():
                break
            await exchange.create_order(symbol, "limit", "buy", qty, 29000, {id_param: f"ccxtpush{n}"})
            await asyncio.wait([watching], timeout=0.5)
        orders = watching.result()
        assert any(o["clientOrderId"].startswith("ccxtpush") and o["status"] == "open" for o in orders), orders
    finally:
        await exchange.close()
    print(f"ccxt.pro {exchange.id}: an order pushed on the private WebSocket")


def binance_pro(cls, host, address, types):
    pro = cls({"apiKey": key, "secret": secret, "options": {"fetchMargins": False, "fetchMarkets": {"types": types}}})
    for name, url in list(pro.urls["api"].items()):
        if isinstance(url, str) and host in url:
            pro.urls["api"][name] = url.replace(f"https://{host}", f"http://{address}")
    ws = pro.urls["api"]["ws"]
    for name, url in list(ws.items()):
        if isinstance(url, str):
            ws[name] = url.replace("wss://stream.binance.com:9443", f"ws://{address}").replace("wss://fstream.binance.com", f"ws://{address}")
    ws["ws-api"] = {"spot": f"ws://{address}/ws-api/v3"}
    return pro


okx_pro = ccxt.pro.okx({"apiKey": key, "secret": secret, "password": passphrase})
okx_pro.urls["api"] = {"rest": f"http://{okx_address}", "ws": f"ws://{okx_address}/ws/v5"}
asyncio.run(pushed(okx_pro, "BTC/USDT:USDT", 1, "clOrdId"))
asyncio.run(pushed(binance_pro(ccxt.pro.binance, "api.binance.com", spot, ["spot"]), "BTC/USDT", 0.001, "clientOrderId"))
asyncio.run(pushed(binance_pro(ccxt.pro.binanceusdm, "fapi.binance.com", usdm, ["linear"]), "BTC/USDT:USDT", 0.001, "clientOrderId"))

print("ccxt: binance, binanceusdm and okx as documented")
