"""How busy the host is with other work, for the benchmarks beside this
file: this VM is shared with builds, so each measurement waits (a bounded
time) for a quiet host and reports the load it ran under.
"""
import os
import time


def cpu_snapshot():
    """(system busy CPU seconds across all CPUs, this process + reaped
    children CPU seconds)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    busy = (sum(v[:8]) - v[3] - v[4]) / hz          # minus idle, iowait
    t = os.times()
    return busy, t.user + t.system + t.children_user + t.children_system


def other_load(s0, s1, wall):
    """CPU cores used by OTHER processes during an interval (0 = quiet)."""
    return max(0.0, ((s1[0] - s0[0]) - (s1[1] - s0[1])) / wall)


QUIET_MAX = float(os.environ.get("BENCH_QUIET_BUDGET", "60"))
QUIET_BUDGET = [QUIET_MAX]  # total s a program may wait for a quiet host


def wait_quiet(threshold=0.3, probe=0.5):
    """Wait until other processes use < threshold cores (sampled over
    `probe` s), spending at most QUIET_BUDGET seconds over the whole
    program.  Returns the last measured background load."""
    while True:
        s0, w0 = cpu_snapshot(), time.perf_counter()
        time.sleep(probe)
        w = time.perf_counter() - w0
        load = other_load(s0, cpu_snapshot(), w)
        if load < threshold or QUIET_BUDGET[0] <= 0:
            return load
        QUIET_BUDGET[0] -= w


def print_footer():
    """The closing lines of a benchmark's table: how long it waited for a
    quiet host, and the load average at the end."""
    print(f"# waited {QUIET_MAX - QUIET_BUDGET[0]:.0f} s in total for a quiet "
          f"host (budget {QUIET_MAX:.0f} s, env BENCH_QUIET_BUDGET; budget "
          "exhausted => later runs not gated)")
    print(f"# loadavg at end: {open('/proc/loadavg').read().strip()}")
