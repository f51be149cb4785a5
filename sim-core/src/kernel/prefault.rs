//! Mapping a growing list's memory before it is written.
//!
//! A long run appends millions of state changes to its trace. Left alone, Linux maps that memory at first touch,
//! one page fault per 4 KiB: 24,700 faults and a fifth of that run. Instead,
//! as the trace reaches the end of its mapped memory, the engine asks for the
//! next [`AHEAD`] bytes in one call (`MADV_POPULATE_WRITE`, Linux 5.14), so
//! that the process keeps no more memory than the trace holds plus one chunk.
//! Small lists (below [`SMALL_BYTES`], the many short runs of an exploration)
//! are left to the allocator: the call would cost more than their faults.

/// Bytes mapped ahead of a list's end at a time.
const AHEAD: usize = 1 << 20;
/// Lists with less room than this are not prefaulted.
const SMALL_BYTES: usize = 256 * 1024;

/// Makes room in `list` for at least `room` more elements and maps the
/// memory of up to [`AHEAD`] bytes of the elements to come. Returns the
/// length up to which `list` is ready (at least `room` past its end): call
/// again before it gets there.
pub(crate) fn prepare<T>(list: &mut Vec<T>, room: usize) -> usize {
    // Amortized growth, as pushes would do.
    list.reserve(room);
    let size = std::mem::size_of::<T>().max(1);
    if list.capacity() * size < SMALL_BYTES {
        return list.capacity();
    }
    let ready = (list.len() + (AHEAD / size).max(room)).min(list.capacity());
    let start = list.as_ptr() as usize + list.len() * size;
    populate(start, (ready - list.len()) * size);
    ready
}

/// Asks the kernel to map `len` bytes from `start` for writing, whole pages
/// only. Advice only: on failure (an older kernel) pages fault in as usual.
#[cfg(target_os = "linux")]
fn populate(start: usize, len: usize) {
    const PAGE: usize = 4096;
    let from = start.next_multiple_of(PAGE);
    let to = (start + len) / PAGE * PAGE;
    if to > from {
        // SAFETY: the range lies inside the spare capacity of a live vector,
        // memory its allocation owns; populating changes no contents.
        unsafe {
            libc::madvise(
                from as *mut libc::c_void,
                to - from,
                libc::MADV_POPULATE_WRITE,
            );
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn populate(_start: usize, _len: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_bounds_the_pushes_until_the_next_call() {
        let mut list: Vec<[u64; 3]> = Vec::new();
        let mut ready = 0;
        let mut calls = 0;
        for i in 0..200_000u64 {
            if list.len() + 2 > ready {
                ready = prepare(&mut list, 2);
                calls += 1;
                assert!(ready >= list.len() + 2 && ready <= list.capacity());
            }
            list.push([i, i, i]);
        }
        assert!(list.iter().enumerate().all(|(i, e)| e[0] == i as u64));
        // One call per megabyte once large, not one per element.
        assert!(calls < 40, "{calls} calls");
    }
}
