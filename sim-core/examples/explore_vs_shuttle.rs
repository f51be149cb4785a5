//! Exploration speed against shuttle, measured in the same run on the same
//! program: two threads each increment a shared counter with a separate load
//! and store, and are joined. shuttle runs it under its random scheduler;
//! sim-core under the random strategy with one job.
//!
//! Run: `cargo run --release -p sim-core --example explore_vs_shuttle [RUNS]`

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Instant;

use sim_core::explore::{explore, ExploreOptions, Scenario, Strategy, Verdict};
use sim_core::kernel::Chooser;
use sim_core::{Machine, ProcessId, Simulation};

struct Counter;

impl Scenario for Counter {
    fn run(&mut self, chooser: Box<dyn Chooser>, _seed: u64) -> Verdict {
        let mut s = Simulation::new(Machine::textbook()).expect("a valid machine");
        s.set_chooser(chooser);
        let x = s.variable(ProcessId::MAIN, "x", 0);
        s.add_thread("main", move |ctx| {
            let workers: Vec<_> = ["a", "b"]
                .into_iter()
                .map(|name| {
                    ctx.start_thread(name, move |ctx| {
                        let v = ctx.load(x);
                        ctx.store(x, v + 1);
                    })
                })
                .collect();
            for worker in workers {
                ctx.join(worker);
            }
        });
        let run = s.run();
        let value = run.trace.variables[0].value;
        Verdict {
            failure: None,
            decisions: run.decisions,
            outcome: value.to_string(),
        }
    }
}

fn shuttle_counter() {
    let x = Arc::new(shuttle::sync::atomic::AtomicU64::new(0));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let x = x.clone();
            shuttle::thread::spawn(move || {
                let v = x.load(SeqCst);
                x.store(v + 1, SeqCst);
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a worker");
    }
}

fn main() {
    let runs: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("RUNS"))
        .unwrap_or(50_000);
    // Wall-clock time is read only to report speed.
    let start = Instant::now();
    shuttle::check_random(shuttle_counter, runs as usize);
    let shuttle_rate = runs as f64 / start.elapsed().as_secs_f64();

    let options = ExploreOptions {
        runs,
        strategy: Strategy::Random,
        jobs: 1,
        seed: 0,
        keep_going: true,
    };
    let start = Instant::now();
    let report = explore(&options, || Counter, |_| {});
    let ours = report.runs as f64 / start.elapsed().as_secs_f64();
    println!("outcomes (final x: runs): {:?}", report.outcomes);
    println!("shuttle check_random: {shuttle_rate:.0} schedules/s");
    println!("sim-core explore:     {ours:.0} schedules/s (1 job)");
    println!("ratio: {:.2}x shuttle", ours / shuttle_rate);
}
