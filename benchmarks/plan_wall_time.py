"""Wall time of `coldreach plan --stack STACK --json`, as a user runs it (a new process each time).

Usage: python benchmarks/plan_wall_time.py [--stack dev] [--phase 3] [--runs 7]
Prints each run and the median. Target: median <= 5 s on the 2-core CI machine.
Each run also prints the CPU time the plan process used (user + system): on a shared
machine the wall time mostly measures the other load, the CPU time does not.
"""

from __future__ import annotations

import argparse
import json
import resource
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
    cpu: list[float] = []
    document: dict = {}
    for i in range(args.runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(command, check=True, stdout=subprocess.PIPE)
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        document = json.loads(done.stdout)
        print(f"run {i + 1}: {times[-1]:.2f} s (CPU {cpu[-1]:.2f} s)", flush=True)
    resources = document.get("resources", [])
    custom = [r for r in resources if r.get("id")]
    print(
        f"{' '.join(command[1:])}: median {statistics.median(times):.2f} s "
        f"(min {min(times):.2f}, max {max(times):.2f}, {args.runs} runs); "
        f"median CPU {statistics.median(cpu):.2f} s; "
        f"{len(resources)} resources ({len(custom)} with an id, the rest components)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
