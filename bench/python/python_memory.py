#!/usr/bin/env python3
# python_memory.py -- memory cost of a CPython interpreter, an idle thread
# and an idle asyncio task (defaults for the simcli memory model).
#
# WHAT IT MEASURES  (every measurement runs in a FRESH child interpreter,
# REPS times; the median is printed together with min/max)
#   1. idle interpreter: RSS (VmRSS from /proc/<pid>/status, also split into
#      RssAnon / RssFile) of `python3 -c "import time; time.sleep(60)"`,
#      read 1.0 s after start.  Also with -S (no site import) and -I.
#   2. idle threading.Thread: in a child, read VmRSS, start N_THREADS threads
#      that block in threading.Event.wait(), read VmRSS again once all are
#      parked; (delta / N_THREADS).  VmSize delta/thread (virtual, mostly the
#      8 MiB default stack reservation) and tracemalloc delta/thread (Python-
#      heap objects only, separate child) are printed too.
#   3. idle asyncio task: in a child, inside asyncio.run(), create N_TASKS
#      tasks of `async def w(ev): await ev.wait()` (and, separately, tasks
#      awaiting one shared Future), yield until all are suspended, then
#      (VmRSS delta / N_TASKS).  tracemalloc per task in a separate child
#      (tracemalloc's own bookkeeping would inflate RSS).
#   Baselines are taken after a warm-up (one thread / one task already
#   created and finished) so one-off lazy initialisation is not charged
#   per-object.  gc.collect() before each reading.
#
# HOW TO RUN
#   python3 bench/python/python_memory.py
#   Standard library only, Linux (/proc).  Runtime ~15 s.
#
# PUBLISHED FIGURES REPRODUCED
#   No single figure; these are the "rule of thumb" numbers commonly quoted:
#   idle CPython 3.11 process ~8-10 MiB RSS; an OS thread costs a few tens of
#   KiB of RSS (plus 8 MiB *virtual* stack); an asyncio task ~1-2 KiB
#   (e.g. the "1 million asyncio tasks" / "How much memory do you need to
#   run 1 million concurrent tasks?" (P. Kołaczkowski, 2023) comparisons).

import os
import shutil
import statistics
import subprocess
import sys
import time

REPS = 3
N_THREADS = 100
N_TASKS = 10_000


def status(pid="self"):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmSize"):
                out[k] = int(v.split()[0])  # KiB
    return out


# --------------------------------------------------------------- children
def child_threads(use_tracemalloc):
    import gc
    import threading
    if use_tracemalloc:
        import tracemalloc
        tracemalloc.start()
    ev = threading.Event()
    warm = threading.Thread(target=ev.wait, args=(0.001,))
    warm.start()
    warm.join()
    gc.collect()
    time.sleep(0.1)
    s0 = status()
    m0 = tracemalloc.get_traced_memory()[0] if use_tracemalloc else 0
    ths = [threading.Thread(target=ev.wait, daemon=True) for _ in range(N_THREADS)]
    for t in ths:
        t.start()
    # wait until every thread is parked in the Event wait
    time.sleep(0.3)
    gc.collect()
    s1 = status()
    m1 = tracemalloc.get_traced_memory()[0] if use_tracemalloc else 0
    ev.set()
    for t in ths:
        t.join(timeout=5)
    print(s1["VmRSS"] - s0["VmRSS"], s1["VmSize"] - s0["VmSize"], m1 - m0)


def child_tasks(kind, use_tracemalloc):
    import asyncio
    import gc
    if use_tracemalloc:
        import tracemalloc
        tracemalloc.start()

    async def wait_event(ev):
        await ev.wait()

    async def wait_future(fut):
        await fut

    async def main():
        loop = asyncio.get_running_loop()
        ev = asyncio.Event()
        fut = loop.create_future()
        # warm-up: one task through its whole life cycle
        t = asyncio.create_task(wait_event(ev))
        await asyncio.sleep(0)
        ev.set()
        await t
        ev.clear()
        gc.collect()
        s0 = status()
        m0 = tracemalloc.get_traced_memory()[0] if use_tracemalloc else 0
        if kind == "event":
            tasks = [asyncio.create_task(wait_event(ev)) for _ in range(N_TASKS)]
        else:
            tasks = [asyncio.create_task(wait_future(fut)) for _ in range(N_TASKS)]
        for _ in range(3):
            await asyncio.sleep(0)          # let every task start and park
        gc.collect()
        s1 = status()
        m1 = tracemalloc.get_traced_memory()[0] if use_tracemalloc else 0
        ev.set()
        fut.set_result(None)
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        print(s1["VmRSS"] - s0["VmRSS"], s1["VmSize"] - s0["VmSize"], m1 - m0)

    asyncio.run(main())


# ---------------------------------------------------------------- parent
def idle_interpreter(py, flags):
    cmd = [py, *flags, "-c", "import time; time.sleep(60)"]
    vals = []
    for _ in range(REPS):
        p = subprocess.Popen(cmd)
        try:
            time.sleep(1.0)
            vals.append(status(p.pid))
        finally:
            p.kill()
            p.wait(timeout=10)
    return cmd, vals


def run_child(args):
    vals = []
    for _ in range(REPS):
        out = subprocess.run([sys.executable, os.path.abspath(__file__),
                              "--child", *args], capture_output=True,
                             text=True, timeout=60, check=True).stdout
        vals.append([int(x) for x in out.split()])
    return vals


def fmt3(xs, scale=1.0, prec=1):
    xs = [x * scale for x in xs]
    return (f"{statistics.median(xs):>10.{prec}f}{min(xs):>10.{prec}f}"
            f"{max(xs):>10.{prec}f}")


def main():
    py = shutil.which("python3") or sys.executable
    print(f"# python {sys.version.split()[0]} ({py})  reps={REPS}  "
          f"page size={os.sysconf('SC_PAGE_SIZE')} B")
    print(f"# loadavg at start: {open('/proc/loadavg').read().strip()}")
    print()
    print("1) idle interpreter RSS (KiB), /proc/<pid>/status 1.0 s after start")
    print(f"{'command':<56}{'VmRSS med':>10}{'min':>10}{'max':>10}"
          f"{'RssAnon':>9}{'RssFile':>9}")
    for flags in ([], ["-S"], ["-I"]):
        cmd, vals = idle_interpreter(py, flags)
        shown = " ".join(c if " " not in c else repr(c) for c in cmd)
        shown = shown.replace(py, "python3", 1)
        print(f"{shown:<56}{fmt3([v['VmRSS'] for v in vals], prec=0)}"
              f"{statistics.median(v['RssAnon'] for v in vals):>9.0f}"
              f"{statistics.median(v['RssFile'] for v in vals):>9.0f}")

    print()
    print("2) per idle threading.Thread (blocked in Event.wait), "
          f"{N_THREADS} threads, delta/{N_THREADS}")
    print(f"{'quantity':<56}{'median':>10}{'min':>10}{'max':>10}")
    rss = run_child(["threads", "0"])
    trm = run_child(["threads", "1"])
    print(f"{'VmRSS delta per thread (KiB)':<56}{fmt3([v[0] / N_THREADS for v in rss])}")
    print(f"{'VmSize delta per thread (KiB, virtual)':<56}{fmt3([v[1] / N_THREADS for v in rss], prec=0)}")
    print(f"{'tracemalloc delta per thread (B)':<56}{fmt3([v[2] / N_THREADS for v in trm], prec=0)}")
    print(f"# method: fresh `{os.path.basename(sys.executable)} {os.path.basename(__file__)}"
          f" --child threads`, VmRSS before/after starting {N_THREADS} threads;"
          f" ulimit -s stack reservation shows in VmSize only")

    print()
    print(f"3) per idle asyncio task, {N_TASKS} tasks, delta/{N_TASKS}")
    print(f"{'quantity':<56}{'median':>10}{'min':>10}{'max':>10}")
    for kind, label in (("event", "await asyncio.Event().wait()"),
                        ("future", "await shared Future")):
        rss = run_child(["tasks", kind, "0"])
        trm = run_child(["tasks", kind, "1"])
        print(f"{'VmRSS per task (B), ' + label:<56}"
              f"{fmt3([v[0] * 1024 / N_TASKS for v in rss], prec=0)}")
        print(f"{'tracemalloc per task (B), ' + label:<56}"
              f"{fmt3([v[2] / N_TASKS for v in trm], prec=0)}")
    print(f"# method: fresh child interpreter, asyncio.run(); VmRSS and "
          f"tracemalloc (separate runs) before/after creating {N_TASKS} "
          f"parked tasks")
    print(f"# loadavg at end: {open('/proc/loadavg').read().strip()}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        if sys.argv[2] == "threads":
            child_threads(sys.argv[3] == "1")
        else:
            child_tasks(sys.argv[3], sys.argv[4] == "1")
    else:
        main()
