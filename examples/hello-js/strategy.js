// The `hello` strategy in JavaScript: the same logic as examples/hello (Rust), order for order.
//
// It quotes one small bid and one small ask a few ticks around the last trade, moves its
// quotes when the market moves, keeps its position from its own fills, and while halted
// quotes only the side that reduces the position.
//
// Built with jco's componentize (StarlingMonkey), see build.sh. What differs from Rust:
// - Decimals cross the contract as sign, 96-bit mantissa (`lo` u64 + `hi` u32) and scale;
//   u64 and s64 arrive as BigInt. `Dec` below keeps them exact as a BigInt mantissa and a
//   scale. Never turn a price into a Number.
// - State lives in module-level variables, which persist between export calls.

import { write } from "trading:strategy/log@0.1.4";
import { lookup } from "trading:strategy/market@0.1.4";

/** An exact decimal: `m / 10^s`, with `m` a BigInt. */
class Dec {
  constructor(m, s) {
    this.m = m;
    this.s = s;
  }
  static fromWire(d) {
    const m = (BigInt(d.hi) << 64n) | BigInt(d.lo);
    return new Dec(d.negative ? -m : m, d.scale);
  }
  static parse(text) {
    const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(text).trim());
    if (!match) throw new Error(`not a decimal: ${text}`);
    const frac = match[3] ?? "";
    const m = BigInt(match[2] + frac);
    return new Dec(match[1] ? -m : m, frac.length);
  }
  static int(n) {
    return new Dec(BigInt(n), 0);
  }
  toWire() {
    const d = this.s < 0 ? new Dec(this.m * 10n ** BigInt(-this.s), 0) : this;
    const abs = d.m < 0n ? -d.m : d.m;
    if (d.s > 28 || abs >= 1n << 96n) throw new Error(`${d} does not fit the contract's decimal`);
    return { lo: abs & ((1n << 64n) - 1n), hi: Number(abs >> 64n), negative: d.m < 0n, scale: d.s };
  }
  /** Both mantissas at one scale. */
  static align(a, b) {
    const s = Math.max(a.s, b.s);
    return [a.m * 10n ** BigInt(s - a.s), b.m * 10n ** BigInt(s - b.s), s];
  }
  add(o) {
    const [a, b, s] = Dec.align(this, o);
    return new Dec(a + b, s);
  }
  sub(o) {
    const [a, b, s] = Dec.align(this, o);
    return new Dec(a - b, s);
  }
  mulInt(n) {
    return new Dec(this.m * BigInt(n), this.s);
  }
  cmp(o) {
    const [a, b] = Dec.align(this, o);
    return a < b ? -1 : a > b ? 1 : 0;
  }
  abs() {
    return new Dec(this.m < 0n ? -this.m : this.m, this.s);
  }
  isZero() {
    return this.m === 0n;
  }
  /** A multiple of `step`, rounded down (floor) or up (ceiling). */
  roundStep(step, up) {
    const [a, b] = Dec.align(this, step);
    let units = a / b; // truncates toward zero
    if (units * b !== a && (a < 0n) === (b < 0n) && up) units += 1n;
    if (units * b !== a && (a < 0n) !== (b < 0n) && !up) units -= 1n;
    return new Dec(units * step.m, step.s).normalize();
  }
  normalize() {
    let { m, s } = this;
    while (s > 0 && m % 10n === 0n) {
      m /= 10n;
      s -= 1;
    }
    return new Dec(m, s);
  }
  toString() {
    const neg = this.m < 0n;
    let digits = (neg ? -this.m : this.m).toString();
    if (this.s > 0) {
      digits = digits.padStart(this.s + 1, "0");
      digits = `${digits.slice(0, -this.s)}.${digits.slice(-this.s)}`;
    }
    return (neg ? "-" : "") + digits;
  }
}

// SHA-256 (FIPS 180-4), for the SDK's deterministic client order ids.
const K = Uint32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
  0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

function sha256(bytes) {
  const length = bytes.length;
  const padded = new Uint8Array(Math.ceil((length + 9) / 64) * 64);
  padded.set(bytes);
  padded[length] = 0x80;
  new DataView(padded.buffer).setBigUint64(padded.length - 8, BigInt(length) * 8n);
  const h = Uint32Array.from([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const w = new Uint32Array(64);
  const view = new DataView(padded.buffer);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let offset = 0; offset < padded.length; offset += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(offset + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      [hh, g, f, e, d, c, b, a] = [g, f, e, (d + t1) >>> 0, c, b, a, (t1 + t2) >>> 0];
    }
    [a, b, c, d, e, f, g, hh].forEach((v, i) => (h[i] = (h[i] + v) >>> 0));
  }
  const out = new Uint8Array(32);
  h.forEach((v, i) => new DataView(out.buffer).setUint32(i * 4, v));
  return out;
}

/** The SDK's deterministic id: the same intent always gets the same id. */
function clientOrderId(prefix, parts) {
  const chunks = [];
  for (const part of parts) {
    const data = new TextEncoder().encode(part);
    const len = new Uint8Array(8);
    new DataView(len.buffer).setBigUint64(0, BigInt(data.length), true);
    chunks.push(...len, ...data);
  }
  const digest = sha256(Uint8Array.from(chunks));
  const clean = [...prefix].filter((c) => /[A-Za-z0-9]/.test(c)).slice(0, 7).join("");
  const hex = [...digest.slice(0, 12)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return (clean ? `${clean}-` : "") + hex;
}

const FINAL = new Set(["filled", "canceled", "expired", "rejected"]);

// What `init` learned, and what decides what happens next (carried over a hot swap).
let setup = null;
let state = freshState();

function freshState() {
  return { position: Dec.int(0), generation: 0, liveQuotes: [], anchor: null, halted: null, cancelling: false };
}

function requote(last) {
  const { info, qty: qtyParam, offsetTicks, tick, minQty } = setup;
  if (state.halted !== null && state.liveQuotes.length > 0) {
    // Halted, an order passes only if it reduces the position with our open orders
    // counted as filled: the old quote must be gone before its replacement goes.
    if (state.cancelling) return [];
    state.cancelling = true;
    return state.liveQuotes.map((id) => ({ tag: "cancel", val: { instrument: info.id, clientOrderId: id } }));
  }
  state.cancelling = false;
  const offset = tick.mulInt(offsetTicks);
  const actions = state.liveQuotes.map((id) => ({ tag: "cancel", val: { instrument: info.id, clientOrderId: id } }));
  state.liveQuotes = [];
  state.generation += 1;
  state.anchor = last;
  const generation = String(state.generation);
  for (const side of ["buy", "sell"]) {
    let qty = qtyParam;
    if (state.halted !== null) {
      // Halted: only the side that brings the position back to zero, no further.
      const reduces = side === "buy" ? state.position.m < 0n : state.position.m > 0n;
      const held = state.position.abs();
      if (held.cmp(qty) < 0) qty = held;
      if (!state.halted || !reduces || qty.cmp(minQty) < 0) continue;
    }
    const raw = side === "buy" ? last.sub(offset) : last.add(offset);
    // Round away from the market so a quote never crosses by rounding.
    const price = raw.roundStep(tick, side === "sell");
    const id = clientOrderId("hello", [generation, side === "buy" ? "b" : "a"]);
    state.liveQuotes.push(id);
    actions.push({
      tag: "place",
      val: {
        clientOrderId: id,
        instrument: info.id,
        side,
        orderType: { tag: "limit", val: { price: price.toWire(), timeInForce: "post-only" } },
        qty: qty.toWire(),
      },
    });
  }
  write("debug", `requoted around ${last} (generation ${generation})`);
  return actions;
}

export const strategy = {
  init(params) {
    let raw;
    try {
      raw = JSON.parse(params);
      for (const key of Object.keys(raw)) {
        if (!["venue", "symbol", "qty", "offset_ticks"].includes(key)) throw new Error(`unknown field ${key}`);
      }
      if (typeof raw.venue !== "string" || typeof raw.symbol !== "string") throw new Error("venue and symbol must be strings");
    } catch (e) {
      throw `bad params: ${e.message ?? e}`;
    }
    const info = lookup(raw.venue, raw.symbol);
    const qty = Dec.parse(raw.qty);
    const minQty = Dec.fromWire(info.minQty);
    if (qty.cmp(minQty) < 0) throw `qty ${qty} is below the instrument's minimum ${minQty}`;
    setup = { info, qty, offsetTicks: raw.offset_ticks ?? 5, tick: Dec.fromWire(info.tickSize), minQty };
    state = freshState();
    write("info", `quoting ${info.symbol} on ${info.venueName}`);
    return { trades: [info.id], books: [], accountFills: [], timerIntervalMs: undefined, ordersOn: [], selfTrading: false };
  },

  onEvents(events) {
    let last = null;
    for (const event of events) {
      if (event.tag === "trade") {
        last = Dec.fromWire(event.val.price);
      } else if (event.tag === "fill" && event.val.ownOrder) {
        const qty = Dec.fromWire(event.val.qty);
        state.position = event.val.side === "buy" ? state.position.add(qty) : state.position.sub(qty);
        const done = event.val.side === "buy" ? "bought" : "sold";
        write("debug", `filled ${done} ${qty} at ${Dec.fromWire(event.val.price)}; position ${state.position}`);
      } else if (event.tag === "order" && FINAL.has(event.val.status)) {
        state.liveQuotes = state.liveQuotes.filter((id) => id !== event.val.clientOrderId);
        // Whatever was being replaced is gone: quote at the next trade.
        if (state.halted !== null && state.liveQuotes.length === 0) state.anchor = null;
      }
    }
    // Requote only when the market moved past our offset: fewer orders, same job.
    if (last === null) return [];
    const threshold = setup.tick.mulInt(setup.offsetTicks);
    if (state.anchor !== null && last.sub(state.anchor).abs().cmp(threshold) < 0) return [];
    return requote(last);
  },

  snapshot() {
    const shown = { ...state, position: state.position.toString(), anchor: state.anchor === null ? null : state.anchor.toString() };
    return new TextEncoder().encode(JSON.stringify(shown));
  },

  restore(bytes) {
    try {
      const raw = JSON.parse(new TextDecoder().decode(bytes));
      state = { ...freshState(), ...raw, position: Dec.parse(raw.position), anchor: raw.anchor == null ? null : Dec.parse(raw.anchor) };
    } catch (e) {
      throw `unreadable state: ${e.message ?? e}`;
    }
  },
};

export const standing = {
  halted(reason, reducingAllowed) {
    // The host cancels our quotes itself at a halt; the next trade requotes.
    write("warn", `halted by the host: ${reason}`);
    state.halted = reducingAllowed;
    state.anchor = null;
    return [];
  },
  resumed() {
    write("info", "resumed by the host: quoting both sides again");
    state.halted = null;
    state.anchor = null;
    return [];
  },
};
