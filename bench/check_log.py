"""Check JSON-lines logs and summarise what is in them.

    check_log.py FILE...

For each FILE prints one JSON object on stdout:
  file, lines, bad_lines, first_bad ("line N: why"), exchanges (records with
  httptape.type "exchange"), incomplete (exchanges with complete false),
  stats_records, final (pid -> the stats of that pid's last final record;
  for `httptape attach` logs, "pid@line" -> the stats of every final record,
  since each attach run closes the log it appends to with its own, under its
  own pid, which a later run may get again), pids_with_exchanges.
A line is good when it is strict UTF-8 and exactly one JSON object (no NaN or
Infinity, which Python would otherwise accept). Other JSON-lines logs (the
baseline apps' own) are checked the same way; their httptape counts are 0.
"""

import json
import sys


def _reject(token):
    raise ValueError("non-JSON constant " + token)


def check(path):
    out = {"file": path, "lines": 0, "bad_lines": 0, "first_bad": None, "exchanges": 0,
           "incomplete": 0, "stats_records": 0, "final": {}, "pids_with_exchanges": []}
    pids = set()
    decoder = json.JSONDecoder(parse_constant=_reject)
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            out["lines"] += 1
            try:
                if not raw.endswith(b"\n"):
                    raise ValueError("no newline at the end (cut short)")
                text = raw.decode("utf-8")
                obj = decoder.decode(text)
                if not isinstance(obj, dict):
                    raise ValueError("not a JSON object")
            except ValueError as e:
                out["bad_lines"] += 1
                if out["first_bad"] is None:
                    out["first_bad"] = "line %d: %s" % (number, str(e)[:120])
                continue
            tape = obj.get("httptape")
            if not isinstance(tape, dict):
                continue
            if tape.get("type") == "exchange":
                out["exchanges"] += 1
                if tape.get("complete") is not True:
                    out["incomplete"] += 1
                pids.add(obj.get("process", {}).get("pid"))
            elif tape.get("type") == "stats":
                out["stats_records"] += 1
                if tape.get("final"):
                    key = str(obj.get("process", {}).get("pid"))
                    if tape.get("mode") == "attach":
                        key += "@%d" % number
                    out["final"][key] = tape.get("stats", {})
    out["pids_with_exchanges"] = sorted(str(p) for p in pids)
    return out


def main():
    for path in sys.argv[1:]:
        print(json.dumps(check(path)), flush=True)


if __name__ == "__main__":
    main()
