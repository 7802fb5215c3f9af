"""Time of the offline plan plus the policy pack for one stack.

Usage: python benchmarks/policy_eval.py [--stack staging] [--phase N] [--runs 7]

Two measurements:
- in-process: evaluating the program (`coldreach.evaluation.evaluate_stack`) and then the pack
  (`coldreach.policy_eval.evaluate`), each timed separately, per run;
- end to end: `coldreach plan --stack STACK --json` in a new process (program, cost and
  policy together, as CI and users run it).
Prints each run and the medians.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stack", default="staging")
    parser.add_argument("--phase", type=int)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    from coldreach import policy_eval
    from coldreach.evaluation import evaluate_stack
    from policies import catalog

    program: list[float] = []
    policy: list[float] = []
    for i in range(args.runs):
        start = time.perf_counter()
        deployment = evaluate_stack(args.stack, args.phase)
        middle = time.perf_counter()
        violations = policy_eval.evaluate(deployment)
        end = time.perf_counter()
        program.append(middle - start)
        policy.append(end - middle)
        print(
            f"run {i + 1}: program {program[-1] * 1000:.0f} ms, "
            f"policy {policy[-1] * 1000:.1f} ms ({len(deployment.resources)} resources, "
            f"{len(violations)} findings)",
            flush=True,
        )

    exe = shutil.which("coldreach")
    plan_args = ["plan", "--stack", args.stack, "--json"]
    if args.phase:
        plan_args += ["--phase", str(args.phase)]
    command = ([exe] if exe else [sys.executable, "-m", "coldreach.cli"]) + plan_args
    wall: list[float] = []
    for _ in range(args.runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        wall.append(time.perf_counter() - start)

    print(
        f"{args.stack}: {len(catalog.rules())} rules; in-process median: program "
        f"{statistics.median(program) * 1000:.0f} ms + policy "
        f"{statistics.median(policy) * 1000:.1f} ms; `coldreach {' '.join(plan_args)}` median "
        f"{statistics.median(wall):.2f} s (min {min(wall):.2f}, max {max(wall):.2f}, "
        f"{args.runs} runs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
