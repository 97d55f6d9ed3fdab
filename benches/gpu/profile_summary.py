#!/usr/bin/env python3
"""Per-kernel-family summary of a CubeCL profile log.

CubeCL's profiling logger (`CUBECL_DEBUG_OPTION=profile`, `[profiling.logger]` in
benches/gpu/cubecl.toml) writes one line per kernel launch: `| 1.23ms | Name | ... |`.
This sums the time and counts the launches of each kernel family (matmuls as one family,
binary ops and reductions by their operation), divided by the number of forward passes
or steps the log covers:

    python3 benches/gpu/profile_summary.py profile.log --passes 6

Run the workload twice and summarise the second run's log: the first one also times
every autotune candidate. The log includes weight initialisation (`PrngKernel`).
"""

import argparse
import collections
import re
import sys

UNITS_MS = {"s": 1e3, "ms": 1.0, "µs": 1e-3, "us": 1e-3, "ns": 1e-6}
TIME = re.compile(r"([\d.]+)\s*(ms|µs|us|ns|s)$")


def family(fields):
    name = fields[1]
    if name.startswith("MatmulEntry"):
        return "Matmul"
    if name in ("KernelBinop", "ReduceKernel", "PrngKernel") and len(fields) > 2:
        return f"{name}:{fields[2]}"
    return name


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log")
    parser.add_argument("--passes", type=float, default=1.0, help="passes the log covers (divides the totals)")
    args = parser.parse_args()
    total_ms = collections.defaultdict(float)
    launches = collections.Counter()
    with open(args.log, encoding="utf-8") as log:
        for line in log:
            fields = [f.strip() for f in line.strip().strip("|").split("|")]
            if len(fields) < 2:
                continue
            match = TIME.match(fields[0])
            if not match:
                continue
            kind = family(fields)
            total_ms[kind] += float(match.group(1)) * UNITS_MS[match.group(2)]
            launches[kind] += 1
    if not launches:
        sys.exit(f"{args.log}: no kernel lines (was CUBECL_DEBUG_OPTION=profile set?)")
    grand = sum(total_ms.values())
    print(f"{'kernel family':40s} {'ms/pass':>9s} {'share':>6s} {'launches/pass':>14s}")
    for kind, ms in sorted(total_ms.items(), key=lambda item: -item[1]):
        print(f"{kind:40s} {ms / args.passes:9.2f} {100 * ms / grand:5.1f}% {launches[kind] / args.passes:14.1f}")
    print(f"{'total':40s} {grand / args.passes:9.2f} {100.0:5.1f}% {sum(launches.values()) / args.passes:14.1f}")


if __name__ == "__main__":
    main()
