#!/usr/bin/python3
"""Helper for bench/tftp: run the atftp client, time it, check sha256, print the report.

Client side (run inside the client network namespace):
  tftpbench.py probe    SERVER FILE OUTDIR [OPT ...]
      one fetch with `atftp --trace`; prints the options the server acknowledged
      (its OACK) as one tab-separated line: "oack<TAB>blksize=1468 windowsize=8",
      "none" (plain RFC 1350 transfer), or "error<TAB>reason".
  tftpbench.py single   SERVER FILE SHA256 SIZE OUTDIR REPS TIMEOUT CPU [OPT ...]
      REPS sequential fetches, each timed from spawning atftp to its exit, the client
      pinned to CPU (-1 = not pinned); every fetched file is sha256-checked.
  tftpbench.py parallel SERVER FILE SHA256 OUTDIR WORKERS FETCHES DEADLINE [OPT ...]
      FETCHES fetches spread over WORKERS concurrent atftp clients (a shared queue, like
      xargs -P); wall time from the first spawn to the last exit; every file checked
      after the clock stops. No fetch starts, and every running one is killed, once
      DEADLINE seconds have passed.
  tftpbench.py interop  SERVER FILE SHA256 OUTDIR
      one fetch each with curl (--tftp-blksize 1468) and tftp-hpa's tftp.

  OPT is NAME=VALUE, passed to atftp as --option "NAME VALUE".

Report side:
  tftpbench.py report RESULTS.tsv META.tsv

Every result line starts with "ok" or "fail"; sha256 mismatches are listed as
"MISMATCH" lines on stderr by the client side and counted in the result line.
Only the standard library is used.
"""
import hashlib
import os
import re
import statistics
import subprocess
import sys
import threading
import time

MIB = 1024 * 1024


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def atftp_argv(server, remote, local, opts, trace=False):
    argv = ["atftp"]
    if trace:
        argv.append("--trace")
    for o in opts:
        name, _, value = o.partition("=")
        argv += ["--option", "%s %s" % (name, value)]
    return argv + ["-g", "-r", remote, "-l", local, server]


def pin(cpu):
    if cpu >= 0:
        return lambda: os.sched_setaffinity(0, {cpu})
    return None


def run_timed(argv, timeout, cpu=-1):
    """Run argv; return (seconds, rc, tail of its output). rc None = killed at timeout."""
    t0 = time.monotonic()
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, preexec_fn=pin(cpu))
    except OSError as e:
        return 0.0, -1, str(e)
    try:
        out, _ = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        rc = None
    dt = time.monotonic() - t0
    text = out.decode(errors="replace").strip().splitlines()
    return dt, rc, " | ".join(text[-2:])[:300]


def check(path, want, what):
    """True when path exists and hashes to want; reports a mismatch loudly."""
    try:
        got = sha256_of(path)
    except OSError as e:
        print("MISSING %s: %s" % (what, e), file=sys.stderr)
        return False
    if got != want:
        size = os.path.getsize(path)
        print("!!! SHA256 MISMATCH %s: got %s (%d bytes), want %s" % (what, got, size, want),
              file=sys.stderr)
        return False
    return True


def cmd_probe(server, remote, outdir, opts):
    local = os.path.join(outdir, "probe.out")
    try:
        p = subprocess.run(atftp_argv(server, remote, local, opts, trace=True),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        text = p.stdout.decode(errors="replace")
        rc = p.returncode
    except subprocess.TimeoutExpired:
        print("error\tprobe timed out after 30 s")
        return
    try:
        os.unlink(local)
    except OSError:
        pass
    if rc != 0:
        tail = " | ".join(l for l in text.strip().splitlines()[-2:])
        print("error\tatftp rc %s: %s" % (rc, tail[:200]))
        return
    # "received OACK <blksize: 1468, windowsize: 8, >"
    m = re.search(r"received OACK <([^>]*)>", text)
    if not m:
        print("none\t")
        return
    pairs = re.findall(r"([A-Za-z0-9_]+):\s*([0-9]+)", m.group(1))
    print("oack\t" + " ".join("%s=%s" % (k.lower(), v) for k, v in pairs))


def cmd_single(server, remote, want, size, outdir, reps, timeout, cpu, opts):
    secs, fails, bad, notes = [], 0, 0, []
    for i in range(reps):
        local = os.path.join(outdir, "single-%d.out" % i)
        dt, rc, tail = run_timed(atftp_argv(server, remote, local, opts), timeout, cpu)
        if rc is None:
            fails += 1
            notes.append("rep %d: killed after %.0f s" % (i + 1, timeout))
        elif rc != 0:
            fails += 1
            notes.append("rep %d: atftp rc %d: %s" % (i + 1, rc, tail))
        elif not check(local, want, "%s %s rep %d" % (remote, " ".join(opts) or "no options", i + 1)):
            bad += 1
        else:
            secs.append(dt)
        try:
            os.unlink(local)
        except OSError:
            pass
    rates = ["%.1f" % (size / MIB / s) for s in secs]
    med = "%.1f" % (size / MIB / statistics.median(secs)) if secs else "-"
    status = "ok" if not fails and not bad and secs else "fail"
    # status, median MiB/s, per-rep MiB/s, timed seconds (sum), failures, sha mismatches, notes
    print("\t".join([status, med, ",".join(rates) or "-", "%.3f" % sum(secs), str(fails), str(bad),
                     "; ".join(notes) or "-"]))


def cmd_parallel(server, remote, want, outdir, workers, fetches, deadline, opts):
    lock = threading.Lock()
    state = {"next": 0}
    results = {}           # index -> (seconds, rc)
    procs = {}
    t_start = time.monotonic()
    t_end_limit = t_start + deadline
    timed_out = threading.Event()

    def worker():
        while True:
            with lock:
                if state["next"] >= fetches or timed_out.is_set():
                    return
                i = state["next"]
                state["next"] += 1
            left = t_end_limit - time.monotonic()
            if left <= 0:
                timed_out.set()
                return
            local = os.path.join(outdir, "par-%d.out" % i)
            t0 = time.monotonic()
            try:
                p = subprocess.Popen(atftp_argv(server, remote, local, opts), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            except OSError:
                results[i] = (0.0, -1)
                continue
            try:
                rc = p.wait(timeout=left)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                rc = None
                timed_out.set()
            results[i] = (time.monotonic() - t0, rc)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(deadline + 30)
    wall = time.monotonic() - t_start
    done = ok = bad = failed = killed = 0
    per = []
    for i in sorted(results):
        dt, rc = results[i]
        local = os.path.join(outdir, "par-%d.out" % i)
        if rc is None:
            killed += 1
        elif rc != 0:
            failed += 1
        else:
            done += 1
            per.append(dt)
            if check(local, want, "%s parallel fetch %d" % (remote, i + 1)):
                ok += 1
            else:
                bad += 1
        try:
            os.unlink(local)
        except OSError:
            pass
    per.sort()
    p50 = "%.3f" % statistics.median(per) if per else "-"
    pmax = "%.3f" % per[-1] if per else "-"
    status = "ok" if ok == fetches else ("timeout" if timed_out.is_set() else "fail")
    # status, wall s, fetches verified ok, sha mismatches, failed (atftp rc != 0), killed, not started, p50 s, max s
    print("\t".join([status, "%.3f" % wall, str(ok), str(bad), str(failed), str(killed),
                     str(fetches - len(results)), p50, pmax]))


def cmd_interop(server, remote, want, outdir):
    out = []
    for name, argv in (
        ("curl", lambda l: ["curl", "-sS", "--max-time", "30", "--tftp-blksize", "1468",
                            "-o", l, "tftp://%s/%s" % (server, remote)]),
        ("tftp-hpa", lambda l: ["tftp", "-m", "binary", server, "-c", "get", remote, l]),
    ):
        local = os.path.join(outdir, "interop-%s.out" % name)
        dt, rc, tail = run_timed(argv(local), 40)
        if rc is None:
            out.append("%s=timeout" % name)
        elif rc != 0:
            out.append("%s=rc%d" % (name, rc))
        elif not check(local, want, "%s via %s" % (remote, name)):
            out.append("%s=MISMATCH" % name)
        else:
            out.append("%s=ok" % name)
        try:
            os.unlink(local)
        except OSError:
            pass
    print(" ".join(out))


# ---------------------------------------------------------------- report

def read_tsv(path):
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            rows.append(parts)
    return rows


def table(headers, rows):
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))
    align = ["<"] + [">"] * (len(headers) - 1)
    fmt = lambda r: "  ".join(("{:%s%d}" % (align[i], widths[i])).format(c) for i, c in enumerate(r))
    return "\n".join([fmt(headers), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows])


def fnum(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def cmd_report(results_path, meta_path):
    meta = {}
    for r in read_tsv(meta_path):
        if len(r) >= 2:
            meta[r[0]] = r[1]
    servers = [s for s in meta.get("servers", "").split(",") if s]
    single = {}   # (server, case) -> (status, value, note)
    par = {}      # (server, case) -> dict
    for r in read_tsv(results_path):
        if r[0] == "single" and len(r) >= 5:
            single[(r[1], r[2])] = (r[3], r[4], r[5] if len(r) > 5 else "")
        elif r[0] == "parallel" and len(r) >= 5:
            par[(r[1], r[2])] = {"status": r[3], "wall": r[4], "note": r[5] if len(r) > 5 else "",
                                 "rx": r[6] if len(r) > 6 else "-", "dropped": r[7] if len(r) > 7 else "-"}
    base = "tftpd-hpa"
    cases = [("b512", "blksize 512"), ("b1468", "blksize 1468"),
             ("w8", "windowsize 8"), ("w16", "windowsize 16")]

    def base_val(case):
        # Windowsize columns compare with tftpd-hpa's blksize-1468 figure: it does not do
        # windowsize, so that is what a client asking for a window gets from it.
        c = "b1468" if case in ("w8", "w16") else case
        st = single.get((base, c))
        return fnum(st[1]) if st and st[0] == "ok" else None

    print("Single stream, %s file, MiB/s (median of %s; x tftpd-hpa, higher is better)"
          % (meta.get("big", "32 MiB"), meta.get("reps", "3")))
    rows = []
    for s in servers:
        row = [s]
        for c, _ in cases:
            st = single.get((s, c))
            if st is None:
                row.append("-")
            elif st[0] == "n/a":
                row.append("n/a")
            elif st[0] != "ok":
                row.append(st[0].upper())
            else:
                v, b = fnum(st[1]), base_val(c)
                row.append("%.1f (x%.2f)" % (v, v / b) if v is not None and b else st[1])
        rows.append(row)
    print(table(["server"] + [h for _, h in cases], rows))
    print()
    blk = meta.get("par_blksize", "1468")
    print("%s clients sharing %s fetches of the %s file, blksize %s (wall time s; x tftpd-hpa, lower is better;"
          % (meta.get("workers", "10"), meta.get("fetches", "50"), meta.get("small", "1 MiB"),
             blk if blk != "0" else "512 (no options)"))
    print("rx = UDP packets the client received / the fewest possible)")
    loss = meta.get("loss", "2 %")
    rows = []
    for s in servers:
        row = [s]
        for c in ("clean", "loss"):
            p = par.get((s, c))
            b = par.get((base, c))
            if p is None:
                row += ["-", "-"]
                continue
            if p["status"] == "ok":
                v = fnum(p["wall"])
                bv = fnum(b["wall"]) if b and b["status"] == "ok" else None
                row.append("%.2f (x%.2f)" % (v, v / bv) if bv else "%.2f" % v)
            elif p["status"] == "timeout":
                m = re.match(r"ok (\d+/\d+)", p["note"])
                row.append("TIMEOUT >%.0f s (%s ok)" % (fnum(p["wall"]) or 0, m.group(1) if m else "?"))
            elif p["status"] == "skipped":
                row.append("skipped (%s)" % p["note"])
            else:
                row.append("FAIL (%s)" % p["note"])
            row.append(p["rx"] if p["status"] == "ok" and p["rx"] not in ("", "-") else "-")
        row.append(par.get((s, "loss"), {}).get("dropped", "-") or "-")
        row.append(meta.get("interop_" + s, "-"))
        rows.append(row)
    print(table(["server", "clean", "rx", "%s loss" % loss, "rx", "dropped", "curl / tftp-hpa, 1 MiB"], rows))


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, a = argv[1], argv[2:]
    if cmd == "probe":
        cmd_probe(a[0], a[1], a[2], a[3:])
    elif cmd == "single":
        cmd_single(a[0], a[1], a[2], int(a[3]), a[4], int(a[5]), float(a[6]), int(a[7]), a[8:])
    elif cmd == "parallel":
        cmd_parallel(a[0], a[1], a[2], a[3], int(a[4]), int(a[5]), float(a[6]), a[7:])
    elif cmd == "interop":
        cmd_interop(a[0], a[1], a[2], a[3])
    elif cmd == "report":
        cmd_report(a[0], a[1])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
