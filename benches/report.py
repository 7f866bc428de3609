#!/usr/bin/env python3
"""Ratio tables and bar charts from the `sets` and `family` benchmarks'
criterion output.

Reads every `<criterion dir>/<group>/<implementation>/<size>/new/` (the
`estimates.json` and `benchmark.json` criterion writes there), and prints a
Markdown table to stdout: per workload and size, futures-util's time per
child, then each implementation's time divided by futures-util's (lower is
faster; 1.00 is futures-util). The sets of streams (`streams*` workloads)
get a second table, whose baseline is futures-util's `select_all`, and the
family (`family_*` workloads, from `benches/family.rs`) a third, whose
baseline is futures-util's counterpart of each type. With a path, also
writes an SVG bar chart of the futures sets' ratios on a log scale, and one
per other table next to it (`CHART-streams.svg`, `CHART-family.svg`; at
CHART itself when only one table is printed).

    python3 benches/report.py [--criterion DIR] [--tables LIST] [CHART.svg]

LIST is a comma-separated subset of `sets,streams,family` (default: all
three; tables with no results are skipped), e.g. `--tables family
docs/benchmarks-family.svg` after `cargo bench --bench family`.

DIR defaults to `$CARGO_TARGET_DIR/criterion`, else `target/criterion`.
Standard library only.
"""

import argparse
import html
import json
import math
import os
import sys

BASELINE = "futures-util"
# Baseline of the sets of streams: workloads whose name starts with
# STREAMS_PREFIX.
STREAMS_BASELINE = "select_all"
STREAMS_PREFIX = "streams"
# The family built on the sets (benches/family.rs): workloads whose name
# starts with FAMILY_PREFIX; baseline futures-util, as for the sets.
FAMILY_PREFIX = "family_"
SKIPPED_PREFIXES = ("deadlines_",)
# The implementation under test, and the column that compares it with the
# fastest other implementation (the floor excluded) in the family table.
SUBJECT = "velodrome"
VS_BEST = "velodrome / best peer"
# Column order; implementations not listed here follow in name order.
IMPLEMENTATIONS = [
    "floor",
    "velodrome",
    "futures-util",
    "futures-buffered",
    "unicycle",
    "futures-concurrency",
]
# Row order; workloads not listed here follow in name order.
WORKLOADS = [
    "ready_drain",
    "pending_once",
    "yield_10",
    "one_wake",
    "cross_thread",
    "steady_state",
    "mutex_contention",
    "budget_pressure",
    "streams_ready",
    "streams_pending",
    "family_ordered",
    "family_buffer_unordered_ready",
    "family_buffer_unordered_pending_once",
    "family_buffer_unordered_yield_10",
    "family_buffered_ready",
    "family_buffered_pending_once",
    "family_buffered_yield_10",
    "family_join_all",
    "family_try_join_all",
    "family_select_all",
]
# Column order of the streams table.
STREAMS_IMPLEMENTATIONS = [
    "floor",
    "velodrome",
    "select_all",
    "futures-util-streamfuture",
    "unicycle",
    "futures-concurrency",
]
COLOURS = {
    "floor": "#9e9e9e",
    "velodrome": "#d62728",
    "futures-util": "#1f77b4",
    "futures-buffered": "#2ca02c",
    "unicycle": "#ff7f0e",
    "futures-concurrency": "#9467bd",
    "select_all": "#1f77b4",
    "futures-util-streamfuture": "#17becf",
}


def default_dir():
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    return os.path.join(target, "criterion")


def load(root):
    """{(workload, size): {implementation: ns per element}}"""
    results = {}
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) != "new":
            continue
        if "estimates.json" not in files or "benchmark.json" not in files:
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            bench = json.load(f)
        with open(os.path.join(dirpath, "estimates.json")) as f:
            estimates = json.load(f)
        group = bench.get("group_id")
        implementation = bench.get("function_id")
        size = bench.get("value_str") or ""
        if not group or not implementation:
            continue
        nanos = estimates["mean"]["point_estimate"]
        elements = 1
        throughput = bench.get("throughput") or {}
        if "Elements" in throughput:
            elements = max(1, int(throughput["Elements"]))
        results.setdefault((group, size), {})[implementation] = nanos / elements
    return results


def order_key(known):
    def key(name):
        return (known.index(name), "") if name in known else (len(known), name)

    return key


def size_key(size):
    try:
        return (0, int(size), "")
    except ValueError:
        return (1, 0, size)


def split(results):
    """(futures sets' results, streams' results, family's results)"""
    futures, streams, family = {}, {}, {}
    for row, times in results.items():
        if row[0].startswith(STREAMS_PREFIX):
            streams[row] = times
        elif row[0].startswith(FAMILY_PREFIX):
            family[row] = times
        elif row[0].startswith(SKIPPED_PREFIXES):
            # No futures-util baseline in these groups (benches/deadlines.rs
            # compares against futures-util+timeout): criterion's own report.
            continue
        else:
            futures[row] = times
    return futures, streams, family


def rows_and_columns(results, known=IMPLEMENTATIONS):
    rows = sorted(
        results,
        key=lambda r: (order_key(WORKLOADS)(r[0]), size_key(r[1])),
    )
    names = {name for times in results.values() for name in times}
    columns = sorted(names, key=order_key(known))
    return rows, columns


def ratio(times, name, baseline=BASELINE):
    base = times.get(baseline)
    if base is None or name not in times or base <= 0:
        return None
    return times[name] / base


def format_nanos(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.1f} ns"


FAMILY_INTRO = (
    "The family: time per child (per item in family_select_all) divided by "
    f"{BASELINE}'s counterpart (FuturesOrdered, buffer_unordered, buffered, "
    "join_all, try_join_all, select_all); lower is faster. Criterion mean "
    f"estimates. The last column is {SUBJECT}'s time over the fastest "
    "other implementation's (the floor excluded): at most 1.00 meets the "
    "target."
)


def vs_best(times):
    """SUBJECT's time over the fastest peer's (None if either is missing)."""
    peers = [t for name, t in times.items() if name not in ("floor", SUBJECT)]
    if SUBJECT not in times or not peers or min(peers) <= 0:
        return None
    return times[SUBJECT] / min(peers)


def markdown(
    results,
    baseline=BASELINE,
    known=IMPLEMENTATIONS,
    unit="child",
    intro=None,
    best=False,
):
    rows, columns = rows_and_columns(results, known)
    out = []
    if intro is not None:
        out.append(intro)
    elif baseline == BASELINE:
        out.append(
            "Time per child (per completed child in one_wake and steady_state) "
            f"divided by {BASELINE}'s; lower is faster. Criterion mean estimates."
        )
    else:
        out.append(
            f"Sets of streams: time per {unit} divided by {baseline}'s; lower "
            "is faster. Criterion mean estimates."
        )
    out.append("")
    header = ["workload", "size", f"{baseline} per {unit}"] + columns
    if best:
        header.append(VS_BEST)
    out.append("| " + " | ".join(header) + " |")
    out.append("|---|---:|---:|" + "---:|" * (len(header) - 3))
    for row in rows:
        times = results[row]
        base = times.get(baseline)
        cells = [row[0], row[1], format_nanos(base) if base is not None else "—"]
        for name in columns:
            r = ratio(times, name, baseline)
            cells.append("—" if r is None else f"{r:.2f}")
        if best:
            r = vs_best(times)
            cells.append("—" if r is None else f"{r:.2f}")
        out.append("| " + " | ".join(cells) + " |")
    skipped = [
        f"{row[0]}/{row[1]}: {name}"
        for row in rows
        for name in columns
        if name not in results[row] and name != "floor"
    ]
    if skipped:
        out.append("")
        out.append("Not run (—): " + "; ".join(skipped) + ".")
    return "\n".join(out)


def svg(results, baseline=BASELINE, known=IMPLEMENTATIONS, unit="child"):
    rows, columns = rows_and_columns(results, known)
    ratios = [
        r
        for row in rows
        for name in columns
        if (r := ratio(results[row], name, baseline)) is not None and r > 0
    ]
    if not ratios:
        raise SystemExit(f"no ratios to chart: is {baseline} in the results?")
    lo = math.floor(math.log10(min(min(ratios), 1.0)))
    hi = math.ceil(math.log10(max(max(ratios), 1.0)))
    if hi == lo:
        hi += 1

    bar_w, gap = 10, 16
    group_w = bar_w * len(columns) + gap
    left, right, top, bottom = 70, 20, 40, 130
    plot_h = 320
    width = left + group_w * len(rows) + right
    height = top + plot_h + bottom + 20 * ((len(columns) + 2) // 3)

    def y(value):
        return top + plot_h * (hi - math.log10(value)) / (hi - lo)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="20" font-size="14">Time per {unit} relative to '
        f"{baseline} (the 1× line; log scale, lower is faster)</text>",
    ]
    for exp in range(lo, hi + 1):
        value = 10.0**exp
        yy = y(value)
        label = f"{value:g}"
        parts.append(
            f'<line x1="{left}" y1="{yy:.1f}" x2="{width - right}" y2="{yy:.1f}" '
            f'stroke="{"#444" if exp == 0 else "#ddd"}" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{label}×</text>'
        )
    baseline_y = y(1.0)
    for i, row in enumerate(rows):
        x0 = left + i * group_w + gap / 2
        for j, name in enumerate(columns):
            r = ratio(results[row], name, baseline)
            if r is None or r <= 0:
                continue
            yy = y(r)
            top_y, h = min(yy, baseline_y), abs(yy - baseline_y)
            title = html.escape(f"{row[0]} {row[1]} {name}: {r:.2f}×")
            parts.append(
                f'<rect x="{x0 + j * bar_w:.1f}" y="{top_y:.1f}" width="{bar_w - 1}" '
                f'height="{max(h, 1):.1f}" fill="{COLOURS.get(name, "#17becf")}">'
                f"<title>{title}</title></rect>"
            )
        cx = x0 + bar_w * len(columns) / 2
        label = html.escape(f"{row[0]} {row[1]}")
        ly = top + plot_h + 8
        parts.append(
            f'<text x="{cx:.1f}" y="{ly}" text-anchor="end" '
            f'transform="rotate(-45 {cx:.1f} {ly})">{label}</text>'
        )
    legend_y = top + plot_h + bottom
    for k, name in enumerate(columns):
        lx = left + (k % 3) * 180
        ly = legend_y + (k // 3) * 20
        parts.append(
            f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" '
            f'fill="{COLOURS.get(name, "#17becf")}"/>'
        )
        parts.append(f'<text x="{lx + 18}" y="{ly}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chart", nargs="?", help="write an SVG bar chart here")
    parser.add_argument(
        "--tables",
        default="sets,streams,family",
        help="comma-separated tables to print and chart (default: %(default)s)",
    )
    parser.add_argument(
        "--criterion",
        default=default_dir(),
        help="criterion output directory (default: %(default)s)",
    )
    args = parser.parse_args()
    results = load(args.criterion)
    if not results:
        sys.exit(f"no criterion results under {args.criterion}")
    wanted = {name.strip() for name in args.tables.split(",") if name.strip()}
    unknown = wanted - {"sets", "streams", "family"}
    if unknown:
        sys.exit(f"unknown tables: {', '.join(sorted(unknown))}")
    futures, streams, family = split(results)
    streams_args = (STREAMS_BASELINE, STREAMS_IMPLEMENTATIONS, "item")
    # (name, results, markdown arguments, svg arguments), in print order.
    selected = [
        (name, res, md, sv)
        for name, res, md, sv in [
            ("sets", futures, {}, ()),
            ("streams", streams, dict(zip(("baseline", "known", "unit"), streams_args)),
             streams_args),
            ("family", family, {"intro": FAMILY_INTRO, "best": True}, ()),
        ]
        if name in wanted and res
    ]
    if not selected:
        sys.exit(f"no results for the tables {args.tables} under {args.criterion}")
    print("\n\n".join(markdown(res, **md) for _name, res, md, _sv in selected))
    if args.chart:
        charts = []
        stem, ext = os.path.splitext(args.chart)
        for k, (name, res, _md, sv) in enumerate(selected):
            # The first table selected gets CHART itself unless the sets'
            # table is printed too (the sets' chart always owns CHART).
            if len(selected) == 1 or (k == 0 and name == "sets"):
                path = args.chart
            else:
                path = f"{stem}-{name}{ext or '.svg'}"
            charts.append((path, svg(res, *sv)))
        for path, chart in charts:
            with open(path, "w") as f:
                f.write(chart)
            print(f"\nChart written to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
