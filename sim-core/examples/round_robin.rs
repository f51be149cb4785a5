//! Round robin on two cores: four threads of 100ms compute, a 10ms quantum and
//! Linux-like 2us context switches, plus one thread that sleeps and wakes.
//!
//! Demonstrates: the Rust API (machine, threads, compute, sleep, start and
//! join), the report derived from the trace, and writing the trace as RON.
//!
//! ```text
//!   cpu0: [a][c][a][c] ...      each [x] is one 10ms quantum,
//!   cpu1: [b][d][b][d] ...      with a 2us switch between threads
//! ```
//!
//! Run: `cargo run --release -p sim-core --example round_robin [trace.ron]`

use sim_core::{ms, Machine, SchedulerKind, Simulation};

fn main() {
    let machine = Machine {
        cpus: 2,
        scheduler: SchedulerKind::RoundRobin,
        quantum: ms(10),
        ..Machine::default()
    };
    let mut sim = Simulation::new(machine).expect("a valid machine");
    for name in ["a", "b", "c", "d"] {
        sim.add_thread(name, |ctx| ctx.compute(ms(100)));
    }
    sim.add_thread("sleeper", |ctx| {
        ctx.sleep(ms(50));
        let helper = ctx.start_thread("helper", |ctx| {
            ctx.compute(ms(5));
            ctx.now()
        });
        let finished_at = ctx.join(helper);
        ctx.print(format!("helper finished at {finished_at}"));
    });
    let run = sim.run();
    println!("outcome: {:?}", run.outcome);
    print!("{}", run.stats());
    for line in &run.trace.logs {
        println!(
            "[{} {}] {}",
            line.time,
            run.trace.threads[line.thread.index()].name,
            line.text
        );
    }
    if let Some(path) = std::env::args().nth(1) {
        std::fs::write(&path, run.trace.to_ron().expect("a trace serializes"))
            .expect("the trace file is writable");
        println!("trace written to {path}");
    }
}
