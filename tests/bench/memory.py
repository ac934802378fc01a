"""Target 5 of issue #12: the runtime's resident memory at rest and per extra strategy
instance. Runs the runtime on the seeded trades file with 1, 11 and 51 instances of the
shipped grid (each its own sandbox), all replaying the same paper venue, and prints the
peak RSS of each run and the cost of one more instance.

    python3 tests/bench/memory.py <root> <trades.csv> [trades to replay]

Peak RSS is the kernel's (getrusage of the finished child), so it counts what the process
touched, not what it reserved: each sandbox reserves its memory limit as address space.
"""

import os
import resource
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vs_nautilus as v  # noqa: E402  (the same venue and grid as the side-by-side run)


def peak_rss_mib(root: str, config: str, folder: str) -> float:
    path = os.path.join(folder, "memory.toml")
    with open(path, "w") as f:
        f.write(config)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run([os.path.join(root, "target/release/runtime"), "--config", path, "--no-watch", "--strategies", os.path.join(root, "strategies/grid.wasm")], capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of the children is the largest of them; runs go from small to large.
    if after < before:
        raise SystemExit("memory.py: a smaller run after a larger one cannot be measured")
    return after / 1024


def main() -> None:
    root, trades = sys.argv[1], os.path.abspath(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
    with tempfile.TemporaryDirectory() as folder:
        feed = os.path.join(folder, "trades.csv")
        with open(trades) as src, open(feed, "w") as dst:
            for i, line in enumerate(src):
                if i > count:
                    break
                dst.write(line)
        rows = []
        for n in [1, 11, 51]:
            grids = "".join(v.GRID.format(spacing="0.1").replace('name = "grid"', f'name = "grid{i}"') for i in range(n))
            rows.append((n, peak_rss_mib(root, v.HEAD + v.VENUE.format(name="spot", settlement="spot", feed=feed, liquidity="") + grids, folder)))
    print(f"grid instances on one paper venue, {count:,} trades replayed; peak RSS\n")
    print("| instances | peak RSS MiB | per extra instance MiB |")
    print("| --- | --- | --- |")
    for n, rss in rows:
        extra = "" if n == 1 else f"{(rss - rows[0][1]) / (n - 1):.2f}"
        print(f"| {n} | {rss:.1f} | {extra} |")


if __name__ == "__main__":
    main()
