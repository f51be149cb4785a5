//! CPython's GIL: hand-computed hand-offs of CPU-bound threads at the
//! switch interval, the convoy an I/O thread meets, a thread that finishes
//! while others wait, native work without the GIL, and properties: one
//! runner of Python at a time, no waiter left forever, replay.

use proptest::prelude::*;
use sim_core::model::python::gil::{GilAction, GilEvent};
use sim_core::{
    ms, us, DeviceOptions, ProcessId, ProcessOptions, RandomChooser, ReplayChooser, SchedulerKind,
    Simulation, ThreadOptions, ThreadState,
};

use crate::{end_ns, textbook};

const MS: u64 = 1_000_000;

fn python(cpus: u16) -> (Simulation, ProcessId) {
    let mut sim = Simulation::new(textbook(cpus, SchedulerKind::RoundRobin)).unwrap();
    let py = sim.add_process("python", ProcessOptions::python(ms(5)));
    (sim, py)
}

fn took(events: &[GilEvent], trace: &sim_core::Trace) -> Vec<(u64, String)> {
    events
        .iter()
        .filter(|e| e.action == GilAction::Took)
        .map(|e| {
            (
                e.time.as_nanos() / 100_000,
                trace.threads[e.thread.index()].name.clone(),
            )
        })
        .collect()
}

#[test]
fn two_cpu_bound_threads_take_turns_every_switch_interval_even_on_two_cpus() {
    let (mut sim, py) = python(2);
    // a needs 18ms, b 20ms (so that no end falls on a request).
    for (name, work) in [("a", 18), ("b", 20)] {
        sim.add_thread_to(py, name, ThreadOptions::default(), move |ctx| {
            ctx.compute(ms(work))
        });
    }
    let run = sim.run();
    assert!(run.completed(), "{:?}", run.outcome);
    // Each waits 5ms with no change of owner, asks, and the holder drops.
    let a = |t: u64| (t * 10, "a".to_string());
    let b = |t: u64| (t * 10, "b".to_string());
    assert_eq!(
        took(&run.trace.gil, &run.trace),
        [a(0), b(5), a(10), b(15), a(20), b(25), a(30), b(33)]
    );
    let stats = run.stats();
    // No faster than one thread doing all 38ms: the second CPU idles.
    assert_eq!(end_ns(&stats, "a"), 33 * MS);
    assert_eq!(end_ns(&stats, "b"), 38 * MS);
    assert_eq!(
        stats
            .thread("a")
            .unwrap()
            .blocked_on(sim_core::BlockKind::Gil),
        ms(15)
    );
    let requests = run
        .trace
        .gil
        .iter()
        .filter(|e| e.action == GilAction::DropRequest)
        .count();
    let forced = run
        .trace
        .gil
        .iter()
        .filter(|e| e.action == GilAction::Dropped { forced: true })
        .count();
    // Seven hand-offs: six on request; the last when a finishes.
    assert_eq!((requests, forced), (6, 6));
}

#[test]
fn an_io_thread_waits_a_switch_interval_for_the_gil_after_each_io() {
    // The convoy effect (Beazley 2010): the I/O thread's every return from
    // I/O waits for a CPU-bound holder to be asked to drop the GIL.
    let (mut sim, py) = python(2);
    let disk = sim.device(
        "disk",
        DeviceOptions {
            latency: ms(1),
            bandwidth: None,
            channels: 1,
        },
    );
    sim.add_thread_to(py, "cpu", ThreadOptions::default(), |ctx| {
        ctx.compute(ms(50))
    });
    let io = sim.add_thread_to(py, "io", ThreadOptions::default(), move |ctx| {
        let mut done = Vec::new();
        for _ in 0..3 {
            ctx.io(disk, 0);
            ctx.compute(us(100));
            done.push(ctx.now().as_nanos());
        }
        done
    });
    let mut run = sim.run();
    assert!(run.completed(), "{:?}", run.outcome);
    // io waits 5ms for its first turn, does its I/O (1ms), then waits a full
    // interval (5ms) after each I/O before its 100us of work: 11.1, 17.2, 23.3ms.
    assert_eq!(
        run.take_value(&io),
        Some(vec![11_100_000, 17_200_000, 23_300_000])
    );
    // Without the CPU-bound thread it would end at 3.3ms.
}

#[test]
fn a_thread_that_finishes_hands_the_gil_to_a_waiter_at_once() {
    let (mut sim, py) = python(1);
    sim.add_thread_to(py, "short", ThreadOptions::default(), |ctx| {
        ctx.compute(ms(2))
    });
    sim.add_thread_to(py, "long", ThreadOptions::default(), |ctx| {
        ctx.compute(ms(10))
    });
    let run = sim.run();
    assert!(run.completed(), "{:?}", run.outcome);
    assert_eq!(
        took(&run.trace.gil, &run.trace),
        [(0, "short".to_string()), (20, "long".to_string())]
    );
    assert_eq!(end_ns(&run.stats(), "long"), 12 * MS);
    // The waiter's timer at 5ms finds another owner since: no request.
    assert!(run
        .trace
        .gil
        .iter()
        .all(|e| e.action != GilAction::DropRequest));
}

#[test]
fn native_work_without_the_gil_runs_in_parallel_with_the_holder() {
    let (mut sim, py) = python(2);
    for name in ["h1", "h2"] {
        sim.add_thread_to(py, name, ThreadOptions::default(), |ctx| {
            ctx.compute_nogil(ms(20));
        });
    }
    let run = sim.run();
    assert!(run.completed(), "{:?}", run.outcome);
    let stats = run.stats();
    // Both hash at once on two CPUs; each needs the GIL only to start and end.
    assert_eq!(end_ns(&stats, "h1"), 20 * MS);
    assert_eq!(end_ns(&stats, "h2"), 20 * MS);
}

/// Checks that at most one thread of the GIL process is running Python
/// (holds the GIL while on a CPU outside native work) at any instant, and
/// that every thread finishes.
fn one_runner_at_a_time(
    run: &sim_core::Run,
    py: ProcessId,
    native: bool,
) -> Result<(), TestCaseError> {
    prop_assert!(run.completed(), "{:?}", run.outcome);
    let mut holder = None;
    for e in &run.trace.gil {
        match e.action {
            GilAction::Took => {
                prop_assert_eq!(holder, None, "two holders at {}", e.time);
                holder = Some(e.thread);
            }
            GilAction::Dropped { .. } => {
                prop_assert_eq!(holder, Some(e.thread));
                holder = None;
            }
            GilAction::DropRequest => {}
        }
        prop_assert_eq!(e.process, py);
    }
    if !native {
        // Without native work, whenever time moves on, the threads running
        // are at most one: the holder.
        let mut running = std::collections::BTreeSet::new();
        let mut events = run.trace.gil.iter().peekable();
        let mut holder = None;
        let changes: Vec<_> = run.trace.states.iter().collect();
        for (i, change) in changes.iter().enumerate() {
            while let Some(e) = events.next_if(|e| e.time <= change.time()) {
                match e.action {
                    GilAction::Took => holder = Some(e.thread),
                    GilAction::Dropped { .. } => holder = None,
                    GilAction::DropRequest => {}
                }
            }
            if change.state() == ThreadState::Running {
                running.insert(change.thread());
            } else {
                running.remove(&change.thread());
            }
            let last_of_instant = changes.get(i + 1).is_none_or(|n| n.time() > change.time());
            if last_of_instant && events.peek().is_none_or(|e| e.time > change.time()) {
                prop_assert!(running.len() <= 1, "{:?} at {}", running, change.time());
                if let Some(&t) = running.iter().next() {
                    prop_assert_eq!(Some(t), holder, "at {}", change.time());
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn the_gil_has_one_holder_no_waiter_starves_and_replay_reproduces_it(
        threads in proptest::collection::vec(
            proptest::collection::vec((0u64..8_000, 0u64..3_000, 0u8..3), 1..5), 2..5),
        cpus in 1u16..4,
        seed in 0u64..1000,
    ) {
        let build = || {
            let (mut sim, py) = python(cpus);
            let disk = sim.device("disk", DeviceOptions { latency: us(300), bandwidth: None, channels: 2 });
            for (i, steps) in threads.iter().enumerate() {
                let steps = steps.clone();
                sim.add_thread_to(py, &format!("t{i}"), ThreadOptions::default(), move |ctx| {
                    for (work, wait, kind) in steps {
                        match kind {
                            0 => ctx.compute(us(work)),
                            1 => { ctx.compute(us(work / 4)); ctx.io(disk, wait) }
                            _ => ctx.compute_nogil(us(work)),
                        }
                    }
                });
            }
            (sim, py)
        };
        let (mut sim, py) = build();
        sim.set_chooser(Box::new(RandomChooser::new(seed)));
        let run = sim.run();
        let native = threads.iter().flatten().any(|&(_, _, kind)| kind == 2);
        one_runner_at_a_time(&run, py, native)?;
        let (mut again, _) = build();
        again.set_chooser(Box::new(ReplayChooser::new(run.decisions.clone())));
        prop_assert_eq!(&again.run().trace, &run.trace);
    }
}

#[test]
fn a_started_process_spends_its_start_up_cost_then_runs_in_parallel_with_its_own_gil() {
    use sim_core::kernel::{ProcessStart, StartMethod};
    let (mut sim, py) = python(2);
    let parent = sim.add_thread_to(py, "parent", ThreadOptions::default(), |ctx| {
        let start = ProcessStart {
            gil: Some(ms(5)),
            spawn_cost: StartMethod::Fork.cost(),
        };
        let child = ctx.start_process("worker", start, |ctx| {
            ctx.compute(ms(10));
            Ok(Box::new(7u32) as Box<dyn std::any::Any>)
        });
        let started = ctx.now();
        ctx.compute(ms(10));
        let value = *ctx.join_any(child.main).downcast::<u32>().unwrap();
        (
            started.as_nanos(),
            value,
            child.process.index(),
            ctx.now().as_nanos(),
        )
    });
    let mut run = sim.run();
    assert!(run.completed(), "{:?}", run.outcome);
    // The parent pays nothing; the child starts 2ms (fork) then computes
    // 10ms on the other CPU with its own GIL: it ends at 12ms.
    assert_eq!(run.take_value(&parent), Some((0, 7, 2, 12 * MS)));
    let worker = run.trace.thread_named("worker").unwrap();
    let spawn: Vec<_> = run
        .trace
        .states
        .iter()
        .filter(|c| c.thread() == worker)
        .map(|c| (c.time().as_nanos() / MS, c.state()))
        .collect();
    assert_eq!(
        spawn,
        [
            (0, ThreadState::Ready),
            (0, ThreadState::Spawn),
            (2, ThreadState::Running),
            (12, ThreadState::Done)
        ]
    );
    assert_eq!(run.trace.processes[2].name, "worker");
    assert_eq!(run.stats().thread("worker").unwrap().cpu, ms(12));
}

#[test]
fn processes_and_threads_hold_memory_while_they_live() {
    use sim_core::kernel::{ProcessStart, StartMethod};
    let mut machine = textbook(2, SchedulerKind::RoundRobin);
    machine.process_memory = 10_000;
    machine.thread_memory = 100;
    let mut sim = Simulation::new(machine).unwrap();
    let py = sim.add_process("python", ProcessOptions::python(ms(5)));
    sim.add_thread_to(py, "main", ThreadOptions::default(), |ctx| {
        let a = ctx.start_thread("a", |ctx| ctx.sleep(ms(2)));
        let b = ctx.start_thread("b", |ctx| ctx.sleep(ms(4)));
        let start = ProcessStart {
            gil: Some(ms(5)),
            spawn_cost: StartMethod::Fork.cost(),
        };
        let child = ctx.start_process("child", start, |ctx| {
            ctx.compute(ms(1));
            Ok(Box::new(()) as Box<dyn std::any::Any>)
        });
        ctx.join(a);
        ctx.join(b);
        ctx.join_any(child.main);
    });
    let run = sim.run();
    assert!(run.completed(), "{:?}", run.outcome);
    // python (10,000 with main) + a + b (100 each) + child (10,000).
    assert_eq!(run.trace.peak_memory, 20_200);
    assert_eq!(run.trace.process_peaks, [0, 10_200, 10_000]);
    let samples: Vec<(u64, u64)> = run
        .trace
        .memory
        .iter()
        .map(|s| (s.time.as_nanos() / 1_000_000, s.used))
        .collect();
    // The child ends at 3ms (2ms fork + 1ms), a at 2ms, b at 4ms, main then.
    assert_eq!(samples, [(0, 20_200), (2, 20_100), (3, 10_100), (4, 0)]);
}

#[test]
fn a_message_between_processes_costs_both_sides_ipc_and_within_one_nothing() {
    let mut machine = textbook(2, SchedulerKind::RoundRobin);
    machine.ipc_cost = us(5);
    machine.ipc_byte_cost = sim_core::Span(1);
    let mut sim = Simulation::new(machine).unwrap();
    let other = sim.add_process("other", ProcessOptions::default());
    let pipe = sim.channel::<u64>("pipe", 1);
    let local = sim.channel::<u64>("local", 1);
    let receiver = sim.add_thread_to(other, "receiver", ThreadOptions::default(), move |ctx| {
        let value = ctx.recv(pipe);
        (value, ctx.now().as_nanos())
    });
    let sender = sim.add_thread("sender", move |ctx| {
        ctx.send(pipe, 7);
        let sent = ctx.now().as_nanos();
        ctx.send(local, 8);
        let value = ctx.recv(local);
        (sent, value, ctx.now().as_nanos())
    });
    let mut run = sim.run();
    assert!(run.completed(), "{:?}", run.outcome);
    // 5us + 8 bytes x 1ns to pickle, then as much to unpickle; the queue
    // within one process costs nothing.
    assert_eq!(run.take_value(&sender), Some((5_008, 8, 5_008)));
    assert_eq!(run.take_value(&receiver), Some((7, 10_016)));
}
