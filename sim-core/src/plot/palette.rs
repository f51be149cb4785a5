//! One colour per thread state, and the colours of everything else a chart
//! draws.
//!
//! States are grouped by kind, not by target: every mutex wait is "lock",
//! whatever the mutex. Two more shades colour the rows of a device: a
//! request in service on a channel, and requests queued for one (drawn
//! darker the longer the queue, see [`queue_color`]). One more colours a
//! process's GIL row where a thread holds the interpreter lock. The order
//! of [`Shade::ALL`] is the order of the legend.

use plotters::style::RGBColor;

use crate::model::thread::{BlockReason, ThreadState};

/// The colour class of a thread state (its kind, without the resource), or
/// of what a device or GIL row shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Shade {
    Running,
    Ready,
    Switch,
    Spin,
    /// A new process starting (fork or exec, interpreter start-up).
    Spawn,
    Lock,
    Semaphore,
    RwLock,
    Condvar,
    Barrier,
    Channel,
    Join,
    Io,
    Sleep,
    Gil,
    Epoll,
    Event,
    Countdown,
    /// Device rows: requests waiting for a channel.
    Queued,
    /// Device rows: a request on a channel.
    Service,
    /// GIL rows: a thread holds the process's interpreter lock.
    GilHeld,
}

impl Shade {
    /// Every shade, in legend order.
    pub(crate) const ALL: [Shade; 21] = [
        Shade::Running,
        Shade::Ready,
        Shade::Switch,
        Shade::Spin,
        Shade::Spawn,
        Shade::Lock,
        Shade::Semaphore,
        Shade::RwLock,
        Shade::Condvar,
        Shade::Barrier,
        Shade::Channel,
        Shade::Join,
        Shade::Io,
        Shade::Sleep,
        Shade::Gil,
        Shade::Epoll,
        Shade::Event,
        Shade::Countdown,
        Shade::Queued,
        Shade::Service,
        Shade::GilHeld,
    ];

    /// How many shades there are.
    pub(crate) const COUNT: usize = Shade::ALL.len();

    /// The shade of a state; `None` for done, which is not drawn. Never
    /// [`Shade::Queued`] or [`Shade::Service`], which only devices show, nor
    /// [`Shade::GilHeld`], which only GIL rows show.
    pub(crate) fn of(state: ThreadState) -> Option<Shade> {
        Some(match state {
            ThreadState::Running => Shade::Running,
            ThreadState::Spawn => Shade::Spawn,
            ThreadState::Ready => Shade::Ready,
            ThreadState::Switch => Shade::Switch,
            ThreadState::Spin(_) => Shade::Spin,
            ThreadState::Blocked(reason) => match reason {
                BlockReason::Lock(_) => Shade::Lock,
                BlockReason::Semaphore(_) => Shade::Semaphore,
                BlockReason::RwLock(_) => Shade::RwLock,
                BlockReason::Condvar(_) => Shade::Condvar,
                BlockReason::Barrier(_) => Shade::Barrier,
                BlockReason::Channel(_) => Shade::Channel,
                BlockReason::Join(_) | BlockReason::Future(_) => Shade::Join,
                BlockReason::Io(_) => Shade::Io,
                BlockReason::Sleep => Shade::Sleep,
                BlockReason::Gil(_) => Shade::Gil,
                BlockReason::Epoll(_) => Shade::Epoll,
                BlockReason::Event(_) => Shade::Event,
                BlockReason::Countdown(_) => Shade::Countdown,
            },
            ThreadState::Done => return None,
        })
    }

    /// Position in [`Shade::ALL`], for dense tables.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The legend's name for it, as reports print the state.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Shade::Running => "running",
            Shade::Ready => "ready",
            Shade::Switch => "switch",
            Shade::Spin => "spin",
            Shade::Spawn => "spawn",
            Shade::Lock => "lock",
            Shade::Semaphore => "semaphore",
            Shade::RwLock => "rwlock",
            Shade::Condvar => "condvar",
            Shade::Barrier => "barrier",
            Shade::Channel => "channel",
            Shade::Join => "join",
            Shade::Io => "io",
            Shade::Sleep => "sleep",
            Shade::Gil => "gil",
            Shade::Epoll => "epoll",
            Shade::Event => "event",
            Shade::Countdown => "countdown",
            Shade::Queued => "queued",
            Shade::Service => "in service",
            Shade::GilHeld => "gil held",
        }
    }

    /// Its colour. On-CPU states are saturated (green running, dark green
    /// spawn, orange switch, magenta spin), waiting for a CPU is yellow, blocking waits on
    /// synchronization are reds and purples, waits on the outside world
    /// (io, epoll, sleep) are blues, and the interpreter lock is brown. A
    /// device's channel at work is a navy darker than the io its submitter
    /// waits in; its queue is orange, the colour of two queued requests.
    /// A held GIL is olive, apart from the brown of waiting for it.
    pub(crate) fn color(self) -> RGBColor {
        match self {
            Shade::Running => RGBColor(0x2f, 0x9e, 0x44),
            Shade::Ready => RGBColor(0xf5, 0xc5, 0x18),
            Shade::Switch => RGBColor(0xf0, 0x6b, 0x00),
            Shade::Spin => RGBColor(0xe6, 0x49, 0x80),
            Shade::Spawn => RGBColor(0x1b, 0x5e, 0x20),
            Shade::Lock => RGBColor(0xc9, 0x2a, 0x2a),
            Shade::Semaphore => RGBColor(0xff, 0x87, 0x87),
            Shade::RwLock => RGBColor(0x86, 0x2e, 0x9c),
            Shade::Condvar => RGBColor(0xb1, 0x97, 0xfc),
            Shade::Barrier => RGBColor(0x5f, 0x3d, 0xc4),
            Shade::Channel => RGBColor(0x0c, 0xa6, 0x78),
            Shade::Join => RGBColor(0x86, 0x8e, 0x96),
            Shade::Io => RGBColor(0x19, 0x71, 0xc2),
            Shade::Sleep => RGBColor(0xa5, 0xd8, 0xff),
            Shade::Gil => RGBColor(0x8d, 0x5b, 0x3a),
            Shade::Epoll => RGBColor(0x15, 0xaa, 0xbf),
            Shade::Event => RGBColor(0xe6, 0x77, 0xc8),
            Shade::Countdown => RGBColor(0x5c, 0x1a, 0x4e),
            Shade::Queued => queue_color(2),
            Shade::Service => RGBColor(0x1c, 0x36, 0x7a),
            Shade::GilHeld => RGBColor(0x8a, 0x8b, 0x1e),
        }
    }
}

/// The queue lane's colours, lightest first: one request waiting, two, three
/// or four, five to eight, nine or more.
const QUEUE_RAMP: [RGBColor; 5] = [
    RGBColor(0xff, 0xd8, 0xa8),
    RGBColor(0xff, 0xa9, 0x4d),
    RGBColor(0xe8, 0x59, 0x0c),
    RGBColor(0xb0, 0x3a, 0x05),
    RGBColor(0x6e, 0x24, 0x03),
];

/// The step of [`QUEUE_RAMP`] for a queue of `len` requests (at least one).
pub(crate) fn queue_level(len: u32) -> u8 {
    match len {
        0..=1 => 0,
        2 => 1,
        3..=4 => 2,
        5..=8 => 3,
        _ => 4,
    }
}

/// The colour of a queue of `len` requests: darker the longer it is.
pub(crate) fn queue_color(len: u32) -> RGBColor {
    level_color(queue_level(len))
}

/// The colour of a step of the queue ramp (see [`queue_level`]).
pub(crate) fn level_color(level: u8) -> RGBColor {
    QUEUE_RAMP[usize::from(level).min(QUEUE_RAMP.len() - 1)]
}

/// Text on a bar of colour `fill`: black on light colours, white on dark.
pub(crate) fn text_on(fill: RGBColor) -> RGBColor {
    let RGBColor(r, g, b) = fill;
    let luma = 299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b);
    if luma > 150_000 {
        RGBColor(0x21, 0x25, 0x29)
    } else {
        WHITE
    }
}

/// The page.
pub(crate) const WHITE: RGBColor = RGBColor(0xff, 0xff, 0xff);
/// Titles, labels, axis.
pub(crate) const INK: RGBColor = RGBColor(0x21, 0x25, 0x29);
/// Secondary text: row labels of grouped rows, notes.
pub(crate) const MUTED: RGBColor = RGBColor(0x6c, 0x75, 0x7d);
/// Vertical grid lines at the axis ticks.
pub(crate) const GRID: RGBColor = RGBColor(0xe3, 0xe6, 0xea);
/// Every other row's background, so long rows are easy to follow.
pub(crate) const STRIPE: RGBColor = RGBColor(0xf6, 0xf7, 0xf9);
/// GIL rows: the triangle above a drop request.
pub(crate) const DROP_REQUEST: RGBColor = INK;
/// GIL rows: the edge that ends a hold its holder dropped on request.
pub(crate) const FORCED_DROP: RGBColor = RGBColor(0x2b, 0x2c, 0x05);
/// The memory strip: the line of bytes in use.
pub(crate) const MEMORY: RGBColor = RGBColor(0x0b, 0x72, 0x85);
/// The memory strip: the area under the line.
pub(crate) const MEMORY_FILL: RGBColor = RGBColor(0xc5, 0xea, 0xf0);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ProcessId, ResourceId, ThreadId};

    #[test]
    fn every_drawn_state_has_its_own_colour_and_done_has_none() {
        let r = ResourceId(0);
        let states = [
            ThreadState::Running,
            ThreadState::Ready,
            ThreadState::Switch,
            ThreadState::Spin(r),
            ThreadState::Spawn,
            ThreadState::Blocked(BlockReason::Lock(r)),
            ThreadState::Blocked(BlockReason::Semaphore(r)),
            ThreadState::Blocked(BlockReason::RwLock(r)),
            ThreadState::Blocked(BlockReason::Condvar(r)),
            ThreadState::Blocked(BlockReason::Barrier(r)),
            ThreadState::Blocked(BlockReason::Channel(r)),
            ThreadState::Blocked(BlockReason::Join(ThreadId(1))),
            ThreadState::Blocked(BlockReason::Io(r)),
            ThreadState::Blocked(BlockReason::Sleep),
            ThreadState::Blocked(BlockReason::Gil(ProcessId(0))),
            ThreadState::Blocked(BlockReason::Epoll(r)),
            ThreadState::Blocked(BlockReason::Event(r)),
            ThreadState::Blocked(BlockReason::Countdown(r)),
        ];
        let shades: Vec<Shade> = states.iter().map(|&s| Shade::of(s).unwrap()).collect();
        // Thread states first, then the two shades only devices show and
        // the one of GIL rows.
        assert_eq!(shades, Shade::ALL[..shades.len()]);
        assert_eq!(
            Shade::ALL[shades.len()..],
            [Shade::Queued, Shade::Service, Shade::GilHeld]
        );
        for (state, shade) in states.iter().zip(&shades) {
            assert_eq!(state.name(), shade.name());
        }
        for (i, a) in Shade::ALL.iter().enumerate() {
            assert_eq!(a.index(), i);
            for b in &Shade::ALL[i + 1..] {
                assert_ne!(a.color(), b.color(), "{a:?} and {b:?}");
            }
        }
        assert_eq!(Shade::of(ThreadState::Done), None);
    }

    #[test]
    fn longer_queues_are_darker() {
        let luma = |c: RGBColor| 299 * u32::from(c.0) + 587 * u32::from(c.1) + 114 * u32::from(c.2);
        let steps: Vec<RGBColor> = [1, 2, 3, 5, 9, 1000].map(queue_color).to_vec();
        for pair in steps.windows(2).take(4) {
            assert!(luma(pair[0]) > luma(pair[1]), "{pair:?}");
        }
        assert_eq!(steps[4], steps[5]);
        assert_eq!(queue_color(4), queue_color(3));
        assert_eq!(queue_color(0), queue_color(1));
    }
}
