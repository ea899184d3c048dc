"""Benchmark: attention throughput of the WGSL compute kernels (engine/compute) against torch on the CPU, same machine.

    .venv/bin/python benchmarks/compute_attention.py [--repeats N] [--quick]     (prints JSON)

The measurement of `llmviz bench --compute` (scenes/cli/compute_bench.py: what is timed, how, and the check of each
output against torch's) on the shapes of issue 19's first figures: 12 heads at 128 and 512 tokens, one head up to
16,384 tokens (the online kernel). Figures, not assertions.
"""
from __future__ import annotations

import argparse
import json

from llmviz.scenes.cli.compute_bench import measure

SHAPES = {  # kind -> (heads, tokens, head dim)
    "full": [(12, 128, 64), (12, 512, 64), (1, 2048, 64)],
    "online": [(12, 512, 64), (1, 4096, 64), (1, 16384, 64)],
}
QUICK = {"full": [(2, 64, 32)], "online": [(2, 64, 32)]}


def main(argv=None) -> int:
    from llmviz.engine.compute.attention import ComputeUnavailable

    parser = argparse.ArgumentParser(description="WGSL attention kernels against torch CPU")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one tiny shape per kind (a smoke run)")
    args = parser.parse_args(argv)
    try:
        report = measure(QUICK if args.quick else SHAPES, args.repeats)
    except ComputeUnavailable as err:
        print(json.dumps({"error": str(err)}))
        return 1
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
