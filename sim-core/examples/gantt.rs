//! Gantt charts of five runs, from three threads to a million intervals,
//! and a deadlock.
//!
//! Demonstrates: `sim_core::plot::gantt` with titles and markers, rows that
//! stay readable from 3 to 30 threads, pixel merging that keeps a trace
//! of a million intervals fast to draw, waits labelled with what they wait
//! for, and a deadlock cycle drawn from the trace alone.
//!
//! ```text
//!   CPU 0   [alpha  ][beta ][alpha ]...      one row per CPU: who ran
//!   CPU 1   [beta ][gamma][helper]...
//!   alpha   ███▒▒▒███▒▒▒                     one row per thread: its state
//!   beta    ▒▒▒███▒▒▒███                     (running, ready, sleep, join…)
//!           0    10ms   20ms   30ms          time axis in the run's units
//! ```
//!
//! Run: `cargo run --release -p sim-core --example gantt [OUT_DIR]`
//! (default `plots/`), then open `example_3.png`, `example_30.png`,
//! `example_10k.png` and `example_deadlock.png`.

use std::path::Path;
use std::time::Instant;

use sim_core::model::process::ProcessInfo;
use sim_core::plot::{gantt, ChartFormat, GanttOptions, Marker, MarkerKind};
use sim_core::trace::{
    Deadlock, ResourceInfo, ResourceKind, StateChange, ThreadInfo, WaitStep, WaitTarget,
};
use sim_core::{
    ms, us, BlockReason, CpuId, Machine, ProcessId, ResourceId, SchedulerKind, Simulation, Span,
    ThreadId, ThreadState, Time, Trace,
};

/// A small deterministic sequence for varied durations: 0..n.
fn pseudo(seed: u64, i: u64, n: u64) -> u64 {
    let x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(i.wrapping_mul(1442695040888963407))
        >> 17;
    (x ^ (x >> 11)) % n
}

/// Three threads on two CPUs, round robin with a 4ms quantum: two compute,
/// one sleeps, starts a helper and joins it.
fn three_threads() -> Trace {
    let machine = Machine {
        cpus: 2,
        scheduler: SchedulerKind::RoundRobin,
        quantum: ms(4),
        ..Machine::default()
    };
    let mut sim = Simulation::new(machine).expect("a valid machine");
    sim.add_thread("alpha", |ctx| {
        ctx.compute(ms(12));
        ctx.sleep(ms(5));
        ctx.compute(ms(6));
    });
    sim.add_thread("beta", |ctx| ctx.compute(ms(20)));
    sim.add_thread("gamma", |ctx| {
        ctx.compute(ms(3));
        ctx.sleep(ms(6));
        let helper = ctx.start_thread("helper", |ctx| ctx.compute(ms(7)));
        ctx.compute(ms(2));
        ctx.join(helper);
    });
    run(sim)
}

/// Thirty threads on four CPUs, each alternating compute and sleep.
fn thirty_threads() -> Trace {
    let machine = Machine {
        cpus: 4,
        quantum: ms(2),
        ..Machine::default()
    };
    let mut sim = Simulation::new(machine).expect("a valid machine");
    for t in 0..30u64 {
        sim.add_thread(&format!("worker-{t:02}"), move |ctx| {
            for i in 0..4 {
                ctx.compute(us(500 + 250 * pseudo(t, i, 12)));
                ctx.sleep(us(1000 + 500 * pseudo(t + 7, i, 8)));
            }
        });
    }
    run(sim)
}

/// `threads` threads on `cpus` CPUs, each doing `rounds` of a short compute
/// and a shorter sleep or a yield: about 3 to 4 intervals per round.
fn busy(cpus: u16, threads: u64, rounds: u64, quantum: Span) -> Trace {
    let machine = Machine {
        cpus,
        quantum,
        ..Machine::default()
    };
    let mut sim = Simulation::new(machine).expect("a valid machine");
    for t in 0..threads {
        sim.add_thread(&format!("t{t}"), move |ctx| {
            for i in 0..rounds {
                ctx.compute(us(20 + 10 * pseudo(t, i, 20)));
                if pseudo(t + 99, i, 3) == 0 {
                    ctx.yield_now();
                } else {
                    ctx.sleep(us(10 + 10 * pseudo(t + 5, i, 10)));
                }
            }
        });
    }
    run(sim)
}

/// A deadlock, built by hand as the kernel records one: on two CPUs, `a`
/// holds m1 and waits for m2 from 3ms; `b` holds m2, sleeps, and waits for
/// m1 at 7ms, which closes the cycle. Around them `d` spins on a spinlock
/// `c` holds, `c` waits for a semaphore and then joins `a`, forever.
fn deadlock() -> Trace {
    use BlockReason::{Join, Lock, Semaphore, Sleep};
    use ThreadState::{Blocked, Done, Ready, Running, Spin, Switch};
    let names = ["a", "b", "c", "d", "e"];
    let resources = [
        ("m1", ResourceKind::Mutex),
        ("m2", ResourceKind::Mutex),
        ("sl", ResourceKind::Spinlock),
        ("permits", ResourceKind::Semaphore),
    ];
    let [m1, m2, sl, permits] = [0, 1, 2, 3].map(ResourceId);
    let [a, b, c, d, e] = [0, 1, 2, 3, 4];
    // (time in µs, thread, state, cpu)
    let changes = [
        (0, a, Running, Some(0)),
        (0, b, Running, Some(1)),
        (0, c, Ready, None),
        (0, d, Ready, None),
        (0, e, Ready, None),
        (2000, b, Blocked(Sleep), None),
        (2000, d, Switch, Some(1)),
        (2050, d, Running, Some(1)),
        (3000, a, Blocked(Lock(m2)), None),
        (3000, c, Switch, Some(0)),
        (3050, c, Running, Some(0)),
        (3500, d, Spin(sl), Some(1)),
        (5000, b, Ready, None),
        (5000, d, Ready, None),
        (5000, b, Switch, Some(1)),
        (5050, b, Running, Some(1)),
        (6000, c, Blocked(Semaphore(permits)), None),
        (6000, e, Switch, Some(0)),
        (6050, e, Running, Some(0)),
        (7000, b, Blocked(Lock(m1)), None),
        (7000, d, Switch, Some(1)),
        (7050, d, Running, Some(1)),
        (8000, c, Ready, None),
        (8000, e, Done, None),
        (8000, c, Switch, Some(0)),
        (8050, c, Running, Some(0)),
        (8500, c, Blocked(Join(ThreadId(a))), None),
        (9500, d, Done, None),
    ];
    Trace {
        machine: Machine {
            cpus: 2,
            ..Machine::default()
        },
        processes: vec![ProcessInfo {
            name: "main".to_string(),
        }],
        threads: names
            .iter()
            .map(|name| ThreadInfo {
                name: name.to_string(),
                process: ProcessId(0),
                parent: None,
                created: Time::ZERO,
                priority: 0,
                nice: 0,
                task_of: None,
            })
            .collect(),
        states: changes
            .iter()
            .map(|&(t, thread, state, cpu)| {
                StateChange::new(
                    Time(us(t).as_nanos()),
                    ThreadId(thread),
                    state,
                    cpu.map(CpuId),
                    None,
                )
            })
            .collect(),
        logs: Vec::new(),
        origins: Vec::new(),
        variables: Vec::new(),
        resources: resources
            .iter()
            .map(|&(name, kind)| ResourceInfo {
                name: name.to_string(),
                kind,
                internal: false,
            })
            .collect(),
        loops: Vec::new(),
        pools: Vec::new(),
        sync: Vec::new(),
        gil: Vec::new(),
        memory: Vec::new(),
        peak_memory: 0,
        process_peaks: Vec::new(),
        devices: Vec::new(),
        io: Vec::new(),
        deadlock: Some(Deadlock {
            time: Time(ms(7).as_nanos()),
            cycle: vec![
                WaitStep {
                    thread: ThreadId(b),
                    target: WaitTarget::Resource(m1),
                    origin: None,
                },
                WaitStep {
                    thread: ThreadId(a),
                    target: WaitTarget::Resource(m2),
                    origin: None,
                },
            ],
        }),
        races: Vec::new(),
        end: Time(us(9500).as_nanos()),
    }
}

fn run(sim: Simulation) -> Trace {
    let run = sim.run();
    assert!(run.completed(), "{:?}", run.outcome);
    run.trace
}

fn intervals(trace: &Trace) -> usize {
    trace.thread_intervals().iter().map(Vec::len).sum()
}

fn draw(trace: &Trace, dir: &Path, name: &str, title: &str, markers: Vec<Marker>) {
    let path = dir.join(name);
    let options = GanttOptions {
        title: title.to_string(),
        markers,
        ..GanttOptions::default()
    };
    gantt(trace, &path, &options).expect("the chart is written");
    println!(
        "{}: {} threads, {} intervals",
        path.display(),
        trace.threads.len(),
        intervals(trace)
    );
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "plots".to_string());
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).expect("the output folder can be created");

    let trace = three_threads();
    let helper = trace.thread_named("helper").expect("helper ran");
    let markers = vec![Marker {
        time: Time(ms(13).as_nanos()),
        label: "gamma starts helper".to_string(),
        threads: vec![helper],
        kind: MarkerKind::Note,
    }];
    draw(
        &trace,
        dir,
        "example_3.png",
        "three threads, rr 4ms",
        markers.clone(),
    );
    let options = GanttOptions {
        title: "three threads, rr 4ms".to_string(),
        format: ChartFormat::Svg,
        markers,
        ..GanttOptions::default()
    };
    let path = dir.join("example_3.svg");
    gantt(&trace, &path, &options).expect("the chart is written");
    println!("{}", path.display());

    draw(
        &deadlock(),
        dir,
        "example_deadlock.png",
        "two threads, two mutexes",
        Vec::new(),
    );

    let trace = thirty_threads();
    draw(
        &trace,
        dir,
        "example_30.png",
        "thirty threads, 4 CPUs",
        Vec::new(),
    );

    let trace = busy(2, 8, 400, ms(1));
    draw(
        &trace,
        dir,
        "example_10k.png",
        "8 threads, 10k intervals",
        Vec::new(),
    );

    let trace = busy(4, 64, 4200, ms(1));
    let n = intervals(&trace);
    let options = GanttOptions {
        title: "1M intervals".to_string(),
        ..GanttOptions::default()
    };
    for (format, name) in [
        (ChartFormat::Png, "example_1m.png"),
        (ChartFormat::Svg, "example_1m.svg"),
    ] {
        let path = dir.join(name);
        let options = GanttOptions {
            format,
            ..options.clone()
        };
        let start = Instant::now();
        gantt(&trace, &path, &options).expect("the chart is written");
        let elapsed = start.elapsed().as_secs_f64();
        if format == ChartFormat::Png {
            println!(
                "render 1M intervals: {elapsed:.2}s ({n} intervals, {})",
                path.display()
            );
        } else {
            println!(
                "render 1M intervals as SVG: {elapsed:.2}s ({})",
                path.display()
            );
        }
    }
}
