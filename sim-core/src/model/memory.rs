//! Memory owned by a process: variables only its threads may touch.
//!
//! Processes share nothing. A thread of another process that touches a
//! variable is a misuse the kernel reports with both process names.

use serde::{Deserialize, Serialize};

use crate::ids::{ProcessId, VarId};

/// A variable in a process's memory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variable {
    /// Its name, unique within the simulation.
    pub name: String,
    /// The process whose threads may touch it.
    pub owner: ProcessId,
    /// Its current value.
    pub value: i64,
}

/// All variables of a simulation, indexed by [`VarId`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Memory {
    vars: Vec<Variable>,
}

impl Memory {
    /// Declares a variable and returns its id.
    pub(crate) fn declare(&mut self, owner: ProcessId, name: &str, init: i64) -> VarId {
        self.vars.push(Variable {
            name: name.to_string(),
            owner,
            value: init,
        });
        VarId(self.vars.len() as u32 - 1)
    }

    pub(crate) fn get(&self, var: VarId) -> Option<&Variable> {
        self.vars.get(var.index())
    }

    pub(crate) fn get_mut(&mut self, var: VarId) -> Option<&mut Variable> {
        self.vars.get_mut(var.index())
    }

    pub(crate) fn into_vec(self) -> Vec<Variable> {
        self.vars
    }
}
