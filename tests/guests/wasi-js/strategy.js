// Test guest: a JavaScript strategy that probes the WASI the runtime gives it (the Python
// one, tests/guests/wasi-python, probes files, sockets and the environment too). It prints
// to stdout and stderr, records the clocks and a random draw, and with
// `"raise_on_trade": true` throws at its first trade, as a buggy strategy would. What it
// found is its snapshot, as JSON.
import { write } from "trading:strategy/log@0.1.4";
import { lookup } from "trading:strategy/market@0.1.4";
import { nowMs } from "trading:strategy/clock@0.1.4";
const found = {};
let setup = {};
export const strategy = {
  init(params) {
    setup = JSON.parse(params);
    console.log("wasi-js: hello on stdout");
    console.error("wasi-js: hello on stderr");
    found.random = Math.random();
    const info = lookup(setup.venue, setup.symbol);
    return { trades: [info.id], books: [], accountFills: [], timerIntervalMs: undefined, ordersOn: [], selfTrading: false };
  },
  onEvents(events) {
    for (const e of events) {
      if (e.tag === "trade" && found.wall_ms === undefined) {
        found.wall_ms = Date.now();
        found.clock_ms = Number(nowMs());
        found.trade_ms = Number(e.val.tsMs);
        if (setup.raise_on_trade) {
          null.boom();
        }
      }
    }
    return [];
  },
  snapshot() { return new TextEncoder().encode(JSON.stringify(found)); },
  restore(bytes) {},
};
export const standing = { halted() { return []; }, resumed() { return []; } };
