"""``router simulate POLICY --scenario FILE [--seed N] [--json] [--compare OTHER] [--chart FILE]``.

Exit codes as the other policy tools: 0 every ``expect:`` line holds (for ``--compare``: under the first
policy), 1 one does not, 2 a policy or scenario that cannot be used (printed with file:line:col) or a
chart that cannot be drawn.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Any

from router.errors import PolicyError
from router.policy.loader import load_policy
from router.policy.model import Policy
from router.tools.simulate import report as text
from router.tools.simulate.engine import Simulation
from router.tools.simulate.load import load_scenario
from router.tools.simulate.scenario import Scenario

__all__ = ["run"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def run(args: argparse.Namespace) -> int:
    """Run the command; the exit code."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            policy = load_policy(args.path)
            other = load_policy(args.compare) if args.compare else None
        scenario = load_scenario(args.scenario, policy)
        if other is not None:
            load_scenario(args.scenario, other)
        first = _simulate(policy, scenario, args.seed)
        second = _simulate(other, scenario, args.seed) if other is not None else None
    except PolicyError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return EXIT_USAGE
    except (OSError, ValueError) as exc:
        print(f"router simulate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    verdicts = text.check(first, scenario.expect)
    first["expect"] = verdicts
    if second is not None:
        second["expect"] = text.check(second, scenario.expect)
    _print(args, first, second)
    if args.chart:
        try:
            text.chart(first, args.chart, title=f"{args.path} under {args.scenario}")
        except (ImportError, OSError, ValueError) as exc:
            print(f"router simulate: {exc}", file=sys.stderr)
            return EXIT_USAGE
    return EXIT_OK if all(v["ok"] for v in verdicts) else EXIT_FAILED


def _simulate(policy: Policy, scenario: Scenario, seed: int | None) -> dict[str, Any]:
    return Simulation(policy, scenario, seed=seed).run()


def _print(args: argparse.Namespace, first: dict[str, Any], second: dict[str, Any] | None) -> None:
    if args.json:
        data = first if second is None else {args.path: first, args.compare: second}
        print(json.dumps(data, indent=2))
    elif second is None:
        print(text.table(first, first["expect"]))
    else:
        print(text.compare(args.path, first, args.compare, second))
        for name, report in ((args.path, first), (args.compare, second)):
            failed = [v for v in report["expect"] if not v["ok"]]
            status = "every expect: line holds" if not failed else "FAILS " + "; ".join(v["expect"] for v in failed)
            print(f"\n{name}: {status}")
