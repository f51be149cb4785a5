//! Thread and process pools: hand-computed timelines (worker starts as
//! CPython's `_adjust_thread_count` decides them, FIFO queue order, IPC
//! paid on both sides of both pipes), `map`'s order, shutdown, the
//! interpreter's exit stopping idle workers, asyncio awaiting a pool, and
//! misuse.

use std::cell::RefCell;
use std::rc::Rc;

use sim_core::{
    ms, us, BodyError, Machine, Outcome, ProcessId, ProcessPoolOptions, SchedulerKind, Simulation,
    Span, StartMethod, Stats, Time,
};

use crate::{end_ns, textbook};

const US: u64 = 1_000;
const MS: u64 = 1_000_000;

fn machine(cpus: u16) -> Machine {
    Machine {
        thread_spawn: us(10),
        ..textbook(cpus, SchedulerKind::Fifo)
    }
}

#[test]
fn a_thread_pool_starts_a_worker_per_submit_until_full_and_serves_fifo() {
    let mut s = Simulation::new(machine(2)).unwrap();
    let pool = s.thread_pool(ProcessId::MAIN, "pool", 2);
    let order = Rc::new(RefCell::new(Vec::new()));
    let seen = order.clone();
    s.add_thread("main", move |ctx| {
        let futures: Vec<_> = (1..=4u64)
            .map(|i| {
                let seen = seen.clone();
                pool.submit(ctx, "job", move |ctx| {
                    seen.borrow_mut().push(i);
                    ctx.compute(ms(10));
                    i * 10
                })
            })
            .collect();
        let values: Vec<u64> = futures.iter().map(|f| f.result(ctx).unwrap()).collect();
        assert_eq!(values, vec![10, 20, 30, 40]);
    });
    let run = s.run();
    assert_eq!(run.outcome, Outcome::Completed);
    assert_eq!(*order.borrow(), vec![1, 2, 3, 4]);
    let stats = Stats::from_trace(&run.trace);
    // main: spawns pool-0 (0..10us), sends job 1, spawns pool-1 (..20us),
    // sends jobs 2 to 4 and waits. pool-0 runs on cpu1 from 10us: job 1 to
    // 10.01ms, then job 3 to 20.01ms; pool-1 takes cpu0 at 20us: job 2 to
    // 10.02ms, job 4 to 20.02ms. main gets a CPU back at 20.01ms and has
    // every result at 20.02ms.
    assert_eq!(end_ns(&stats, "main"), 20 * MS + 20 * US);
    let info = &run.trace.pools[0];
    assert_eq!(info.workers.len(), 2);
    let starts: Vec<u64> = info.jobs.iter().map(|j| j.started.unwrap().0).collect();
    assert_eq!(
        starts,
        vec![10 * US, 20 * US, 10 * MS + 10 * US, 10 * MS + 20 * US]
    );
    let submitted: Vec<u64> = info.jobs.iter().map(|j| j.submitted.0).collect();
    assert_eq!(submitted, vec![0, 10 * US, 20 * US, 20 * US]);
    // The idle workers stop at the interpreter's exit, with the run.
    assert_eq!(run.trace.end, Time(20 * MS + 20 * US));
    assert_eq!(end_ns(&stats, "pool-0"), 20 * MS + 20 * US);
    // Queue length: 1 at 10us... job 3 and 4 queued until workers free.
    let lengths = info.queue_lengths(run.trace.end);
    assert_eq!(lengths.iter().map(|l| l.1).max(), Some(2));
}

#[test]
fn an_idle_worker_takes_the_next_job_without_a_new_thread() {
    let mut s = Simulation::new(machine(1)).unwrap();
    let pool = s.thread_pool(ProcessId::MAIN, "pool", 4);
    s.add_thread("main", move |ctx| {
        for _ in 0..3 {
            let f = pool.submit(ctx, "job", |ctx| ctx.compute(ms(1)));
            f.result(ctx).unwrap();
        }
    });
    let run = s.run();
    assert_eq!(run.outcome, Outcome::Completed);
    // One submit at a time: the first worker is idle for the second and
    // the third, as CPython's idle semaphore says.
    assert_eq!(run.trace.pools[0].workers.len(), 1);
}

#[test]
fn map_returns_values_in_the_items_order_whatever_order_they_end() {
    let mut s = Simulation::new(machine(4)).unwrap();
    let pool = s.thread_pool(ProcessId::MAIN, "pool", 4);
    s.add_thread("main", move |ctx| {
        let values = pool
            .map(ctx, "job", vec![4u64, 1, 3, 2], |ctx, n| {
                ctx.compute(ms(n));
                n * 100
            })
            .unwrap();
        assert_eq!(values, vec![400, 100, 300, 200]);
    });
    let run = s.run();
    assert_eq!(run.outcome, Outcome::Completed);
}

#[test]
fn shutdown_waits_for_the_queue_then_joins_the_workers() {
    let mut s = Simulation::new(machine(2)).unwrap();
    let pool = s.thread_pool(ProcessId::MAIN, "pool", 1);
    s.add_thread("main", move |ctx| {
        for _ in 0..3 {
            pool.submit(ctx, "job", |ctx| ctx.compute(ms(5)));
        }
        pool.shutdown(ctx);
        ctx.now()
    });
    let run = s.run();
    assert_eq!(run.outcome, Outcome::Completed);
    let stats = Stats::from_trace(&run.trace);
    // The worker starts at 10us and runs three 5ms jobs; main joins it.
    assert_eq!(end_ns(&stats, "pool-0"), 15 * MS + 10 * US);
    assert_eq!(end_ns(&stats, "main"), 15 * MS + 10 * US);
}

#[test]
fn submit_after_shutdown_is_an_error() {
    let mut s = Simulation::new(machine(1)).unwrap();
    let pool = s.thread_pool(ProcessId::MAIN, "pool", 1);
    s.add_thread("main", move |ctx| {
        pool.shutdown(ctx);
        pool.submit(ctx, "late", |_| ());
    });
    let run = s.run();
    let error = run.error().expect("a misuse").to_string();
    assert!(error.contains("pool 'pool' was shut down"), "{error}");
}

#[test]
fn a_thread_of_another_process_cannot_submit() {
    let mut s = Simulation::new(machine(1)).unwrap();
    let pool = s.thread_pool(ProcessId::MAIN, "pool", 1);
    let other = s.add_process("other", Default::default());
    s.add_thread_to(other, "intruder", Default::default(), move |ctx| {
        pool.submit(ctx, "job", |_| ());
    });
    let run = s.run();
    let error = run.error().expect("a misuse").to_string();
    assert!(
        error.contains("pool 'pool' belongs to process 'main'"),
        "{error}"
    );
}

#[test]
fn a_process_pool_pays_to_pickle_and_unpickle_both_ways() {
    let m = Machine {
        ipc_cost: us(100),
        ipc_byte_cost: Span(1),
        ..machine(2)
    };
    let mut s = Simulation::new(m).unwrap();
    let options = ProcessPoolOptions {
        start_method: StartMethod::Fork,
        gil: None,
    };
    let pool = s.process_pool(ProcessId::MAIN, "procs", 1, options);
    s.add_thread("main", move |ctx| {
        let size = sim_core::JobSize {
            bytes: 50_000,
            result_bytes: 0,
        };
        let body = Box::new(|ctx: &sim_core::Ctx<'_>| {
            ctx.compute(ms(1));
            Ok(Box::new(7u64) as Box<dyn std::any::Any>)
        });
        let f = pool.submit_fallible(ctx, "job", size, body);
        let value = f.result(ctx).unwrap();
        assert_eq!(value.downcast_ref::<u64>(), Some(&7));
    });
    let run = s.run();
    assert_eq!(run.outcome, Outcome::Completed);
    let stats = Stats::from_trace(&run.trace);
    // main: starts the worker (fork: 2ms of spawn in the child) and the
    // manager (10us), then pickles 50kB: 100us + 50us, to 160us.
    // worker (cpu1): spawn 0..2ms, unpickles 150us, runs 2.15..3.15ms,
    // pickles the result (100us) to 3.25ms. manager (cpu0, free since
    // main waits): unpickles 100us to 3.35ms and sets the future.
    let job = &run.trace.pools[0].jobs[0];
    assert_eq!(job.started, Some(Time(2 * MS + 150 * US)));
    assert_eq!(job.ended, Some(Time(3 * MS + 150 * US)));
    assert_eq!(end_ns(&stats, "main"), 3 * MS + 350 * US);
    assert!(run.trace.pools[0].manager.is_some());
}

#[test]
fn spawn_starts_worker_processes_on_demand() {
    let mut s = Simulation::new(machine(4)).unwrap();
    let options = ProcessPoolOptions {
        start_method: StartMethod::Spawn,
        gil: Some(ms(5)),
    };
    let fork = s.process_pool(ProcessId::MAIN, "forked", 4, ProcessPoolOptions::default());
    let spawned = s.process_pool(ProcessId::MAIN, "spawned", 4, options);
    s.add_thread("main", move |ctx| {
        fork.submit(ctx, "a", |ctx| ctx.compute(ms(1)))
            .result(ctx)
            .unwrap();
        spawned
            .submit(ctx, "b", |ctx| ctx.compute(ms(1)))
            .result(ctx)
            .unwrap();
    });
    let run = s.run();
    assert_eq!(run.outcome, Outcome::Completed);
    assert_eq!(run.trace.pools[0].workers.len(), 4);
    assert_eq!(run.trace.pools[1].workers.len(), 1);
    let job = &run.trace.pools[1].jobs[0];
    // A spawned worker pays 75ms before its first job.
    assert!(job.started.unwrap().since(job.submitted) >= ms(75));
}

#[test]
fn a_failed_job_raises_in_result_and_an_unretrieved_one_fails_the_run() {
    let mut s = Simulation::new(machine(1)).unwrap();
    let pool = s.thread_pool(ProcessId::MAIN, "pool", 1);
    s.add_thread("main", move |ctx| {
        let body = Box::new(|_: &sim_core::Ctx<'_>| {
            Err(BodyError {
                message: "boom".into(),
                position: None,
            })
        });
        let f = pool.submit_fallible(ctx, "bad", Default::default(), body);
        let failure = f.result(ctx).unwrap_err();
        assert_eq!(failure.error.message, "boom");
    });
    assert_eq!(s.run().outcome, Outcome::Completed);

    let mut s = Simulation::new(machine(1)).unwrap();
    let pool = s.thread_pool(ProcessId::MAIN, "pool", 1);
    s.add_thread("main", move |ctx| {
        let body = Box::new(|_: &sim_core::Ctx<'_>| {
            Err(BodyError {
                message: "boom".into(),
                position: None,
            })
        });
        pool.submit_fallible(ctx, "bad", Default::default(), body);
    });
    let run = s.run();
    let error = run.error().expect("a failure").to_string();
    assert!(
        error.contains("job 'bad' of pool 'pool' failed and nobody asked"),
        "{error}"
    );
}

#[test]
fn a_task_awaits_a_pool_job_while_the_loop_runs_others() {
    let mut s = Simulation::new(machine(2)).unwrap();
    let pool = s.thread_pool(ProcessId::MAIN, "pool", 2);
    let lp = s.add_event_loop(ProcessId::MAIN, "loop", Default::default());
    s.add_task(&lp, "offload", move |t| {
        let h = t.run_in_pool(&pool, |ctx| {
            ctx.compute(ms(10));
            5u64
        });
        t.await_task(h)
    });
    s.add_task(&lp, "ticker", |t| {
        for _ in 0..5 {
            t.await_sleep(ms(1));
        }
    });
    let run = s.run();
    assert_eq!(run.outcome, Outcome::Completed);
    let stats = Stats::from_trace(&run.trace);
    // The ticker is done long before the pool job: the loop was free.
    assert!(end_ns(&stats, "ticker") < 6 * MS);
    assert!(end_ns(&stats, "offload") >= 10 * MS);
}
