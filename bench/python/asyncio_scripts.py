#!/usr/bin/env python3
"""The asyncio gallery scripts, run for real on CPython: the numbers their
headers promise, measured, next to what the simulator gives.

    python3 bench/python/asyncio_scripts.py

- asyncio_basics: three orders cooking 3s, 1s and 2s (asyncio.sleep stands
  for the kitchen), each taken and served with 1ms of CPU, on one loop.
- asyncio_blocking_call: a heartbeat ticking every 10ms, 20 times, beside a
  handler that calls time.sleep(0.2) in a coroutine; then the same with
  loop.run_in_executor; then the heartbeat beside a thread that computes
  for 200ms in the same process (the GIL).
- asyncio_vs_threads: 10,000 connections that each wait 100ms, then spend
  50us of CPU: one loop, 10,000 threads, a pool of 100 threads. Makespan
  and the peak RSS the model adds.
"""
import asyncio
import concurrent.futures
import resource
import sys
import threading
import time

from hostload import wait_quiet


def spin(seconds):
    """Burns CPU in pure Python for `seconds` (holding the GIL)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def basics():
    async def customer(items):
        spin(0.001)               # take the order
        await asyncio.sleep(1 + items)  # the kitchen cooks
        spin(0.001)               # serve it

    async def main():
        start = time.perf_counter()
        await asyncio.gather(customer(2), customer(0), customer(1))
        return time.perf_counter() - start
    return asyncio.run(main())


def heartbeat_with(handler, cruncher=False):
    ends = {}

    async def heartbeat(start):
        for _ in range(20):
            await asyncio.sleep(0.010)
        ends["heartbeat"] = time.perf_counter() - start

    async def main():
        start = time.perf_counter()
        tasks = [heartbeat(start)]
        if handler:
            tasks.append(handler(start, ends))
        thread = None
        if cruncher:
            thread = threading.Thread(target=spin, args=(0.2,))
            thread.start()
        await asyncio.gather(*tasks)
        if thread:
            thread.join()
        return time.perf_counter() - start
    total = asyncio.run(main())
    return total, ends


async def blocking_handler(start, ends):
    await asyncio.sleep(0.005)
    time.sleep(0.2)  # blocking: the whole loop stops here
    ends["handler"] = time.perf_counter() - start


async def executor_handler(start, ends):
    await asyncio.sleep(0.005)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, time.sleep, 0.2)
    ends["handler"] = time.perf_counter() - start


CLIENTS, LATENCY, WORK = 10_000, 0.100, 0.000050


def rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def model_asyncio():
    async def conn():
        await asyncio.sleep(LATENCY)
        spin(WORK)

    async def main():
        await asyncio.gather(*(conn() for _ in range(CLIENTS)))
    asyncio.run(main())


def model_threads():
    def conn():
        time.sleep(LATENCY)
        spin(WORK)
    threads = [threading.Thread(target=conn) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def model_pool():
    def conn(_):
        time.sleep(LATENCY)
        spin(WORK)
    with concurrent.futures.ThreadPoolExecutor(100) as pool:
        list(pool.map(conn, range(CLIENTS)))


MODELS = {"asyncio": model_asyncio, "pool": model_pool, "threads": model_threads, "idle": lambda: None}


def measure(model):
    """Runs one model in a fresh interpreter: its makespan, and its peak
    RSS (KiB) including the interpreter's own."""
    import subprocess
    wait_quiet()
    out = subprocess.run([sys.executable, __file__, "--model", model],
                         check=True, capture_output=True, text=True).stdout.split()
    return float(out[0]), int(out[1])


def main():
    print(f"python {sys.version.split()[0]}")
    load = wait_quiet()
    print(f"asyncio_basics: makespan {basics():.4f}s (simulated 3.002003s)   [bg load {load:.2f} cores]")
    total, ends = heartbeat_with(blocking_handler)
    print(f"blocking call: heartbeat ends at {ends['heartbeat'] * 1e3:.1f}ms (simulated 395.0045ms)")
    total, ends = heartbeat_with(executor_handler)
    print(f"run_in_executor: heartbeat ends at {ends['heartbeat'] * 1e3:.1f}ms (simulated 200.003ms), "
          f"handler at {ends['handler'] * 1e3:.1f}ms (simulated 205.0045ms)")
    total, ends = heartbeat_with(None, cruncher=True)
    print(f"cpu-bound thread beside the loop: heartbeat ends at {ends['heartbeat'] * 1e3:.1f}ms "
          f"(simulated 265.0015ms)")
    _, idle = measure("idle")
    print(f"an idle interpreter: peak RSS {idle / 1024:.1f}MiB (simulated process_memory 13.2MiB)")
    for name, model, simulated in [
        ("asyncio", "asyncio", "615.0015ms, 26.7MiB"),
        ("10,000 threads", "threads", "844.93ms, 64.1MiB"),
        ("pool of 100", "pool", "10.01035s, 14.8MiB"),
    ]:
        wall, rss = measure(model)
        print(f"{name}: makespan {wall:.3f}s, peak RSS {rss / 1024:.1f}MiB (simulated {simulated})")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--model":
        start = time.perf_counter()
        MODELS[sys.argv[2]]()
        print(f"{time.perf_counter() - start:.4f} {rss_kib()}")
    else:
        main()
