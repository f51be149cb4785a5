#!/usr/bin/env python3
"""The benchmark workloads of bench/run as SimPy models, the way a SimPy user
would write them: CPUs and the mutex are simpy.Resource objects, compute and
sleep are timeouts (time in integer nanoseconds, as in simcli).

SimPy records no trace, draws no chart, detects no race or deadlock and
charges no context switch; simcli does all of that in the same runs.

    python bench/simpy_models.py throughput N C K
    python bench/simpy_models.py mutex_cycles N K
    python bench/simpy_models.py many_threads N

Each prints one JSON line: {"wall": seconds, "units": operations or cycles}.
"""
import json
import sys
import time

import simpy

US = 1_000
MS = 1_000_000


def throughput(n, c, k):
    """N threads on C CPUs, each K times compute(1us) then sleep(3us)."""
    env = simpy.Environment()
    cpus = simpy.Resource(env, capacity=c)

    def thread():
        for _ in range(k):
            with cpus.request() as cpu:
                yield cpu
                yield env.timeout(1 * US)
            yield env.timeout(3 * US)

    for _ in range(n):
        env.process(thread())
    env.run()
    return 2 * n * k


def mutex_cycles(n, k):
    """N threads on 4 CPUs, each K times: lock the mutex, increment a shared
    variable, compute(1us), unlock, sleep(1us)."""
    env = simpy.Environment()
    cpus = simpy.Resource(env, capacity=4)
    mutex = simpy.Resource(env, capacity=1)
    shared = [0]

    def thread():
        for _ in range(k):
            with mutex.request() as lock:
                yield lock
                shared[0] += 1
                with cpus.request() as cpu:
                    yield cpu
                    yield env.timeout(1 * US)
            yield env.timeout(1 * US)

    for _ in range(n):
        env.process(thread())
    env.run()
    assert shared[0] == n * k
    return n * k


def many_threads(n):
    """N threads alive at once: compute(1us), sleep(500ms), compute(1us)."""
    env = simpy.Environment()
    cpus = simpy.Resource(env, capacity=4)

    def compute():
        with cpus.request() as cpu:
            yield cpu
            yield env.timeout(1 * US)

    def thread():
        yield from compute()
        yield env.timeout(500 * MS)
        yield from compute()

    for _ in range(n):
        env.process(thread())
    env.run()
    return n


def main():
    name, *args = sys.argv[1:]
    model = {"throughput": throughput, "mutex_cycles": mutex_cycles,
             "many_threads": many_threads}[name]
    start = time.perf_counter()
    units = model(*(int(a) for a in args))
    wall = time.perf_counter() - start
    print(json.dumps({"wall": wall, "units": units}))


if __name__ == "__main__":
    main()
