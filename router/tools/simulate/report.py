"""The report of ``router simulate`` for people and for CI: a text table, ``expect:`` verdicts, a comparison of
two policies, and the optional chart.

``table`` prints one run (overall, then one row per provider, one per namespace when the traffic asks more
than chat, then each outage: how fast the routing failed
away from it and came back); ``compare`` prints two runs side by side, marking with ``*`` every figure that
differs (Markdown, so it reads as a pull-request comment next to ``router diff``); ``check`` evaluates the
scenario's ``expect:`` lines against a report. ``chart`` draws success rate and traffic share per provider
over time with matplotlib, an optional extra (``pip install 'router[sim]'``).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

from router.tools.simulate.scenario import EXPECTATION

__all__ = ["chart", "check", "compare", "figure", "table"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
    "==": operator.eq,
}
_OVERALL_ROWS = (
    ("requests", "requests"),
    ("success rate", "success_rate"),
    ("attempts / request", "attempts_per_request"),
    ("retries", "retries"),
    ("failovers", "failovers"),
    ("p50 / p95 / p99 ms", ("p50_ms", "p95_ms", "p99_ms")),
    ("time in backoff s", "backoff_s"),
    ("cost", "cost"),
    ("limits hit", "limits_hit"),
)
_PROVIDER_COLUMNS = (
    "attempts",
    "served",
    "share",
    "success_rate",
    "retries",
    "failovers",
    "p99_ms",
    "cost",
    "limits_hit",
)
_NAMESPACE_COLUMNS = ("requests", "success_rate", "attempts_per_request", "p50_ms", "p99_ms", "cost")


def figure(report: dict[str, Any], metric: str) -> float:
    """The value of ``metric`` (``success_rate``, ``provider.NAME.share``) in ``report``."""
    parts = metric.split(".")
    if parts[0] == "provider" and len(parts) == 3:
        providers = {name.casefold(): stats for name, stats in report["providers"].items()}
        return float(providers[parts[1].casefold()][parts[2]])
    if parts[0] == "namespace" and len(parts) == 3:
        return float(report["namespaces"][parts[1]][parts[2]])
    return float(report["overall"][metric])


def check(report: dict[str, Any], expectations: Sequence[str]) -> list[dict[str, Any]]:
    """Each ``expect:`` line with the value found and whether it holds."""
    verdicts = []
    for line in expectations:
        match = EXPECTATION.match(line)
        if match is None:
            continue
        value = figure(report, match["metric"])
        holds = _OPS[match["op"]](value, float(match["value"]))
        verdicts.append({"expect": line.strip(), "value": value, "ok": holds})
    return verdicts


def table(report: dict[str, Any], verdicts: Sequence[dict[str, Any]] = ()) -> str:
    """One run as text: overall figures, a row per provider, outages, and the expect: verdicts."""
    overall, run = report["overall"], report["run"]
    lines = [
        f"simulated {run['simulated_s']:g} s ({overall['requests']} requests) in {run['wall_s']:g} s of wall time, "
        f"seed {run['seed']}",
        "",
    ]
    for label, key in _OVERALL_ROWS:
        lines.append(f"  {label:<20} {_cell(overall, key)}")
    if overall["failovers_by_class"]:
        lines.append(f"  {'failovers by class':<20} {_classes(overall['failovers_by_class'])}")
    if overall["failed_by"]:
        lines.append(f"  {'failed by':<20} {_classes(overall['failed_by'])}")
    lines += [
        "",
        _grid(
            ["provider", *_PROVIDER_COLUMNS],
            [[name, *(_fmt(p[c]) for c in _PROVIDER_COLUMNS)] for name, p in report["providers"].items()],
        ),
    ]
    namespaces = report.get("namespaces", {})
    if set(namespaces) - {"chat"}:
        lines += [
            "",
            _grid(
                ["namespace", *_NAMESPACE_COLUMNS],
                [[name, *(_fmt(n[c]) for c in _NAMESPACE_COLUMNS)] for name, n in namespaces.items()],
            ),
        ]
    outages = [(name, o) for name, p in report["providers"].items() for o in p["outages"]]
    if outages:
        lines += ["", "outages:"]
        for name, o in outages:
            away = "never" if o["fail_away_s"] is None else f"{o['fail_away_s']:g} s"
            back = "never" if o["recover_s"] is None else f"{o['recover_s']:g} s"
            lines.append(
                f"  {name} {o['kind']} {o['start_s']:g}-{o['end_s']:g} s: failed away after {away} "
                f"({o['attempts_during']} attempts during it), served again {back} after it ended"
            )
    if verdicts:
        lines += ["", "expect:"]
        lines += [f"  {'ok  ' if v['ok'] else 'FAIL'} {v['expect']}  (is {_fmt(v['value'])})" for v in verdicts]
    return "\n".join(lines)


def compare(name_a: str, a: dict[str, Any], name_b: str, b: dict[str, Any]) -> str:
    """Two runs of one scenario side by side (Markdown); ``*`` marks every figure that differs."""
    rows = []
    for label, key in _OVERALL_ROWS:
        left, right = _cell(a["overall"], key), _cell(b["overall"], key)
        rows.append([label, left, right, "*" if left != right else ""])
    for provider in dict.fromkeys([*a["providers"], *b["providers"]]):
        for column in ("share", "attempts", "failovers", "p99_ms"):
            left = _fmt(a["providers"].get(provider, {}).get(column, 0))
            right = _fmt(b["providers"].get(provider, {}).get(column, 0))
            rows.append([f"{provider} {column}", left, right, "*" if left != right else ""])
    spaces = dict.fromkeys([*a.get("namespaces", {}), *b.get("namespaces", {})])
    for space in spaces if set(spaces) - {"chat"} else ():
        for column in ("success_rate", "p99_ms"):
            left = _fmt(a["namespaces"].get(space, {}).get(column, 0))
            right = _fmt(b["namespaces"].get(space, {}).get(column, 0))
            rows.append([f"{space} {column}", left, right, "*" if left != right else ""])
    header = ["", name_a, name_b, "differs"]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += [
        "| " + " | ".join(f"**{c}**" if row[3] and i in (1, 2) else c for i, c in enumerate(row)) + " |" for row in rows
    ]
    return "\n".join(out)


def chart(report: dict[str, Any], path: str, title: str = "router simulate") -> None:
    """Success rate and traffic share per provider over time, as a PNG or SVG (by ``path``'s extension).

    Needs matplotlib (``pip install 'router[sim]'``); ImportError says so when it is missing."""
    try:
        import matplotlib as mpl  # noqa: PLC0415 - an optional extra, loaded only for --chart

        mpl.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError as exc:
        raise ImportError("--chart needs matplotlib: pip install 'router[sim]'") from exc
    timeline = report["timeline"]
    t = timeline["t_s"]
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 6))
    top.plot(t, timeline["success_rate"], color="black")
    top.set_ylabel("success rate")
    top.set_ylim(0, 1.05)
    top.set_title(title)
    shares = timeline["share"]
    bottom.stackplot(t, *shares.values(), labels=list(shares))
    bottom.set_ylabel("traffic share")
    bottom.set_xlabel("simulated seconds")
    bottom.set_ylim(0, 1)
    bottom.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _cell(stats: dict[str, Any], key: str | tuple[str, ...]) -> str:
    if isinstance(key, tuple):
        return " / ".join(_fmt(stats[k]) for k in key)
    return _fmt(stats[key])


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _classes(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items())


def _grid(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*row) for row in [header, *rows])
