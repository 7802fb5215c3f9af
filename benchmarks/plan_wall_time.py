"""Wall time of `coldreach plan --stack STACK --json`, as a user runs it (a new process each time).

Usage: python benchmarks/plan_wall_time.py [--stack dev] [--runs 7]
Prints each run and the median. Target: median <= 5 s on the 2-core CI machine.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--phase", type=int)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    exe = shutil.which("coldreach")
    command = [exe] if exe else [sys.executable, "-m", "coldreach.cli"]
    command += ["plan", "--stack", args.stack, "--json"]
    if args.phase:
        command += ["--phase", str(args.phase)]

    times: list[float] = []
    for i in range(args.runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
        print(f"run {i + 1}: {times[-1]:.2f} s", flush=True)
    print(
        f"{' '.join(command[1:])}: median {statistics.median(times):.2f} s "
        f"(min {min(times):.2f}, max {max(times):.2f}, {args.runs} runs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
