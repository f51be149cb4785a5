//! Cost of one lock cycle as the number of threads grows: N threads on 4
//! CPUs, each looping K times over lock a shared mutex, load and store a
//! shared variable, `compute(1us)`, unlock, `sleep(1us)`.
//!
//! Demonstrates: what the bookkeeping of every run (race detection on the
//! shared variable, the deadlock check on every blocking lock, trace
//! recording) costs per operation. The detector has real work: every
//! cycle's load and store must be found ordered by the lock.
//!
//! ```text
//!   t0: [lock m][load x, store x+1][compute 1us][unlock m][sleep 1us] ... K times
//!   t1: ...                           (N threads share m and x on 4 CPUs)
//! ```
//!
//! Run: `cargo run --release -p sim-core --example mutex_cycles [--stackless] [N K]`.
//! The last line is `cost per cycle: <ns> ns`; a cycle is one lock,
//! load, store, compute, unlock and sleep of one thread.

use std::time::Instant;

use sim_core::{us, Machine, MutexOptions, ProcessId, Simulation};

fn main() {
    let stackless = std::env::args().any(|a| a == "--stackless");
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter(|a| a != "--stackless")
        .map(|a| a.parse().expect("numbers: N K"))
        .collect();
    let (n, k) = match args.as_slice() {
        [n, k] => (*n, *k),
        [] => (1000, 200),
        _ => panic!("usage: mutex_cycles [--stackless] [N K]"),
    };
    let machine = Machine {
        cpus: 4,
        stack_size: 64 * 1024,
        ..Machine::default()
    };
    let mut sim = Simulation::new(machine).expect("a valid machine");
    let m = sim.mutex("m", MutexOptions::default());
    let x = sim.variable(ProcessId::MAIN, "x", 0);
    for i in 0..n {
        let name = format!("t{i}");
        if stackless {
            sim.add_stackless_thread(&name, move |ctx| async move {
                for _ in 0..k {
                    ctx.lock(m).await;
                    let v = ctx.load(x).await;
                    ctx.store(x, v + 1).await;
                    ctx.compute(us(1)).await;
                    ctx.unlock(m).await;
                    ctx.sleep(us(1)).await;
                }
            });
        } else {
            sim.add_thread(&name, move |ctx| {
                for _ in 0..k {
                    ctx.lock(m);
                    let v = ctx.load(x);
                    ctx.store(x, v + 1);
                    ctx.compute(us(1));
                    ctx.unlock(m);
                    ctx.sleep(us(1));
                }
            });
        }
    }
    // Wall-clock time is read only to report speed; the simulation never sees it.
    let start = Instant::now();
    let run = sim.run();
    let elapsed = start.elapsed().as_secs_f64();
    assert!(run.completed(), "{:?}", run.outcome);
    assert!(run.trace.races.is_empty(), "the lock orders every access");
    let cycles = n * k;
    assert_eq!(run.trace.variables[0].value, cycles as i64);
    let kind = if stackless { "stackless" } else { "stackful" };
    println!("threads: {n} ({kind}), cycles per thread: {k}, cpus: 4");
    println!("simulated makespan: {}", run.trace.makespan());
    println!(
        "trace: {} state changes, {} sync events",
        run.trace.states.len(),
        run.trace.sync.len()
    );
    println!("wall time: {elapsed:.3}s for {cycles} cycles");
    println!("cost per cycle: {:.0} ns", elapsed * 1e9 / cycles as f64);
}
