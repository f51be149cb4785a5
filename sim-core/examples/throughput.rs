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
//! Run: `cargo run --release -p sim-core --example throughput [N C K]`.
//! The last line is `throughput: <ops> simulated operations/s`.

use std::time::Instant;

use sim_core::{us, Machine, Simulation};

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers: N C K"))
        .collect();
    let (n, c, k) = match args.as_slice() {
        [n, c, k] => (*n, *c, *k),
        [] => (1000, 4, 1000),
        _ => panic!("usage: throughput [N C K]"),
    };
    let machine = Machine {
        cpus: c as u16,
        stack_size: 64 * 1024,
        ..Machine::default()
    };
    let mut sim = Simulation::new(machine).expect("a valid machine");
    for i in 0..n {
        sim.add_thread(&format!("t{i}"), move |ctx| {
            for _ in 0..k {
                ctx.compute(us(1));
                ctx.sleep(us(3));
            }
        });
    }
    // Wall-clock time is read only to report speed; the simulation never sees it.
    let start = Instant::now();
    let run = sim.run();
    let elapsed = start.elapsed().as_secs_f64();
    assert!(run.completed(), "{:?}", run.outcome);
    let ops = 2 * n * k;
    println!("threads: {n}, cpus: {c}, iterations: {k}");
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
