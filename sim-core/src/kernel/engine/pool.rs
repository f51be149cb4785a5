//! The kernel side of executors (`kernel::pool`): pipes that cross
//! processes from their first message, and what the interpreter's exit does
//! to idle workers.

use std::any::Any;

use super::Engine;
use crate::ids::ResourceId;
use crate::model::sync::{Message, Resource};

/// Makes the value that tells an idle receiver to stop.
pub(crate) type StopValue = fn() -> Box<dyn Any>;

impl Engine {
    /// Makes `channel` a pipe from its first message: every message pays to
    /// be pickled and unpickled, even one sent before a receiver of the
    /// other process is waiting.
    pub(crate) fn mark_pipe(&mut self, channel: ResourceId) {
        if let Resource::Channel { crossed, .. } = &mut self.resources[channel.index()] {
            *crossed = true;
        }
    }

    /// At interpreter exit (nothing else left to happen), whoever waits on
    /// `channel` receives `stop()`, as CPython's `_python_exit` wakes every
    /// idle worker with `None` and joins it.
    pub(crate) fn on_exit(&mut self, channel: ResourceId, stop: StopValue) {
        self.exits.push((channel, stop));
    }

    /// How many threads wait on the exit channels: idle pool workers.
    pub(super) fn idle_at_exit(&self) -> usize {
        self.exits
            .iter()
            .map(|&(channel, _)| match &self.resources[channel.index()] {
                Resource::Channel { receivers, .. } => receivers.len(),
                _ => 0,
            })
            .sum()
    }

    /// Nothing is left to happen: the idle receivers of the exit channels
    /// get their stop value. True when that woke anyone, so the run goes on.
    pub(super) fn interpreter_exit(&mut self) -> bool {
        let mut woke = false;
        for i in 0..self.exits.len() {
            let (channel, stop) = self.exits[i];
            let Resource::Channel { receivers, .. } = &mut self.resources[channel.index()] else {
                continue;
            };
            let idle: Vec<_> = receivers.drain().collect();
            for waiter in idle {
                let from = self.threads[waiter.thread.index()].process;
                let message = Message {
                    value: stop(),
                    from,
                    bytes: 0,
                };
                self.deliver(waiter.thread, message);
                woke = true;
            }
        }
        woke
    }
}
