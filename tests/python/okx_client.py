"""A widely used third-party OKX client (python-okx, from PyPI, unmodified but for its base
URLs) against the local exchange: markets, order book, balance, leverage and positions,
place, query, list, cancel, fills, refusals with OKX's codes, and an order pushed on the
private WebSocket. python-okx's WebSocket factory always asks for TLS, which a ws:// URL
refuses, so the push is read with the websockets library it depends on, logging in with
python-okx's own login payload.

Usage: okx_client.py <host:port> <api key> <api secret> <passphrase>
"""
import asyncio
import json
import sys

import okx.Account as Account
import okx.MarketData as MarketData
import okx.PublicData as PublicData
import okx.Trade as Trade
import websockets
from okx.websocket import WsUtils

address, key, secret, passphrase = sys.argv[1:5]
domain = f"http://{address}"
flag = "0"  # live trading, as the local exchange is addressed

public = PublicData.PublicAPI(flag=flag, domain=domain)
instruments = public.get_instruments(instType="SWAP")
assert instruments["code"] == "0", instruments
swap = next(i for i in instruments["data"] if i["instId"] == "BTC-USDT-SWAP")
assert swap["ctVal"] == "0.01" and swap["settleCcy"] == "USDT", swap
assert public.get_instruments(instType="SPOT")["data"][0]["instId"] == "BTC-USDT"

book = MarketData.MarketAPI(flag=flag, domain=domain).get_orderbook(instId="BTC-USDT", sz="5")
assert book["code"] == "0" and len(book["data"][0]["asks"]) == 5, book
best_bid = float(book["data"][0]["bids"][0][0])

account = Account.AccountAPI(key, secret, passphrase, flag=flag, domain=domain)
balance = account.get_account_balance()
assert balance["code"] == "0", balance
assert any(d["ccy"] == "USDT" for d in balance["data"][0]["details"]), balance
lever = account.set_leverage(lever="3", mgnMode="cross", instId="BTC-USDT-SWAP")
assert lever["code"] == "0" and lever["data"][0]["lever"] == "3", lever

trade = Trade.TradeAPI(key, secret, passphrase, flag=flag, domain=domain)


async def private_stream():
    pushes = []
    async with websockets.connect(f"ws://{address}/ws/v5/private") as ws:
        await ws.send(WsUtils.initLoginParams(useServerTime=False, apiKey=key, passphrase=passphrase, secretKey=secret))
        assert json.loads(await ws.recv())["event"] == "login"
        await ws.send(json.dumps({"op": "subscribe", "args": [{"channel": "orders", "instType": "ANY"}]}))
        assert json.loads(await ws.recv())["event"] == "subscribe"
        placed = trade.place_order(instId="BTC-USDT-SWAP", tdMode="cross", side="buy", ordType="market", sz="2", clOrdId="pyokx1")
        assert placed["code"] == "0" and placed["data"][0]["sCode"] == "0", placed
        while not any(p["data"][0]["state"] == "filled" for p in pushes):
            pushes.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=10)))
    return placed["data"][0]["ordId"], pushes


swap_order, pushes = asyncio.run(private_stream())
filled = [p["data"][0] for p in pushes if "data" in p and p["data"][0].get("state") == "filled"]
assert filled and filled[0]["clOrdId"] == "pyokx1" and filled[0]["accFillSz"] == "2", pushes
assert filled[0]["fee"].startswith("-"), filled

positions = account.get_positions(instType="SWAP")
assert positions["code"] == "0" and positions["data"][0]["pos"] == "2" and positions["data"][0]["lever"] == "3", positions

price = f"{best_bid - 500:.1f}"
order = trade.place_order(instId="BTC-USDT", tdMode="cash", side="buy", ordType="limit", sz="0.001", px=price, clOrdId="pyokx2")
assert order["code"] == "0" and order["data"][0]["sCode"] == "0", order
order_id = order["data"][0]["ordId"]
queried = trade.get_order(instId="BTC-USDT", ordId=order_id)
assert queried["data"][0]["state"] == "live" and queried["data"][0]["clOrdId"] == "pyokx2", queried
assert [o["ordId"] for o in trade.get_order_list(instId="BTC-USDT")["data"]] == [order_id]
canceled = trade.cancel_order(instId="BTC-USDT", ordId=order_id)
assert canceled["code"] == "0" and canceled["data"][0]["sCode"] == "0", canceled
assert trade.get_order(instId="BTC-USDT", ordId=order_id)["data"][0]["state"] == "canceled"

fills = trade.get_fills(instId="BTC-USDT-SWAP")
assert fills["code"] == "0" and sum(float(f["fillSz"]) for f in fills["data"]) == 2.0 and fills["data"][0]["ordId"] == swap_order, fills

missing = trade.get_order(instId="BTC-USDT", ordId="42")
assert missing["code"] == "51603", missing
wrong = Trade.TradeAPI(key, "not-the-secret", passphrase, flag=flag, domain=domain)
refused = wrong.get_order_list(instId="BTC-USDT")
assert refused["code"] == "50113", refused

print("python-okx: markets, book, balance, leverage, push, positions, place, query, list, cancel, fills, 51603 and 50113 as documented")
