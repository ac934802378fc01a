"""Writes the benchmark's seeded trades file: Binance USD-M public-data layout
(`id,price,qty,quote_qty,time,is_buyer_maker`), a random walk of the price around 9,600
with tick 0.01, quantities log-uniform from 0.001 to 2 (lot 0.001), 0 to 50 ms apart.

    python3 generate.py <out.csv> [count=1000000] [seed=7]

Same seed, same file, byte for byte (Python's own Mersenne Twister, stdlib only).
"""

import math
import random
import sys


def main() -> None:
    out = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 7)
    price_ticks = 960_000  # 9,600.00 in ticks of 0.01
    ts = 1_600_000_000_000
    lo, hi = math.log(1), math.log(2000)  # in lots of 0.001
    with open(out, "w") as f:
        f.write("id,price,qty,quote_qty,time,is_buyer_maker\n")
        for i in range(count):
            # A walk of a few ticks, pulled back toward 9,600 so it stays in range.
            price_ticks += rng.randint(-5, 5) + (1 if price_ticks < 955_000 else -1 if price_ticks > 965_000 else 0)
            lots = max(1, min(2000, int(math.exp(rng.uniform(lo, hi)))))
            ts += rng.randint(0, 50)
            price = f"{price_ticks // 100}.{price_ticks % 100:02d}"
            qty = f"{lots // 1000}.{lots % 1000:03d}"
            quote = f"{price_ticks * lots / 100_000:.5f}"
            f.write(f"{i + 1},{price},{qty},{quote},{ts},{'true' if rng.random() < 0.5 else 'false'}\n")


if __name__ == "__main__":
    main()
