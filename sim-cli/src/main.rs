//! `simcli`: the command-line front of the simulator. It parses arguments,
//! runs scripts through `sim_core::script`, prints reports and writes charts
//! and traces; it holds no simulation semantics of its own.

mod args;
mod explore;
mod report;
mod run;
mod step;

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use clap::Parser;
use sim_core::script::{api, ErrorStage, Script};

use args::{Cli, Command};

/// Script evaluation allocates many small, short-lived values (Rhai's
/// dynamic values, argument lists); mimalloc serves them faster than the
/// system allocator. It counts the bytes in use for `--max-memory`.
#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes allocated and not yet freed, less what the OS threads' own counts
/// ([`DRIFT`]) have not handed in yet.
static ALLOCATED: AtomicI64 = AtomicI64::new(0);

/// How far an OS thread's count may drift before it is added to
/// [`ALLOCATED`]: the guard may read up to this much per OS thread too little.
const DRIFT_BYTES: i64 = 256 * 1024;

thread_local! {
    /// This OS thread's allocations since it last added them to [`ALLOCATED`].
    /// An atomic add at every allocation (Rhai makes many) is a locked
    /// instruction, which waits for every store in flight; a thread's own
    /// count is a plain one.
    static DRIFT: Cell<i64> = const { Cell::new(0) };
    /// Guard probes since the resident set was last read.
    static PROBES: Cell<u32> = const { Cell::new(0) };
}

/// Counts `bytes` more (or fewer) in use.
#[inline(always)]
fn count(bytes: i64) {
    let counted = DRIFT.try_with(|drift| {
        let sum = drift.get() + bytes;
        if sum.abs() >= DRIFT_BYTES {
            ALLOCATED.fetch_add(sum, Ordering::Relaxed);
            drift.set(0);
        } else {
            drift.set(sum);
        }
    });
    if counted.is_err() {
        // The thread is being torn down: count at once.
        ALLOCATED.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// mimalloc, counting the bytes in use.
struct Counting;

// SAFETY: every call is forwarded to mimalloc unchanged; the counter only
// adds and subtracts the sizes the caller passes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as i64);
        // SAFETY: forwarded with the caller's layout.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as i64);
        // SAFETY: forwarded with the caller's layout.
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as i64));
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as i64 - layout.size() as i64);
        // SAFETY: forwarded with the caller's arguments.
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

/// Resident bytes as last read.
static RESIDENT: AtomicU64 = AtomicU64::new(0);

/// The memory `--max-memory` guards: the heap the allocator counts, or the
/// resident set when that is larger (threads' coroutine stacks are mapped
/// outside the heap). The resident set is read once every 1,024 calls (of
/// this OS thread): the guard is asked at every script operation, and a
/// read of /proc costs microseconds (at every 256th call it was a tenth of
/// a script's run).
fn memory_in_use() -> u64 {
    let probes = PROBES.get();
    PROBES.set(probes.wrapping_add(1));
    if probes & 1023 == 0 {
        RESIDENT.store(resident(), Ordering::Relaxed);
    }
    let heap = ALLOCATED.load(Ordering::Relaxed) + DRIFT.get();
    (heap.max(0) as u64).max(RESIDENT.load(Ordering::Relaxed))
}

/// The process's resident set, from /proc (0 where there is none). The
/// file stays open: each read is one `pread`, with no path to walk.
fn resident() -> u64 {
    use std::os::unix::fs::FileExt;
    static STATM: std::sync::OnceLock<Option<std::fs::File>> = std::sync::OnceLock::new();
    let Some(file) = STATM.get_or_init(|| std::fs::File::open("/proc/self/statm").ok()) else {
        return 0;
    };
    let mut buffer = [0u8; 128];
    let Ok(read) = file.read_at(&mut buffer, 0) else {
        return 0;
    };
    // SAFETY: sysconf only reads a system value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(0) as u64;
    std::str::from_utf8(&buffer[..read])
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1))
        .and_then(|pages| pages.parse::<u64>().ok())
        .map_or(0, |pages| pages * page)
}

/// The default of `--max-memory`: half of the machine's RAM, or of the
/// address-space limit when one is set and smaller.
fn default_max_memory() -> u64 {
    // SAFETY: sysconf and getrlimit only read system values.
    let (pages, page, limit) = unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        libc::getrlimit(libc::RLIMIT_AS, &mut limit);
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
            limit.rlim_cur,
        )
    };
    let ram = (pages.max(0) as u64).saturating_mul(page.max(0) as u64);
    let ram = if ram == 0 { 8 << 30 } else { ram };
    // rlim_t is u64 on Linux, not everywhere.
    #[allow(clippy::unnecessary_cast)]
    let space = if limit == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        limit as u64
    };
    ram.min(space) / 2
}

/// Exit status of a script error, a failed run or a failed expectation.
const EXIT_FAILURE: u8 = 1;
/// Exit status of a usage error (bad arguments, unreadable script).
const EXIT_USAGE: u8 = 2;

/// Warns, before a script runs, of what will not do what its author
/// meant: an assignment to a captured variable, a call of a function that
/// does not exist, a `--set` key the script never reads.
pub fn warn(script: &Script, sets: &[(String, String)]) {
    let name = script.name();
    for (variable, line, column, method) in script.captured_assignments() {
        let how = method.map_or("assigns to".to_string(), |m| format!("calls {m}() on"));
        eprintln!(
            "warning: {name}:{line}:{column}: the closure {how} `{variable}`, which it captured: \
             a thread or task has its own copy, so nothing outside it sees the change; \
             share state through m.variable(...) or a channel"
        );
    }
    for (function, line, column, closest) in script.unknown_calls() {
        let guess = closest.map_or(String::new(), |c| format!(" (did you mean `{c}`?)"));
        eprintln!(
            "warning: {name}:{line}:{column}: no function is named `{function}`{guess}: \
             the call will fail when it runs; `simcli api` lists every function"
        );
    }
    for key in script.unread_settings(sets) {
        eprintln!(
            "warning: --set {key}: the script reads no `{key}` (no param(\"{key}\", ...), \
             no variable of that name), so the setting changes nothing"
        );
    }
}

/// Reads and compiles a script; on failure prints the error and gives the
/// exit status (usage for an unreadable file, failure for a bad script).
pub fn load_script(path: &std::path::Path) -> Result<Script, ExitCode> {
    Script::load(path).map_err(|error| {
        eprint!("{error}");
        ExitCode::from(if error.stage == ErrorStage::Load {
            EXIT_USAGE
        } else {
            EXIT_FAILURE
        })
    })
}

fn main() -> ExitCode {
    // A closed pipe (`simcli ... | head`) ends the program quietly, as it
    // does for other command-line tools, instead of panicking on print.
    // SAFETY: restoring the default disposition of a signal at start-up,
    // before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    sim_core::kernel::guard::limit_memory(
        memory_in_use,
        cli.max_memory.unwrap_or_else(default_max_memory),
    );
    match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Explore(args) => explore::explore(&args),
        Command::Step(args) => step::step(&args),
        Command::Check { script } => match load_script(&script) {
            Ok(script) => {
                warn(&script, &[]);
                println!("{}: ok", script.name());
                ExitCode::SUCCESS
            }
            Err(status) => status,
        },
        Command::Api {
            definitions: Some(dir),
        } => match sim_core::script::write_definitions(&dir) {
            Ok(()) => {
                println!("definitions: {}", dir.display());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: writing definitions into {}: {error}", dir.display());
                ExitCode::from(EXIT_USAGE)
            }
        },
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "simcli", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Api { definitions: None } => {
            let entries = api();
            let width = entries
                .iter()
                .map(|e| e.signature.len())
                .max()
                .unwrap_or(0)
                .min(60);
            for entry in entries {
                if entry.signature.len() > width {
                    println!("{}\n{:width$}  {}", entry.signature, "", entry.doc);
                } else {
                    println!("{:width$}  {}", entry.signature, entry.doc);
                }
            }
            ExitCode::SUCCESS
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_hands_in_its_count_once_it_drifts_far_enough() {
        let (kept, handed_in) = std::thread::spawn(|| {
            let start = DRIFT.get();
            count(DRIFT_BYTES - 1 - start);
            let kept = DRIFT.get();
            count(1);
            let handed_in = DRIFT.get();
            // Take the made-up bytes back out of the global count.
            count(start - DRIFT_BYTES);
            (kept, handed_in)
        })
        .join()
        .unwrap();
        assert_eq!(kept, DRIFT_BYTES - 1);
        assert_eq!(handed_in, 0);
    }

    #[test]
    fn the_guard_sees_a_large_allocation() {
        let block = vec![1u8; 64 << 20];
        assert!(memory_in_use() >= 64 << 20);
        drop(block);
    }
}
