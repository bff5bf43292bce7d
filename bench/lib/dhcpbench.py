#!/usr/bin/python3
"""Helper for bench/dhcp: parse perfdhcp output, decide pass/fail, print the report.

  dhcpbench.py parse FILE RATE DURATION MAXDROP   -> one tab-separated result line (see FIELDS)
  dhcpbench.py report RESULTS.tsv META.tsv         -> the summary tables

Only the standard library is used.
"""
import math
import re
import sys

FIELDS = [
    "do_sent", "do_rcvd", "ra_sent", "ra_rcvd", "orphans",
    "achieved", "drop_pct", "verdict",
    "do_p50", "do_p99", "do_max", "ra_p50", "ra_p99", "ra_max", "n_timed",
]

# The TSV written by bench/dhcp has these leading columns, then FIELDS, then
# a free-text CPU/overflow note ("cpu% srv X perfdhcp Y other Z; rcvbuf ...").
LEAD = ["server", "kind", "rate", "attempt"]
CPU_RE = re.compile(r"cpu% srv (\d+) perfdhcp (\d+) other (\d+); rcvbuf overflows srv (\d+) cli (\d+)")


def cpu_note(row):
    m = CPU_RE.search(row.get("cpu", ""))
    if not m:
        return None
    return dict(zip(["srv", "pd", "other", "ovf_srv", "ovf_cli"], (int(x) for x in m.groups())))


def percentile(sorted_vals, p):
    """Nearest-rank percentile (p in 0..100) of an already sorted list."""
    if not sorted_vals:
        return None
    k = max(1, math.ceil(p / 100.0 * len(sorted_vals)))
    return sorted_vals[k - 1]


def parse_perfdhcp(text):
    stats = {}
    timers = {"DISCOVER-OFFER": [], "REQUEST-ACK": []}
    section = None
    tsection = None
    num = re.compile(r"^(sent packets|received packets|drops|orphans|avg delay|max delay):\s*([0-9.]+)")
    for line in text.splitlines():
        m = re.match(r"^\*\*\*Statistics for: (\S+)\*\*\*", line)
        if m:
            section, tsection = m.group(1), None
            continue
        m = re.match(r"^\*\*\*Timestamps for packets: (\S+)\*\*\*", line)
        if m:
            section, tsection = None, m.group(1)
            continue
        if tsection is not None:
            # "sent / received: 000000.002143 / 000000.002290"
            m = re.match(r"^sent / received:\s*([0-9.]+)\s*/\s*([0-9.]+)", line)
            if m:
                timers.setdefault(tsection, []).append(
                    (float(m.group(2)) - float(m.group(1))) * 1000.0)
                continue
        if section is not None:
            m = num.match(line)
            if m:
                stats[(section, m.group(1))] = float(m.group(2))
    return stats, timers


def fmt_ms(v):
    return "-" if v is None else "%.3f" % v


def cmd_parse(path, rate, duration, maxdrop):
    rate, duration, maxdrop = float(rate), float(duration), float(maxdrop)
    with open(path, errors="replace") as f:
        text = f.read()
    stats, timers = parse_perfdhcp(text)

    def g(sec, key):
        return int(stats.get((sec, key), 0))

    do_sent, do_rcvd = g("DISCOVER-OFFER", "sent packets"), g("DISCOVER-OFFER", "received packets")
    ra_sent, ra_rcvd = g("REQUEST-ACK", "sent packets"), g("REQUEST-ACK", "received packets")
    orphans = g("DISCOVER-OFFER", "orphans") + g("REQUEST-ACK", "orphans")
    # An exchange is dropped when its DISCOVER got no OFFER or its REQUEST no ACK
    # (within perfdhcp's drop time, 1 s). OFFERs that only arrived during the exit
    # wait (-W) have no REQUEST and count neither way.
    dropped = max(0, do_sent - do_rcvd) + max(0, ra_sent - ra_rcvd)
    drop_pct = 100.0 * dropped / do_sent if do_sent else 100.0
    achieved = ra_rcvd / duration if duration > 0 else 0.0
    if do_sent == 0:
        verdict = "ERROR"
    elif drop_pct >= maxdrop:
        verdict = "FAIL"
    elif do_sent < 0.97 * rate * duration:
        # perfdhcp itself could not generate the offered load: not a server limit.
        verdict = "CLIENTLIMIT"
    else:
        verdict = "PASS"
    lat = []
    for name in ("DISCOVER-OFFER", "REQUEST-ACK"):
        v = sorted(timers.get(name, []))
        lat += [percentile(v, 50), percentile(v, 99), v[-1] if v else None]
    n_timed = len(timers.get("REQUEST-ACK", []))
    row = [do_sent, do_rcvd, ra_sent, ra_rcvd, orphans,
           "%.1f" % achieved, "%.3f" % drop_pct, verdict] + [fmt_ms(x) for x in lat] + [n_timed]
    print("\t".join(str(x) for x in row))


def read_tsv(path, cols):
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < len(cols):
                continue
            rows.append(dict(zip(cols, parts)))
    return rows


def fnum(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def table(headers, rows, align=None):
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))
    align = align or ["<"] + [">"] * (len(headers) - 1)
    out = []
    line = "  ".join(("{:%s%d}" % (align[i], widths[i])).format(h) for i, h in enumerate(headers))
    out.append(line)
    out.append("  ".join("-" * w for w in widths))
    for r in rows:
        out.append("  ".join(("{:%s%d}" % (align[i], widths[i])).format(c) for i, c in enumerate(r)))
    return "\n".join(out)


def ratio(a, b, digits=2):
    if a is None or b is None or b == 0:
        return "-"
    return ("%." + str(digits) + "f") % (a / b)


def cmd_report(results_path, meta_path):
    rows = read_tsv(results_path, LEAD + FIELDS + ["cpu"])
    meta = {}
    with open(meta_path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("\t")
            meta[k] = v
    servers = [s for s in meta.get("servers", "").split(",") if s]
    lat_rate = meta.get("latency_rate_common", "")
    maxdrop = meta.get("max_drop", "1")

    summary = []
    per = {}
    for s in servers:
        srows = [r for r in rows if r["server"] == s]
        tput = [r for r in srows if r["kind"] in ("ladder", "refine")]
        passed = [r for r in tput if r["verdict"] == "PASS"]
        best = max(passed, key=lambda r: (float(r["rate"]), float(r["achieved"]))) if passed else None
        climit = [r for r in tput if r["verdict"] == "CLIENTLIMIT"]
        lat = [r for r in srows if r["kind"] == "latency" and r["rate"] == lat_rate]
        lat = lat[-1] if lat else None
        status = meta.get("status_" + s, "")
        per[s] = (best, lat)
        name = meta.get("version_" + s, s)
        if best is None:
            maxr = "none" if not status else status
            ach = drop = srvcpu = "-"
        else:
            maxr = "%d" % float(best["rate"])
            if climit and float(climit[0]["rate"]) > float(best["rate"]):
                maxr += " (client-limited above)"
            ach = "%.0f" % float(best["achieved"])
            drop = "%.2f%%" % float(best["drop_pct"])
            c = cpu_note(best)
            srvcpu = "%d" % c["srv"] if c else "-"
        # Lowest rate that failed all its attempts above the max (the bracket).
        lo = float(best["rate"]) if best else 0.0
        fails = [r for r in tput if r["verdict"] == "FAIL" and float(r["rate"]) > lo]
        if fails:
            fr = min(float(r["rate"]) for r in fails)
            fd = min(float(r["drop_pct"]) for r in fails if float(r["rate"]) == fr)
            first_fail = "%d (%.1f%%)" % (fr, fd)
        else:
            first_fail = "not reached"
        others = [cpu_note(r)["other"] for r in tput if cpu_note(r)]
        bg = "%d" % max(others) if others else "-"
        if lat is not None:
            d99, r99 = lat["do_p99"], lat["ra_p99"]
            if float(lat["drop_pct"]) >= float(maxdrop):
                d99 += " (!%.0f%% drops)" % float(lat["drop_pct"])
        else:
            d99 = r99 = "-"
        summary.append([name, maxr, ach, drop, first_fail, d99, r99, srvcpu, bg])

    hdr = ["server", "max rate <%s%% drops (/s)" % maxdrop, "achieved DORA/s", "drops", "first fail (/s)",
           "p99 D->O ms @%s/s" % (lat_rate or "?"), "p99 R->A ms @%s/s" % (lat_rate or "?"),
           "srv CPU% @max", "bg CPU% max"]
    if "metalboot" in per and "kea" in per and per["kea"][0] is not None:
        mb, kea = per["metalboot"], per["kea"]
        g = lambda r, k: fnum(r[k]) if r is not None else None
        summary.append(["ratio metalboot/Kea",
                        ratio(g(mb[0], "rate"), g(kea[0], "rate")),
                        ratio(g(mb[0], "achieved"), g(kea[0], "achieved")),
                        "", "",
                        ratio(g(mb[1], "do_p99"), g(kea[1], "do_p99")),
                        ratio(g(mb[1], "ra_p99"), g(kea[1], "ra_p99")), "", ""])
    print(table(hdr, summary))

    # All latency runs (the common rate and any extra ones).
    lrows = []
    for s in servers:
        for r in rows:
            if r["server"] == s and r["kind"] == "latency":
                lrows.append([meta.get("version_" + s, s), r["rate"], "%.2f%%" % float(r["drop_pct"]),
                              r["do_p50"], r["do_p99"], r["do_max"], r["ra_p50"], r["ra_p99"], r["ra_max"],
                              r["n_timed"]])
    if lrows:
        print()
        print("Latency runs (perfdhcp -x t, per-exchange timers of completed exchanges, ms):")
        print(table(["server", "rate/s", "drops", "D->O p50", "p99", "max", "R->A p50", "p99", "max", "exchanges"],
                    lrows))


def main(argv):
    if len(argv) >= 2 and argv[1] == "parse" and len(argv) == 6:
        cmd_parse(*argv[2:6])
    elif len(argv) >= 2 and argv[1] == "report" and len(argv) == 4:
        cmd_report(argv[2], argv[3])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
