#!/usr/bin/python3
"""The graphs and the summary of a bench/seed run (bench/seed/README.md).

    bench/seed/report.py bench/results/seed-R.csv

redraws them from a run's CSV into bench/results/seed-R/.  A run has rows
for one store or two (the CSV's `store` column; a run from before it
had one store, the real one): each store gets its own graphs and tables,
and with two, a table side by side first.
"""

import csv
import os
import sys

LABELS = {
    "msgbus-1w": "msgbus (nginx, 1 worker)",
    "msgbus-2w": "msgbus (nginx, 2 workers)",
    "gevent": "Gevent (pywsgi + pymongo)",
    "tornado": "Tornado (+ Motor)",
    "node": "Node.js (http + mongodb)",
    "zaqar": "OpenStack Zaqar (uwsgi)",
    "static": "limit: static nginx",
}


STORE_LABELS = {
    "real": "real store (FerretDB + PostgreSQL with DocumentDB)",
    "standin": "stand-in store (in-memory, a fast MongoDB on its own hardware)",
}


def store_of(r):
    return r.get("store") or "real"


def num(v, default=0.0):
    try:
        return float(v)
    except (TypeError, ValueError):
        return default


def by_workload(rows):
    """{(store, workload): {contender: [rows]}}, in the order of the rows"""
    out = {}
    for r in rows:
        out.setdefault((store_of(r), r["workload"]), {}).setdefault(r["contender"], []).append(r)
    return out


def peak(points):
    """(peak replies/s, the lowest demanded rate that reached 97 % of it,
    errors at the rates below that one, the point at the highest rate with
    zero errors)"""
    top = max(num(r.get("achieved")) for r in points)
    first = min((r for r in points if num(r.get("achieved")) >= 0.97 * top),
                key=lambda r: num(r.get("rate")))
    at = num(first.get("rate"))
    errs = sum(int(num(r.get("errors"))) for r in points if num(r.get("rate")) < at)
    clean = [r for r in points if int(num(r.get("errors"))) == 0 and r.get("replies")]
    last = max(clean, key=lambda r: num(r.get("rate"))) if clean else None
    return top, at, errs, last


def plot(store, workload, series, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    panels = [("achieved", "Throughput (replies/s)"), ("response_ms", "Response time (ms)"),
              ("errors", "Errors"), ("rps_stddev", "Standard deviation, throughput (replies/s)")]
    for ax, (key, title) in zip(axes.flat, panels):
        for c, points in series.items():
            if c.startswith("store"):
                continue
            pts = sorted(points, key=lambda r: num(r["rate"]))
            xs = [num(r["rate"]) for r in pts]
            ys = [num(r.get(key)) for r in pts]
            if key in ("achieved", "response_ms"):
                # log axes: a point with no reply at all is left out
                ys = [y if y > 0 and num(r.get("status_2xx")) > 0 else float("nan")
                      for y, r in zip(ys, pts)]
            ax.plot(xs, ys, marker="o", markersize=3, label=LABELS.get(c, c),
                    linestyle="--" if c == "static" else "-")
        if key == "achieved" and "store" in series:
            ceil = max(num(r["achieved"]) for r in series["store"])
            ax.axhline(ceil, color="grey", linestyle=":", label="limit: store ceiling (%.0f/s)" % ceil)
        ax.set_xscale("log")
        if key in ("achieved", "response_ms"):
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("demanded rate (connections/s)")
        ax.grid(True, which="both", alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("%s, %s: one call per connection unless noted, httperf"
                 % (workload, STORE_LABELS.get(store, store)))
    fig.tight_layout()
    path = os.path.join(out_dir, "%s.png" % png_name(store, workload))
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def png_name(store, workload):
    return workload if store == "real" else "%s-%s" % (workload, store)


def heading(store, w):
    return "## %s: %s" % (w, STORE_LABELS.get(store, store))


def producers(store, w, series, msgbus, workloads):
    """the producers workload: per contender, 16 producers and 1; msgbus's
    ratios to each at the same size"""
    lines = [heading(store, w), "", (workloads or {}).get(w, {}).get("what", ""), "",
             "| contender | producers | posts/s | p50 ms | errors | CPU us per post: server / "
             "store | msgbus / this | what happened |",
             "|---|---:|---:|---:|---:|---|---:|---|"]
    mine = {int(r["calls"]): r for r in series.get(msgbus, [])}
    for c, points in series.items():
        for r in sorted(points, key=lambda r: -int(r["calls"])):
            a, m = num(r.get("achieved")), mine.get(int(r["calls"]))
            label = LABELS.get(c, c)
            if c == "store":
                label = "limit: the store's own inserts into the partition (libmongoc, threads)"
            elif c == "store-plain":
                label = "(the store's own inserts, _id index only)"
            lines.append("| %s | %s | %.1f | %s | %s | %s / %s | %s | %s |" % (
                label, r["calls"], a, r.get("response_ms", ""), r.get("errors", ""),
                r.get("server_us_per_reply") or "-", r.get("store_us_per_reply") or "-",
                "%.2f" % (num(m["achieved"]) / a) if m and a else "", r.get("note", "")))
    return lines + [""]


def closed_loop(store, w, series, msgbus, workloads):
    """a workload measured without httperf: one row per contender"""
    if w == "producers":
        return producers(store, w, series, msgbus, workloads)
    lines = [heading(store, w), "", (workloads or {}).get(w, {}).get("what", ""), "",
             "| contender | messages/s | msgbus / this | what happened |", "|---|---:|---:|---|"]
    mb = num(series[msgbus][0].get("achieved")) if msgbus in series else None
    for c, points in series.items():
        r = points[0]
        a = num(r.get("achieved"))
        lines.append("| %s | %.1f | %s | %s |" % (LABELS.get(c, c), a,
                                                 "%.2f" % (mb / a) if mb and a else "",
                                                 r.get("note", "")))
    return lines + [""]


def side_by_side(groups):
    """with two stores: per workload, each contender's peak and CPU per
    reply on each store"""
    stores = list(dict.fromkeys(st for st, _ in groups))
    if len(stores) < 2:
        return []
    lines = ["## The stores side by side", "",
             "Peak replies/s (messages/s for claim) and CPU us per reply at the highest rate "
             "with 0 errors, server / store, on each store: "
             + "; ".join("%s = %s" % (st, STORE_LABELS.get(st, st)) for st in stores) + ".", ""]
    workloads = list(dict.fromkeys(w for _, w in groups))
    for w in workloads:
        lines += ["### %s" % w, "",
                  "| contender | " + " | ".join("peak, %s | CPU us, %s" % (st, st) for st in stores) + " |",
                  "|---|" + "---:|---|" * len(stores)]
        names = list(dict.fromkeys(c for st in stores for c in groups.get((st, w), {})))
        for c in names:
            cells = []
            for st in stores:
                pts = groups.get((st, w), {}).get(c)
                if not pts:
                    cells += ["", ""]
                elif c.startswith("store"):
                    best = max(pts, key=lambda r: num(r["achieved"]))
                    cells += ["%.0f" % num(best["achieved"]), "- / %s" % best.get("store_us_per_reply")]
                elif not any(r.get("rate") for r in pts):
                    cells += ["%.0f" % num(pts[0].get("achieved")), ""]
                else:
                    p, _, _, last = peak(pts)
                    cells += ["%.0f" % p, "%s / %s" % (last.get("server_us_per_reply") or "-",
                                                       last.get("store_us_per_reply") or "-")
                              if last else ""]
            label = LABELS.get(c, c)
            if c == "store":
                label = "limit: store ceiling (beside the twin)"
            elif c == "store-alone":
                label = "(store alone)"
            lines.append("| %s | %s |" % (label, " | ".join(cells)))
        lines.append("")
    return lines


def write(rows, facts, out_dir, msgbus, pages=None, workloads=None):
    os.makedirs(out_dir, exist_ok=True)
    lines = ["# bench/seed run %s (%s)" % (rows[0]["run"] if rows else "?", facts.get("mode", "")), ""]
    for k, v in facts.items():
        lines.append("- %s: %s" % (k, v))
    lines.append("")
    groups = by_workload(rows)
    lines += side_by_side(groups)
    for (store, w), series in groups.items():
        if all(not r.get("rate") for pts in series.values() for r in pts):
            lines += closed_loop(store, w, series, msgbus, workloads)
            continue
        plot(store, w, series, out_dir)
        what = (workloads or {}).get(w, {}).get("what", "")
        name = png_name(store, w)
        lines += [heading(store, w), "", what + ("; " if what else "") + "![%s](%s.png)" % (name, name), ""]
        lines += ["| contender | peak replies/s | reached at demanded | errors below that "
                  "| highest rate with 0 errors: response ms | CPU us per reply there: server / store "
                  "| msgbus / this |",
                  "|---|---:|---:|---:|---|---|---:|"]
        mb = peak(series[msgbus])[0] if msgbus in series else None
        limits = []
        for c, points in series.items():
            if c.startswith("store"):
                continue
            p, at, errs, last = peak(points)
            ratio = "%.2f" % (mb / p) if mb is not None and p > 0 else ""
            clean = "%.1f ms at %d/s" % (num(last["response_ms"]), num(last["rate"])) if last else "none"
            cpu = "%s / %s" % (last.get("server_us_per_reply") or "-",
                               last.get("store_us_per_reply") or "-") if last else ""
            lines.append("| %s | %.0f | %d | %d | %s | %s | %s |"
                         % (LABELS.get(c, c), p, at, errs, clean, cpu, ratio))
            if c == "static":
                limits.append(("static nginx", p))
        for c in ("store", "store-alone"):
            if c not in series:
                continue
            best = max(series[c], key=lambda r: num(r["achieved"]))
            if c == "store":
                limits.append(("store ceiling", num(best["achieved"])))
            lines.append("| %s: msgbus's find in a libmongoc loop, %s | %.0f | | %s | "
                         "p50 %s ms | - / %s | %s |"
                         % ("limit: store ceiling" if c == "store" else "(store alone)",
                            best.get("note"), num(best["achieved"]), best.get("errors"),
                            best.get("response_ms"), best.get("store_us_per_reply"),
                            "%.2f" % (mb / num(best["achieved"])) if mb else ""))
        if mb is not None and limits:
            lo = min(limits, key=lambda x: x[1])
            lines += ["", "msgbus / min(%s) = %.3f" % (", ".join(n for n, _ in limits),
                                                      mb / lo[1] if lo[1] else 0)]
        if pages and w in pages:
            lines += ["", "msgbus's answer: %d bytes of JSON." % len(pages[w])]
        lines.append("")
    path = os.path.join(out_dir, "summary.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def main():
    path = sys.argv[1]
    facts, rows, cols = {}, [], None
    with open(path) as f:
        for rec in csv.reader(f):
            if rec and rec[0] == "#":
                facts[rec[1]] = rec[2]
            elif cols is None:
                cols = rec
            else:
                rows.append(dict(zip(cols, rec)))
    out = os.path.splitext(path)[0]
    print(write(rows, facts, out, "msgbus-2w"))


if __name__ == "__main__":
    main()
