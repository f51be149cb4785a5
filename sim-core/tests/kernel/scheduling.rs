//! Scheduling policies against timings computed by hand.

use sim_core::{ms, us, BlockKind, Machine, SchedulerKind, Simulation, ThreadOptions};

use crate::{end_ns, textbook};

#[test]
fn round_robin_four_threads_on_two_cpus_finish_at_200ms() {
    let mut sim = Simulation::new(textbook(2, SchedulerKind::RoundRobin)).unwrap();
    for name in ["a", "b", "c", "d"] {
        sim.add_thread(name, |ctx| ctx.compute(ms(100)));
    }
    let run = sim.run();
    assert!(run.completed());
    let stats = run.stats();
    assert_eq!(stats.makespan.as_nanos(), ms(200).as_nanos());
    // a and b run in the slots [0,10], [20,30], ..., [180,190]; c and d one slot later.
    assert_eq!(end_ns(&stats, "a"), ms(190).as_nanos());
    assert_eq!(end_ns(&stats, "b"), ms(190).as_nanos());
    assert_eq!(end_ns(&stats, "c"), ms(200).as_nanos());
    assert_eq!(end_ns(&stats, "d"), ms(200).as_nanos());
    for t in &stats.threads {
        assert_eq!(t.cpu, ms(100));
    }
    assert_eq!(stats.thread("a").unwrap().ready, ms(90));
    assert_eq!(stats.thread("c").unwrap().ready, ms(100));
    for cpu in &stats.cpus {
        assert_eq!(cpu.busy, ms(200));
        assert!((cpu.utilisation - 1.0).abs() < 1e-12);
    }
}

#[test]
fn fifo_runs_each_thread_to_completion_in_arrival_order() {
    let mut sim = Simulation::new(textbook(1, SchedulerKind::Fifo)).unwrap();
    for (name, work) in [("a", 30), ("b", 20), ("c", 10)] {
        sim.add_thread(name, move |ctx| ctx.compute(ms(work)));
    }
    let stats = sim.run().stats();
    assert_eq!(end_ns(&stats, "a"), ms(30).as_nanos());
    assert_eq!(end_ns(&stats, "b"), ms(50).as_nanos());
    assert_eq!(end_ns(&stats, "c"), ms(60).as_nanos());
    assert_eq!(stats.thread("c").unwrap().ready, ms(50));
}

#[test]
fn switch_costs_are_their_own_intervals_and_the_first_dispatch_is_free() {
    // 2 threads of 25ms, quantum 10ms, switch 1ms, 1 CPU:
    // a 0-10 | sw 10-11 | b 11-21 | sw 21-22 | a 22-32 | sw 32-33 | b 33-43
    // | sw 43-44 | a 44-49 done | sw 49-50 | b 50-55 done
    let machine = Machine {
        context_switch: ms(1),
        ..textbook(1, SchedulerKind::RoundRobin)
    };
    let mut sim = Simulation::new(machine).unwrap();
    sim.add_thread("a", |ctx| ctx.compute(ms(25)));
    sim.add_thread("b", |ctx| ctx.compute(ms(25)));
    let run = sim.run();
    let stats = run.stats();
    assert_eq!(end_ns(&stats, "a"), ms(49).as_nanos());
    assert_eq!(end_ns(&stats, "b"), ms(55).as_nanos());
    assert_eq!(stats.thread("a").unwrap().switches, 2);
    assert_eq!(stats.thread("b").unwrap().switches, 3);
    assert_eq!(stats.cpus[0].busy, ms(50));
    assert_eq!(stats.cpus[0].switching, ms(5));
    let cpu0: Vec<(u64, u64)> = run.trace.cpu_intervals()[0]
        .iter()
        .map(|i| (i.start.as_nanos() / 1_000_000, i.end.as_nanos() / 1_000_000))
        .collect();
    assert_eq!(
        cpu0,
        vec![
            (0, 10),
            (10, 11),
            (11, 21),
            (21, 22),
            (22, 32),
            (32, 33),
            (33, 43),
            (43, 44),
            (44, 49),
            (49, 50),
            (50, 55)
        ]
    );
}

#[test]
fn a_thread_of_another_process_costs_a_process_switch() {
    let machine = Machine {
        context_switch: us(2),
        process_switch: us(5),
        ..textbook(1, SchedulerKind::Fifo)
    };
    let mut sim = Simulation::new(machine).unwrap();
    let other = sim.add_process("other", Default::default());
    sim.add_thread("a", |ctx| ctx.compute(ms(1)));
    sim.add_thread("b", |ctx| ctx.compute(ms(1)));
    sim.add_thread_to(other, "c", ThreadOptions::default(), |ctx| {
        ctx.compute(ms(1))
    });
    let stats = sim.run().stats();
    // a 0-1ms | 2us | b | 5us | c
    assert_eq!(end_ns(&stats, "b"), ms(2).as_nanos() + us(2).as_nanos());
    assert_eq!(end_ns(&stats, "c"), ms(3).as_nanos() + us(7).as_nanos());
    assert_eq!(stats.cpus[0].switching, us(7));
}

#[test]
fn a_higher_priority_thread_preempts_at_once() {
    // high sleeps at 0 and wakes at 10ms; low runs 0-10, is preempted,
    // high runs 10-30, low resumes 30-70.
    let mut sim = Simulation::new(textbook(1, SchedulerKind::Priority)).unwrap();
    sim.add_thread_with(
        "low",
        ThreadOptions {
            priority: 1,
            nice: 0,
        },
        |ctx| ctx.compute(ms(50)),
    );
    sim.add_thread_with(
        "high",
        ThreadOptions {
            priority: 5,
            nice: 0,
        },
        |ctx| {
            ctx.sleep(ms(10));
            ctx.compute(ms(20));
        },
    );
    let stats = sim.run().stats();
    assert_eq!(end_ns(&stats, "high"), ms(30).as_nanos());
    assert_eq!(end_ns(&stats, "low"), ms(70).as_nanos());
    assert_eq!(stats.thread("low").unwrap().ready, ms(20));
    assert_eq!(stats.thread("high").unwrap().ready, ms(0));
}

#[test]
fn priority_preemption_pays_switches_both_ways() {
    // As above with a 1ms switch: high sleeps at 0; sw 0-1; low 1-10 (9ms);
    // sw 10-11; high 11-31; sw 31-32; low 32-73 (41ms).
    let machine = Machine {
        context_switch: ms(1),
        ..textbook(1, SchedulerKind::Priority)
    };
    let mut sim = Simulation::new(machine).unwrap();
    sim.add_thread_with(
        "low",
        ThreadOptions {
            priority: 1,
            nice: 0,
        },
        |ctx| ctx.compute(ms(50)),
    );
    sim.add_thread_with(
        "high",
        ThreadOptions {
            priority: 5,
            nice: 0,
        },
        |ctx| {
            ctx.sleep(ms(10));
            ctx.compute(ms(20));
        },
    );
    let stats = sim.run().stats();
    assert_eq!(end_ns(&stats, "high"), ms(31).as_nanos());
    assert_eq!(end_ns(&stats, "low"), ms(73).as_nanos());
    assert_eq!(stats.thread("low").unwrap().switches, 2);
}

#[test]
fn priority_is_round_robin_within_a_level_and_starves_lower_levels() {
    let mut sim = Simulation::new(textbook(1, SchedulerKind::Priority)).unwrap();
    let hi = ThreadOptions {
        priority: 2,
        nice: 0,
    };
    sim.add_thread("low", |ctx| ctx.compute(ms(10)));
    sim.add_thread_with("h1", hi, |ctx| ctx.compute(ms(30)));
    sim.add_thread_with("h2", hi, |ctx| ctx.compute(ms(30)));
    let stats = sim.run().stats();
    // h1 0-10, h2 10-20, h1 20-30, h2 30-40, h1 40-50, h2 50-60, low 60-70
    assert_eq!(end_ns(&stats, "h1"), ms(50).as_nanos());
    assert_eq!(end_ns(&stats, "h2"), ms(60).as_nanos());
    assert_eq!(end_ns(&stats, "low"), ms(70).as_nanos());
    assert_eq!(stats.thread("low").unwrap().ready, ms(60));
}

#[test]
fn fair_gives_equal_threads_equal_slices_of_the_latency() {
    // latency 6ms, 3 runnable: 2ms slices. a 0-2, b 2-4, c 4-6, a 6-8 done;
    // then 2 runnable (3ms slices): b 8-10 done; c 10-12 done.
    let machine = Machine {
        slice: Some(ms(6)),
        granularity: Some(us(750)),
        ..textbook(1, SchedulerKind::Fair)
    };
    let mut sim = Simulation::new(machine).unwrap();
    for name in ["a", "b", "c"] {
        sim.add_thread(name, |ctx| ctx.compute(ms(4)));
    }
    let stats = sim.run().stats();
    assert_eq!(end_ns(&stats, "a"), ms(8).as_nanos());
    assert_eq!(end_ns(&stats, "b"), ms(10).as_nanos());
    assert_eq!(end_ns(&stats, "c"), ms(12).as_nanos());
}

#[test]
fn fair_shares_the_cpu_by_nice_weight() {
    // nice 0 weighs 1024, nice 5 weighs 335: while both run, b gets 335/1024
    // of a's time. When a has used 1s, b has used about 327ms.
    let machine = Machine {
        slice: Some(ms(6)),
        granularity: Some(us(750)),
        ..textbook(1, SchedulerKind::Fair)
    };
    let mut sim = Simulation::new(machine).unwrap();
    sim.add_thread_with(
        "a",
        ThreadOptions {
            priority: 0,
            nice: 0,
        },
        |ctx| ctx.compute(ms(1000)),
    );
    sim.add_thread_with(
        "b",
        ThreadOptions {
            priority: 0,
            nice: 5,
        },
        |ctx| ctx.compute(ms(1000)),
    );
    let stats = sim.run().stats();
    let a_end = end_ns(&stats, "a") as f64;
    let b_share_while_a_ran = a_end - 1e9;
    let expected = 1e9 * 335.0 / 1024.0;
    assert!(
        (b_share_while_a_ran - expected).abs() < 2e6,
        "b ran {b_share_while_a_ran}ns while a ran 1s, expected {expected}ns"
    );
    assert_eq!(end_ns(&stats, "b"), ms(2000).as_nanos());
}

#[test]
fn fair_wakeup_preempts_a_thread_far_ahead() {
    // Both start with 3ms slices: a runs 0-3, then b runs and sleeps at 3ms
    // until 23ms. When b wakes, a's vruntime is 23ms and b is placed at
    // min_vruntime - latency/2 = 20ms, more than the granularity (0.75ms)
    // behind a, so b preempts a at once.
    let machine = Machine {
        slice: Some(ms(6)),
        granularity: Some(us(750)),
        ..textbook(1, SchedulerKind::Fair)
    };
    let mut sim = Simulation::new(machine).unwrap();
    sim.add_thread("a", |ctx| ctx.compute(ms(30)));
    sim.add_thread("b", |ctx| {
        ctx.sleep(ms(20));
        ctx.compute(ms(1));
    });
    let run = sim.run();
    let stats = run.stats();
    // b runs at once on waking: 23-24ms.
    assert_eq!(end_ns(&stats, "b"), ms(24).as_nanos());
    assert_eq!(end_ns(&stats, "a"), ms(31).as_nanos());
}

#[test]
fn sleeping_and_blocking_are_counted_by_kind() {
    let mut sim = Simulation::new(textbook(1, SchedulerKind::RoundRobin)).unwrap();
    sim.add_thread("s", |ctx| {
        ctx.sleep(ms(5));
        ctx.compute(ms(1));
    });
    let stats = sim.run().stats();
    assert_eq!(end_ns(&stats, "s"), ms(6).as_nanos());
    assert_eq!(
        stats.thread("s").unwrap().blocked_on(BlockKind::Sleep),
        ms(5)
    );
    assert!((stats.cpus[0].utilisation - 1.0 / 6.0).abs() < 1e-9);
}

#[test]
fn yield_goes_to_the_back_of_the_queue() {
    let mut sim = Simulation::new(textbook(1, SchedulerKind::Fifo)).unwrap();
    sim.add_thread("a", |ctx| {
        ctx.compute(ms(1));
        ctx.yield_now();
        ctx.compute(ms(1));
    });
    sim.add_thread("b", |ctx| ctx.compute(ms(1)));
    let stats = sim.run().stats();
    assert_eq!(end_ns(&stats, "b"), ms(2).as_nanos());
    assert_eq!(end_ns(&stats, "a"), ms(3).as_nanos());
}

#[test]
fn idle_cpus_take_ready_threads_lowest_index_first() {
    let mut sim = Simulation::new(textbook(3, SchedulerKind::Fifo)).unwrap();
    for name in ["a", "b"] {
        sim.add_thread(name, |ctx| ctx.compute(ms(1)));
    }
    let run = sim.run();
    let cpus = run.trace.cpu_intervals();
    assert_eq!(cpus[0].len(), 1);
    assert_eq!(cpus[1].len(), 1);
    assert!(cpus[2].is_empty());
    assert_eq!(run.trace.threads[cpus[0][0].thread.index()].name, "a");
}
