//! Shared memory in scripts: `m.variable(name, init)` declares a variable
//! that simulated threads share; inside bodies `v.load()`, `v.store(x)`
//! (plain, race-checked) and `v.fetch_add(d)`, `v.compare_exchange(old, new)`
//! (atomic). `r.value(name)` or `v.value` reads a final value.

use rhai::{Engine, EvalAltResult, NativeCallContext, INT};

use super::api::{def, getter};
use super::current;
use super::error::fault;
use super::machine::MachineHandle;
use crate::ids::VarId;

/// A script's handle to a variable of one machine.
#[derive(Clone, Debug)]
pub(crate) struct VariableH {
    machine: MachineHandle,
    id: VarId,
}

impl VariableH {
    pub(crate) fn new(machine: MachineHandle, id: VarId) -> Self {
        VariableH { machine, id }
    }

    /// Its machine and variable, unchecked.
    pub(crate) fn parts(&self) -> (&MachineHandle, VarId) {
        (&self.machine, self.id)
    }

    /// The variable, checked to belong to the machine that is running.
    fn id(&self, call: &NativeCallContext) -> Result<VarId, Box<EvalAltResult>> {
        self.machine.check_running(call, "variable")?;
        Ok(self.id)
    }
}

/// Registers the `Variable` type and its operations.
pub(crate) fn register(engine: &mut Engine) {
    engine.register_type_with_name::<VariableH>("Variable");
    def(
        engine,
        "load",
        &["self: Variable", "int"],
        "Inside a body: reads the variable (a plain read, checked for data races). Takes no time.",
        |call: NativeCallContext, v: &mut VariableH| {
            let id = v.id(&call)?;
            current::operation(&call, |ctx| ctx.load(id))
        },
    );
    def(
        engine,
        "store",
        &["self: Variable", "value: int", "()"],
        "Inside a body: writes the variable (a plain write, checked for data races). Takes no time.",
        |call: NativeCallContext, v: &mut VariableH, value: INT| {
            let id = v.id(&call)?;
            current::operation(&call, |ctx| ctx.store(id, value))
        },
    );
    def(
        engine,
        "fetch_add",
        &["self: Variable", "delta: int", "int"],
        "Inside a body: adds `delta` atomically and returns the previous value. Takes no time.",
        |call: NativeCallContext, v: &mut VariableH, delta: INT| {
            let id = v.id(&call)?;
            current::operation(&call, |ctx| ctx.fetch_add(id, delta))
        },
    );
    getter(
        engine,
        "value",
        &["self: Variable", "int"],
        "The variable's value at the end of its machine's last run (as r.value(name)); a body reads it with v.load().",
        |call: NativeCallContext, v: &mut VariableH| -> Result<INT, Box<EvalAltResult>> {
            if current::in_body() {
                return Err(fault(
                    "v.value is the value after the run; a thread reads a shared variable with v.load()",
                    Some("use v.load() inside a body (a read checked for data races)"),
                    call.call_position(),
                ));
            }
            v.machine.final_value(v.id).map(|x| x as INT).ok_or_else(|| {
                fault(
                    "the variable's machine has not run yet: it has no final value",
                    Some("read it after m.run(), e.g. let r = m.run(); print(v.value);"),
                    call.call_position(),
                )
            })
        },
    );
    def(
        engine,
        "compare_exchange",
        &["self: Variable", "current: int", "new: int", "bool"],
        "Inside a body: sets the variable to `new` if it holds `current`, atomically; says whether it did.",
        |call: NativeCallContext, v: &mut VariableH, current: INT, new: INT| {
            let id = v.id(&call)?;
            current::operation(&call, |ctx| ctx.compare_exchange(id, current, new).is_ok())
        },
    );
}
