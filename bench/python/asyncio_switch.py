"""What one asyncio task switch costs in CPython: N tasks each yield to the
loop M times with `await asyncio.sleep(0)`; the wall time per task step is the
loop's cost of switching from one task to the next (simcli's `task_switch`).

    python3 bench/python/asyncio_switch.py
"""
import asyncio
import sys
import time

N, M = 1000, 200


async def worker():
    for _ in range(M):
        await asyncio.sleep(0)


async def main():
    tasks = [asyncio.create_task(worker()) for _ in range(N)]
    start = time.perf_counter()
    await asyncio.gather(*tasks)
    return time.perf_counter() - start


best = min(asyncio.run(main()) for _ in range(5))
print(f"python {sys.version.split()[0]}: {best / (N * M) * 1e6:.2f} us per task step "
      f"({N} tasks x {M} awaits, best of 5)")
