//! Errors end the run with a value naming the thread and time, and keep the
//! partial trace.

use sim_core::ThreadId;
use sim_core::{
    ms, secs, us, Machine, Misuse, ProcessId, SchedulerKind, SimError, Simulation, ThreadOptions,
    Time,
};

use crate::textbook;

#[test]
fn a_panicking_body_names_the_thread_and_time_and_keeps_the_trace() {
    let mut sim = Simulation::new(textbook(1, SchedulerKind::Fifo)).unwrap();
    sim.add_thread("calm", |ctx| ctx.compute(ms(1)));
    sim.add_thread("faulty", |ctx| {
        ctx.compute(ms(2));
        panic!("boom");
    });
    sim.add_thread("never", |ctx| ctx.compute(ms(1)));
    let run = sim.run();
    let Some(SimError::Panicked {
        thread,
        time,
        message,
    }) = run.error()
    else {
        panic!("expected a panic, got {:?}", run.outcome);
    };
    assert_eq!(thread, "faulty");
    assert_eq!(time.as_nanos(), ms(3).as_nanos());
    assert_eq!(message, "boom");
    assert_eq!(run.trace.end.as_nanos(), ms(3).as_nanos());
    assert!(run
        .error()
        .unwrap()
        .to_string()
        .contains("thread 'faulty' panicked at 3ms: boom"));
    // The partial trace holds what happened before.
    let stats = run.stats();
    assert_eq!(
        stats.thread("calm").unwrap().end.map(Time::as_nanos),
        Some(ms(1).as_nanos())
    );
    assert_eq!(stats.thread("never").unwrap().end, None);
}

#[test]
fn the_time_limit_stops_the_run_with_its_partial_trace() {
    let machine = Machine {
        max_time: Time(secs(1).as_nanos()),
        ..textbook(1, SchedulerKind::RoundRobin)
    };
    let mut sim = Simulation::new(machine).unwrap();
    sim.add_thread("long", |ctx| ctx.compute(secs(5)));
    let run = sim.run();
    assert!(
        matches!(run.error(), Some(SimError::TimeLimit { .. })),
        "{:?}",
        run.outcome
    );
    assert_eq!(run.trace.end.as_nanos(), secs(1).as_nanos());
    assert_eq!(run.stats().thread("long").unwrap().cpu, secs(1));
}

#[test]
fn a_body_that_never_blocks_hits_the_event_limit() {
    let machine = Machine {
        max_events: 10_000,
        ..textbook(1, SchedulerKind::RoundRobin)
    };
    let mut sim = Simulation::new(machine).unwrap();
    sim.add_thread("spinner", |ctx| loop {
        ctx.now();
    });
    let run = sim.run();
    let err = run.error().expect("an error");
    assert!(
        matches!(
            err,
            SimError::EventLimit {
                limit: 10_000,
                events: false,
                ..
            }
        ),
        "{err:?}"
    );
    // The message names the key and a value to set.
    assert_eq!(
        err.to_string(),
        format!(
            "the run reached max_events (10000 simulated operations) at 0s \
             (last operation: thread 'spinner' at {}:74:13); \
             raise it with machine(#{{ max_events: 20000 }})",
            file!()
        )
    );
    assert_eq!(run.operations, 10_000);
}

#[test]
fn a_task_that_awaits_forever_hits_the_event_limit() {
    let machine = Machine {
        max_events: 100,
        ..textbook(1, SchedulerKind::RoundRobin)
    };
    let mut sim = Simulation::new(machine).unwrap();
    let lp = sim.add_event_loop(ProcessId::MAIN, "loop", Default::default());
    sim.add_task(&lp, "ticker", |t| loop {
        t.await_sleep(us(1));
    });
    let run = sim.run();
    assert!(
        matches!(run.error(), Some(SimError::EventLimit { limit: 100, .. })),
        "{:?}",
        run.outcome
    );
}

#[test]
fn events_without_operations_hit_the_bound_on_events() {
    // Two computations of 1s preempted every 1us: two operations and a
    // million preemptions; the internal bound (64 × max_events) stops the
    // run and says which value to set.
    let machine = Machine {
        max_events: 10,
        quantum: us(1),
        ..textbook(1, SchedulerKind::RoundRobin)
    };
    let mut sim = Simulation::new(machine).unwrap();
    for name in ["a", "b"] {
        sim.add_thread(name, |ctx| ctx.compute(secs(1)));
    }
    let run = sim.run();
    let err = run.error().expect("an error");
    assert!(
        matches!(
            err,
            SimError::EventLimit {
                limit: 10,
                events: true,
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with("the run reached 640 internal events")
            && message.ends_with("raise it with machine(#{ max_events: 20 })"),
        "{message}"
    );
}

#[test]
fn max_events_counts_operations_not_events() {
    // 1,000 sleeps: 1,000 operations and as many wake events; a limit of
    // 1,000 lets the run end.
    let machine = Machine {
        max_events: 1_000,
        ..textbook(1, SchedulerKind::RoundRobin)
    };
    let mut sim = Simulation::new(machine).unwrap();
    sim.add_thread("sleeper", |ctx| {
        for _ in 0..1_000 {
            ctx.sleep(ms(1));
        }
    });
    let run = sim.run();
    assert!(run.completed(), "{:?}", run.outcome);
    assert_eq!(run.operations, 1_000);
}

#[test]
fn a_zero_time_yield_loop_hits_the_event_limit() {
    let machine = Machine {
        max_events: 10_000,
        ..textbook(2, SchedulerKind::RoundRobin)
    };
    let mut sim = Simulation::new(machine).unwrap();
    sim.add_thread("a", |ctx| loop {
        ctx.yield_now();
    });
    sim.add_thread("b", |ctx| loop {
        ctx.yield_now();
    });
    let run = sim.run();
    assert!(
        matches!(
            run.error(),
            Some(SimError::EventLimit { events: false, .. })
        ),
        "{:?}",
        run.outcome
    );
    assert_eq!(run.trace.end.as_nanos(), 0);
}

#[test]
fn touching_another_process_memory_names_both_processes_and_the_line() {
    let mut sim = Simulation::new(textbook(1, SchedulerKind::Fifo)).unwrap();
    let worker = sim.add_process("worker", Default::default());
    let secret = sim.variable(ProcessId::MAIN, "secret", 1);
    sim.add_thread_to(worker, "spy", ThreadOptions::default(), move |ctx| {
        ctx.compute(ms(1));
        ctx.load(secret)
    });
    let run = sim.run();
    let Some(SimError::Misuse {
        thread,
        time,
        origin,
        misuse,
    }) = run.error()
    else {
        panic!("expected a misuse, got {:?}", run.outcome);
    };
    assert_eq!(thread, "spy");
    assert_eq!(time.as_nanos(), ms(1).as_nanos());
    assert!(
        matches!(misuse, Misuse::ForeignMemory { owner, accessor, .. } if owner == "main" && accessor == "worker")
    );
    let origin = origin.as_ref().unwrap();
    assert!(origin.file.ends_with("errors.rs"), "{origin}");
    assert!(origin.line > 0);
}

#[test]
fn a_thread_joins_any_number_of_times_by_any_number_of_threads_but_not_itself() {
    // As CPython's Thread.join: every joiner waits for the end, and a join
    // of a thread that has ended returns at once. The first join takes the
    // value; a later one gets ().
    let mut sim = Simulation::new(textbook(2, SchedulerKind::Fifo)).unwrap();
    sim.add_thread("child", |ctx| {
        ctx.compute(ms(5));
        7u32
    });
    for name in ["first", "second"] {
        sim.add_thread(name, move |ctx| {
            let value = ctx.join_any(ThreadId(0)).downcast::<u32>().ok().map(|v| *v);
            let again = ctx.join_any(ThreadId(0)).downcast::<u32>().ok().map(|v| *v);
            ctx.print(format!("{name} {value:?} {again:?} at {}", ctx.now()));
        });
    }
    let run = sim.run();
    assert!(run.completed(), "{:?}", run.outcome);
    let lines: Vec<&str> = run.trace.logs.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        lines,
        ["first Some(7) None at 5ms", "second None None at 5ms"]
    );

    let mut sim = Simulation::new(textbook(1, SchedulerKind::Fifo)).unwrap();
    sim.add_thread("selfish", |ctx| {
        ctx.join_any(ThreadId(0));
    });
    let run = sim.run();
    assert!(matches!(
        run.error(),
        Some(SimError::Misuse {
            misuse: Misuse::JoinSelf,
            ..
        })
    ));
}

#[test]
fn an_invalid_machine_is_refused() {
    let err = Simulation::new(Machine {
        cpus: 0,
        ..Machine::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("cpus"));
}

#[test]
fn deep_recursion_on_a_small_unguarded_stack_fails_cleanly() {
    // With a stack this small the red-zone check (or the guard page) stops a
    // deep recursion that calls operations.
    fn dive(ctx: &sim_core::Ctx<'_>, depth: u32) -> u32 {
        let pad = [depth; 256];
        ctx.now();
        if depth == 0 {
            0
        } else {
            std::hint::black_box(pad)[0] + dive(ctx, depth - 1)
        }
    }
    let machine = Machine {
        stack_size: 64 * 1024,
        ..textbook(1, SchedulerKind::Fifo)
    };
    let mut sim = Simulation::new(machine).unwrap();
    sim.add_thread("shallow", |ctx| dive(ctx, 10));
    let run = sim.run();
    assert!(run.completed(), "{:?}", run.outcome);
}

#[test]
fn a_zero_time_livelock_names_the_threads_and_what_they_repeat() {
    // Two threads that only yield: the clock never moves, so the run stops
    // at max_steps_at_instant, naming both and the line of their yield.
    let machine = Machine {
        max_steps_at_instant: 5_000,
        ..textbook(1, SchedulerKind::RoundRobin)
    };
    let mut sim = Simulation::new(machine).unwrap();
    for name in ["a", "b"] {
        sim.add_thread(name, |ctx| loop {
            ctx.yield_now();
        });
    }
    let run = sim.run();
    let Some(SimError::Livelock {
        limit,
        time,
        repeating,
    }) = run.error()
    else {
        panic!("{:?}", run.outcome);
    };
    assert_eq!((*limit, time.as_nanos()), (5_000, 0));
    let names: Vec<&str> = repeating.iter().map(|s| s.thread.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    let origin = repeating[0].origin.as_ref().expect("a position");
    assert!(origin.file.ends_with("errors.rs"), "{origin}");
    // Its trace is kept, bounded by the limit.
    assert!(!run.trace.states.is_empty());
    assert!(run.operations <= 5_001);
}

#[test]
fn a_clock_that_moves_is_no_livelock() {
    // 20,000 zero-time steps, but spread over instants: no livelock.
    let machine = Machine {
        max_steps_at_instant: 100,
        ..textbook(1, SchedulerKind::RoundRobin)
    };
    let mut sim = Simulation::new(machine).unwrap();
    sim.add_thread("a", |ctx| {
        for _ in 0..20_000 {
            ctx.now();
            ctx.compute(sim_core::ns(1));
        }
    });
    let run = sim.run();
    assert!(run.completed(), "{:?}", run.outcome);
}

#[test]
fn a_start_past_max_threads_fails_at_its_call() {
    let machine = Machine {
        max_threads: 10,
        ..textbook(1, SchedulerKind::RoundRobin)
    };
    let mut sim = Simulation::new(machine).unwrap();
    sim.add_thread("root", |ctx| loop {
        ctx.start_thread("c", |ctx| ctx.sleep(secs(10)));
    });
    let run = sim.run();
    let Some(SimError::Misuse { misuse, origin, .. }) = run.error() else {
        panic!("{:?}", run.outcome);
    };
    assert_eq!(misuse, &Misuse::TooManyThreads { limit: 10 });
    assert!(origin.is_some());
    assert_eq!(run.trace.threads.len(), 10);
}
