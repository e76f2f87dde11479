"""Turn scripts/bench.sh's measurements into the markdown it prints.

    report.py WORKDIR

Reads, from WORKDIR:
  rows.tsv      key, label, baseline key: one table row each, in order
                (a row whose key is its own baseline is the untapped reference)
  results.tsv   key, cycle, req/s, p50 us, p99 us, requests, errors, the
                share (%) of the server's and of wrk's CPU that other processes
                used during the round, the share of its CPU the server
                itself used, and the server's CPU time per request (us): one
                wrk round each
  resources.tsv name, value: the resource figures (absent ones print as "not measured")
  notes.txt     warning lines gathered during the run
  rivals.jsonl  what each row of the rivals group recorded (bench/rivals.py):
                shown in the table's last column and in a section of its own
Prints on stdout the table, the resource figures, the targets and the warnings.

Ratios: for each cycle (one round of every configuration, order alternating
between cycles), this configuration's figure divided by the untapped
server's figure in the same cycle; the table shows the median of those
per-cycle ratios, and the spread (lowest and highest) of the req/s ones.
"""

import csv
import json
import os
import statistics
import sys


def load(work):
    rows = [r for r in csv.reader(open(os.path.join(work, "rows.tsv")), delimiter="\t") if r]
    results = {}
    path = os.path.join(work, "results.tsv")
    if os.path.exists(path):
        for key, cycle, rps, p50, p99, _requests, _errors, other0, other1, server, cpu_us in csv.reader(
                open(path), delimiter="\t"):
            results.setdefault(key, {})[int(cycle)] = (float(rps), float(p50), float(p99),
                                                       int(other0), int(other1), int(server), int(cpu_us))
    res = {}
    path = os.path.join(work, "resources.tsv")
    if os.path.exists(path):
        for line in open(path):
            name, _, value = line.rstrip("\n").partition("\t")
            res[name] = value
    notes = []
    path = os.path.join(work, "notes.txt")
    if os.path.exists(path):
        notes = [l.rstrip("\n") for l in open(path) if l.strip()]
    rivals = {}
    path = os.path.join(work, "rivals.jsonl")
    if os.path.exists(path):
        for line in open(path):
            if line.strip():
                r = json.loads(line)
                rivals[r["key"]] = r
    return rows, results, res, notes, rivals


def share(part, whole):
    """part of whole as a percentage, at most 100 (a tool may also hold the
    requests still in flight when wrk stopped, which wrk does not count)."""
    # rounded down: 99.98 % is not shown as 100.0 %
    return "n/a" if not whole else "%.1f%%" % (min(1000 * part // whole, 1000) / 10)


def whole_cell(r):
    return "" if r is None else "%s of %s (%s)" % (fmt_rps(r["whole"]), fmt_rps(r["sent"]),
                                                   share(r["whole"], r["sent"]))


def ratios(results, key, base, index):
    mine, ref = results.get(key, {}), results.get(base, {})
    return [mine[c][index] / ref[c][index] for c in sorted(mine) if c in ref and ref[c][index] > 0]


def med(values):
    return statistics.median(values) if values else None


def fmt_ratio(value):
    return "n/a" if value is None else "%.2fx" % value


def fmt_rps(value):
    return "n/a" if value is None else "{:,.0f}".format(value)


def table(rows, results, rivals):
    out = ["| configuration | req/s ratio vs untapped (median of pairs) | req/s ratio, lowest..highest pair "
           "| p50 latency ratio | p99 latency ratio | untapped req/s (median) | this req/s (median) | pairs "
           "| server's CPU use (median) | server CPU per request, us (median) "
           "| other load, server / client CPU (worst round) | exchanges got whole, of wrk's (rivals group) |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    summary = {}
    for key, label, base in rows:
        rps = ratios(results, key, base, 0)
        p50 = ratios(results, key, base, 1)
        p99 = ratios(results, key, base, 2)
        raw_base = med([v[0] for v in results.get(base, {}).values()])
        raw_mine = med([v[0] for v in results.get(key, {}).values()])
        summary[key] = (med(rps), med(p50), med(p99))
        spread = "%.2f..%.2f" % (min(rps), max(rps)) if rps else "n/a"
        if key == base:
            spread = "(reference)"
        mine = list(results.get(key, {}).values())
        load = "%d%% / %d%%" % (max(v[3] for v in mine), max(v[4] for v in mine)) if mine else "n/a"
        busy = "%.0f%%" % med([v[5] for v in mine]) if mine else "n/a"
        cost = "%.0f" % med([v[6] for v in mine]) if mine else "n/a"
        out.append("| %s | %s | %s | %s | %s | %s | %s | %d | %s | %s | %s | %s |" % (
            label, fmt_ratio(med(rps)), spread, fmt_ratio(med(p50)), fmt_ratio(med(p99)),
            fmt_rps(raw_base), fmt_rps(raw_mine), len(rps), busy, cost, load, whole_cell(rivals.get(key))))
    return out, summary


def num(res, name):
    try:
        return float(res[name])
    except (KeyError, ValueError):
        return None


def verdict(ok):
    return "n/a (not measured)" if ok is None else ("holds" if ok else "MISSED")


# What a record of each kind holds (bench/rivals.py reads them).
HOLDS = {
    "httptape": "one JSON event per exchange: request and response heads, bodies up to 4 KiB",
    "strace": "the system calls' bytes: request and response heads; the body went by sendfile(2), "
              "of which strace shows only descriptors and a length",
    "pcap": "every packet (tcpdump); exchanges rebuilt afterwards with tshark -r",
    "httpry": "one line per request (method, Host, URI, version) and per response (version, status); "
              "no other header, no body, no pairing",
    "tshark": "one line per HTTP message with the fields asked for (here the request line, status, "
              "the response's link to its request, Content-Length, body)",
    "mitmdump": "one flow per exchange: both messages whole (heads and bodies)",
}


def print_rivals(rows, summary, rivals, notes):
    labels = {key: label for key, label, _ in rows}
    print("\nWhat each row of the rivals group recorded (nginx 100 B file; every wrk run, warm-up "
          "included; counted after the rounds by bench/rivals.py):\n")
    print("| configuration | req/s ratio | wrk completed | requests seen | responses seen "
          "| exchanges recorded | exchanges whole | packets dropped (tool's own count) "
          "| tool CPU per request, whole run, us | what a record holds |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for key, label, _ in rows:
        r = rivals.get(key)
        if r is None:
            continue
        cpu = "" if r.get("tool_cpu_ms") is None or not r["sent"] else "%.1f" % (
            1000.0 * r["tool_cpu_ms"] / r["sent"])
        drops = "" if r.get("dropped_packets") is None else fmt_rps(r["dropped_packets"])
        print("| %s | %s | %s | %s | %s | %s (%s) | %s (%s) | %s | %s | %s |" % (
            labels.get(key, key), fmt_ratio(summary.get(key, (None,))[0]), fmt_rps(r["sent"]),
            fmt_rps(r["requests"]), fmt_rps(r["responses"]), fmt_rps(r["recorded"]),
            share(r["recorded"], r["sent"]), fmt_rps(r["whole"]), share(r["whole"], r["sent"]),
            drops, cpu, HOLDS.get(r["kind"], r["kind"])))
        for err in r.get("read_errors", [])[:3]:
            notes.append("%s: reading its output: %s" % (key, err))
        if r.get("missing"):
            notes.append("%s: %d output files missing (%s)" % (key, len(r["missing"]), ", ".join(r["missing"][:3])))


def main():
    work = sys.argv[1]
    rows, results, res, notes, rivals = load(work)
    lines, summary = table(rows, results, rivals)
    print("\n".join(lines))
    if rivals:
        print_rivals(rows, summary, rivals, notes)
    groups = res.get("groups", "fastapi nginx100 nginx20k resources").split()
    if any(g in groups for g in ("fastapi", "nginx100", "nginx20k", "resources")):
        resources_and_targets(res, summary, groups)
    warnings(results, notes)


def resources_and_targets(res, summary, groups):
    """The figures and targets of issue 5; those of groups this run left out
    (BENCH_GROUPS) are not printed."""

    print("\nResource figures (same run):\n")
    why = "failed" if "resources" in groups else "the resources group was not in BENCH_GROUPS"
    per_conn_plain, per_conn_tape = num(res, "idle_rss_per_conn_plain"), num(res, "idle_rss_per_conn_tape")
    added = None if per_conn_plain is None or per_conn_tape is None else per_conn_tape - per_conn_plain
    if added is not None:
        print("- RSS per idle keep-alive connection (nginx, one request each; each connection beyond "
              "the first half of %s): untapped %.0f B, httptape %.0f B, **added by httptape %.0f B**" % (
                  res.get("idle_conns", "?"), per_conn_plain, per_conn_tape, added))
        all_plain, all_tape = num(res, "idle_rss_all_plain"), num(res, "idle_rss_all_tape")
        if all_plain is not None and all_tape is not None:
            print("  (with httptape's fixed memory spread over the %s connections, its writer and pool "
                  "of exchanges: %.0f B added per connection)" % (res.get("idle_conns", "?"),
                                                                  all_tape - all_plain))
    else:
        print("- RSS per idle keep-alive connection: not measured (%s)" % res.get("idle_error", why))
    wall, cpu = num(res, "writer_wall_rate"), num(res, "writer_cpu_rate")
    if wall is not None:
        print("- one writer thread, nginx 100 B at full rate for %s s: %s exchanges written, "
              "%s/s of wall time (the rate nginx reached: a lower bound); the writer thread used "
              "%s s of CPU, i.e. **%s events per writer CPU-second** (%s%% of the core)" % (
                  res.get("writer_seconds", "?"), fmt_rps(num(res, "writer_written")), fmt_rps(wall),
                  res.get("writer_cpu_s", "?"), fmt_rps(cpu), res.get("writer_cpu_share", "?")))
    else:
        print("- writer events/s: not measured (%s)" % res.get("writer_error", why))
    syn = num(res, "replay_rate")
    if syn is not None:
        print("- synthetic, `httptape replay` of %s typical FastAPI exchanges (parse + encode + write, one "
              "thread): **%s events/s**, %s bytes per event" % (
                  res.get("replay_events", "?"), fmt_rps(syn), res.get("replay_event_bytes", "?")))
    else:
        print("- synthetic replay: not measured (%s)" % res.get("replay_error", why))
    if res.get("encoder_line"):
        print("- build/bench_encoder: %s" % res["encoder_line"])
    else:
        print("- build/bench_encoder: not present (hook: an executable build/bench_encoder is run and its last line shown here)")
    counts = {}
    for name, value in res.items():
        if name.startswith("drops_"):
            dropped, seen, qfull = (int(x) for x in value.split())
            counts[name[len("drops_"):]] = (dropped, seen, qfull)

    def part(label, name):
        if name not in counts:
            return "%s: n/a" % label
        d, n, q = counts[name]
        return "%s: %d of %s%s" % (label, d, fmt_rps(n), " (queue full: %d)" % q if d else "")

    full_rate = [counts[n] for n in ("ng100_tape", "ng100_tape0", "ng_writer") if n in counts]
    drops = sum(c[0] for c in full_rate) if full_rate else None
    if drops is not None:
        print("- drops at nginx's full rate (100 B file): **%d** of %s exchanges (%s; %s; %s)" % (
            drops, fmt_rps(sum(c[1] for c in full_rate)), part("default body cap", "ng100_tape"),
            part("--max-body 0", "ng100_tape0"), part("the writer run", "ng_writer")))
    else:
        print("- drops at nginx's full rate: not measured")
    print("- drops with the 20 KB file: %s; %s" % (part("default body cap", "ng20k_tape"),
                                                   part("--max-body 0", "ng20k_tape0")))
    others = ["%s %d of %s" % (n, c[0], fmt_rps(c[1])) for n, c in sorted(counts.items())
              if c[0] and not n.startswith(("ng100_", "ng20k_", "ng_writer")) and not n.endswith("_attach")]
    if others:
        print("- other drops: " + ", ".join(others))
    attach = []
    for name in ("fa_attach", "ng100_attach", "ng20k_attach"):
        value = res.get("attach_" + name)
        if value is None:
            continue
        dropped, seen, qfull, gaps, runs = (int(x) for x in value.split())
        attach.append("%s: %d dropped%s and %d capture gaps of %s exchanges, %d runs" % (
            name, dropped, " (queue full: %d)" % qfull if dropped else "", gaps, fmt_rps(seen), runs))
    if attach:
        print("- httptape attach (attached anew for each wrk run, warm-ups included; the exchanges of those "
              "runs only): " + "; ".join(attach))

    print("\nTargets (issue 5):\n")
    fa = summary.get("fastapi/fa_tape", (None, None, None))
    ng = summary.get("nginx100/ng100_tape", (None, None, None))
    checks = [
        ("uvicorn+FastAPI under httptape: req/s >= 0.98x untapped", fa[0], None if fa[0] is None else fa[0] >= 0.98),
        ("uvicorn+FastAPI under httptape: p99 <= 1.05x untapped", fa[2], None if fa[2] is None else fa[2] <= 1.05),
        ("nginx 100 B under httptape (bodies logged): req/s >= 0.95x untapped", ng[0],
         None if ng[0] is None else ng[0] >= 0.95),
    ]
    for text, value, ok in checks:
        print("- %s: %s -> %s" % (text, fmt_ratio(value), verdict(ok)))
    print("- one writer thread >= 500,000 events/s (per writer CPU-second, nginx run): %s -> %s" % (
        fmt_rps(cpu), verdict(None if cpu is None else cpu >= 500000)))
    print("- zero drops at nginx's full rate: %s -> %s" % (
        "n/a" if drops is None else "%d" % drops, verdict(None if drops is None else drops == 0)))



def warnings(results, notes):
    disturbed = [v for per_key in results.values() for v in per_key.values() if max(v[3], v[4]) > 10]
    total = sum(len(per_key) for per_key in results.values())
    if disturbed:
        notes.append("%d of %d measured rounds lost more than 10%% of the server's or wrk's CPU to other "
                     "processes (worst %d%%): see the last column; rerun on an idle machine" % (
                         len(disturbed), total, max(max(v[3], v[4]) for v in disturbed)))
    if notes:
        print("\nWarnings:\n")
        for note in notes:
            print("- " + note)


if __name__ == "__main__":
    main()
