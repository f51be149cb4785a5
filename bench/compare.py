#!/usr/bin/env python3
"""simcli against SimPy (and shuttle), each workload measured in the same run,
the tools alternating: the driver of bench/run, which builds what it needs
and installs SimPy first. Prints a Markdown table of rates and ratios.

Workloads (the same model on every tool; sizes differ where one tool would
take minutes, and the table compares rates, which do not depend on them):

- throughput: N=1000 threads on 4 CPUs loop compute(1us), sleep(3us);
  simulated operations per second.
- mutex cycles at N = 10, 1,000 and 10,000 threads, 200,000 cycles in all:
  lock one mutex, increment a shared variable, compute(1us), unlock,
  sleep(1us); wall time per cycle. simcli detects races on the variable and checks for deadlock
  on every blocking lock; SimPy does neither.
- the same in steady state: each (tool, N) also runs three times the cycles
  per thread, and the difference of the two walls over the extra cycles is
  the cost of a cycle once the threads have started. At N=10,000 the first
  row gives each thread only 20 cycles, so a thread's start-up weighs on
  it; the issue that set the bar has each thread do 2,000.
- 100k live threads: compute(1us), sleep(500ms), compute(1us) each; wall
  time, and peak resident memory per thread.
- chart memory: the throughput model as a script (scripts/bench/throughput.rhai,
  about 4M state changes), peak RSS with its Gantt chart drawn less peak RSS
  without, per state change (simcli alone: SimPy draws no charts).
- exploration: the two-thread lost-update counter under random schedules,
  simcli against shuttle (sim-core/examples/explore_vs_shuttle.rs) and the
  same as a script (scripts/bench/counter.rhai); schedules per second.

Every workload but the last two runs on three simcli paths: the Rust API
with stackful threads (`add_thread`), the Rust API with stackless threads
(`add_stackless_thread`, an `async` body and no stack), and Rhai scripts.

Environment: BENCH_REPS (default 3) rounds, the median of which is shown;
BENCH_QUIET_BUDGET (seconds, default 60) to wait for a quiet host.
"""
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "python"))
from hostload import print_footer, wait_quiet  # noqa: E402

TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
RELEASE = os.path.join(TARGET, "release")
SIMCLI = os.path.join(RELEASE, "simcli")
EXAMPLES = os.path.join(RELEASE, "examples")
REPS = int(os.environ.get("BENCH_REPS", "3"))
SIMPY = [sys.executable, os.path.join(HERE, "simpy_models.py")]
MUTEX_THREADS = (10, 1_000, 10_000)
MUTEX_CYCLES = 200_000  # in all, split over the threads
MANY = 100_000


def run(cmd):
    """Runs `cmd`; returns (wall seconds, stdout + stderr, peak RSS bytes)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=ROOT)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):  # explore exits 1: it found the lost update
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out}")
    return wall, out, usage.ru_maxrss * 1024


def number(pattern, text):
    match = re.search(pattern, text)
    if not match:
        sys.exit(f"no {pattern!r} in:\n{text}")
    return float(match.group(1))


def script(name, **values):
    """scripts/bench/NAME.rhai with its top-level `let KEY = ...;` lines set
    to `values`, as a temporary file."""
    text = open(os.path.join(ROOT, "scripts", "bench", name + ".rhai")).read()
    for key, value in values.items():
        text, n = re.subn(rf"^let {key} = .*;$", f"let {key} = {value};", text,
                          count=1, flags=re.M)
        assert n == 1, (name, key)
    f = tempfile.NamedTemporaryFile("w", suffix=f"_{name}.rhai", delete=False)
    f.write(text)
    f.close()
    return f.name


def simcli_run(path):
    """Wall seconds of the simulation in `simcli run --timing`, and peak RSS."""
    _, out, rss = run([SIMCLI, "run", "--quiet", "--no-chart", "--timing", path])
    return number(r"timing: ([0-9.]+)s wall clock", out), rss


def simpy(*args):
    _, out, rss = run(SIMPY + [str(a) for a in args])
    return json.loads(out.strip().splitlines()[-1])["wall"], rss


# Each measurement: name -> function returning (value, peak RSS); values are
# rates (higher is better) or times (lower is better), as the row says.
def throughput_rust():
    wall, out, rss = run([os.path.join(EXAMPLES, "throughput"), "1000", "4", "1000"])
    return number(r"throughput: ([0-9.]+) simulated", out), rss


def throughput_stackless():
    wall, out, rss = run([os.path.join(EXAMPLES, "throughput"), "--stackless",
                          "1000", "4", "1000"])
    return number(r"throughput: ([0-9.]+) simulated", out), rss


def throughput_rhai():
    wall, rss = simcli_run(script("throughput", iterations=100))
    return 2 * 1000 * 100 / wall, rss


def throughput_simpy():
    wall, rss = simpy("throughput", 1000, 4, 100)
    return 2 * 1000 * 100 / wall, rss


def mutex_rust(n, k):
    _, out, rss = run([os.path.join(EXAMPLES, "mutex_cycles"), str(n), str(k)])
    return number(r"cost per cycle: ([0-9.]+) ns", out), rss


def mutex_stackless(n, k):
    _, out, rss = run([os.path.join(EXAMPLES, "mutex_cycles"), "--stackless",
                       str(n), str(k)])
    return number(r"cost per cycle: ([0-9.]+) ns", out), rss


def mutex_rhai(n, k):
    wall, rss = simcli_run(script("mutex_cycles", threads=n, cycles=k))
    return wall * 1e9 / (n * k), rss


def mutex_simpy(n, k):
    wall, rss = simpy("mutex_cycles", n, k)
    return wall * 1e9 / (n * k), rss


def many_rust():
    _, out, rss = run([os.path.join(EXAMPLES, "many_threads"), str(MANY)])
    return number(r"wall time: ([0-9.]+)s", out), rss


def many_stackless():
    _, out, rss = run([os.path.join(EXAMPLES, "many_threads"), "--stackless",
                       str(MANY)])
    return number(r"wall time: ([0-9.]+)s", out), rss


def many_rhai():
    return simcli_run(script("many_threads", threads=MANY))


def many_simpy():
    return simpy("many_threads", MANY)


def chart_bytes_per_change():
    """Peak RSS of throughput.rhai drawn less undrawn, per state change."""
    path = os.path.join(ROOT, "scripts", "bench", "throughput.rhai")
    with tempfile.TemporaryDirectory() as plots:
        _, out, drawn = run([SIMCLI, "run", "--quiet", "--timing", "--out", plots, path])
    _, _, bare = run([SIMCLI, "run", "--quiet", "--no-chart", "--timing", path])
    changes = number(r"([0-9]+) state changes", out)
    return max(drawn - bare, 0) / changes


def explore_pair():
    _, out, _ = run([os.path.join(EXAMPLES, "explore_vs_shuttle"), "50000"])
    ours = number(r"sim-core explore: +([0-9.]+) schedules/s", out)
    shuttle = number(r"shuttle check_random: ([0-9.]+) schedules/s", out)
    return ours, shuttle


def explore_rhai():
    runs = 20_000
    wall, _, _ = run([SIMCLI, "explore", "scripts/bench/counter.rhai", "--runs",
                      str(runs), "--keep-going", "--quiet", "--jobs", "1"])
    return runs / wall


def measure():
    """REPS rounds; in each, every workload runs on every tool in turn."""
    samples = {}

    def add(key, value):
        samples.setdefault(key, []).append(value)

    for rep in range(REPS):
        print(f"# round {rep + 1} of {REPS}", file=sys.stderr)
        for tool, fn in (("rust", throughput_rust),
                         ("stackless", throughput_stackless),
                         ("rhai", throughput_rhai), ("simpy", throughput_simpy)):
            wait_quiet()
            add(("throughput", tool), fn())
        for n in MUTEX_THREADS:
            for tool, fn in (("rust", mutex_rust), ("stackless", mutex_stackless),
                             ("rhai", mutex_rhai), ("simpy", mutex_simpy)):
                k = MUTEX_CYCLES // n
                wait_quiet()
                short = fn(n, k)
                wait_quiet()
                long, _ = fn(n, 3 * k)
                add((f"mutex{n}", tool), short)
                # (3k cycles at `long` each, less k at `short`) over 2k. The
                # difference amplifies noise: a non-positive one is no figure.
                steady = (3 * long - short[0]) / 2
                add((f"steady{n}", tool), (steady if steady > 0 else float("nan"), 0))
        for tool, fn in (("rust", many_rust), ("stackless", many_stackless),
                         ("rhai", many_rhai), ("simpy", many_simpy)):
            wait_quiet()
            add(("many", tool), fn())
        wait_quiet()
        add(("chart", "rhai"), (chart_bytes_per_change(), 0))
        wait_quiet()
        ours, shuttle = explore_pair()
        add(("explore", "rust"), (ours, 0))
        add(("explore", "shuttle"), (shuttle, 0))
        wait_quiet()
        add(("explore", "rhai"), (explore_rhai(), 0))
    return samples


def si(x):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def table(samples):
    med = {k: statistics.median(v for v, _ in vs) for k, vs in samples.items()}
    rss = {k: max(r for _, r in vs) for k, vs in samples.items()}
    rows = []

    def row(label, key, fmt, higher_is_better, other="simpy"):
        if any(math.isnan(v) for (k, _), v in med.items() if k == key):
            rows.append((label, *(["n/a (noise)"] * 4), "", "", ""))
            return
        rust, rhai, base = med[(key, "rust")], med[(key, "rhai")], med[(key, other)]
        stackless = med.get((key, "stackless"))
        ratio = (lambda a: a / base) if higher_is_better else (lambda a: base / a)
        rows.append((label, fmt(rust),
                     "" if stackless is None else fmt(stackless),
                     fmt(rhai), fmt(base), f"{ratio(rust):.1f}x",
                     "" if stackless is None else f"{ratio(stackless):.1f}x",
                     f"{ratio(rhai):.1f}x"))

    row("throughput (compute/sleep), simulated ops/s", "throughput", si, True)
    for n in MUTEX_THREADS:
        row(f"mutex cycles, N={n:,}, ns per cycle", f"mutex{n}",
            lambda x: f"{x:,.0f}", False)
    for n in MUTEX_THREADS:
        row(f"mutex cycles, N={n:,}, steady state, ns per cycle", f"steady{n}",
            lambda x: f"{x:,.0f}", False)
    row(f"{MANY // 1000}k live threads, wall s", "many",
        lambda x: f"{x:.2f}", False)
    tools = ("rust", "stackless", "rhai", "simpy")
    mem = {t: rss[("many", t)] / MANY for t in tools}
    rows.append((f"{MANY // 1000}k live threads, peak RSS per thread",
                 *(f"{mem[t] / 1024:.1f} KiB" for t in tools),
                 *(f"{mem['simpy'] / mem[t]:.1f}x" for t in tools[:3])))
    row("exploration, schedules/s (against shuttle)", "explore", si, True,
        other="shuttle")
    rows.append(("Gantt chart of 4M state changes, bytes per change", "", "",
                 f"{med[('chart', 'rhai')]:.1f} B", "", "", "", ""))
    head = ("workload", "simcli Rust", "Rust stackless", "simcli Rhai",
            "SimPy / shuttle", "Rust vs", "stackless vs", "Rhai vs")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()
    print(f"# median of {REPS} rounds; ratios are how many times better simcli "
          "is (faster, or less memory); the exploration row compares with "
          "shuttle's random scheduler, the others with SimPy")


def main():
    for path in (SIMCLI, os.path.join(EXAMPLES, "mutex_cycles")):
        if not os.path.exists(path):
            sys.exit(f"missing {path}: run bench/run, which builds it")
    table(measure())
    print_footer()


if __name__ == "__main__":
    main()
