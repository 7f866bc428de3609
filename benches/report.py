#!/usr/bin/env python3
"""Ratio table and bar chart from the `sets` benchmark's criterion output.

Reads every `<criterion dir>/<group>/<implementation>/<size>/new/` (the
`estimates.json` and `benchmark.json` criterion writes there), and prints a
Markdown table to stdout: per workload and size, futures-util's time per
child, then each implementation's time divided by futures-util's (lower is
faster; 1.00 is futures-util). The sets of streams (`streams*` workloads)
get a second table, whose baseline is futures-util's `select_all`. With a
path, also writes an SVG bar chart of the futures sets' ratios on a log
scale, and one of the streams' ratios next to it (`CHART-streams.svg`; at
CHART itself when there are only streams).

    python3 benches/report.py [--criterion DIR] [CHART.svg]

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
    """(futures sets' results, streams' results)"""
    futures, streams = {}, {}
    for row, times in results.items():
        (streams if row[0].startswith(STREAMS_PREFIX) else futures)[row] = times
    return futures, streams


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


def markdown(results, baseline=BASELINE, known=IMPLEMENTATIONS, unit="child"):
    rows, columns = rows_and_columns(results, known)
    out = []
    if baseline == BASELINE:
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
    out.append("| " + " | ".join(header) + " |")
    out.append("|---|---:|---:|" + "---:|" * len(columns))
    for row in rows:
        times = results[row]
        base = times.get(baseline)
        cells = [row[0], row[1], format_nanos(base) if base is not None else "—"]
        for name in columns:
            r = ratio(times, name, baseline)
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
        "--criterion",
        default=default_dir(),
        help="criterion output directory (default: %(default)s)",
    )
    args = parser.parse_args()
    results = load(args.criterion)
    if not results:
        sys.exit(f"no criterion results under {args.criterion}")
    futures, streams = split(results)
    streams_args = (STREAMS_BASELINE, STREAMS_IMPLEMENTATIONS, "item")
    tables = []
    if futures:
        tables.append(markdown(futures))
    if streams:
        tables.append(markdown(streams, *streams_args))
    print("\n\n".join(tables))
    if args.chart:
        charts = []
        if futures:
            charts.append((args.chart, svg(futures)))
        if streams:
            path = args.chart
            if futures:
                stem, ext = os.path.splitext(args.chart)
                path = f"{stem}-streams{ext or '.svg'}"
            charts.append((path, svg(streams, *streams_args)))
        for path, chart in charts:
            with open(path, "w") as f:
                f.write(chart)
            print(f"\nChart written to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
