//! Thread lifecycle: start, join, values, processes, memory.

use sim_core::ThreadId;
use sim_core::{ms, us, Machine, Outcome, SchedulerKind, Simulation, ThreadState};

use crate::{end_ns, textbook};

#[test]
fn start_thread_costs_the_parent_and_join_returns_the_value() {
    // Default costs, 1 CPU: main pays 30us to start the child, then joins
    // (blocks at 30us); switch 30-32us; child 32us-1.032ms; switch 2us; main
    // returns at 1.034ms.
    let mut sim = Simulation::new(Machine::default()).unwrap();
    let main = sim.add_thread("main", |ctx| {
        let child = ctx.start_thread("child", |ctx| {
            ctx.compute(ms(1));
            7u32
        });
        ctx.join(child) * 6
    });
    let mut run = sim.run();
    assert!(run.completed(), "{:?}", run.outcome);
    let stats = run.stats();
    assert_eq!(end_ns(&stats, "child"), us(1032).as_nanos());
    assert_eq!(end_ns(&stats, "main"), us(1034).as_nanos());
    assert_eq!(stats.thread("main").unwrap().cpu, us(30));
    assert_eq!(run.trace.threads[1].parent, Some(ThreadId(0)));
    assert_eq!(run.trace.threads[1].created.as_nanos(), us(30).as_nanos());
    assert_eq!(run.take_value(&main), Some(42));
}

#[test]
fn joining_a_finished_thread_returns_at_once() {
    let mut sim = Simulation::new(textbook(2, SchedulerKind::RoundRobin)).unwrap();
    let quick = sim.add_thread("quick", |_| "done");
    sim.add_thread("late", move |ctx| {
        ctx.sleep(ms(1));
        let t = ctx.now();
        let value = ctx.join(quick);
        assert_eq!(ctx.now(), t);
        value
    });
    let run = sim.run();
    assert!(run.completed());
    assert_eq!(end_ns(&run.stats(), "late"), ms(1).as_nanos());
}

#[test]
fn now_reports_simulated_time() {
    let mut sim = Simulation::new(textbook(1, SchedulerKind::Fifo)).unwrap();
    let h = sim.add_thread("t", |ctx| {
        let a = ctx.now();
        ctx.compute(ms(3));
        ctx.sleep(us(500));
        (a, ctx.now())
    });
    let mut run = sim.run();
    let (a, b) = run.take_value(&h).unwrap();
    assert_eq!((a.as_nanos(), b.as_nanos()), (0, us(3500).as_nanos()));
}

#[test]
fn print_is_stamped_with_time_and_thread() {
    let mut sim = Simulation::new(textbook(1, SchedulerKind::Fifo)).unwrap();
    sim.add_thread("talker", |ctx| {
        ctx.compute(ms(2));
        ctx.print("hello");
    });
    let run = sim.run();
    assert_eq!(run.trace.logs.len(), 1);
    assert_eq!(run.trace.logs[0].time.as_nanos(), ms(2).as_nanos());
    assert_eq!(run.trace.logs[0].text, "hello");
    assert_eq!(run.trace.logs[0].thread, ThreadId(0));
}

#[test]
fn threads_that_wait_on_each_other_stall() {
    let mut sim = Simulation::new(textbook(1, SchedulerKind::Fifo)).unwrap();
    sim.add_thread("a", |ctx| {
        ctx.join_any(ThreadId(1));
    });
    sim.add_thread("b", |ctx| {
        ctx.join_any(ThreadId(0));
    });
    let run = sim.run();
    let Outcome::Stalled(waiting) = &run.outcome else {
        panic!("expected a stall, got {:?}", run.outcome);
    };
    assert_eq!(waiting.len(), 2);
    assert!(waiting
        .iter()
        .all(|w| matches!(w.state, ThreadState::Blocked(_))));
}

#[test]
fn variables_belong_to_their_process() {
    let mut sim = Simulation::new(textbook(1, SchedulerKind::Fifo)).unwrap();
    let counter = sim.variable(sim_core::ProcessId::MAIN, "counter", 5);
    sim.add_thread("inc", move |ctx| {
        let v = ctx.load(counter);
        ctx.store(counter, v + 1);
    });
    let run = sim.run();
    assert!(run.completed());
    assert_eq!(run.trace.variables[0].value, 6);
}

#[test]
fn a_hundred_thousand_threads_can_be_alive_at_once() {
    // Each thread starts (gets a stack) and sleeps before any finishes.
    let n = 100_000;
    let machine = Machine {
        cpus: 4,
        stack_size: 64 * 1024,
        ..Machine::textbook()
    };
    let mut sim = Simulation::new(machine).unwrap();
    for i in 0..n {
        sim.add_thread(&format!("t{i}"), |ctx| {
            ctx.sleep(ms(10));
            ctx.compute(us(1));
        });
    }
    let run = sim.run();
    assert!(run.completed(), "{:?}", run.outcome);
    let first_done = run
        .trace
        .states
        .iter()
        .find(|s| s.state() == ThreadState::Done)
        .unwrap()
        .time();
    let last_start = run
        .trace
        .states
        .iter()
        .filter(|s| s.state() == ThreadState::Running)
        .map(|s| s.time())
        .last();
    assert!(first_done.as_nanos() >= ms(10).as_nanos());
    assert!(last_start.is_some());
}

/// A spinner waiting for a flag that a thread on another CPU sets.
fn spin_on_flag(cpus: u16) -> (sim_core::Run, sim_core::JoinHandle<u64>) {
    let mut machine = textbook(cpus, SchedulerKind::RoundRobin);
    machine.max_events = 100_000;
    let mut sim = Simulation::new(machine).unwrap();
    let flag = sim.variable(sim_core::ProcessId::MAIN, "flag", 0);
    let spinner = sim.add_thread("spinner", move |ctx| {
        let mut spins = 0u64;
        while ctx.load(flag) == 0 {
            spins += 1;
        }
        spins
    });
    sim.add_thread("setter", move |ctx| ctx.store(flag, 1));
    (sim.run(), spinner)
}

#[test]
fn threads_on_two_cpus_interleave_their_steps_within_one_instant() {
    // Issue 19, bug 2: the spinner's zero-time loads on CPU 0 ran forever
    // and the setter on CPU 1 never took its step.
    let (mut run, spinner) = spin_on_flag(2);
    assert!(run.completed(), "{:?}", run.outcome);
    assert_eq!(run.trace.end.as_nanos(), 0);
    // Round-robin by CPU: the spinner loads once, the setter stores, the
    // spinner's next load sees the flag.
    assert_eq!(run.take_value(&spinner), Some(1));
}

#[test]
fn on_one_cpu_a_spin_on_a_flag_is_a_livelock() {
    let (run, _) = spin_on_flag(1);
    assert!(
        matches!(run.error(), Some(sim_core::SimError::EventLimit { .. })),
        "{:?}",
        run.outcome
    );
}
