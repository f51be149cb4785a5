//! Coroutine stacks carved from large regions and recycled, and fetched
//! into the cache before a deep one resumes ([`prefetch`]).
//!
//! One `mmap` per stack does not scale: Linux allows 65,530 mappings per
//! process (`vm.max_map_count`), and a guard page splits a mapping in two, so
//! about 32,000 separately mapped stacks is the ceiling. Here a region of many
//! stacks is one mapping, reserved with `MAP_NORESERVE` so that only the pages a
//! thread really touches cost memory. A stack is taken from the pool when its
//! thread is first dispatched and returned when the thread ends, last in first
//! out, so a returned stack is reused while its pages are still in cache.
//!
//! Guard pages: while the number of mappings stays under [`GUARD_BUDGET`], each
//! stack gets a `PROT_NONE` guard page below it, so an overflow faults at once.
//! Past that budget, stacks are carved without guards (the only way to have
//! 100,000 at once); the thread context then checks, at every operation, that
//! the stack has at least [`RED_ZONE`] bytes left, and fails the thread with a
//! clear error when it has not.
//!
//! The pool belongs to the OS thread and outlives simulations, so exploration,
//! which runs thousands of simulations, pays for the pages once. Regions are
//! never unmapped; their pages are reused by later simulations on the thread.

use std::cell::{Cell, RefCell};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};

use corosensei::stack::{Stack, StackPointer};

/// How many mappings the guarded stacks may use in all (2 per guarded stack).
pub const GUARD_BUDGET: usize = 24_000;
/// Bytes a stack must have left at each operation of an unguarded stack.
pub const RED_ZONE: usize = 16 * 1024;
/// Smallest stack size accepted.
pub const MIN_STACK: usize = 16 * 1024;
/// Mappings made by every pool of the process: the limit is the
/// process's, whatever OS thread maps.
static MAPPINGS: AtomicUsize = AtomicUsize::new(0);
/// Target size of one region.
const REGION_BYTES: usize = 64 * 1024 * 1024;

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as usize
    } else {
        4096
    }
}

/// A stack from the pool. Returns to the pool when dropped.
#[derive(Debug)]
pub(crate) struct PooledStack {
    /// Highest address (the stack grows down from here).
    base: usize,
    /// Lowest usable address.
    bottom: usize,
    /// Lowest address including the guard page, if any.
    limit: usize,
    /// Whether a guard page sits below `bottom`.
    guarded: bool,
}

impl PooledStack {
    /// Takes a stack of `size` usable bytes (rounded up to whole pages).
    pub(crate) fn take(size: usize) -> std::io::Result<PooledStack> {
        POOL.with(|pool| pool.borrow_mut().take(size))
    }

    /// The lowest usable address, for the red-zone check.
    /// Highest address: the stack grows down from here.
    pub(crate) fn top(&self) -> usize {
        self.base
    }

    pub(crate) fn bottom(&self) -> usize {
        self.bottom
    }

    /// Whether an overflow would hit a guard page.
    pub(crate) fn guarded(&self) -> bool {
        self.guarded
    }
}

impl Drop for PooledStack {
    fn drop(&mut self) {
        let (base, bottom, limit, guarded) = (self.base, self.bottom, self.limit, self.guarded);
        // During thread teardown the pool may be gone: the memory then simply
        // stays mapped until the process exits.
        let _ = POOL.try_with(|pool| {
            let stack = PooledStack {
                base,
                bottom,
                limit,
                guarded,
            };
            match pool.try_borrow_mut() {
                Ok(mut pool) => pool.give_back(stack),
                // Dropped while the pool maps (never expected): leak it.
                Err(_) => std::mem::forget(stack),
            }
        });
    }
}

// SAFETY: `base` and `limit` bound memory that this stack owns exclusively
// until it is dropped; both are page-aligned, so aligned to STACK_ALIGNMENT.
// Guarded stacks meet corosensei's guard-page requirement; unguarded ones are
// checked against RED_ZONE at every operation (see the module docs).
unsafe impl Stack for PooledStack {
    fn base(&self) -> StackPointer {
        StackPointer::new(self.base).expect("non-null stack")
    }
    fn limit(&self) -> StackPointer {
        StackPointer::new(self.limit).expect("non-null stack")
    }
}

#[derive(Default)]
struct SizeClass {
    size: usize,
    free: Vec<PooledStack>,
}

#[derive(Default)]
struct StackPool {
    classes: Vec<SizeClass>,
}

thread_local! {
    static POOL: RefCell<StackPool> = RefCell::new(StackPool::default());
}

impl StackPool {
    fn take(&mut self, size: usize) -> std::io::Result<PooledStack> {
        let page = page_size();
        let size = size.max(MIN_STACK).div_ceil(page) * page;
        let class = match self.classes.iter().position(|c| c.size == size) {
            Some(i) => i,
            None => {
                self.classes.push(SizeClass {
                    size,
                    free: Vec::new(),
                });
                self.classes.len() - 1
            }
        };
        if self.classes[class].free.is_empty() {
            let fresh = self.map_region(size, page)?;
            // Reverse, so that stacks are handed out from the low end first.
            self.classes[class].free.extend(fresh.into_iter().rev());
        }
        Ok(self.classes[class].free.pop().expect("refilled"))
    }

    fn give_back(&mut self, stack: PooledStack) {
        let size = stack.base - stack.bottom;
        match self.classes.iter_mut().find(|c| c.size == size) {
            Some(class) => class.free.push(stack),
            None => std::mem::forget(stack),
        }
    }

    fn map_region(&mut self, size: usize, page: usize) -> std::io::Result<Vec<PooledStack>> {
        let count = (REGION_BYTES / (size + page)).max(1);
        let mut guarded = MAPPINGS.load(Ordering::Relaxed) + 2 * count < GUARD_BUDGET;
        let slot = if guarded { size + page } else { size };
        let bytes = slot * count;
        // SAFETY: an anonymous private mapping at an address the kernel picks.
        let start = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if start == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let start = start as usize;
        MAPPINGS.fetch_add(1, Ordering::Relaxed);
        let mut stacks = Vec::with_capacity(count);
        for i in 0..count {
            let limit = start + i * slot;
            if guarded {
                // SAFETY: the page lies inside the mapping made above.
                let rc =
                    unsafe { libc::mprotect(limit as *mut libc::c_void, page, libc::PROT_NONE) };
                if rc == 0 {
                    MAPPINGS.fetch_add(2, Ordering::Relaxed);
                } else {
                    // Out of mappings (other threads of the process map
                    // too): this stack and the rest go without a guard,
                    // checked by the red zone instead.
                    guarded = false;
                }
            }
            // A slot keeps its guard page's room, guarded or not.
            let bottom = if slot > size { limit + page } else { limit };
            stacks.push(PooledStack {
                base: bottom + size,
                bottom,
                limit,
                guarded,
            });
        }
        Ok(stacks)
    }
}

/// The address of a local variable: where the stack pointer is, roughly.
#[inline(always)]
pub(crate) fn approximate_stack_pointer() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

thread_local! {
    /// Where the last coroutine to park had its stack pointer.
    static PARKED_AT: Cell<usize> = const { Cell::new(0) };
}

/// Notes, as a coroutine parks, how deep its stack is (read by
/// [`parked_at`] once it has yielded).
#[inline(always)]
pub(crate) fn note_parked() {
    PARKED_AT.set(approximate_stack_pointer());
}

/// Where the coroutine that just yielded had its stack pointer.
#[inline(always)]
pub(crate) fn parked_at() -> usize {
    PARKED_AT.get()
}

/// Bytes below a parked stack pointer that the switch itself uses.
const SWITCH_FRAMES: usize = 512;
/// Shallowest parked stack worth fetching: a thread of the Rust API parks
/// 1-2 KiB deep, and fetching that costs more than the misses it saves
/// (fetched at every wake and resume, `throughput 1000 4 1000` ran 13%
/// slower).
const MIN_PREFETCH: usize = 4 * 1024;
/// Deepest parked stack worth fetching whole.
const MAX_PREFETCH: usize = 32 * 1024;

/// Asks the cache for the part of a stack that a parked coroutine uses,
/// from `parked` (see [`parked_at`]) up to `top`, before it is resumed.
///
/// With thousands of threads, their stacks fall out of the cache between
/// two resumes, and a resumed coroutine misses on every frame it returns
/// through and every frame it writes again. A thread of a Rhai script
/// parks 6-12 KiB deep: cachegrind counts about 190 misses of a 1 MiB
/// cache per lock cycle at 1,000 threads, against 10 at 10 threads. The
/// misses come one after another, each return waiting for the last;
/// fetched ahead, they overlap. Only stacks parked between
/// [`MIN_PREFETCH`] and [`MAX_PREFETCH`] deep are fetched (so not a thread
/// that has not parked yet, whose `parked` is 0).
#[inline(always)]
pub(crate) fn prefetch(parked: usize, top: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let span = top.wrapping_sub(parked);
        if !(MIN_PREFETCH..=MAX_PREFETCH).contains(&span) {
            return;
        }
        let mut line = (parked - SWITCH_FRAMES) & !63;
        while line < top {
            // SAFETY: a prefetch is a hint; it never faults, whatever the address.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    line as *const i8,
                )
            };
            line += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (parked, top);
}

/// Stack bounds for a guard-less check, `None` for a guarded stack.
pub(crate) fn red_zone_floor(stack: &PooledStack) -> Option<NonZeroUsize> {
    if stack.guarded() {
        None
    } else {
        NonZeroUsize::new(stack.bottom() + RED_ZONE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_are_recycled_last_in_first_out() {
        let a = PooledStack::take(64 * 1024).unwrap();
        let a_base = a.base;
        drop(a);
        let b = PooledStack::take(64 * 1024).unwrap();
        assert_eq!(b.base, a_base);
        assert!(b.base - b.bottom >= 64 * 1024);
    }

    #[test]
    fn stacks_do_not_overlap() {
        let stacks: Vec<_> = (0..300)
            .map(|_| PooledStack::take(32 * 1024).unwrap())
            .collect();
        let mut ranges: Vec<_> = stacks.iter().map(|s| (s.limit, s.base)).collect();
        ranges.sort();
        for pair in ranges.windows(2) {
            assert!(pair[0].1 <= pair[1].0);
        }
    }

    #[test]
    fn a_parked_coroutine_notes_a_depth_within_its_own_stack() {
        let stack = PooledStack::take(64 * 1024).unwrap();
        let (bottom, top) = (stack.bottom(), stack.top());
        let mut coroutine = corosensei::Coroutine::with_stack(stack, |yielder, ()| {
            note_parked();
            yielder.suspend(());
        });
        assert!(coroutine.resume(()).as_yield().is_some());
        let parked = parked_at();
        assert!(
            bottom < parked && parked < top,
            "{bottom:#x} < {parked:#x} < {top:#x}"
        );
        // The span a resume fetches is the stack in use, well under a page
        // for this body, and prefetching it (or anything) is harmless.
        assert!(top - parked < 4096);
        prefetch(parked, top);
        prefetch(0, top);
        assert!(coroutine.resume(()).as_return().is_some());
    }
}
