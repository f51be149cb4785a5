//! 100,000 threads alive at once: every thread starts (and so owns a stack)
//! and sleeps before any of them finishes.
//!
//! Demonstrates: stacks carved from large regions, allocated at first
//! dispatch and recycled at exit, beyond the ~32,000 mappings that one mmap
//! per stack allows.
//!
//! With `--stackless` the threads are stackless (`add_stackless_thread`):
//! no stack at all, only their futures.
//!
//! Run: `/usr/bin/time -v cargo run --release -p sim-core --example many_threads [--stackless] [N]`
//! and divide the peak RSS by N. The example also prints the peak of the
//! heap per thread (counted by its allocator): the rest of the RSS is the
//! stacks' touched pages and the program itself.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// The system allocator, counting the bytes in use and their peak.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call goes to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let grown = new_size - layout.size();
            let now = IN_USE.fetch_add(grown, Ordering::Relaxed) + grown;
            PEAK.fetch_max(now, Ordering::Relaxed);
        } else {
            IN_USE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

use sim_core::{ms, us, Machine, Simulation, ThreadState};

fn main() {
    let stackless = std::env::args().any(|a| a == "--stackless");
    let n: u64 = std::env::args()
        .skip(1)
        .find(|a| a != "--stackless")
        .map_or(100_000, |a| a.parse().expect("a thread count"));
    let machine = Machine {
        cpus: 4,
        stack_size: 64 * 1024,
        ..Machine::default()
    };
    let mut sim = Simulation::new(machine).expect("a valid machine");
    for i in 0..n {
        let name = format!("t{i}");
        if stackless {
            sim.add_stackless_thread(&name, |ctx| async move {
                ctx.compute(us(1)).await;
                ctx.sleep(ms(500)).await;
                ctx.compute(us(1)).await;
            });
        } else {
            sim.add_thread(&name, |ctx| {
                ctx.compute(us(1));
                ctx.sleep(ms(500));
                ctx.compute(us(1));
            });
        }
    }
    let start = Instant::now();
    let run = sim.run();
    let elapsed = start.elapsed().as_secs_f64();
    assert!(run.completed(), "{:?}", run.outcome);
    // How many threads were alive (started, not finished) at the peak.
    let mut alive: i64 = 0;
    let mut peak = 0;
    let mut started = vec![false; run.trace.threads.len()];
    for change in &run.trace.states {
        match change.state() {
            ThreadState::Running if !started[change.thread().index()] => {
                started[change.thread().index()] = true;
                alive += 1;
                peak = peak.max(alive);
            }
            ThreadState::Done => alive -= 1,
            _ => {}
        }
    }
    let kind = if stackless { "stackless" } else { "stackful" };
    println!("threads: {n} ({kind}), peak alive at once: {peak}");
    println!("simulated makespan: {}", run.trace.makespan());
    println!("wall time: {elapsed:.3}s");
    let peak = PEAK.load(Ordering::Relaxed);
    println!(
        "peak heap: {} KiB, {} bytes per thread",
        peak / 1024,
        peak / n.max(1) as usize
    );
}
