//! The README's "Rust API at a glance", compiled: the lines between the
//! markers are the README's block, indented (its `use` line is the first
//! line below); `tests/e2e/readme.rs` checks that they match. `rustfmt`
//! leaves `main` alone, which keeps the README's compact lines.
//!
//! Run: `/usr/bin/time -v cargo run --release -p sim-core --example api_at_a_glance`
//! (the last part starts 1,000,000 stackless threads).
#![allow(unused_variables)]

#[rustfmt::skip]
use sim_core::{ms, us, LoopOptions, Machine, MutexOptions, ProcessId, SchedulerKind, Simulation, ThreadOptions};

#[rustfmt::skip]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    // README begin
    let mut sim = Simulation::new(Machine { cpus: 2, scheduler: SchedulerKind::Fair, ..Machine::default() })?;
    let worker = sim.add_thread("worker", |ctx| {
        ctx.compute(ms(5));          // needs 5ms of CPU; may be preempted
        ctx.sleep(us(250));          // blocks for 250us
        ctx.yield_now();             // back of the ready queue
        let child = ctx.start_thread("child", |ctx| ctx.now());  // parent pays thread_spawn
        ctx.join(child)              // blocks; returns the child's value
    });
    sim.add_thread_with("urgent", ThreadOptions { priority: 5, nice: -5 }, |ctx| ctx.compute(ms(1)));
    let run = sim.run();             // trace + outcome (completed, stalled, failed) + decisions
    println!("{}", run.stats());     // makespan, per-thread cpu/ready/blocked/switches/end, per-CPU use
    let ron = run.trace.to_ron()?;   // the trace, serialized; Trace::from_ron reads it back
    for change in &run.trace.states { /* change.time(), .thread(), .state(), .cpu(), .origin() */ }  // 4-6 bytes each in memory

    // Synchronization: declare, then use from bodies.
    let mut sim = Simulation::new(Machine::textbook())?;
    let m = sim.mutex("m", MutexOptions { fair: true, inherit: false });
    let ch = sim.channel::<u32>("pipe", 4);
    sim.add_thread("a", move |ctx| { ctx.lock(m); ctx.send(ch, 7); ctx.unlock(m); });
    sim.add_thread("b", move |ctx| ctx.recv(ch));
    let run = sim.run();             // Outcome::Deadlocked / Stalled when threads are stuck; run.trace.deadlock has the cycle

    // asyncio: a loop thread and its tasks; a Task derefs to Ctx (plain calls block the loop).
    let mut sim = Simulation::new(Machine::textbook())?;
    let lp = sim.add_event_loop(ProcessId::MAIN, "loop", LoopOptions::default());
    let fetch = sim.add_task(&lp, "fetch", |t| { t.await_sleep(ms(5)); 42 });
    sim.add_task(&lp, "main", move |t| t.await_task(fetch));   // 42: a TaskHandle<T> gives T back
    sim.add_stackless_task(&lp, "conn", |t| async move { t.await_sleep(ms(5)).await; 1 });  // no stack: 2.5 KiB a task, not 6.5

    // A million threads: a stackless thread's body is an async block awaiting its AsyncCtx;
    // it keeps no stack (0.6 KiB per thread in all, against 4.6 KiB on a coroutine stack).
    let mut sim = Simulation::new(Machine::textbook())?;
    let m = sim.mutex("m", MutexOptions::default());
    let served = sim.variable(ProcessId::MAIN, "served", 0);
    for i in 0..1_000_000 {
        sim.add_stackless_thread(&format!("conn{i}"), move |ctx| async move {
            ctx.compute(us(5)).await;          // parse the request
            ctx.lock(m).await;                 // the operations of Ctx (but starting processes),
            ctx.fetch_add(served, 1).await;    // each awaited; the same kernel, trace, race
            ctx.unlock(m).await;               // and deadlock checks
            ctx.sleep(ms(50)).await;           // the client thinks
        });
    }
    let run = sim.run();             // a million connections in about 0.7 GB
    // README end
    assert!(run.completed(), "{:?}", run.outcome);
    assert_eq!(run.trace.variables[0].value, 1_000_000);
    println!("{} threads served", run.trace.variables[0].value);
    Ok(())
}
