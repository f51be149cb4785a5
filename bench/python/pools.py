"""Real CPython figures for the pool scripts (issue 14): what a job costs
through ThreadPoolExecutor and ProcessPoolExecutor, what starting a thread
costs against reusing a pool's, and the same CPU work in both pools.

Run: python3 bench/python/pools.py   (prints one line per figure)
"""
import os
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor


def spin(n):
    """Pure-Python CPU work: n iterations of a loop."""
    x = 0
    for i in range(n):
        x += i
    return x


def noop(x):
    return x


def per_job(executor_cls, workers, jobs, **kw):
    with executor_cls(max_workers=workers, **kw) as ex:
        list(ex.map(noop, range(workers * 4)))  # warm: every worker started
        t = time.perf_counter()
        futures = [ex.submit(noop, i) for i in range(jobs)]
        for f in futures:
            f.result()
        return (time.perf_counter() - t) / jobs


def cpu_jobs(executor_cls, workers, jobs, n, **kw):
    t = time.perf_counter()
    with executor_cls(max_workers=workers, **kw) as ex:
        list(ex.map(spin, [n] * jobs))
    return time.perf_counter() - t


def thread_start(count):
    t = time.perf_counter()
    threads = [threading.Thread(target=noop, args=(0,)) for _ in range(count)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return (time.perf_counter() - t) / count


def main():
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    n = 200_000
    t = time.perf_counter()
    spin(n)
    unit = time.perf_counter() - t
    print(f"spin({n}) alone: {unit * 1e3:.1f} ms")
    print(f"thread start+join: {thread_start(2000) * 1e6:.1f} us per thread")
    print(f"ThreadPoolExecutor tiny job: {per_job(ThreadPoolExecutor, 4, 5000) * 1e6:.1f} us per job")
    print(f"ProcessPoolExecutor tiny job: {per_job(ProcessPoolExecutor, 2, 2000) * 1e6:.1f} us per job")
    jobs = 8
    tp = cpu_jobs(ThreadPoolExecutor, 2, jobs, n)
    pp = cpu_jobs(ProcessPoolExecutor, 2, jobs, n)
    print(f"{jobs} x spin({n}) on 2 workers: thread pool {tp * 1e3:.1f} ms, process pool {pp * 1e3:.1f} ms (sequential {jobs * unit * 1e3:.1f} ms)")
    small = 2000
    tp = cpu_jobs(ThreadPoolExecutor, 2, small, 100)
    pp = cpu_jobs(ProcessPoolExecutor, 2, small, 100)
    print(f"{small} x spin(100) on 2 workers: thread pool {tp * 1e3:.1f} ms, process pool {pp * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
