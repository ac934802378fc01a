"""Test guest: a Python strategy that probes the WASI the runtime gives it.

At init it tries what a strategy must not be able to do (read a file, list a folder, read
the environment, open a socket, wait on the real clock) and prints to stdout and stderr.
What it found is its snapshot, as JSON, for the test to read. Params name the
venue and symbol to watch; with `"raise_on_trade": true` it raises ZeroDivisionError at its first trade, as a buggy
strategy would, so the test can check that the trap names the exception.
"""

import json
import os
import random
import sys
import time

from wit_world import exports
from wit_world.imports import clock, log, market
from wit_world.imports import types as t

FOUND = {}
SETUP = {}


def attempt(name, action):
    try:
        FOUND[name] = {"ok": True, "value": action()}
    except BaseException as e:  # everything, SystemExit included, is a finding
        FOUND[name] = {"ok": False, "error": type(e).__name__}


def connect():
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect(("127.0.0.1", 9))
    return "connected"


def sleep_on_the_monotonic_clock():
    before = time.monotonic()
    time.sleep(30)
    return time.monotonic() - before


class Strategy(exports.Strategy):
    def init(self, params: str) -> t.Subscriptions:
        SETUP.update(json.loads(params))
        print("wasi-python: hello on stdout")
        print("wasi-python: hello on stderr", file=sys.stderr)
        attempt("read_file", lambda: open("/etc/hostname").read())
        attempt("list_root", lambda: os.listdir("/"))
        attempt("environment", lambda: dict(os.environ))
        attempt("argv", lambda: list(sys.argv))
        attempt("socket", connect)
        attempt("sleep_seconds", sleep_on_the_monotonic_clock)
        attempt("urandom_len", lambda: len(os.urandom(16)))
        attempt("random", lambda: random.random())
        log.write(log.Level.INFO, "wasi-python: probed " + ",".join(sorted(FOUND)))
        info = market.lookup(SETUP["venue"], SETUP["symbol"])
        return t.Subscriptions(trades=[info.id], books=[], account_fills=[], timer_interval_ms=None, orders_on=[], self_trading=False)

    def on_events(self, events: list) -> list:
        for event in events:
            if isinstance(event, t.Event_Trade) and "wall_ms" not in FOUND:
                FOUND["wall_ms"] = int(time.time() * 1000)
                FOUND["clock_ms"] = clock.now_ms()
                FOUND["trade_ms"] = event.value.ts_ms
                if SETUP.get("raise_on_trade"):
                    print("wasi-python: about to divide by zero", file=sys.stderr)
                    return [1 / 0]
        return []

    def snapshot(self) -> bytes:
        return json.dumps(FOUND).encode()

    def restore(self, state: bytes) -> None:
        FOUND.update(json.loads(state))


class Standing(exports.Standing):
    def halted(self, reason: str, reducing_allowed: bool) -> list:
        return []

    def resumed(self) -> list:
        return []
