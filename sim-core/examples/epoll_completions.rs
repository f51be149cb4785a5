//! I/O completions through epoll: one thread keeps `N` requests outstanding
//! on a device with `C` channels, waits for completions in `ep.wait()`,
//! and resubmits each completed request until `T` have completed.
//!
//! Demonstrates: the cost of a completion (the device's queue, the event,
//! epoll's ready list, the waiter's wake-up) and that it does not grow with
//! the number of handles that are not ready (no scan of the set per wait).
//!
//! ```text
//!   loop:  ep.wait() ─▶ [h17, h3, ...] ─▶ resubmit each, ep.add ─▶ ep.wait()
//!   disk:  ch0 [h0][h64][h128]...   ch1 [h1][h65]...   ... ch63
//! ```
//!
//! Run: `cargo run --release -p sim-core --example epoll_completions [N C T]`
//! (default 10000 64 1000000). The last line is
//! `completions: <n> completions/s`.

use std::time::Instant;

use sim_core::{us, DeviceOptions, Machine, Pollable, Simulation};

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers: N C T"))
        .collect();
    let (n, c, total) = match args.as_slice() {
        [n, c, t] => (*n, *c, *t),
        [] => (10_000, 64, 1_000_000),
        _ => panic!("usage: epoll_completions [N C T]"),
    };
    let mut sim = Simulation::new(Machine {
        max_events: u64::MAX,
        ..Machine::default()
    })
    .expect("a valid machine");
    let disk = sim.device(
        "disk",
        DeviceOptions {
            latency: us(100),
            bandwidth: Some(1_000_000_000),
            channels: c as u16,
        },
    );
    let poller = sim.add_thread("poller", move |ctx| {
        let ep = ctx.epoll();
        let mut submitted = 0u64;
        for _ in 0..n.min(total) {
            let h = ctx.submit(disk, 4096);
            ctx.epoll_add(ep, h);
            submitted += 1;
        }
        let mut completed = 0u64;
        let mut waits = 0u64;
        while completed < total {
            let ready = ctx.epoll_wait(ep, None);
            waits += 1;
            for handle in ready {
                let Pollable::Io(_) = handle else { continue };
                completed += 1;
                if submitted < total {
                    let h = ctx.submit(disk, 4096);
                    ctx.epoll_add(ep, h);
                    submitted += 1;
                }
            }
        }
        (completed, waits)
    });
    // Wall-clock time is read only to report speed; the simulation never sees it.
    let start = Instant::now();
    let mut run = sim.run();
    let elapsed = start.elapsed().as_secs_f64();
    assert!(run.completed(), "{:?}", run.outcome);
    let (completed, waits) = run.take_value(&poller).expect("the poller's counts");
    println!("outstanding: {n}, channels: {c}, completions: {completed}, waits: {waits}");
    println!("simulated makespan: {}", run.trace.makespan());
    println!(
        "wall time: {elapsed:.3}s, {:.0} ns per completion",
        elapsed * 1e9 / completed as f64
    );
    println!(
        "completions: {:.0} completions/s",
        completed as f64 / elapsed
    );
}
