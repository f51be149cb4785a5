#!/usr/bin/env python3
# gil_hash.py -- threads doing work that RELEASES the GIL (hashlib.sha256).
#
# WHAT IT MEASURES
#   Wall time to SHA-256 a fixed total amount of data (TOTAL_MIB MiB, fed as
#   CHUNK = 1 MiB buffers, each chunk hashed by a fresh hashlib.sha256(buf)
#   call) with the work split evenly over 1, 2 and 4 threads.  CPython's
#   hashlib drops the GIL while hashing any buffer larger than 2047 bytes
#   (HASHLIB_GIL_MINSIZE), so threads run truly in parallel on the hash and
#   only contend for the GIL in the few bytecodes between calls.
#   Repetitions are interleaved round-robin; median and min of REPS runs;
#   speedup = median(1 thread)/median(k threads); "bg cores" = CPU used by
#   OTHER processes during the run (from /proc/stat), to flag a noisy host.
#
# NOISY HOSTS
#   Before every run the script waits (at most 60 s in total, env
#   BENCH_QUIET_BUDGET overrides) until other
#   processes use < 0.3 cores, and prints the background load it saw
#   ("bg cores") so disturbed runs can be recognised.
#
# HOW TO RUN
#   python3 bench/python/gil_hash.py            # TOTAL_MIB chosen below
#   python3 bench/python/gil_hash.py 3000       # explicit total MiB
#   Standard library only.  Runtime ~25 s on a 2-vCPU machine.
#
# PUBLISHED FIGURE REPRODUCED
#   V. Skvortsov, "Python behind the scenes #13: the GIL and its effects on
#   Python multithreading" (2021): hashlib with 1 / 2 / 4 threads on a
#   2-core machine took 3.30 / 1.68 / 1.50 s, i.e. near-linear speedup up to
#   the core count, then flat.

import hashlib
import os
import statistics
import sys
import threading
import time

CHUNK = 1 << 20            # 1 MiB per hashlib call (GIL released inside)
TOTAL_MIB = 3200           # ~2.5 s for one thread on the reference machine
REPS = 3
THREADS = (1, 2, 4)


from hostload import other_load, print_footer, wait_quiet  # noqa: E402
from hostload import cpu_snapshot as _cpu_snapshot  # noqa: E402


def worker(buf, nchunks):
    for _ in range(nchunks):
        hashlib.sha256(buf).digest()


def run(buf, total_chunks, k):
    ths = [threading.Thread(target=worker, args=(buf, total_chunks // k))
           for _ in range(k)]
    t = time.perf_counter()
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    return time.perf_counter() - t


def main():
    total = int(sys.argv[1]) if len(sys.argv) > 1 else TOTAL_MIB
    buf = os.urandom(CHUNK)
    total_chunks = total * (1 << 20) // CHUNK
    print(f"# python {sys.version.split()[0]}  cpus={os.cpu_count()}  "
          f"sha256 of {total} MiB in {CHUNK >> 10} KiB chunks  reps={REPS}")
    print(f"# loadavg at start: {open('/proc/loadavg').read().strip()}")
    run(buf, 64, 1)  # warm-up
    times = {k: [] for k in THREADS}
    bg = {k: [] for k in THREADS}
    for _ in range(REPS):
        for k in THREADS:
            wait_quiet()
            s0 = _cpu_snapshot()
            dt = run(buf, total_chunks, k)
            bg[k].append(other_load(s0, _cpu_snapshot(), dt))
            times[k].append(dt)
    base = statistics.median(times[1])
    print()
    print(f"{'threads':<9}{'median s':>10}{'min s':>10}{'speedup':>9}"
          f"{'MiB/s':>9}{'bg cores':>10}   all runs (s)")
    for k in THREADS:
        ts = times[k]
        med = statistics.median(ts)
        print(f"{k:<9}{med:>10.3f}{min(ts):>10.3f}{base / med:>9.2f}"
              f"{total / med:>9.0f}{statistics.median(bg[k]):>10.2f}   "
              + " ".join(f"{x:.3f}" for x in ts))
    print("# Skvortsov 2021 (2 cores): 1/2/4 threads = 3.30/1.68/1.50 s "
          "(speedup 1.00/1.96/2.20)")
    print_footer()


if __name__ == "__main__":
    main()
