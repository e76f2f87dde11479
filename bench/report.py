"""Turn scripts/bench.sh's measurements into the markdown it prints.

    report.py WORKDIR

Reads, from WORKDIR:
  rows.tsv      key, label, baseline key: one table row each, in order
                (a row whose key is its own baseline is the untapped reference)
  results.tsv   key, cycle, req/s, p50 us, p99 us, requests, errors, the
                share (%) of the server's and of wrk's CPU that other processes
                used during the round, the share of its CPU the server
                itself used, and the server's CPU time per request (us); then
                the server's CPU time in the round (us), its collector's (us,
                0 without one) and the collector's share (%) of its CPU: one
                wrk round each
  resources.tsv name, value: the resource figures (absent ones print as "not measured")
  notes.txt     warning lines gathered during the run
  kernel.tsv    key, cycle, ns per request the BPF programs of httptape attach
                ran in that round (attach rows only)
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
        for f in csv.reader(open(path), delimiter="\t"):
            key, cycle, rps, p50, p99, requests, _errors, other0, other1, server, cpu_us = f[:11]
            srv_us, coll_us, coll_share = (f[11:14] + ["0", "0", "0"])[:3] if len(f) > 11 else ("0", "0", "0")
            reqs = max(int(requests), 1)
            results.setdefault(key, {})[int(cycle)] = (
                float(rps), float(p50), float(p99), int(other0), int(other1), int(server), int(cpu_us),
                int(srv_us) / reqs, int(coll_us) / reqs, int(coll_share))
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
    kernel = {}
    path = os.path.join(work, "kernel.tsv")
    if os.path.exists(path):
        for f in csv.reader(open(path), delimiter="\t"):
            if len(f) >= 3:
                kernel.setdefault(f[0], []).append(int(f[2]))
    res["kernel"] = kernel
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


def diffs(results, key, base, fn):
    """fn(this round) - fn(the untapped round), per cycle."""
    mine, ref = results.get(key, {}), results.get(base, {})
    return [fn(mine[c]) - fn(ref[c]) for c in sorted(mine) if c in ref]


def total_us(v):
    """server + collector CPU per request, us"""
    return v[7] + v[8]


def fmt_us(value):
    return "n/a" if value is None else "%.1f" % value


def table(rows, results, rivals):
    out = ["| configuration | req/s ratio vs untapped (median of pairs) | req/s ratio, lowest..highest pair "
           "| p50 latency ratio | p99 latency ratio | untapped req/s (median) | this req/s (median) | pairs "
           "| server's CPU use (median) | collector's CPU use (median) | server CPU per request, us (median) "
           "| collector CPU per request, us (median) | CPU per request added, server + collector - untapped, "
           "us (median of pairs) | other load, server / client CPU (worst round) "
           "| exchanges got whole, of wrk's (rivals group) |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    summary = {}
    for key, label, base in rows:
        rps = ratios(results, key, base, 0)
        p50 = ratios(results, key, base, 1)
        p99 = ratios(results, key, base, 2)
        raw_base = med([v[0] for v in results.get(base, {}).values()])
        raw_mine = med([v[0] for v in results.get(key, {}).values()])
        mine = list(results.get(key, {}).values())
        has_coll = any(v[8] > 0 for v in mine)
        coll_us = med([v[8] for v in mine]) if has_coll else None
        added = med(diffs(results, key, base, total_us)) if key != base else None
        summary[key] = (med(rps), med(p50), med(p99), added, coll_us)
        spread = "%.2f..%.2f" % (min(rps), max(rps)) if rps else "n/a"
        if key == base:
            spread = "(reference)"
        load = "%d%% / %d%%" % (max(v[3] for v in mine), max(v[4] for v in mine)) if mine else "n/a"
        busy = "%.0f%%" % med([v[5] for v in mine]) if mine else "n/a"
        cbusy = "%.0f%%" % med([v[9] for v in mine]) if has_coll else ""
        cost = "%.1f" % med([v[7] for v in mine]) if mine else "n/a"
        out.append("| %s | %s | %s | %s | %s | %s | %s | %d | %s | %s | %s | %s | %s | %s | %s |" % (
            label, fmt_ratio(med(rps)), spread, fmt_ratio(med(p50)), fmt_ratio(med(p99)),
            fmt_rps(raw_base), fmt_rps(raw_mine), len(rps), busy, cbusy, cost,
            fmt_us(coll_us) if has_coll else "", "" if added is None else "%+.1f" % added,
            load, whole_cell(rivals.get(key))))
    return out, summary


def num(res, name):
    try:
        return float(res[name])
    except (KeyError, ValueError):
        return None


def verdict(ok):
    if ok == "shown":
        return "(shown)"
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
    if any(g in groups for g in ("fastapi", "nginx100", "nginx20k", "resources", "echo1m")):
        resources_and_targets(res, summary, groups)
    elif drop_counts(res):      # nginx_tls, nginx_h2 alone: what was logged, still
        drops_table(drop_counts(res))
    warnings(results, notes)


def kb_triple(res, name):
    """"rss pss rss_shmem" in kB, or None"""
    try:
        return tuple(int(x) for x in res[name].split())
    except (KeyError, ValueError):
        return None


def drop_counts(res):
    """name -> (dropped, seen, queue_full, records_lost, record_bytes_lost, whole, sent, slack);
    slack: the requests the clients could leave in flight over all their runs (-1: not known)"""
    counts = {}
    for name, value in res.items():
        if name.startswith("drops_"):
            f = [int(x) for x in value.split()]
            if len(f) < 7:
                f = (f + [0, 0, 0, 0, -1])[:7]
            counts[name[len("drops_"):]] = tuple((f + [-1])[:8])
    return counts


def coll_rate(res, name):
    """exchanges written per collector CPU-second over the collector's life, or None"""
    try:
        written, us = (int(x) for x in res["collrate_" + name].split())
    except (KeyError, ValueError):
        return None
    return written / (us / 1e6) if us > 0 else None


def memory_figures(res, why):
    w_plain, w_tape = kb_triple(res, "mem_worker_ng_idle_plain"), kb_triple(res, "mem_worker_ng_idle_tape")
    m_plain, m_tape = kb_triple(res, "mem_master_ng_idle_plain"), kb_triple(res, "mem_master_ng_idle_tape")
    coll = kb_triple(res, "mem_collector_ng_idle_tape")
    if w_plain and w_tape:
        print("- memory per process, nginx after 3 s at full rate (RSS / PSS, kB): worker untapped %d / %d, "
              "under httptape %d / %d, **added %+d kB RSS, %+d kB PSS** (of which shared memory, the ring: "
              "%d kB RSS); master (no ring: it never accepts) %s; the collector %s. The 4 MiB ring is "
              "shared between the worker and the collector: resident in full in both RSS figures, half "
              "in each PSS" % (
                  w_plain[0], w_plain[1], w_tape[0], w_tape[1], w_tape[0] - w_plain[0], w_tape[1] - w_plain[1],
                  w_tape[2] - w_plain[2],
                  "%d / %d untapped, %d / %d under httptape" % (m_plain[0], m_plain[1], m_tape[0], m_tape[1])
                  if m_plain and m_tape else "n/a",
                  "%d / %d" % coll[:2] if coll else "n/a"))
    else:
        print("- memory per process: not measured (%s)" % res.get("idle_error", why))
    per_conn_plain, per_conn_tape = num(res, "idle_rss_per_conn_plain"), num(res, "idle_rss_per_conn_tape")
    added = None if per_conn_plain is None or per_conn_tape is None else per_conn_tape - per_conn_plain
    if added is not None:
        print("- RSS per idle keep-alive connection (nginx, one request each; each connection beyond "
              "the first half of %s): untapped %.0f B, httptape %.0f B, **added by httptape %.0f B** "
              "(in the app; the collector's memory is not in it)" % (
                  res.get("idle_conns", "?"), per_conn_plain, per_conn_tape, added))
        all_plain, all_tape = num(res, "idle_rss_all_plain"), num(res, "idle_rss_all_tape")
        if all_plain is not None and all_tape is not None:
            print("  ((RSS with all %s connections - RSS before them) / %s: %.0f B added per connection; "
                  "the ring, made by the first request, is in neither: see the line above)" % (
                      res.get("idle_conns", "?"), res.get("idle_conns", "?"), all_tape - all_plain))
    else:
        print("- RSS per idle keep-alive connection: not measured (%s)" % res.get("idle_error", why))
    return added


def collector_figures(res, summary, why):
    """prints the collector's rates; returns the lowest exchanges per collector CPU-second"""
    rates = []
    for key, what in (("nginx100/ng100_tape", "collector on the spare CPU"),
                      ("nginx100/ng100_tapes", "collector on the server's CPU")):
        us = summary.get(key, (None,) * 5)[4]
        if us:
            rates.append(1e6 / us)
            print("- collector, nginx 100 B group, %s: %.2f us of collector CPU per request (median round), "
                  "**%s exchanges per collector CPU-second**; over its life (warm-up, naps between rounds "
                  "in): %s" % (what, us, fmt_rps(1e6 / us), fmt_rps(coll_rate(res, key.split("/")[1]))))
    try:
        reqs, us, share = (int(x) for x in res["writer_round"].split())
    except (KeyError, ValueError):
        print("- collector run (nginx 100 B, full rate): not measured (%s)" % res.get("writer_error", why))
    else:
        if us > 0:
            rates.append(reqs / (us / 1e6))
        print("- collector run, nginx 100 B at full rate for %s s, collector on the spare CPU: %s req/s; "
              "the collector used %.3f s of CPU (%d%% of its CPU): **%s exchanges per collector CPU-second** "
              "during the run, %s over its life" % (
                  res.get("writer_seconds", "?"), fmt_rps(num(res, "writer_wrk_rps")), us / 1e6, share,
                  fmt_rps(reqs / (us / 1e6)) if us else "n/a", fmt_rps(coll_rate(res, "ng_writer"))))
    return min(rates) if rates else None


LABELS = {"ng100_tape": "nginx 100 B, spare CPU", "ng100_tapes": "nginx 100 B, server's CPU",
          "ng100_tape0": "nginx 100 B, --max-body 0, spare CPU",
          "ng20k_tape": "nginx 20 KB, spare CPU", "ng20k_tapes": "nginx 20 KB, server's CPU",
          "ng20k_tape0": "nginx 20 KB, --max-body 0, spare CPU",
          "fa_tape": "FastAPI, spare CPU", "fa_tapes": "FastAPI, server's CPU",
          "rv_tape": "nginx 100 B (rivals group), spare CPU", "echo_tape": "echo 1 MiB, spare CPU",
          "ng_idle_tape": "nginx (memory figures)", "ng_writer": "nginx 100 B (collector run)",
          "tls_tape": "nginx 100 B https, spare CPU", "tls_tapes": "nginx 100 B https, server's CPU",
          "h2_tape": "nginx 100 B HTTP/2 (h2load), spare CPU",
          "h2_tapes": "nginx 100 B HTTP/2 (h2load), server's CPU"}


def one_event_each(seen, whole, sent, slack):
    """Is every request the clients completed one event in the log? By count:
    at least one whole exchange per request, and no more exchanges than the
    requests plus those the clients could leave in flight."""
    if sent <= 0:
        return "n/a"
    if whole < sent:
        return "no: %s fewer whole than requests" % fmt_rps(sent - whole)
    if slack >= 0 and seen > sent + slack:
        return "no: %s more exchanges than requests + %s in flight" % (fmt_rps(seen - sent), fmt_rps(slack))
    return "yes" if seen == sent else "yes (+%s in flight at the ends)" % fmt_rps(seen - sent)


def drops_table(counts):
    print("\nWhat httptape logged, per tapped server (every wrk or h2load run, warm-up included; the final "
          "statistics record, and the log itself):\n")
    print("| server | requests the clients completed | exchanges seen | exchanges_dropped (queue full) "
          "| records_lost | record_bytes_lost | exchanges logged whole | every completed request one event |")
    print("|---|---|---|---|---|---|---|---|")
    for name in sorted(counts, key=lambda n: list(LABELS).index(n) if n in LABELS else 99):
        if name.endswith(("_attach", "_attachs")):
            continue
        d, seen, q, rl, rb, whole, sent, slack = counts[name]
        print("| %s | %s | %s | %s (%s) | %s | %s | %s | %s |" % (
            LABELS.get(name, name), fmt_rps(sent) if sent >= 0 else "n/a", fmt_rps(seen), fmt_rps(d),
            fmt_rps(q), fmt_rps(rl), fmt_rps(rb),
            "%s (%s)" % (fmt_rps(whole), share(whole, sent)) if sent >= 0 else "n/a",
            one_event_each(seen, whole, sent, slack)))


def resources_and_targets(res, summary, groups):
    """The figures and the targets of issue 12; those of groups this run left
    out (BENCH_GROUPS) are printed as not measured."""

    print("\nResource figures (same run):\n")
    why = "failed" if "resources" in groups else "the resources group was not in BENCH_GROUPS"
    added_conn = memory_figures(res, why)
    coll_min = collector_figures(res, summary, why)
    syn = num(res, "replay_rate")
    if syn is not None:
        print("- synthetic, `httptape replay` of %s typical FastAPI exchanges (parse + encode + write, one "
              "thread): **%s events/s**, %s bytes per event" % (
                  res.get("replay_events", "?"), fmt_rps(syn), res.get("replay_event_bytes", "?")))
    else:
        print("- synthetic replay: not measured (%s)" % res.get("replay_error", why))
    if res.get("encoder_line"):
        print("- build/bench_encoder: %s" % res["encoder_line"])
    counts = drop_counts(res)
    attach = []
    for name in ("fa_attach", "ng100_attach", "ng100_attachs", "ng20k_attach", "ng20k_attachs"):
        value = res.get("attach_" + name)
        if value is None:
            continue
        dropped, seen, qfull, gaps, runs = (int(x) for x in value.split())
        attach.append("%s: %d dropped%s and %d capture gaps of %s exchanges, %d runs" % (
            name, dropped, " (queue full: %d)" % qfull if dropped else "", gaps, fmt_rps(seen), runs))
    if attach:
        print("- httptape attach (attached anew for each wrk run, warm-ups included; the exchanges of those "
              "runs only): " + "; ".join(attach))
    for key, values in sorted(res.get("kernel", {}).items()):
        print("- attach kernel-side ns per request, %s (all of attach's BPF programs' run time in the round, "
              "every process they fired in, / wrk's requests; median of %d rounds): **%d ns**" % (
                  key, len(values), statistics.median(values)))
    if counts:
        drops_table(counts)

    print("\nTargets (issue 12):\n")

    def get(key, i):
        return summary.get(key, (None,) * 5)[i]

    def at_least(v, t):
        return None if v is None else v >= t

    def at_most(v, t):
        return None if v is None else v <= t

    def lost(name):
        c = counts.get(name)
        return None if c is None else c[0] + c[3]

    def us(v):
        return "n/a" if v is None else "%+.1f us" % v

    def fine(v):            # a target at the edge: three decimals, not two
        return "n/a" if v is None else "%.3fx" % v

    lines = [
        ("nginx 100 B, collector on the spare CPU: req/s >= 0.95x", fine(get("nginx100/ng100_tape", 0)),
         at_least(get("nginx100/ng100_tape", 0), 0.95)),
        ("nginx 100 B, collector on the server's CPU: req/s >= 0.85x", fine(get("nginx100/ng100_tapes", 0)),
         at_least(get("nginx100/ng100_tapes", 0), 0.85)),
        ("nginx 100 B: CPU per request added (server + collector - untapped) <= 2.5 us, collector on the spare CPU",
         us(get("nginx100/ng100_tape", 3)), at_most(get("nginx100/ng100_tape", 3), 2.5)),
        ("nginx 100 B: the same, collector on the server's CPU", us(get("nginx100/ng100_tapes", 3)),
         at_most(get("nginx100/ng100_tapes", 3), 2.5)),
        ("nginx 20 KB sendfile, default settings, spare CPU: 0 drops (exchanges_dropped + records_lost)",
         "n/a" if lost("ng20k_tape") is None else "%d" % lost("ng20k_tape"),
         None if lost("ng20k_tape") is None else lost("ng20k_tape") == 0),
        ("nginx 20 KB sendfile, default settings, server's CPU: 0 drops (not a target; shown)",
         "n/a" if lost("ng20k_tapes") is None else "%d" % lost("ng20k_tapes"),
         None if lost("ng20k_tapes") is None else lost("ng20k_tapes") == 0),
        ("nginx 20 KB sendfile, collector on the spare CPU: req/s >= 0.90x", fine(get("nginx20k/ng20k_tape", 0)),
         at_least(get("nginx20k/ng20k_tape", 0), 0.90)),
        ("attach, nginx 100 B, attach on the spare CPU: req/s >= 0.90x",
         fine(get("nginx100/ng100_attach", 0)), at_least(get("nginx100/ng100_attach", 0), 0.90)),
        ("attach, nginx 100 B, attach on the server's CPU: req/s (not a target; shown)",
         fine(get("nginx100/ng100_attachs", 0)), "shown"),
        ("attach, nginx 100 B: kernel-side ns per request < 1000 (attach on the spare CPU)",
         "n/a" if not res.get("kernel", {}).get("nginx100/ng100_attach") else
         "%d ns" % statistics.median(res["kernel"]["nginx100/ng100_attach"]),
         None if not res.get("kernel", {}).get("nginx100/ng100_attach") else
         statistics.median(res["kernel"]["nginx100/ng100_attach"]) < 1000),
        ("uvicorn+FastAPI, collector on the spare CPU: req/s >= 0.98x", fine(get("fastapi/fa_tape", 0)),
         at_least(get("fastapi/fa_tape", 0), 0.98)),
        ("uvicorn+FastAPI, collector on the spare CPU: p99 <= 1.05x", fine(get("fastapi/fa_tape", 2)),
         at_most(get("fastapi/fa_tape", 2), 1.05)),
        ("uvicorn+FastAPI, collector on the server's CPU: req/s >= 0.98x", fine(get("fastapi/fa_tapes", 0)),
         at_least(get("fastapi/fa_tapes", 0), 0.98)),
        ("uvicorn+FastAPI, collector on the server's CPU: p99 <= 1.05x", fine(get("fastapi/fa_tapes", 2)),
         at_most(get("fastapi/fa_tapes", 2), 1.05)),
        ("collector >= 600,000 nginx exchanges per collector CPU-second (the lowest figure above)",
         fmt_rps(coll_min), at_least(coll_min, 600000)),
        ("memory: <= 1 KiB per idle tracked connection in the app", "n/a" if added_conn is None else
         "%.0f B" % added_conn, at_most(added_conn, 1024)),
    ]
    for text, value, ok in lines:
        print("- %s: %s -> %s" % (text, value, verdict(ok)))


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
