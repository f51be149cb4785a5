#!/usr/bin/env python3
# gil_convoy.py -- the GIL "convoy effect": an I/O-bound thread sharing the
# GIL with CPU-bound threads.
#
# WHAT IT MEASURES
#   A server PROCESS runs, in its main thread, an echo handler for ONE client
#   connection on 127.0.0.1 (blocking recv/send; per request: recv a 64-byte
#   message, do ~13 us of pure-Python work, sendall it back) while K daemon
#   threads in the same process spin in pure-Python countdown loops.
#   A client PROCESS sends requests one at a time (send, wait for the full
#   echo, repeat) for DURATION seconds and counts round trips.
#   Printed: requests/s and the p50 / p90 / p99 round-trip latency for
#   K = 0, 1, 2, 4 CPU threads, with sys.setswitchinterval(0.005) (the
#   CPython default) and 0.001 in the server process.  Each cell is the
#   median of REPS runs (the repetitions are interleaved round-robin).
#   "bg cores" = CPU used by OTHER processes on the machine during the run
#   (from /proc/stat) -- this benchmark is very sensitive to a busy 2nd core.
#   "cpu share" = progress of the K CPU threads in cores' worth (their loop
#   rate divided by the calibrated single-thread rate; at most ~1.0 under
#   the GIL).
#   The per-request Python work is calibrated in the server process (a
#   countdown loop sized to WORK_US) and the measured time is printed.
#
#   Mechanism: every blocking recv()/send() releases the GIL; when the I/O
#   thread wants it back, a CPU thread holds it and only drops it after the
#   switch interval expires (forced switch), so each request pays up to
#   ~1 switch interval per GIL re-acquisition.
#
# SAFETY
#   All sockets are bound to/connected on 127.0.0.1 only; every socket has
#   a timeout; CPU threads are daemons; the server process os._exit()s when
#   the client disconnects or a deadline passes; the driver kills any child
#   still alive after its join timeout.  The program cannot hang.
#
# NOISY HOSTS
#   Before every run the script waits (at most 60 s in total, env
#   BENCH_QUIET_BUDGET overrides) until other
#   processes use < 0.3 cores, and prints the background load it saw
#   ("bg cores") so disturbed runs can be recognised.
#
# HOW TO RUN
#   python3 bench/python/gil_convoy.py              # DURATION=3 s per cell
#   python3 bench/python/gil_convoy.py 2            # 2 s per cell
#   Standard library only, Linux (start method "fork").  Runtime ~80 s.
#
# PUBLISHED FIGURE REPRODUCED
#   V. Skvortsov, "Python behind the scenes #13: the GIL and its effects on
#   Python multithreading" (2021), echo-server experiment, CPython 3.9,
#   2 cores:  K=0 ~30,000 req/s;
#             switch interval 5 ms: K=1/2/4 ~100 / 50 / 30 req/s;
#             switch interval 1 ms: K=1/2/4 ~500 / 280 / 200 req/s.
#   (Originally described by D. Beazley, "Understanding the Python GIL",
#   PyCon 2010, and bpo-7946 "Convoy effect with I/O bound threads and New
#   GIL".)

import multiprocessing as mp
import os
import socket
import statistics
import sys
import threading
import time

HOST = "127.0.0.1"
MSG = b"x" * 64
WORK_US = 13.0
DURATION = 3.0
REPS = 3
KS = (0, 1, 2, 4)
INTERVALS = (0.005, 0.001)


from hostload import other_load, print_footer, wait_quiet  # noqa: E402
from hostload import cpu_snapshot as _cpu_snapshot  # noqa: E402


def countdown(n):
    while n > 0:
        n -= 1


def calibrate(target_us):
    """Return (n, measured_us): countdown(n) takes ~target_us of CPU.

    Iterative: time 2000 back-to-back calls of countdown(n) (the same small
    call the handler makes), rescale n, repeat; the last measurement is
    what is reported."""
    n = 300
    us = 0.0
    for _ in range(4):
        us = _per_call_us(n)
        n = max(1, round(n * target_us / us))
    us = _per_call_us(n)
    return n, us


def _per_call_us(n, reps=2000):
    t = time.perf_counter()
    for _ in range(reps):
        countdown(n)
    return (time.perf_counter() - t) / reps * 1e6


CPU_CHUNK = 20_000
cpu_chunks = [0]          # chunks of CPU_CHUNK iterations done by CPU threads


def cpu_thread():
    while True:
        countdown(CPU_CHUNK)
        cpu_chunks[0] += 1    # racy across threads; fine for an estimate


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def server(conn_pipe, k, interval, duration):
    try:
        sys.setswitchinterval(interval)
        work_n, work_us = calibrate(WORK_US)       # before CPU threads start
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind((HOST, 0))
        lsock.listen(1)
        lsock.settimeout(15)
        for _ in range(k):
            threading.Thread(target=cpu_thread, daemon=True).start()
        conn_pipe.send((lsock.getsockname()[1], work_n, work_us))
        conn, _ = lsock.accept()
        conn.settimeout(10)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c0, t0 = cpu_chunks[0], time.perf_counter()
        deadline = time.monotonic() + duration + 20
        while time.monotonic() < deadline:
            data = recv_exact(conn, len(MSG))
            if data is None:
                break
            countdown(work_n)                       # ~13 us of Python work
            conn.sendall(data)
        # share of one core the CPU threads got (their loop rate relative
        # to the calibrated single-thread rate), sent to the driver
        dt = time.perf_counter() - t0
        per_iter = work_us * 1e-6 / work_n
        conn_pipe.send((cpu_chunks[0] - c0) * CPU_CHUNK * per_iter / dt)
        conn.close()
    except Exception as e:  # noqa: BLE001 -- report and exit, never hang
        print(f"server error: {e!r}", file=sys.stderr)
    finally:
        os._exit(0)                                 # kills daemon threads


def client(port, duration, result_pipe):
    try:
        s = socket.create_connection((HOST, port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        lat = []
        t0 = time.perf_counter()
        end = t0 + duration
        now = t0
        while now < end:
            s.sendall(MSG)
            if recv_exact(s, len(MSG)) is None:
                break
            t = time.perf_counter()
            lat.append(t - now)
            now = t
        elapsed = now - t0
        s.close()
        result_pipe.send((len(lat), elapsed, lat))
    except Exception as e:  # noqa: BLE001
        result_pipe.send((0, duration, [], repr(e)))
    finally:
        os._exit(0)


def one_run(k, interval, duration):
    ctx = mp.get_context("fork")
    srv_parent, srv_child = ctx.Pipe()
    cli_parent, cli_child = ctx.Pipe()
    srv = ctx.Process(target=server, args=(srv_child, k, interval, duration),
                      daemon=True)
    srv.start()
    cli = None
    try:
        if not srv_parent.poll(20):
            raise RuntimeError("server did not start")
        port, work_n, work_us = srv_parent.recv()
        cli = ctx.Process(target=client, args=(port, duration, cli_child),
                          daemon=True)
        cli.start()
        if not cli_parent.poll(duration + 30):
            raise RuntimeError("client did not report")
        res = cli_parent.recv()
        count, elapsed, lat = res[0], res[1], res[2]
        if len(res) > 3:
            print(f"# client error: {res[3]}", file=sys.stderr)
        share = srv_parent.recv() if srv_parent.poll(10) else float("nan")
        return (count / elapsed if elapsed > 0 else 0.0, lat, work_n, work_us,
                share)
    finally:
        for p in (cli, srv):
            if p is None:
                continue
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)


def pct(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else DURATION
    print(f"# python {sys.version.split()[0]}  cpus={os.cpu_count()}  "
          f"duration={duration}s per run  reps={REPS}  msg={len(MSG)} B  "
          f"host={HOST}")
    print(f"# loadavg at start: {open('/proc/loadavg').read().strip()}")
    cells = [(iv, k) for iv in INTERVALS for k in KS]
    rps = {c: [] for c in cells}
    lat50 = {c: [] for c in cells}
    lat90 = {c: [] for c in cells}
    lat99 = {c: [] for c in cells}
    bg = {c: [] for c in cells}
    shares = {c: [] for c in cells}
    works = []
    for _ in range(REPS):
        for iv, k in cells:
            wait_quiet()
            s0, w0 = _cpu_snapshot(), time.perf_counter()
            r, lat, work_n, work_us, share = one_run(k, iv, duration)
            shares[(iv, k)].append(share)
            bg[(iv, k)].append(other_load(s0, _cpu_snapshot(),
                                          time.perf_counter() - w0))
            rps[(iv, k)].append(r)
            lat50[(iv, k)].append(pct(lat, 0.50))
            lat90[(iv, k)].append(pct(lat, 0.90))
            lat99[(iv, k)].append(pct(lat, 0.99))
            works.append((work_n, work_us))
    wn = statistics.median(w[0] for w in works)
    wu = statistics.median(w[1] for w in works)
    print(f"# per-request Python work: countdown({wn:.0f}) = {wu:.1f} us "
          f"(target {WORK_US} us; median over {len(works)} server starts, "
          f"range {min(w[1] for w in works):.1f}-{max(w[1] for w in works):.1f} us)")
    print()
    print(f"{'switchinterval':<16}{'K cpu thr':>10}{'req/s med':>11}"
          f"{'req/s min':>11}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'cpu share':>10}{'bg cores':>9}   all runs (req/s)")
    for iv, k in cells:
        c = (iv, k)
        print(f"{iv * 1e3:>6.1f} ms{'':<7}{k:>10}"
              f"{statistics.median(rps[c]):>11.0f}{min(rps[c]):>11.0f}"
              f"{statistics.median(lat50[c]) * 1e3:>9.3f}"
              f"{statistics.median(lat90[c]) * 1e3:>9.3f}"
              f"{statistics.median(lat99[c]) * 1e3:>9.3f}"
              f"{statistics.median(shares[c]):>10.2f}"
              f"{statistics.median(bg[c]):>9.2f}   "
              + " ".join(f"{x:.0f}" for x in rps[c]))
    print("# latencies: median over runs of each run's percentile; cpu share ="
          " cores' worth of countdown progress made by the K CPU threads\n"
          "# (loop rate / calibrated 1-thread rate; 1.0 = one full core); "
          "bg cores = CPU used by other processes during the runs (median)")
    print("# Skvortsov 2021 (CPython 3.9, 2 cores): K=0 ~30000 req/s; "
          "5 ms: K=1/2/4 ~100/50/30; 1 ms: ~500/280/200")
    print_footer()


if __name__ == "__main__":
    main()
