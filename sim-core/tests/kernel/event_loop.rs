//! asyncio event loops: hand-computed loop timelines (iteration order, FIFO,
//! timer ties, a task woken by a finished task running one iteration later,
//! task switch costs), a blocking call stalling the loop by exactly its
//! duration, gather's order and failure, the await cycle, the executor, and
//! a property test: at most one task of a loop runs at a time.

use std::rc::Rc;

use proptest::prelude::*;
use sim_core::{
    ms, us, BodyError, LoopOptions, Outcome, ProcessId, SchedulerKind, Simulation, Span, Stats,
    TaskHandle, TaskId, ThreadState, Time,
};

use crate::{end_ns, textbook};

const US: u64 = 1_000;
const MS: u64 = 1_000_000;

fn sim(cpus: u16) -> Simulation {
    Simulation::new(textbook(cpus, SchedulerKind::RoundRobin)).unwrap()
}

/// Task switches of 10us: easy to add up by hand.
fn options() -> LoopOptions {
    LoopOptions {
        task_switch: us(10),
        ..LoopOptions::default()
    }
}

#[test]
fn tasks_take_turns_at_awaits_and_each_switch_costs_the_loop_cpu() {
    let mut s = sim(1);
    let lp = s.add_event_loop(ProcessId::MAIN, "loop", options());
    s.add_task(&lp, "a", |t| {
        t.compute(ms(1));
        t.await_sleep(ms(2));
        t.compute(ms(1));
    });
    s.add_task(&lp, "b", |t| {
        t.compute(ms(1));
        t.await_sleep(ms(1));
        t.compute(ms(1));
    });
    let run = s.run();
    assert_eq!(run.outcome, Outcome::Completed);
    let stats = Stats::from_trace(&run.trace);
    // a: switch to 10us, compute to 1.01ms, sleeps until 3.01ms.
    // b: switch to 1.02ms, compute to 2.02ms, sleeps until 3.02ms.
    // 3.01ms: a is due; switch to 3.02ms, compute to 4.02ms, done.
    // 4.02ms: b is due since 3.02ms; switch to 4.03ms, compute to 5.03ms.
    assert_eq!(end_ns(&stats, "a"), 4 * MS + 20 * US);
    assert_eq!(end_ns(&stats, "b"), 5 * MS + 30 * US);
    assert_eq!(end_ns(&stats, "loop"), 5 * MS + 30 * US);
    let info = &run.trace.loops[0];
    assert_eq!(info.stats.iterations, 3);
    assert_eq!(info.stats.steps, 4);
    assert_eq!(info.stats.switches, 4);
    assert_eq!(info.stats.switching, us(40));
    // b waited 1.01ms for its first step, behind a's.
    assert_eq!(info.stats.longest_ready_wait, ms(1) + us(10));
    // The loop thread computed 4ms and switched 40us; it waited in epoll
    // from 2.02ms to 3.01ms.
    let lt = stats.thread("loop").unwrap();
    assert_eq!(lt.cpu, ms(4) + us(40));
    assert_eq!(lt.blocked_on(sim_core::BlockKind::Epoll), us(990));
    // Each task's row: running for its computes, switching for its switches.
    let a = stats.thread("a").unwrap();
    assert_eq!(a.cpu, ms(2));
    assert_eq!(a.switching, us(20));
    assert_eq!(a.blocked_on(sim_core::BlockKind::Sleep), ms(2));
}

#[test]
fn equal_deadlines_run_in_the_order_the_timers_were_set() {
    let mut s = sim(1);
    let lp = s.add_event_loop(ProcessId::MAIN, "loop", options());
    let order = Rc::new(std::cell::RefCell::new(Vec::new()));
    for (name, first) in [("a", 2), ("b", 1), ("c", 0)] {
        let order = order.clone();
        s.add_task(&lp, name, move |t| {
            // c sets its 5ms timer first, then b, then a.
            t.await_sleep(ms(first));
            let now = t.now();
            t.await_sleep(Span(ms(5).as_nanos() - now.as_nanos() + 10 * MS));
            order.borrow_mut().push(name);
        });
    }
    let run = s.run();
    assert_eq!(run.outcome, Outcome::Completed);
    assert_eq!(*order.borrow(), vec!["c", "b", "a"]);
}

#[test]
fn a_task_woken_by_a_finished_task_runs_one_iteration_later() {
    let mut s = sim(1);
    let lp = s.add_event_loop(
        ProcessId::MAIN,
        "loop",
        LoopOptions {
            task_switch: Span::ZERO,
            ..LoopOptions::default()
        },
    );
    let log = Rc::new(std::cell::RefCell::new(Vec::new()));
    let l = log.clone();
    s.add_task(&lp, "main", move |t| {
        let child = t.start_task("child", |_| 7);
        let l2 = l.clone();
        let other = t.start_task("other", move |t| {
            l2.borrow_mut().push("other 1");
            t.await_yield();
            l2.borrow_mut().push("other 2");
            t.await_yield();
            l2.borrow_mut().push("other 3");
        });
        let value = t.await_task(child);
        l.borrow_mut().push("main woken");
        t.await_task(other);
        value
    });
    let run = s.run();
    assert_eq!(run.outcome, Outcome::Completed);
    // 1: main starts child and other (call_soon: they run in the next
    // iteration) and awaits child. 2: child ends, which wakes main for the
    // next iteration; other logs and yields, behind main. 3: main, then
    // other. 4: other ends, which wakes main. 5: main ends.
    assert_eq!(
        *log.borrow(),
        vec!["other 1", "main woken", "other 2", "other 3"]
    );
    assert_eq!(run.trace.loops[0].stats.iterations, 5);
}

#[test]
fn a_blocking_call_in_a_task_freezes_every_task_for_exactly_its_duration() {
    let mut s = sim(1);
    let lp = s.add_event_loop(ProcessId::MAIN, "loop", options());
    s.add_task(&lp, "blocker", |t| {
        t.await_sleep(ms(1));
        t.sleep(ms(150)); // time.sleep in a coroutine
    });
    s.add_task(&lp, "ticker", |t| {
        for _ in 0..5 {
            t.await_sleep(ms(1));
        }
    });
    let run = s.run();
    assert_eq!(run.outcome, Outcome::Completed);
    let stats = Stats::from_trace(&run.trace);
    // The ticker's second tick was due at 2.02ms; the loop was asleep in
    // the blocker's call from 1.02ms to 151.02ms.
    let info = &run.trace.loops[0];
    assert_eq!(info.slow.len(), 1);
    let slow = &info.slow[0];
    assert_eq!(run.trace.threads[slow.task.index()].name, "blocker");
    assert_eq!(slow.held, ms(150));
    let origin = run.trace.origin(slow.origin.unwrap()).unwrap();
    assert!(origin.file.ends_with("event_loop.rs"), "{origin:?}");
    assert_eq!(
        stats
            .thread("loop")
            .unwrap()
            .blocked_on(sim_core::BlockKind::Sleep),
        ms(150)
    );
    assert!(info.stats.longest_ready_wait >= ms(149));
    assert!(end_ns(&stats, "ticker") > 151 * MS);
}

#[test]
fn gather_returns_values_in_argument_order_and_raises_the_first_failure() {
    let mut s = sim(1);
    let lp = s.add_event_loop(ProcessId::MAIN, "loop", options());
    let got = Rc::new(std::cell::RefCell::new(None));
    let g = got.clone();
    s.add_task(&lp, "main", move |t| {
        let slow = t.start_task("slow", |t| {
            t.await_sleep(ms(3));
            1
        });
        let fast = t.start_task("fast", |t| {
            t.await_sleep(ms(1));
            2
        });
        let values = t.gather_any(&[slow.id(), fast.id()]).unwrap();
        let values: Vec<i32> = values
            .iter()
            .map(|v| *v.downcast_ref::<i32>().unwrap())
            .collect();
        *g.borrow_mut() = Some(values);
    });
    let run = s.run();
    assert_eq!(run.outcome, Outcome::Completed);
    assert_eq!(*got.borrow(), Some(vec![1, 2]));

    let mut s = sim(1);
    let lp = s.add_event_loop(ProcessId::MAIN, "loop", options());
    let got = Rc::new(std::cell::RefCell::new(None));
    let g = got.clone();
    s.add_fallible_task(&lp, "main", move |t| {
        let late = t.start_fallible(
            "late",
            Box::new(|t| {
                t.await_sleep(ms(5));
                Err(BodyError {
                    message: "late failure".into(),
                    position: None,
                })
            }),
        );
        let early = t.start_fallible(
            "early",
            Box::new(|t| {
                t.await_sleep(ms(1));
                Err(BodyError {
                    message: "early failure".into(),
                    position: Some((7, 3)),
                })
            }),
        );
        let long = t.start_task("long", |t| t.await_sleep(ms(10)));
        let result = t.gather_any(&[late, early, long.id()]);
        *g.borrow_mut() = Some((t.now(), result.map(|_| ()).unwrap_err()));
        // The gathered tasks go on; retrieving their failure was enough.
        t.await_task(long);
        Ok(Rc::new(()) as Rc<dyn std::any::Any>)
    });
    let run = s.run();
    assert_eq!(run.outcome, Outcome::Completed, "{:?}", run.outcome);
    let (when, failure) = got.borrow_mut().take().unwrap();
    assert_eq!(failure.task, "early");
    assert_eq!(failure.error.position, Some((7, 3)));
    // Raised when early failed (at 1ms plus switches), not at the end.
    assert!(when.as_nanos() < 2 * MS, "{when}");
}

#[test]
fn a_failure_nobody_awaits_fails_the_run_with_the_task_and_line() {
    let mut s = sim(1);
    let lp = s.add_event_loop(ProcessId::MAIN, "loop", options());
    s.add_fallible_task(&lp, "doomed", |t| {
        t.await_sleep(ms(1));
        Err(BodyError {
            message: "boom".into(),
            position: Some((4, 9)),
        })
    });
    let run = s.run();
    let Outcome::Failed(error) = run.outcome else {
        panic!("{:?}", run.outcome)
    };
    let text = error.to_string();
    assert!(text.contains("task 'doomed' failed: boom"), "{text}");
}

#[test]
fn tasks_awaiting_each_other_are_a_deadlock_with_both_tasks() {
    let mut s = sim(1);
    let lp = s.add_event_loop(ProcessId::MAIN, "loop", options());
    // Task ids are creation order: a is 0, b is 1.
    s.add_task(&lp, "a", |t| {
        let b = TaskHandle::<()>::from_id(TaskId(1));
        t.await_task(b);
    });
    s.add_task(&lp, "b", |t| {
        let a = TaskHandle::<()>::from_id(TaskId(0));
        t.await_task(a);
    });
    let run = s.run();
    assert!(
        matches!(run.outcome, Outcome::Deadlocked(_)),
        "{:?}",
        run.outcome
    );
    let cycle = &run.trace.deadlock.as_ref().unwrap().cycle;
    let names: Vec<&str> = cycle
        .iter()
        .map(|step| run.trace.threads[step.thread.index()].name.as_str())
        .collect();
    assert_eq!(names, vec!["b", "a"]);
    assert!(cycle.iter().all(|step| step.origin.is_some()));
}

#[test]
fn a_task_that_nothing_will_wake_stalls_the_run() {
    let mut s = sim(1);
    let ch = s.channel::<i64>("inbox", 4);
    let lp = s.add_event_loop(ProcessId::MAIN, "loop", options());
    s.add_task(&lp, "waiter", move |t| t.await_recv(ch));
    let run = s.run();
    let Outcome::Stalled(waiting) = run.outcome else {
        panic!("{:?}", run.outcome)
    };
    let names: Vec<&str> = waiting
        .iter()
        .map(|w| run.trace.threads[w.thread.index()].name.as_str())
        .collect();
    assert_eq!(names, vec!["loop", "waiter"]);
}

#[test]
fn a_channel_wakes_an_awaiting_task_when_a_thread_sends() {
    let mut s = sim(1);
    let ch = s.channel::<i64>("inbox", 4);
    let lp = s.add_event_loop(ProcessId::MAIN, "loop", options());
    let got = Rc::new(std::cell::Cell::new(0));
    let g = got.clone();
    s.add_task(&lp, "waiter", move |t| g.set(t.await_recv(ch)));
    s.add_thread("sender", move |ctx| {
        ctx.sleep(ms(5));
        ctx.send(ch, 42);
    });
    let run = s.run();
    assert_eq!(run.outcome, Outcome::Completed);
    assert_eq!(got.get(), 42);
    let stats = Stats::from_trace(&run.trace);
    assert_eq!(
        stats
            .thread("waiter")
            .unwrap()
            .blocked_on(sim_core::BlockKind::Channel),
        // The sender ran once the loop waited (10us) and slept 5ms.
        ms(5)
    );
}

#[test]
fn run_in_executor_moves_blocking_work_off_the_loop() {
    let mut s = sim(2);
    let lp = s.add_event_loop(ProcessId::MAIN, "loop", options());
    s.add_task(&lp, "offload", |t| {
        let job = t.run_in_executor(|ctx| {
            ctx.sleep(ms(100));
            5
        });
        t.await_task(job)
    });
    s.add_task(&lp, "ticker", |t| {
        for _ in 0..10 {
            t.await_sleep(ms(1));
        }
    });
    let run = s.run();
    assert_eq!(run.outcome, Outcome::Completed, "{:?}", run.outcome);
    let stats = Stats::from_trace(&run.trace);
    // The ticker is not held up by the 100ms sleep.
    assert!(
        end_ns(&stats, "ticker") < 11 * MS,
        "{}",
        end_ns(&stats, "ticker")
    );
    assert!(end_ns(&stats, "offload") >= 100 * MS);
    assert!(run.trace.loops[0].slow.is_empty());
    assert!(stats.thread("loop-executor-0").is_some());
}

#[test]
fn io_completions_of_one_instant_wake_their_tasks_in_one_iteration() {
    let mut s = sim(1);
    let net = s.device(
        "net",
        sim_core::DeviceOptions {
            latency: ms(10),
            channels: 64,
            ..sim_core::DeviceOptions::default()
        },
    );
    let lp = s.add_event_loop(ProcessId::MAIN, "loop", options());
    for name in ["a", "b", "c"] {
        s.add_task(&lp, name, move |t| t.await_io(net, 0));
    }
    let run = s.run();
    assert_eq!(run.outcome, Outcome::Completed);
    let stats = Stats::from_trace(&run.trace);
    // Submitted at 10, 20 and 30us (after each switch), done 10ms later:
    // the loop waits in epoll from 30us and wakes at 10.01ms for a, whose
    // step ends at 10.02ms, when b's completion is there; c's at 10.03ms.
    assert_eq!(end_ns(&stats, "a"), 10 * MS + 20 * US);
    assert_eq!(end_ns(&stats, "b"), 10 * MS + 30 * US);
    assert_eq!(end_ns(&stats, "c"), 10 * MS + 40 * US);
    let loop_stats = stats.thread("loop").unwrap();
    assert_eq!(
        loop_stats.blocked_on(sim_core::BlockKind::Epoll),
        ms(10) - us(20)
    );
    assert_eq!(
        stats
            .thread("b")
            .unwrap()
            .blocked_on(sim_core::BlockKind::Io),
        ms(10)
    );
}

#[test]
fn a_hundred_thousand_sleeping_tasks_share_one_thread() {
    let mut s = sim(1);
    let lp = s.add_event_loop(ProcessId::MAIN, "loop", LoopOptions::default());
    for i in 0..100_000u32 {
        s.add_task(&lp, &format!("t{i}"), |t| t.await_sleep(ms(100)));
    }
    let run = s.run();
    assert_eq!(run.outcome, Outcome::Completed);
    // Every task starts within 100,000 switches (150ms) and sleeps 100ms.
    assert!(run.trace.end.as_nanos() < 400 * MS);
    assert_eq!(run.trace.loops[0].stats.tasks, 100_000);
    // Each task holds its task_memory while it lives.
    assert!(run.trace.peak_memory >= 100_000 * 1_413);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever the tasks do, at most one task of a loop runs at a time,
    /// and their work runs on the loop thread: its CPU time is their
    /// computes plus the switches between them.
    #[test]
    fn at_most_one_task_of_a_loop_runs_at_a_time(
        plans in prop::collection::vec(prop::collection::vec((0u8..4, 1u64..5), 1..6), 1..6),
        cpus in 1u16..3,
    ) {
        let mut s = sim(cpus);
        let lp = s.add_event_loop(ProcessId::MAIN, "loop", options());
        let computed: u64 = plans
            .iter()
            .flatten()
            .filter(|(op, _)| *op == 0)
            .map(|(_, n)| n * MS)
            .sum();
        for (i, plan) in plans.into_iter().enumerate() {
            s.add_task(&lp, &format!("t{i}"), move |t| {
                for (op, n) in plan {
                    match op {
                        0 => t.compute(ms(n)),
                        1 => t.await_sleep(ms(n)),
                        2 => t.await_yield(),
                        _ => t.sleep(ms(n)),
                    }
                }
            });
        }
        s.add_thread("hog", |ctx| ctx.compute(ms(7)));
        let run = s.run();
        prop_assert_eq!(&run.outcome, &Outcome::Completed);
        let intervals = run.trace.thread_intervals();
        let loop_thread = run.trace.thread_named("loop").unwrap();
        let mut busy: Vec<(Time, Time)> = Vec::new();
        for (row, info) in run.trace.threads.iter().enumerate() {
            if info.task_of != Some(loop_thread) {
                continue;
            }
            for i in &intervals[row] {
                if matches!(i.state, ThreadState::Running | ThreadState::Switch) && i.end > i.start {
                    busy.push((i.start, i.end));
                }
            }
        }
        let stats = Stats::from_trace(&run.trace);
        let switches = run.trace.loops[0].stats.switches;
        prop_assert_eq!(
            stats.thread("loop").unwrap().cpu.as_nanos(),
            computed + switches * 10 * US
        );
        busy.sort();
        for pair in busy.windows(2) {
            prop_assert!(pair[0].1 <= pair[1].0, "{:?} overlaps {:?}", pair[0], pair[1]);
        }
    }
}

#[test]
fn explored_task_orders_replay_to_the_same_trace() {
    use sim_core::{RandomChooser, ReplayChooser};
    // Two clients send in the same instant; the loop's tasks see the
    // messages in the order the chooser gives the sends.
    let scenario = |s: &mut Simulation| {
        let a = s.channel::<i64>("a", 1);
        let b = s.channel::<i64>("b", 1);
        s.add_thread("client a", move |ctx| {
            ctx.sleep(ms(1));
            ctx.send(a, 1);
        });
        s.add_thread("client b", move |ctx| {
            ctx.sleep(ms(1));
            ctx.send(b, 2);
        });
        let lp = s.add_event_loop(ProcessId::MAIN, "loop", options());
        s.add_task(&lp, "ta", move |t| {
            t.await_recv(a);
            t.print("a");
        });
        s.add_task(&lp, "tb", move |t| {
            t.await_recv(b);
            t.print("b");
        });
    };
    let mut orders = std::collections::BTreeSet::new();
    for seed in 0..40 {
        let mut s = sim(2);
        scenario(&mut s);
        s.set_chooser(Box::new(RandomChooser::new(seed)));
        let run = s.run();
        assert_eq!(run.outcome, Outcome::Completed);
        let order: Vec<String> = run.trace.logs.iter().map(|l| l.text.clone()).collect();
        orders.insert(order.clone());
        let mut again = sim(2);
        scenario(&mut again);
        again.set_chooser(Box::new(ReplayChooser::new(run.decisions.clone())));
        let replayed = again.run();
        assert_eq!(replayed.trace, run.trace, "seed {seed}");
    }
    // Both orders of the same-instant messages were explored.
    assert_eq!(orders.len(), 2, "{orders:?}");
}

#[test]
fn a_loop_in_a_gil_process_waits_for_the_gil_like_any_thread() {
    let mut s = sim(2);
    let py = s.add_process(
        "python",
        sim_core::ProcessOptions {
            gil: Some(ms(5)),
            ..sim_core::ProcessOptions::default()
        },
    );
    let lp = s.add_event_loop(py, "loop", options());
    s.add_task(&lp, "tick", |t| {
        for _ in 0..4 {
            t.await_sleep(ms(1));
        }
    });
    s.add_thread_to(py, "cruncher", sim_core::ThreadOptions::default(), |ctx| {
        ctx.compute(ms(100))
    });
    let run = s.run();
    let stats = Stats::from_trace(&run.trace);
    // Each tick waits for the cruncher's 5ms switch interval.
    assert_eq!(
        stats
            .thread("loop")
            .unwrap()
            .blocked_on(sim_core::BlockKind::Gil),
        ms(20)
    );
}
