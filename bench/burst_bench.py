"""How much of a class's rate TCP gets for a few HTB bursts, side by side (root, iperf3).

One subscriber in the shaper's test lab (subscriber ── edge ── internet
namespaces, tests/shaper/netlab.py); each round sets its class to each burst in
turn and measures a download with iperf3. Alternating in one lab puts every burst
through the same minutes of the machine, good and bad: the figure that matters is
the worst rounds, not the mean.

    sudo .venv/bin/python bench/burst_bench.py [--mbit 100] [--bursts-ms 1.1,4,8]
                                               [--minutes 10] [--seconds 3]

Figures (2-CPU VM, 100 Mbit/s, 3 s per measurement) are in shaper/values.py
beside DEFAULT_BURST_MS.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shaper import Rate, Shaper  # noqa: E402
from tests.shaper.netlab import SUB_ADDRESSES, Lab  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--mbit", type=int, default=100)
    ap.add_argument("--bursts-ms", default="1.1,4,8", help="comma-separated, ms of the rate")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=3.0, help="per iperf3 measurement")
    ap.add_argument("--under", type=float, default=0.90, help="count rounds below this share")
    args = ap.parse_args()

    bursts = [float(b) for b in args.bursts_ms.split(",")]
    rate_bps = args.mbit * 125_000
    kbytes = [max(2, round(rate_bps * ms / 1000 / 1000)) for ms in bursts]
    shares: dict[float, list[float]] = {ms: [] for ms in bursts}
    iperf3 = shutil.which("iperf3")
    if iperf3 is None:
        sys.exit("needs iperf3: apt-get install iperf3")
    lab = Lab(iperf3)
    lab.open()
    try:
        shaper = Shaper("vd", "vu", netns=lab.edge)
        try:
            end = time.monotonic() + args.minutes * 60
            print("time      " + "  ".join(f"{ms:>5g} ms" for ms in bursts), flush=True)
            while time.monotonic() < end:
                row = []
                for ms, kb in zip(bursts, kbytes, strict=True):
                    # Upload at half: the download's ACKs go up through that class.
                    rate = Rate(args.mbit * 1000, args.mbit * 500, kb)
                    shaper.reconcile({SUB_ADDRESSES[0]: rate})
                    got = lab.measure(download=True, seconds=args.seconds).goodput_bps
                    shares[ms].append(got / (args.mbit * 1e6))
                    row.append(shares[ms][-1])
                print(time.strftime("%H:%M:%S  ") + "  ".join(f"{x:8.3f}" for x in row),
                      flush=True)
        finally:
            shaper.teardown()
            shaper.close()
    finally:
        lab.close()

    print(f"\n{args.mbit} Mbit/s, {len(shares[bursts[0]])} rounds; goodput as a share of the"
          f" rate (wire overhead alone leaves ~0.957):")
    for ms, kb in zip(bursts, kbytes, strict=True):
        s = shares[ms]
        print(f"  burst {ms:g} ms ({kb} kB): mean {statistics.fmean(s):.3f}, min {min(s):.3f},"
              f" under {args.under:.2f} in {sum(x < args.under for x in s)} rounds")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
