#!/usr/bin/env python3
# gil_countdown.py -- CPU-bound "countdown" under the GIL: threads vs processes.
#
# WHAT IT MEASURES
#   Wall time of the pure-Python loop
#       def countdown(n):
#           while n > 0:
#               n -= 1
#   for a fixed total amount of work N, run as
#     * sequential          (1 call, N)
#     * 2 / 4 threads       (N/2, N/4 each; threading.Thread, one process)
#     * 2 / 4 processes     (N/2, N/4 each; multiprocessing, start method
#                            "fork"; timing INCLUDES process start and join)
#   Each configuration is run REPS times; median and min are printed, with
#   speedup = median(sequential) / median(config).
#   Second table: start-up cost of an EMPTY multiprocessing.Process
#   (start()+join() of a process whose target does nothing) for the start
#   methods "fork", "forkserver", "spawn" -- median/min of 10 each.  For
#   forkserver, the one-time server launch is excluded by a warm-up start.
#
# NOISY HOSTS
#   Before every run the script waits (at most 60 s in total, env
#   BENCH_QUIET_BUDGET overrides) until other
#   processes use < 0.3 cores, and prints the background load it saw
#   ("bg cores") so disturbed runs can be recognised.
#
# HOW TO RUN
#   python3 bench/python/gil_countdown.py            # N chosen below
#   python3 bench/python/gil_countdown.py 40000000   # explicit N
#   Standard library only.  Runtime ~30-40 s on a 2-vCPU machine.
#
# PUBLISHED FIGURES REPRODUCED
#   * D. Beazley, "Understanding the Python GIL", PyCon 2010: the countdown
#     benchmark; 2 threads are no faster (often slower) than sequential.
#   * V. Skvortsov, "Python behind the scenes #13: the GIL and its effects
#     on Python multithreading" (2021): countdown with 1/2/4 threads is flat
#     (~same time as sequential) while processes scale with cores.
#   * simcli spec defaults for process start cost: fork 2 ms,
#     forkserver 35 ms, spawn 75 ms (this script measures this machine).

import multiprocessing as mp
import os
import statistics
import sys
import threading
import time

N_DEFAULT = 40_000_000     # ~2 s for one thread on the reference machine
REPS = 3
START_REPS = 10


from hostload import other_load, print_footer, wait_quiet  # noqa: E402
from hostload import cpu_snapshot as _cpu_snapshot  # noqa: E402


def countdown(n):
    while n > 0:
        n -= 1


def run_sequential(n):
    t = time.perf_counter()
    countdown(n)
    return time.perf_counter() - t


def run_threads(n, k):
    ths = [threading.Thread(target=countdown, args=(n // k,)) for _ in range(k)]
    t = time.perf_counter()
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    return time.perf_counter() - t


def run_processes(n, k, ctx):
    t = time.perf_counter()
    ps = [ctx.Process(target=countdown, args=(n // k,)) for _ in range(k)]
    for p in ps:
        p.start()
    for p in ps:
        p.join(timeout=300)
    for p in ps:
        if p.is_alive():
            p.kill()
    return time.perf_counter() - t


def noop():
    pass


def start_cost(method):
    ctx = mp.get_context(method)
    # warm-up (for forkserver this launches the server once; excluded)
    p = ctx.Process(target=noop)
    p.start()
    p.join(timeout=60)
    ts = []
    for _ in range(START_REPS):
        t = time.perf_counter()
        p = ctx.Process(target=noop)
        p.start()
        p.join(timeout=60)
        ts.append(time.perf_counter() - t)
    return ts


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else N_DEFAULT
    fork = mp.get_context("fork")
    print(f"# python {sys.version.split()[0]}  cpus={os.cpu_count()}  "
          f"switchinterval={sys.getswitchinterval()}  N={n:,}  reps={REPS}")
    print(f"# loadavg at start: {open('/proc/loadavg').read().strip()}")

    configs = [
        ("sequential (1 thread)", lambda: run_sequential(n)),
        ("2 threads  (N/2 each)", lambda: run_threads(n, 2)),
        ("4 threads  (N/4 each)", lambda: run_threads(n, 4)),
        ("2 processes (fork)", lambda: run_processes(n, 2, fork)),
        ("4 processes (fork)", lambda: run_processes(n, 4, fork)),
    ]
    # Repetitions are interleaved round-robin (rep 1 of every config, then
    # rep 2, ...) so that slow phases of a noisy host hit all configs alike.
    times = {name: [] for name, _ in configs}
    others = {name: [] for name, _ in configs}
    for _ in range(REPS):
        for name, fn in configs:
            wait_quiet()
            s0 = _cpu_snapshot()
            w0 = time.perf_counter()
            dt = fn()
            wall = time.perf_counter() - w0
            times[name].append(dt)
            others[name].append(other_load(s0, _cpu_snapshot(), wall))
    seq = statistics.median(times[configs[0][0]])
    print()
    print(f"{'configuration':<24}{'median s':>10}{'min s':>10}{'speedup':>9}"
          f"{'bg cores':>10}   all runs (s)")
    for name, _ in configs:
        ts = times[name]
        med = statistics.median(ts)
        print(f"{name:<24}{med:>10.3f}{min(ts):>10.3f}{seq / med:>9.2f}"
              f"{statistics.median(others[name]):>10.2f}   "
              + " ".join(f"{x:.3f}" for x in ts))
    print("# speedup = median(sequential)/median(config); bg cores = CPU used by"
          " other processes during the run (median), from /proc/stat")

    print()
    print(f"empty multiprocessing.Process start()+join(), {START_REPS} reps each")
    print(f"{'start method':<14}{'median ms':>11}{'min ms':>10}{'max ms':>10}")
    for method in ("fork", "forkserver", "spawn"):
        ts = start_cost(method)
        print(f"{method:<14}{statistics.median(ts) * 1e3:>11.2f}"
              f"{min(ts) * 1e3:>10.2f}{max(ts) * 1e3:>10.2f}")
    print_footer()


if __name__ == "__main__":
    main()
