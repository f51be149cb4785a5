//! Throughput of the kernel: N threads on C CPUs, each looping K times over
//! `compute(1us)` then `sleep(3us)`, with tracing on as by default.
//!
//! Demonstrates: raw kernel speed (coroutine switches, the event queue, trace
//! recording). An operation is one completed compute or sleep call.
//!
//! ```text
//!   t0: [compute 1us][sleep 3us][compute 1us][sleep 3us] ... K times
//!   t1: ...                          (N threads share C CPUs, rr, 2us switches)
//! ```
//!
//! Run: `cargo run --release -p sim-core --example throughput [--stackless] [N C K]`.
//! The last line is `throughput: <ops> simulated operations/s`. With
//! `--stackless` the threads are stackless (`add_stackless_thread`).

use std::time::Instant;

use sim_core::{us, Machine, Simulation};

fn main() {
    let stackless = std::env::args().any(|a| a == "--stackless");
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter(|a| a != "--stackless")
        .map(|a| a.parse().expect("numbers: N C K"))
        .collect();
    let (n, c, k) = match args.as_slice() {
        [n, c, k] => (*n, *c, *k),
        [] => (1000, 4, 1000),
        _ => panic!("usage: throughput [--stackless] [N C K]"),
    };
    let machine = Machine {
        cpus: c as u16,
        stack_size: 64 * 1024,
        ..Machine::default()
    };
    let mut sim = Simulation::new(machine).expect("a valid machine");
    for i in 0..n {
        let name = format!("t{i}");
        if stackless {
            sim.add_stackless_thread(&name, move |ctx| async move {
                for _ in 0..k {
                    ctx.compute(us(1)).await;
                    ctx.sleep(us(3)).await;
                }
            });
        } else {
            sim.add_thread(&name, move |ctx| {
                for _ in 0..k {
                    ctx.compute(us(1));
                    ctx.sleep(us(3));
                }
            });
        }
    }
    // Wall-clock time is read only to report speed; the simulation never sees it.
    let start = Instant::now();
    let run = sim.run();
    let elapsed = start.elapsed().as_secs_f64();
    assert!(run.completed(), "{:?}", run.outcome);
    let ops = 2 * n * k;
    let kind = if stackless { "stackless" } else { "stackful" };
    println!("threads: {n} ({kind}), cpus: {c}, iterations: {k}");
    println!("simulated makespan: {}", run.trace.makespan());
    println!(
        "trace: {} state changes, {} decisions",
        run.trace.states.len(),
        run.decisions.len()
    );
    println!("wall time: {elapsed:.3}s for {ops} operations");
    println!(
        "throughput: {:.0} simulated operations/s",
        ops as f64 / elapsed
    );
}
