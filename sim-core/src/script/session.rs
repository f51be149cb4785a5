//! The state of one evaluation of a script: the engine and compiled script
//! that bodies call back into, the machines it declared, the runs it made and
//! what it printed. Bindings reach it through a thread-local, set for the
//! duration of [`super::Script::run`].

use std::cell::RefCell;
use std::rc::Rc;

use rhai::{Engine, AST};

use crate::kernel::{Choice, Chooser, ChooserError};

use super::error::ScriptError;
use super::machine::MachineHandle;
use super::{Output, RunOptions, ScriptRun};

/// One evaluation of a script.
pub(crate) struct Session {
    pub(crate) engine: Rc<Engine>,
    pub(crate) ast: Rc<AST>,
    pub(crate) bodies: Rc<super::stackless::Bodies>,
    pub(crate) script: Rc<str>,
    pub(crate) source: Rc<str>,
    pub(crate) options: RunOptions,
    pub(crate) machines: Vec<MachineHandle>,
    pub(crate) runs: Vec<Rc<ScriptRun>>,
    pub(crate) output: Vec<Output>,
    /// The chooser every machine run of this evaluation shares, if not the
    /// default one.
    pub(crate) chooser: Option<SharedChooser>,
    /// The machine whose run is in progress.
    pub(crate) running: Option<MachineHandle>,
    /// The pools of the run in progress, by declaration index.
    pub(crate) pools: Vec<crate::kernel::Pool>,
    /// The error that ended the last run, with its script position.
    pub(crate) failure: Option<ScriptError>,
}

/// One chooser shared by every machine a script runs, so that a schedule is
/// one list of decisions for the whole script, each run continuing where the
/// previous stopped.
#[derive(Clone)]
pub(crate) struct SharedChooser(pub(crate) Rc<RefCell<Box<dyn Chooser>>>);

impl std::fmt::Debug for SharedChooser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedChooser")
    }
}

impl Chooser for SharedChooser {
    fn choose(&mut self, choice: &Choice<'_>) -> Result<usize, ChooserError> {
        self.0.borrow_mut().choose(choice)
    }

    fn wants_threads(&self) -> bool {
        self.0.borrow().wants_threads()
    }

    fn yielded(&mut self, thread: crate::ids::ThreadId) {
        self.0.borrow_mut().yielded(thread);
    }

    fn wants_snapshot(&self) -> bool {
        self.0.borrow().wants_snapshot()
    }

    fn choose_seeing(
        &mut self,
        choice: &Choice<'_>,
        snapshot: &dyn Fn() -> crate::kernel::Snapshot,
    ) -> Result<usize, ChooserError> {
        self.0.borrow_mut().choose_seeing(choice, snapshot)
    }

    fn run_ended(&mut self, snapshot: &dyn Fn() -> crate::kernel::Snapshot) {
        self.0.borrow_mut().run_ended(snapshot);
    }
}

thread_local! {
    static SESSION: RefCell<Option<Session>> = const { RefCell::new(None) };
}

/// Starts an evaluation. Nested evaluations are not supported.
pub(crate) fn begin(session: Session) {
    SESSION.with_borrow_mut(|slot| {
        assert!(slot.is_none(), "one script evaluation at a time per thread");
        *slot = Some(session);
    });
}

/// Ends the evaluation and returns its state.
pub(crate) fn end() -> Session {
    SESSION
        .with_borrow_mut(Option::take)
        .expect("a script evaluation in progress")
}

/// Runs `f` on the current evaluation. Never call back into the script
/// from `f`: the session is borrowed meanwhile.
pub(crate) fn with<R>(f: impl FnOnce(&mut Session) -> R) -> R {
    SESSION.with_borrow_mut(|slot| f(slot.as_mut().expect("a script evaluation in progress")))
}
