//! An event loop with many tasks: `N` tasks each do `R` rounds of
//! `await_sleep(1ms)` then `await_io` on a network device, so every round
//! is two task steps (the loop resumes a task, it runs to its next await).
//!
//! Demonstrates: what a task step costs the simulator (the loop's ready
//! queue and timers, the task's coroutine switch, the epoll wait, the task
//! rows' states) and what a live task holds (its coroutine stack, its slot,
//! its row), at a scale no thread-per-connection model reaches.
//!
//! With `--stackless` the tasks are stackless (`add_stackless_task`): no
//! coroutine stack, only their futures.
//!
//! Run: `cargo run --release -p sim-core --example asyncio_steps [--stackless] [N R]`
//! (default 100000 10). The last lines are `steps: <n> task steps/s` and
//! `memory: <n> bytes of peak RSS per task`.

use std::time::Instant;

use sim_core::{ms, DeviceOptions, LoopOptions, Machine, ProcessId, Simulation};

fn main() {
    let stackless = std::env::args().any(|a| a == "--stackless");
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter(|a| a != "--stackless")
        .map(|a| a.parse().expect("numbers: N R"))
        .collect();
    let (n, rounds) = match args.as_slice() {
        [n, r] => (*n, *r),
        [] => (100_000, 10),
        _ => panic!("usage: asyncio_steps [--stackless] [N R]"),
    };
    let rss_before = peak_rss();
    let mut sim = Simulation::new(Machine {
        max_events: u64::MAX,
        ..Machine::default()
    })
    .expect("a valid machine");
    let net = sim.device(
        "network",
        DeviceOptions {
            latency: ms(5),
            channels: u16::MAX,
            ..DeviceOptions::default()
        },
    );
    let options = match std::env::var("TASK_SWITCH_NS") {
        Ok(ns) => LoopOptions {
            task_switch: sim_core::Span(ns.parse().expect("nanoseconds")),
            ..LoopOptions::default()
        },
        Err(_) => LoopOptions::default(),
    };
    let lp = sim.add_event_loop(ProcessId::MAIN, "loop", options);
    for i in 0..n {
        let name = format!("t{i}");
        if stackless {
            sim.add_stackless_task(&lp, &name, move |t| async move {
                for _ in 0..rounds {
                    t.await_sleep(ms(1)).await;
                    t.await_io(net, 100).await;
                }
            });
        } else {
            sim.add_task(&lp, &name, move |t| {
                for _ in 0..rounds {
                    t.await_sleep(ms(1));
                    t.await_io(net, 100);
                }
            });
        }
    }
    let start = Instant::now();
    let run = sim.run();
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(
        run.outcome,
        sim_core::Outcome::Completed,
        "{:?}",
        run.outcome
    );
    let steps = run.trace.loops[0].stats.steps;
    let kind = if stackless { "stackless" } else { "stackful" };
    println!(
        "{n} {kind} tasks x {rounds} rounds: {steps} task steps, {} iterations, simulated {} in {wall:.3}s",
        run.trace.loops[0].stats.iterations,
        run.trace.end
    );
    println!("steps: {:.0} task steps/s", steps as f64 / wall);
    let rss = peak_rss().saturating_sub(rss_before);
    println!("memory: {} bytes of peak RSS per task", rss / n.max(1));
}

/// The process's peak resident set, in bytes (`VmHWM`), or 0 off Linux.
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
