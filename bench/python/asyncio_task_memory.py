"""CPython's memory per asyncio task: 100,000 tasks parked in
`asyncio.sleep`, measured with tracemalloc (simcli's `task_memory`).

    python3 bench/python/asyncio_task_memory.py
"""
import asyncio, tracemalloc, sys, gc
N = 100_000
async def sleeper():
    await asyncio.sleep(3600)
async def main():
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tasks = [asyncio.create_task(sleeper()) for _ in range(N)]
    await asyncio.sleep(0)  # let every task start and park in sleep
    after = tracemalloc.get_traced_memory()[0]
    print(f"python {sys.version.split()[0]}: {(after - before) / N:.0f} bytes per task parked in asyncio.sleep")
    for t in tasks: t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
asyncio.run(main())
