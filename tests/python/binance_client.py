"""A widely used third-party Binance client (python-binance, from PyPI) against the local
exchange: place, query, list, cancel, and a refused signature. The local exchange must be
faithful to Binance's protocol, not only to our own adapter.

Usage: binance_client.py <host:port> <api key> <api secret>
"""
import sys

from binance.client import Client
from binance.exceptions import BinanceAPIException

address, key, secret = sys.argv[1:4]
client = Client(key, secret, ping=False)
client.API_URL = f"http://{address}/api"
client.ping()
assert abs(client.get_server_time()["serverTime"]) > 0

info = client.get_symbol_info("BTCUSDT")
filters = {f["filterType"]: f for f in info["filters"]}
# Binance spot prints every decimal at eight places.
assert filters["PRICE_FILTER"]["tickSize"] == "0.10000000", filters

order = client.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001", price="29000", newClientOrderId="pyclient1")
assert order["status"] == "NEW" and order["clientOrderId"] == "pyclient1", order

queried = client.get_order(symbol="BTCUSDT", origClientOrderId="pyclient1")
assert queried["status"] == "NEW" and queried["origQty"] == "0.00100000", queried
assert [o["clientOrderId"] for o in client.get_open_orders(symbol="BTCUSDT")] == ["pyclient1"]

canceled = client.cancel_order(symbol="BTCUSDT", origClientOrderId="pyclient1")
assert canceled["status"] == "CANCELED", canceled
assert client.get_order(symbol="BTCUSDT", origClientOrderId="pyclient1")["status"] == "CANCELED"

try:
    client.get_order(symbol="BTCUSDT", origClientOrderId="never-placed")
    raise AssertionError("an unknown order was found")
except BinanceAPIException as e:
    assert e.code == -2013, e

wrong = Client(key, "not-the-secret", ping=False)
wrong.API_URL = client.API_URL
try:
    wrong.get_open_orders(symbol="BTCUSDT")
    raise AssertionError("a wrong signature was accepted")
except BinanceAPIException as e:
    assert e.code == -1022, e

print("python-binance: place, query, open orders, cancel, -2013 and -1022 as documented")
