//! Thread bodies without a stack: a script closure run by a small
//! interpreter of its own on a stackless thread, instead of by Rhai on a
//! coroutine stack.
//!
//! Rhai evaluates a body by recursion on the host stack, so a thread that
//! waits in `lock()` keeps its whole evaluation (about 6 KiB of frames)
//! parked on a coroutine stack of its own, and every operation switches
//! stacks. Most bodies are a loop of operations on locks, variables and
//! time with a little integer arithmetic between them. Such a body is
//! compiled here, once per closure, from Rhai's own syntax tree into a
//! flat list of steps whose state between two operations is a program
//! counter and a few values: the thread runs stackless
//! ([`crate::kernel::AsyncCtx`]), and a parked thread holds only that.
//!
//! The steps keep Rhai's semantics and its errors:
//! - control flow (`let`, assignment, `if`, `while`, `loop`, `do`, `for`
//!   over ranges and arrays, `break`, `continue`, `return`) is executed
//!   here, with Rhai's scoping;
//! - the simulated operations (`compute`, `sleep`, `yield_now`, `now`,
//!   `print`, locks, semaphores, reader-writer locks, condition variables,
//!   barriers, events, countdowns, channels, shared variables, blocking
//!   `io`) go straight to the kernel, attributed to their script line as
//!   from a stackful body;
//! - integer arithmetic and comparison run here; any other operand (or an
//!   overflow, a division by zero) goes to Rhai's own operator, so the
//!   result or the error is Rhai's;
//! - any other expression or statement that cannot call an operation
//!   (string and array functions, maps, indexing) is handed to Rhai whole,
//!   with the body's variables moved into a scope laid out exactly as
//!   Rhai's own would be, and moved back after;
//! - the endless-loop limit counts a loop's turn by the nodes of its body,
//!   close to Rhai's count of statements and expressions but not equal: a
//!   body that runs near a million script operations between two
//!   simulated operations may be stopped a little sooner or later.
//!
//! A body that does anything else (calls a script function or a closure,
//! an operation not listed such as `join`, `submit` or epoll, `switch`,
//! `try`) runs stackful as
//! before: the choice is made when the thread is created, and a body that
//! could not run here is never half run here. Reports are the same bytes
//! either way (`tests/e2e/stackless.rs` runs every gallery script both
//! ways, the unit tests below random bodies); `simcli run --stackful` turns
//! this off.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use rhai::{
    ASTFlags, ASTNode, Dynamic, Engine, EvalAltResult, Expr, FnPtr, ImmutableString, Position,
    Scope, Stmt, StmtBlock, AST, INT,
};

use super::duration::to_span;
use super::error::{position_of, ScriptError};
use super::limits;
use super::machine::MachineHandle;
use super::session;
use crate::error::BodyError;
use crate::ids::{ResourceId, VarId};
use crate::kernel::{AsyncCtx, StacklessBody, StacklessFuture};
use crate::model::io::DeviceRef;
use crate::model::sync::{
    Barrier, Channel, Condvar, Countdown, Event, Mutex, RLock, RwLock, Semaphore, Spinlock,
};
use crate::time::Span;
use crate::trace::ResourceKind;

/// The bodies of a script's closures, compiled on first use.
pub(crate) struct Bodies {
    /// Each closure's parameters and statements, by function name.
    defs: HashMap<ImmutableString, (Vec<ImmutableString>, Vec<Stmt>)>,
    /// Each closure compiled, or `None` if it must run stackful.
    compiled: RefCell<HashMap<ImmutableString, Option<Rc<Program>>>>,
    /// Functions a body may hand to Rhai: they never call an operation.
    pure: HashSet<String>,
    /// The names of the script's own functions.
    shadowed: HashSet<String>,
    /// Rhai's `for`, collecting what it iterates into an array.
    collect: Rc<Fallback>,
}

impl Bodies {
    /// Collects the closures of `ast`, for `engine`.
    pub(crate) fn new(engine: &Engine, ast: &AST) -> Bodies {
        let spans: Vec<_> = ast
            .iter_fn_def()
            .map(|f| {
                (
                    f.name.clone(),
                    f.params.iter().cloned().collect::<Vec<_>>(),
                    f.body.start_position(),
                    f.body.end_position(),
                )
            })
            .collect();
        // Rhai hands out the statements of function bodies only through a
        // walk of the whole tree: top-level statements (path of one) in
        // order, the script's own first, then each function's.
        let mut script_statements = ast.statements().len();
        let mut tops: Vec<Stmt> = Vec::new();
        ast.walk(&mut |path: &[ASTNode]| {
            if let [ASTNode::Stmt(stmt)] = path {
                match script_statements.checked_sub(1) {
                    Some(left) => script_statements = left,
                    None => tops.push((*stmt).clone()),
                }
            }
            true
        });
        // Each statement belongs to the innermost function whose body
        // holds it (a closure's body lies within its maker's); an
        // expression closure (`|r| r.value("x") == 2`) has no end: its one
        // statement is where it starts.
        let mut defs: HashMap<ImmutableString, (Vec<ImmutableString>, Vec<Stmt>)> = spans
            .iter()
            .map(|(name, params, ..)| (name.clone(), (params.clone(), Vec::new())))
            .collect();
        let key = |p: Position| (p.line().unwrap_or(0), p.position().unwrap_or(0));
        let mut usable = true;
        for stmt in tops {
            let at = stmt.position();
            let owner = spans
                .iter()
                .filter(|(.., start, end)| {
                    let end = if end.is_none() { *start } else { *end };
                    key(*start) <= key(at) && key(at) <= key(end)
                })
                .max_by_key(|(.., start, _)| key(*start));
            match owner {
                Some((name, ..)) if !at.is_none() => {
                    defs.get_mut(name).expect("a function").1.push(stmt);
                }
                _ => usable = false,
            }
        }
        if !usable {
            // Statements that cannot be placed: run every body stackful.
            defs.clear();
        }
        // A script function of the same name as a native one is called
        // instead of it: such names are neither pure nor operations here.
        let mut pure = pure_functions(engine);
        let mut shadowed = HashSet::new();
        for (name, ..) in &spans {
            pure.remove(name.as_str());
            shadowed.insert(name.to_string());
        }
        // Other iterables (step ranges, bits, chars streams) are collected
        // by Rhai's own `for` into an array, once, when the loop starts.
        let collect = Rc::new(Fallback {
            ast: engine
                .compile("let items = []; for item in iterable { items.push(item); } items")
                .expect("a fixed script compiles"),
            names: vec![("iterable".into(), false)],
            value: true,
        });
        Bodies {
            defs,
            compiled: RefCell::default(),
            pure,
            shadowed,
            collect,
        }
    }

    /// A stackless kernel body for the closure `body` of a thread of
    /// `machine` started at `started`, or `None` if it must run stackful.
    pub(crate) fn body(
        &self,
        engine: &Rc<Engine>,
        machine: &MachineHandle,
        body: &FnPtr,
        started: Position,
    ) -> Option<StacklessBody> {
        let name = ImmutableString::from(body.fn_name());
        let program = self
            .compiled
            .borrow_mut()
            .entry(name.clone())
            .or_insert_with(|| {
                let (params, statements) = self.defs.get(&name)?;
                compile(
                    params,
                    statements,
                    &self.pure,
                    &self.shadowed,
                    self.collect.clone(),
                )
                .map(Rc::new)
            })
            .clone();
        let program = program?;
        let curry = body.curry();
        if curry.len() != program.params || curry.iter().any(holds_function) {
            return None;
        }
        for &slot in &program.receivers {
            if !handle_of(&curry[slot as usize], machine) {
                return None;
            }
        }
        let engine = engine.clone();
        let machine = machine.clone();
        let mut slots: Vec<Dynamic> = curry.to_vec();
        slots.resize(program.slots, Dynamic::UNIT);
        Some(Box::new(move |ctx: AsyncCtx| -> StacklessFuture {
            Box::pin(async move {
                let mut run = Run {
                    program,
                    pc: 0,
                    stack: Vec::new(),
                    slots,
                    iters: Vec::new(),
                    last: None,
                    total: 0,
                    machine,
                };
                limits::operation_called();
                loop {
                    let stepped = {
                        // Cleared however the step ends, a panic included.
                        let _stepping = Stepping::new();
                        run.step(&engine)
                    };
                    match stepped {
                        Ok(Stop::Call(call, at)) => {
                            // A print is no operation of the body's own
                            // position: it keeps the one before it.
                            let at = if matches!(call, Call::Print(_)) {
                                run.last.unwrap_or((0, 0))
                            } else {
                                run.last = Some(at);
                                at
                            };
                            let value = perform(ctx, call, at).await;
                            limits::operation_called();
                            run.stack.push(value);
                        }
                        Ok(Stop::Done(value)) => {
                            return Ok(Box::new(value) as Box<dyn std::any::Any>)
                        }
                        Err(mut error) => {
                            // Rhai's own calls of a body clear the position
                            // of its limits' errors: so does this.
                            if error.is_system_exception() {
                                error.set_position(Position::NONE);
                            }
                            return Err(failure(&error, run.last, started));
                        }
                    }
                }
            })
        }))
    }
}

/// Marks a body without a stack as running, while it lives.
struct Stepping;

impl Stepping {
    fn new() -> Stepping {
        limits::STACKLESS_BODY.set(true);
        Stepping
    }
}

impl Drop for Stepping {
    fn drop(&mut self) {
        limits::STACKLESS_BODY.set(false);
    }
}

/// Whether a captured value is or holds a function (a closure may call
/// operations: its caller must run stackful).
fn holds_function(value: &Dynamic) -> bool {
    if value.is::<FnPtr>() {
        return true;
    }
    if let Some(array) = value.read_lock::<rhai::Array>() {
        return array.iter().any(holds_function);
    }
    if let Some(map) = value.read_lock::<rhai::Map>() {
        return map.values().any(holds_function);
    }
    false
}

/// The names of the functions a body may hand to Rhai: Rhai's own (its
/// standard library and operators) that simcli does not also define for
/// its types, and simcli's durations. Script functions and closures may
/// call operations; `print` is one.
fn pure_functions(engine: &Engine) -> HashSet<String> {
    let name = |signature: &str| {
        let signature = signature.trim_start_matches("fn ");
        let name = signature.split('(').next().unwrap_or_default().trim();
        name.rsplit(' ').next().unwrap_or_default().to_string()
    };
    let ours: HashSet<String> = engine
        .gen_fn_signatures(false)
        .iter()
        .map(|s| name(s))
        .collect();
    let mut pure: HashSet<String> = engine
        .gen_fn_signatures(true)
        .iter()
        .map(|s| name(s))
        .filter(|n| !ours.contains(n))
        .collect();
    for impure in [
        "print",
        "debug",
        "eval",
        "exit",
        "call",
        "curry",
        "Fn",
        "is_def_fn",
        "is_def_var",
        "is_shared",
        "sort",
        "map",
        "filter",
        "reduce",
        "reduce_rev",
        "some",
        "all",
        "retain",
        "drain",
        "dedup",
        "find",
        "find_map",
        "index_of",
        "for_each",
        "zip",
        "chop",
    ] {
        pure.remove(impure);
    }
    for duration in ["ns", "us", "ms", "sec"] {
        pure.insert(duration.to_string());
    }
    pure
}

/// A compiled body.
#[derive(Debug)]
pub(crate) struct Program {
    steps: Vec<Step>,
    /// Variables at once, at most (Rhai's scope, mirrored).
    slots: usize,
    /// The captured variables, the first slots.
    params: usize,
    /// Slots of captured handles that operations are called on: never
    /// assigned, and checked to be handles of the machine at creation.
    receivers: Vec<u16>,
}

/// One step of a compiled body, on a stack of values.
#[derive(Debug)]
enum Step {
    /// Push a value.
    Const(Dynamic),
    /// Push a copy of a variable.
    Get(u16),
    /// Pop into a variable.
    Set(u16),
    /// Drop the top value.
    Pop,
    /// Forget the variables from this slot on (a block ended).
    Forget(u16),
    /// Pop two values, push what the operator makes of them.
    Binary(Binary, Rc<Fallback>),
    /// `x op= y`: pop y and x, push the new x (by the operator on two
    /// ints, else by Rhai's op-assignment).
    Assign(Option<Binary>, Rc<Fallback>),
    /// Pop a value, push its negation (`!`).
    Not(Rc<Fallback>),
    /// Pop an int or float, push the duration of that many units.
    Duration(u64, Rc<Fallback>),
    Jump(u32),
    /// Pop a condition; jump if it is false.
    JumpUnless(u32, Position),
    /// `&&` and `||`: pop a condition; if it decides, push it and jump.
    ShortCircuit {
        when: bool,
        to: u32,
        at: Position,
    },
    /// Check that the top value is a bool (the last operand of `&&`, `||`).
    Boolean(Position),
    /// Evaluate an expression with Rhai (push its value) or a statement
    /// (push nothing).
    Rhai(Rc<Fallback>),
    /// Pop a value for each of the expression's variables, push what Rhai
    /// makes of them (a string interpolating operations' answers, a part
    /// at a time).
    Apply(Rc<Fallback>),
    /// Pop an iterable; start iterating it (what is not a range, an array
    /// or a string through Rhai's own `for`).
    Iterate(Position, Rc<Fallback>),
    /// Next item into the variable (and counter), or stop iterating and jump.
    Next {
        var: u16,
        counter: Option<u16>,
        done: u32,
    },
    /// Stop the innermost iteration (a `break` out of a `for`).
    EndIterate,
    /// A loop's turn, counted as this many script operations (see
    /// [`weight`]): limits are checked here.
    Tick(u32),
    /// A simulated operation: pops its arguments, pushes its answer.
    /// Rhai's own call of it says what is wrong with its arguments.
    Call(Op, Position, Rc<Fallback>),
    /// Pop the result and end.
    Return,
}

/// Integer operators done here.
#[derive(Clone, Copy, Debug)]
enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Binary {
    fn of(name: &str) -> Option<Binary> {
        Some(match name {
            "+" => Binary::Add,
            "-" => Binary::Sub,
            "*" => Binary::Mul,
            "/" => Binary::Div,
            "%" => Binary::Rem,
            "==" => Binary::Eq,
            "!=" => Binary::Ne,
            "<" => Binary::Lt,
            "<=" => Binary::Le,
            ">" => Binary::Gt,
            ">=" => Binary::Ge,
            _ => return None,
        })
    }

    fn is_arithmetic(self) -> bool {
        matches!(
            self,
            Binary::Add | Binary::Sub | Binary::Mul | Binary::Div | Binary::Rem
        )
    }

    /// The result on two ints, unless Rhai must say (overflow, zero).
    fn ints(self, a: INT, b: INT) -> Option<Dynamic> {
        Some(match self {
            Binary::Add => Dynamic::from_int(a.checked_add(b)?),
            Binary::Sub => Dynamic::from_int(a.checked_sub(b)?),
            Binary::Mul => Dynamic::from_int(a.checked_mul(b)?),
            Binary::Div => Dynamic::from_int(a.checked_div(b)?),
            Binary::Rem => Dynamic::from_int(a.checked_rem(b)?),
            Binary::Eq => Dynamic::from_bool(a == b),
            Binary::Ne => Dynamic::from_bool(a != b),
            Binary::Lt => Dynamic::from_bool(a < b),
            Binary::Le => Dynamic::from_bool(a <= b),
            Binary::Gt => Dynamic::from_bool(a > b),
            Binary::Ge => Dynamic::from_bool(a >= b),
        })
    }
}

/// A simulated operation a body calls.
#[derive(Clone, Copy, Debug)]
enum Op {
    Compute,
    ComputeNoGil,
    Sleep,
    YieldNow,
    Now,
    Lock,
    Unlock,
    TryLock,
    Acquire,
    Release,
    Load,
    Store,
    FetchAdd,
    CompareExchange,
    Print,
    AcquireTimeout,
    TryAcquire,
    Permits,
    ReadLock,
    ReadUnlock,
    WriteLock,
    WriteUnlock,
    NotifyOne,
    NotifyAll,
    /// `wait()`: a barrier, a countdown or an event.
    Wait,
    /// `wait(x)`: a condvar with its mutex, or an event with a timeout.
    WaitWith,
    /// `wait(mutex, timeout)` on a condvar.
    WaitTimeout,
    Signal,
    Set,
    Clear,
    IsSet,
    Send,
    Recv,
    Io,
}

impl Op {
    /// A function called by name, with `args` arguments.
    fn function(name: &str, args: usize) -> Option<Op> {
        Some(match (name, args) {
            ("compute", 1) => Op::Compute,
            ("compute_nogil", 1) => Op::ComputeNoGil,
            ("sleep", 1) => Op::Sleep,
            ("yield_now", 0) => Op::YieldNow,
            ("now", 0) => Op::Now,
            ("print", 1) => Op::Print,
            _ => return None,
        })
    }

    /// A method of a handle, with `args` arguments besides the handle.
    fn method(name: &str, args: usize) -> Option<Op> {
        Some(match (name, args) {
            ("lock", 0) => Op::Lock,
            ("unlock", 0) => Op::Unlock,
            ("try_lock", 0) => Op::TryLock,
            ("acquire", 0) => Op::Acquire,
            ("release", 0) => Op::Release,
            ("load", 0) => Op::Load,
            ("store", 1) => Op::Store,
            ("fetch_add", 1) => Op::FetchAdd,
            ("compare_exchange", 2) => Op::CompareExchange,
            ("acquire", 1) => Op::AcquireTimeout,
            ("try_acquire", 0) => Op::TryAcquire,
            ("value", 0) => Op::Permits,
            ("read_lock", 0) => Op::ReadLock,
            ("read_unlock", 0) => Op::ReadUnlock,
            ("write_lock", 0) => Op::WriteLock,
            ("write_unlock", 0) => Op::WriteUnlock,
            ("notify_one", 0) => Op::NotifyOne,
            ("notify_all", 0) => Op::NotifyAll,
            ("wait", 0) => Op::Wait,
            ("wait", 1) => Op::WaitWith,
            ("wait", 2) => Op::WaitTimeout,
            ("signal", 0) => Op::Signal,
            ("set", 0) => Op::Set,
            ("clear", 0) => Op::Clear,
            ("is_set", 0) => Op::IsSet,
            ("send", 1) => Op::Send,
            ("recv", 0) => Op::Recv,
            ("io", 1) => Op::Io,
            _ => return None,
        })
    }

    fn is_method(self) -> bool {
        !matches!(
            self,
            Op::Compute | Op::ComputeNoGil | Op::Sleep | Op::YieldNow | Op::Now | Op::Print
        )
    }

    fn arity(self) -> usize {
        match self {
            Op::Compute
            | Op::ComputeNoGil
            | Op::Sleep
            | Op::Print
            | Op::Store
            | Op::FetchAdd
            | Op::AcquireTimeout
            | Op::WaitWith
            | Op::Send
            | Op::Io => 1,
            Op::CompareExchange | Op::WaitTimeout => 2,
            _ => 0,
        }
    }
}

/// Something handed to Rhai: an expression or statement evaluated in a
/// scope of the named variables.
#[derive(Debug)]
struct Fallback {
    ast: AST,
    /// The variables in scope, in Rhai's order: they are moved in and out.
    names: Vec<(ImmutableString, bool)>,
    /// Whether it is an expression whose value is pushed.
    value: bool,
}

impl Fallback {
    /// Rhai's evaluation of `statements` with `names` in scope.
    fn new(
        statements: impl IntoIterator<Item = Stmt>,
        names: Vec<(ImmutableString, bool)>,
        value: bool,
    ) -> Rc<Fallback> {
        Rc::new(Fallback {
            ast: AST::new(statements, rhai::Module::new()),
            names,
            value,
        })
    }

    /// Runs with `values` (one per name) moved into the scope and back.
    fn eval(&self, engine: &Engine, values: &mut [Dynamic]) -> Result<Dynamic, Box<EvalAltResult>> {
        let mut scope = Scope::new();
        for ((name, constant), value) in self.names.iter().zip(values.iter_mut()) {
            let value = std::mem::take(value);
            if *constant {
                scope.push_constant_dynamic(name.clone(), value);
            } else {
                scope.push_dynamic(name.clone(), value);
            }
        }
        let result = engine.eval_ast_with_scope::<Dynamic>(&mut scope, &self.ast);
        for (slot, (_, value, _)) in values.iter_mut().zip(scope) {
            *slot = value;
        }
        result
    }
}

/// Why a body must run stackful: the line of this file that refused it
/// (shown by `{:?}` when debugging which construct keeps a stack).
#[derive(Debug)]
struct Unsupported(#[allow(dead_code)] u32);

type Compiled<T = ()> = Result<T, Unsupported>;

/// Compiles a closure's statements, its parameters (captured variables
/// first) already in scope.
fn compile(
    params: &[ImmutableString],
    statements: &[Stmt],
    pure: &HashSet<String>,
    shadowed: &HashSet<String>,
    collect: Rc<Fallback>,
) -> Option<Program> {
    let mut c = Compiler {
        steps: Vec::new(),
        scope: params.iter().map(|p| (p.clone(), false)).collect(),
        slots: params.len(),
        loops: Vec::new(),
        receivers: Vec::new(),
        pure,
        shadowed,
        collect,
    };
    c.body(statements).ok()?;
    // A receiver must be a captured handle that nothing in the body
    // assigns or declares again, even inside an expression Rhai evaluates.
    let mut assigned: HashSet<ImmutableString> = HashSet::new();
    for stmt in statements {
        stmt.walk(&mut Vec::new(), &mut |path: &[ASTNode]| {
            match path.last() {
                Some(ASTNode::Stmt(Stmt::Assignment(a))) => {
                    let mut lhs = &a.1.lhs;
                    while let Expr::Dot(x, ..) | Expr::Index(x, ..) = lhs {
                        lhs = &x.lhs;
                    }
                    if let Expr::Variable(v, ..) = lhs {
                        assigned.insert(v.1.clone());
                    }
                }
                Some(ASTNode::Stmt(Stmt::Var(var, ..))) => {
                    assigned.insert(var.0.name.clone());
                }
                _ => {}
            }
            true
        });
    }
    let mut receivers = c.receivers;
    receivers.sort_unstable();
    receivers.dedup();
    if receivers.iter().any(|&r| {
        params
            .get(r as usize)
            .is_none_or(|name| assigned.contains(name))
    }) {
        return None;
    }
    Some(Program {
        steps: c.steps,
        slots: c.slots,
        params: params.len(),
        receivers,
    })
}

struct Loop {
    /// Jumps to patch to the loop's end.
    breaks: Vec<usize>,
    /// Where `continue` goes.
    next: u32,
    /// Scope length at the loop (a `break` forgets what is above).
    scope: usize,
    /// Whether it iterates (a `break` ends the iteration).
    iterates: bool,
}

struct Compiler<'p> {
    steps: Vec<Step>,
    /// Rhai's scope as it will be: names and whether constant.
    scope: Vec<(ImmutableString, bool)>,
    slots: usize,
    loops: Vec<Loop>,
    /// Slots operations are called on.
    receivers: Vec<u16>,
    pure: &'p HashSet<String>,
    shadowed: &'p HashSet<String>,
    collect: Rc<Fallback>,
}

impl Compiler<'_> {
    fn here(&self) -> u32 {
        self.steps.len() as u32
    }

    fn slot(index: usize) -> Compiled<u16> {
        u16::try_from(index).map_err(|_| Unsupported(line!()))
    }

    /// The function's statements: the value of the last is the result.
    fn body(&mut self, statements: &[Stmt]) -> Compiled {
        self.statements_value(statements)?;
        self.steps.push(Step::Return);
        Ok(())
    }

    /// Statements whose last one's value is left on the stack, as Rhai
    /// gives a block's value.
    fn statements_value(&mut self, statements: &[Stmt]) -> Compiled {
        match statements.split_last() {
            None => self.steps.push(Step::Const(Dynamic::UNIT)),
            Some((last, rest)) => {
                for stmt in rest {
                    self.stmt(stmt)?;
                }
                self.stmt_value(last)?;
            }
        }
        Ok(())
    }

    /// A statement whose value is left on the stack.
    fn stmt_value(&mut self, stmt: &Stmt) -> Compiled {
        match stmt {
            Stmt::Expr(e) => self.expr(e),
            Stmt::FnCall(call, at) => self.expr(&Expr::FnCall(call.clone(), *at)),
            Stmt::If(flow, _) => {
                self.expr(&flow.expr)?;
                let skip = self.steps.len();
                self.steps.push(Step::JumpUnless(0, flow.expr.position()));
                self.block_value(&flow.body)?;
                let over = self.steps.len();
                self.steps.push(Step::Jump(0));
                self.patch(skip);
                self.block_value(&flow.branch)?;
                self.patch(over);
                Ok(())
            }
            Stmt::Block(block) => self.block_value(block),
            Stmt::Noop(..)
            | Stmt::Var(..)
            | Stmt::Assignment(..)
            | Stmt::While(..)
            | Stmt::Do(..)
            | Stmt::For(..)
            | Stmt::Return(..)
            | Stmt::BreakLoop(..) => {
                self.stmt(stmt)?;
                self.steps.push(Step::Const(Dynamic::UNIT));
                Ok(())
            }
            _ => Err(Unsupported(line!())),
        }
    }

    /// A block whose value is left on the stack.
    fn block_value(&mut self, block: &StmtBlock) -> Compiled {
        let scope = self.scope.len();
        self.statements_value(block.statements())?;
        self.end_block(scope)
    }

    fn block(&mut self, block: &StmtBlock) -> Compiled {
        let scope = self.scope.len();
        for stmt in block.statements() {
            self.stmt(stmt)?;
        }
        self.end_block(scope)
    }

    fn end_block(&mut self, scope: usize) -> Compiled {
        if self.scope.len() > scope {
            self.scope.truncate(scope);
            self.steps.push(Step::Forget(Self::slot(scope)?));
        }
        Ok(())
    }

    fn stmt(&mut self, stmt: &Stmt) -> Compiled {
        match stmt {
            Stmt::Noop(..) => {}
            Stmt::Expr(e) => {
                self.expr(e)?;
                self.steps.push(Step::Pop);
            }
            Stmt::FnCall(call, at) => {
                self.expr(&Expr::FnCall(call.clone(), *at))?;
                self.steps.push(Step::Pop);
            }
            Stmt::Block(block) => self.block(block)?,
            Stmt::Var(var, flags, _) => {
                if flags.contains(ASTFlags::EXPORTED) {
                    return Err(Unsupported(line!()));
                }
                let (ident, value, index) = &**var;
                self.expr(value)?;
                let constant = flags.contains(ASTFlags::CONSTANT);
                let slot = match index {
                    // Rhai reuses the slot of the variable it shadows.
                    Some(index) => {
                        let slot = self
                            .scope
                            .len()
                            .checked_sub(index.get())
                            .ok_or(Unsupported(line!()))?;
                        if self.scope[slot].0 != ident.name {
                            return Err(Unsupported(line!()));
                        }
                        self.scope[slot].1 = constant;
                        slot
                    }
                    None => {
                        self.scope.push((ident.name.clone(), constant));
                        self.slots = self.slots.max(self.scope.len());
                        self.scope.len() - 1
                    }
                };
                self.steps.push(Step::Set(Self::slot(slot)?));
            }
            Stmt::Assignment(assignment) => {
                let (op, target) = &**assignment;
                match &target.lhs {
                    Expr::Variable(..) => {
                        let slot = self.variable(&target.lhs)?;
                        if self.scope[slot as usize].1 {
                            return Err(Unsupported(line!()));
                        }
                        match op.get_op_assignment_info() {
                            None => {
                                self.expr(&target.rhs)?;
                                self.steps.push(Step::Set(slot));
                            }
                            Some((.., syntax)) => {
                                // Integers here; anything else (or an
                                // overflow) by Rhai's own op-assignment.
                                self.steps.push(Step::Get(slot));
                                self.expr(&target.rhs)?;
                                let fallback = self.operator_assignment(stmt)?;
                                let binary = Binary::of(syntax).filter(|b| b.is_arithmetic());
                                self.steps.push(Step::Assign(binary, fallback));
                                self.steps.push(Step::Set(slot));
                            }
                        }
                    }
                    // `a[i] = x`, `m.k += x`: Rhai's, if nothing in it waits.
                    _ if self.pure_stmt(stmt) => {
                        self.fallback(stmt.clone(), false)?;
                    }
                    _ => return Err(Unsupported(line!())),
                }
            }
            Stmt::If(..) => {
                self.stmt_value(stmt)?;
                self.steps.push(Step::Pop);
            }
            Stmt::While(flow, _) => {
                // Each turn (a `continue` too) starts with the limits' check.
                let top = self.here();
                self.steps.push(Step::Tick(weight(&flow.body)));
                let endless = matches!(flow.expr, Expr::Unit(..) | Expr::BoolConstant(true, ..));
                let exit = if endless {
                    None
                } else {
                    self.expr(&flow.expr)?;
                    self.steps.push(Step::JumpUnless(0, flow.expr.position()));
                    Some(self.steps.len() - 1)
                };
                self.loop_body(&flow.body, top, false)?;
                self.steps.push(Step::Jump(top));
                if let Some(exit) = exit {
                    self.patch(exit);
                }
                self.end_loop();
            }
            Stmt::Do(flow, flags, _) => {
                // `continue` starts the body again without the condition,
                // as in Rhai.
                let top = self.here();
                self.steps.push(Step::Tick(weight(&flow.body)));
                self.loop_body(&flow.body, top, false)?;
                self.expr(&flow.expr)?;
                if flags.contains(ASTFlags::NEGATED) {
                    // `do { } until c`: again while c is false.
                    let out = self.steps.len();
                    self.steps.push(Step::JumpUnless(0, flow.expr.position()));
                    let exit = self.steps.len();
                    self.steps.push(Step::Jump(0));
                    self.patch(out);
                    self.steps.push(Step::Jump(top));
                    self.patch(exit);
                } else {
                    let exit = self.steps.len();
                    self.steps.push(Step::JumpUnless(0, flow.expr.position()));
                    self.steps.push(Step::Jump(top));
                    self.patch(exit);
                }
                self.end_loop();
            }
            Stmt::For(for_loop, _) => {
                let (var, counter, flow) = &**for_loop;
                self.expr(&flow.expr)?;
                self.steps.push(Step::Iterate(
                    flow.expr.start_position(),
                    self.collect.clone(),
                ));
                let scope = self.scope.len();
                let counter = match counter {
                    Some(counter) => {
                        self.scope.push((counter.name.clone(), false));
                        Some(Self::slot(self.scope.len() - 1)?)
                    }
                    None => None,
                };
                self.scope.push((var.name.clone(), false));
                let var = Self::slot(self.scope.len() - 1)?;
                self.slots = self.slots.max(self.scope.len());
                let top = self.here();
                self.steps.push(Step::Tick(weight(&flow.body)));
                self.steps.push(Step::Next {
                    var,
                    counter,
                    done: 0,
                });
                self.loop_body(&flow.body, top, true)?;
                self.steps.push(Step::Jump(top));
                let done = self.here();
                if let Step::Next { done: d, .. } = &mut self.steps[top as usize + 1] {
                    *d = done;
                }
                self.end_loop();
                self.scope.truncate(scope);
                self.steps.push(Step::Forget(Self::slot(scope)?));
            }
            Stmt::BreakLoop(value, flags, _) => {
                if value.is_some() {
                    return Err(Unsupported(line!()));
                }
                let scope = self.loops.last().ok_or(Unsupported(line!()))?.scope;
                if flags.contains(ASTFlags::BREAK) {
                    if self.loops.last().is_some_and(|l| l.iterates) {
                        self.steps.push(Step::EndIterate);
                    }
                    if self.scope.len() > scope {
                        self.steps.push(Step::Forget(Self::slot(scope)?));
                    }
                    let at = self.steps.len();
                    self.steps.push(Step::Jump(0));
                    self.loops.last_mut().expect("a loop").breaks.push(at);
                } else {
                    let next = self.loops.last().expect("a loop").next;
                    self.steps.push(Step::Jump(next));
                }
            }
            Stmt::Return(value, flags, _) => {
                if flags.contains(ASTFlags::BREAK) {
                    // `throw`
                    return Err(Unsupported(line!()));
                }
                match value {
                    Some(value) => self.expr(value)?,
                    None => self.steps.push(Step::Const(Dynamic::UNIT)),
                }
                self.steps.push(Step::Return);
            }
            _ => return Err(Unsupported(line!())),
        }
        Ok(())
    }

    /// A loop's body; `continue` goes to `next`.
    fn loop_body(&mut self, body: &StmtBlock, next: u32, iterates: bool) -> Compiled {
        self.loops.push(Loop {
            breaks: Vec::new(),
            next,
            scope: self.scope.len(),
            iterates,
        });
        self.block(body)
    }

    fn end_loop(&mut self) {
        let done = self.here();
        let lp = self.loops.pop().expect("a loop");
        for at in lp.breaks {
            self.steps[at] = Step::Jump(done);
        }
    }

    /// Points the jump at `at` here.
    fn patch(&mut self, at: usize) {
        let here = self.here();
        match &mut self.steps[at] {
            Step::Jump(to) | Step::JumpUnless(to, _) | Step::ShortCircuit { to, .. } => *to = here,
            _ => unreachable!("a jump"),
        }
    }

    /// The slot of a variable, checked against Rhai's own index of it.
    fn variable(&self, e: &Expr) -> Compiled<u16> {
        let Expr::Variable(v, short, _) = e else {
            return Err(Unsupported(line!()));
        };
        let name = &v.1;
        let index = self
            .scope
            .iter()
            .rposition(|(n, _)| n == name)
            .ok_or(Unsupported(line!()))?;
        let hint = short
            .map(|i| usize::from(i.get()))
            .or(v.0.map(|i| i.get()))
            .unwrap_or(0);
        if hint != 0 && self.scope.len().checked_sub(hint) != Some(index) {
            return Err(Unsupported(line!()));
        }
        Self::slot(index)
    }

    fn expr(&mut self, e: &Expr) -> Compiled {
        match e {
            Expr::IntegerConstant(..)
            | Expr::BoolConstant(..)
            | Expr::FloatConstant(..)
            | Expr::CharConstant(..)
            | Expr::StringConstant(..)
            | Expr::Unit(..) => {
                let value = constant(e).ok_or(Unsupported(line!()))?;
                self.steps.push(Step::Const(value));
            }
            Expr::DynamicConstant(value, _) => {
                if holds_function(value) {
                    return Err(Unsupported(line!()));
                }
                self.steps.push(Step::Const((**value).clone()));
            }
            Expr::Variable(..) => {
                let slot = self.variable(e)?;
                self.steps.push(Step::Get(slot));
            }
            Expr::FnCall(call, at) if !call.capture_parent_scope => {
                let name = call.name.as_str();
                let op =
                    Op::function(name, call.args.len()).filter(|_| !self.shadowed.contains(name));
                if let Some(op) = op {
                    for arg in &call.args {
                        self.expr(arg)?;
                    }
                    let fallback = self.operator(e, call.args.len())?;
                    self.steps.push(Step::Call(op, *at, fallback));
                } else if let (Some(binary), true, 2) =
                    (Binary::of(name), call.op_token.is_some(), call.args.len())
                {
                    self.expr(&call.args[0])?;
                    self.expr(&call.args[1])?;
                    let fallback = self.operator(e, 2)?;
                    self.steps.push(Step::Binary(binary, fallback));
                } else if name == "!" && call.args.len() == 1 && call.op_token.is_some() {
                    self.expr(&call.args[0])?;
                    let fallback = self.operator(e, 1)?;
                    self.steps.push(Step::Not(fallback));
                } else if let (Some(unit), 1) = (duration_unit(name), call.args.len()) {
                    self.expr(&call.args[0])?;
                    let fallback = self.operator(e, 1)?;
                    self.steps.push(Step::Duration(unit, fallback));
                } else if self.pure_expr(e) {
                    self.fallback_expr(e)?;
                } else {
                    return Err(Unsupported(line!()));
                }
            }
            Expr::Dot(dot, _, _) => match (&dot.lhs, &dot.rhs) {
                (Expr::Variable(..), Expr::MethodCall(call, at))
                    if Op::method(&call.name, call.args.len()).is_some()
                        && !self.shadowed.contains(call.name.as_str()) =>
                {
                    let op = Op::method(&call.name, call.args.len()).expect("checked");
                    let slot = self.variable(&dot.lhs)?;
                    self.receivers.push(slot);
                    self.steps.push(Step::Get(slot));
                    for arg in &call.args {
                        self.expr(arg)?;
                    }
                    let fallback = self.method(e)?;
                    self.steps.push(Step::Call(op, *at, fallback));
                }
                _ if self.pure_expr(e) => self.fallback_expr(e)?,
                _ => return Err(Unsupported(line!())),
            },
            Expr::InterpolatedString(parts, at) if !self.pure_expr(e) => {
                // Rhai appends each part to the text so far in turn and
                // checks its length after each (so a part after one that
                // makes it too long never runs): so does this, each
                // append by Rhai's own interpolation of the text so far
                // and the part's value. (An array literal checks its size
                // item by item too, with no expression to do one step of
                // it: one that calls an operation keeps the body stackful.)
                self.steps
                    .push(Step::Const(Dynamic::from(ImmutableString::new())));
                for part in parts {
                    self.expr(part)?;
                    let names = synthetic(2);
                    let pair = [
                        variable(&names[0].0, *at),
                        variable(&names[1].0, part.position()),
                    ];
                    let append = Expr::InterpolatedString(pair.into_iter().collect(), *at);
                    let fallback = Fallback::new([Stmt::Expr(Box::new(append))], names, true);
                    self.steps.push(Step::Apply(fallback));
                }
            }
            Expr::And(operands, _) | Expr::Or(operands, _) => {
                let when = matches!(e, Expr::Or(..));
                let mut jumps = Vec::new();
                let (last, first) = operands.split_last().ok_or(Unsupported(line!()))?;
                for operand in first {
                    self.expr(operand)?;
                    jumps.push(self.steps.len());
                    self.steps.push(Step::ShortCircuit {
                        when,
                        to: 0,
                        at: operand.position(),
                    });
                }
                self.expr(last)?;
                self.steps.push(Step::Boolean(last.position()));
                for jump in jumps {
                    self.patch(jump);
                }
            }
            _ if self.pure_expr(e) => self.fallback_expr(e)?,
            _ => return Err(Unsupported(line!())),
        }
        Ok(())
    }

    /// Whether Rhai may evaluate `e` here: it calls no operation, script
    /// function or closure, and names only variables in scope or its own.
    fn pure_expr(&self, e: &Expr) -> bool {
        self.pure(|visit| e.walk(&mut Vec::new(), visit))
    }

    /// Whether Rhai may run `s` here (as [`Self::pure_expr`]).
    fn pure_stmt(&self, s: &Stmt) -> bool {
        self.pure(|visit| s.walk(&mut Vec::new(), visit))
    }

    /// Whether every node a `walk` visits is pure.
    fn pure(&self, walk: impl FnOnce(&mut dyn FnMut(&[ASTNode]) -> bool) -> bool) -> bool {
        let mut local: HashSet<ImmutableString> = HashSet::new();
        walk(&mut |path: &[ASTNode]| self.pure_node(path.last().expect("a node"), &mut local))
    }

    fn pure_node(&self, node: &ASTNode, local: &mut HashSet<ImmutableString>) -> bool {
        let pure_call = |call: &rhai::FnCallExpr| {
            !call.capture_parent_scope
                && (call.op_token.is_some() || self.pure.contains(call.name.as_str()))
        };
        match node {
            ASTNode::Expr(e) => match e {
                Expr::FnCall(call, _) | Expr::MethodCall(call, _) => pure_call(call),
                Expr::Variable(v, ..) => {
                    local.contains(&v.1) || self.scope.iter().any(|(n, _)| *n == v.1)
                }
                Expr::DynamicConstant(value, _) => !holds_function(value),
                Expr::ThisPtr(..) | Expr::Custom(..) => false,
                _ => true,
            },
            ASTNode::Stmt(s) => match s {
                Stmt::FnCall(call, _) => pure_call(call),
                Stmt::Var(var, flags, _) => {
                    local.insert(var.0.name.clone());
                    !flags.contains(ASTFlags::EXPORTED)
                }
                Stmt::For(f, _) => {
                    local.insert(f.0.name.clone());
                    if let Some(counter) = &f.1 {
                        local.insert(counter.name.clone());
                    }
                    true
                }
                Stmt::Return(..) | Stmt::BreakLoop(..) | Stmt::Share(..) | Stmt::TryCatch(..) => {
                    false
                }
                _ => true,
            },
            _ => false,
        }
    }

    /// Rhai evaluates `stmt` with the variables in scope (moved in and
    /// back); an expression's `value` is pushed.
    fn fallback(&mut self, stmt: Stmt, value: bool) -> Compiled {
        let fallback = Fallback::new([stmt], self.scope.clone(), value);
        self.steps.push(Step::Rhai(fallback));
        Ok(())
    }

    /// Rhai evaluates `e` with the variables in scope.
    fn fallback_expr(&mut self, e: &Expr) -> Compiled {
        self.fallback(Stmt::Expr(Box::new(e.clone())), true)
    }

    /// Rhai's own operator of the call `e` applied to its operands'
    /// values, for what is not done here.
    fn operator(&self, e: &Expr, operands: usize) -> Compiled<Rc<Fallback>> {
        let Expr::FnCall(call, at) = e else {
            return Err(Unsupported(line!()));
        };
        let names = synthetic(operands);
        let mut call = call.clone();
        call.args.clear();
        for (name, _) in &names {
            call.args.push(variable(name, *at));
        }
        let call = Expr::FnCall(call, *at);
        Ok(Fallback::new([Stmt::Expr(Box::new(call))], names, true))
    }

    /// Rhai's own method call `e` (`h.op(args)`) on values: the handle's
    /// and the arguments'.
    fn method(&self, e: &Expr) -> Compiled<Rc<Fallback>> {
        let Expr::Dot(dot, flags, at) = e else {
            return Err(Unsupported(line!()));
        };
        let Expr::MethodCall(call, call_at) = &dot.rhs else {
            return Err(Unsupported(line!()));
        };
        let names = synthetic(call.args.len() + 1);
        let mut call = call.clone();
        call.args.clear();
        for (name, _) in &names[1..] {
            call.args.push(variable(name, *call_at));
        }
        let dot = Expr::Dot(
            Box::new(rhai::BinaryExpr {
                lhs: variable(&names[0].0, *call_at),
                rhs: Expr::MethodCall(call, *call_at),
            }),
            *flags,
            *at,
        );
        Ok(Fallback::new([Stmt::Expr(Box::new(dot))], names, true))
    }

    /// Rhai's op-assignment of `stmt` (`x op= rhs`) on two values: the
    /// variable's and the right side's; leaves the variable's new value.
    fn operator_assignment(&self, stmt: &Stmt) -> Compiled<Rc<Fallback>> {
        let Stmt::Assignment(assignment) = stmt else {
            return Err(Unsupported(line!()));
        };
        let (op, target) = &**assignment;
        let at = target.lhs.position();
        let names = synthetic(2);
        let (target, value) = (variable(&names[0].0, at), variable(&names[1].0, at));
        let assign = Stmt::Assignment(Box::new((
            op.clone(),
            rhai::BinaryExpr {
                lhs: target.clone(),
                rhs: value,
            },
        )));
        Ok(Fallback::new(
            [assign, Stmt::Expr(Box::new(target))],
            names,
            true,
        ))
    }
}

/// The names of `n` values handed to Rhai (`@0`, `@1`...: no script can
/// name them).
fn synthetic(n: usize) -> Vec<(ImmutableString, bool)> {
    (0..n)
        .map(|i| (ImmutableString::from(format!("@{i}")), false))
        .collect()
}

/// The variable `name`, found by name (no index hint), at `at`.
fn variable(name: &ImmutableString, at: Position) -> Expr {
    Expr::Variable(Box::new((None, name.clone())), None, at)
}

/// Script operations a loop's turn counts for: one per node of its body's
/// syntax tree, about what Rhai counts (one per statement and expression
/// it evaluates), so that a body stuck in a loop without operations is
/// stopped near where Rhai would stop it.
fn weight(body: &StmtBlock) -> u32 {
    let mut nodes = 1u32;
    for stmt in body.statements() {
        stmt.walk(&mut Vec::new(), &mut |_: &[ASTNode]| {
            nodes = nodes.saturating_add(1);
            true
        });
    }
    nodes
}

/// The value of a constant expression.
fn constant(e: &Expr) -> Option<Dynamic> {
    Some(match e {
        Expr::IntegerConstant(i, _) => Dynamic::from_int(*i),
        Expr::BoolConstant(b, _) => Dynamic::from_bool(*b),
        Expr::FloatConstant(f, _) => Dynamic::from_float(**f),
        Expr::CharConstant(c, _) => Dynamic::from_char(*c),
        Expr::StringConstant(s, _) => Dynamic::from(s.clone()),
        Expr::Unit(_) => Dynamic::UNIT,
        _ => return None,
    })
}

/// Nanoseconds per unit of a duration helper.
fn duration_unit(name: &str) -> Option<u64> {
    Some(match name {
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "sec" => 1_000_000_000,
        _ => return None,
    })
}

/// What a handle is, for the operations called on it.
fn handle_of(value: &Dynamic, machine: &MachineHandle) -> bool {
    if let Some((_, owner, _)) = super::sync::handle_parts(value) {
        return owner.same(machine);
    }
    if let Some(v) = value.read_lock::<super::memory::VariableH>() {
        return v.parts().0.same(machine);
    }
    value
        .read_lock::<super::io::DeviceH>()
        .is_some_and(|d| d.parts().0.same(machine))
}

/// Where a stepped body stopped.
enum Stop {
    /// It calls a simulated operation, at this script position.
    Call(Call, (u32, u32)),
    /// It returned this value.
    Done(Dynamic),
}

/// A simulated operation with its arguments.
enum Call {
    Compute(Span),
    ComputeNoGil(Span),
    Sleep(Span),
    YieldNow,
    Now,
    Lock(ResourceKind, ResourceId),
    Unlock(ResourceKind, ResourceId),
    TryLock(ResourceKind, ResourceId),
    Acquire(ResourceId),
    Release(ResourceId),
    Load(VarId),
    Store(VarId, INT),
    FetchAdd(VarId, INT),
    CompareExchange(VarId, INT, INT),
    /// A line for the run's log, as Rhai's `print` made it.
    Print(String),
    AcquireTimeout(ResourceId, Span),
    TryAcquire(ResourceId),
    Permits(ResourceId),
    /// An operation on a resource that answers nothing (`op` says which:
    /// a reader-writer lock's, a condvar's notify, a countdown's signal,
    /// an event's set or clear).
    Unit(Op, ResourceId),
    BarrierWait(ResourceId),
    CountdownWait(ResourceId),
    IsSet(ResourceId),
    EventWait(ResourceId),
    EventWaitTimeout(ResourceId, Span),
    /// A condvar and its mutex.
    CondvarWait(ResourceId, ResourceId),
    CondvarWaitTimeout(ResourceId, ResourceId, Span),
    /// A channel, the value and its pickled size.
    Send(ResourceId, Dynamic, u64),
    Recv(ResourceId),
    Io(DeviceRef, u64),
}

/// Hands `call` to the kernel and answers what the script sees.
async fn perform(ctx: AsyncCtx, call: Call, (line, column): (u32, u32)) -> Dynamic {
    use ResourceKind as K;
    let unit = match call {
        Call::Compute(d) => ctx.compute(d),
        Call::ComputeNoGil(d) => ctx.compute_nogil(d),
        Call::Sleep(d) => ctx.sleep(d),
        Call::YieldNow => ctx.yield_now(),
        Call::Lock(K::Mutex, id) => ctx.lock(Mutex(id)),
        Call::Lock(K::Spinlock, id) => ctx.lock(Spinlock(id)),
        Call::Lock(_, id) => ctx.lock(RLock(id)),
        Call::Unlock(K::Mutex, id) => ctx.unlock(Mutex(id)),
        Call::Unlock(K::Spinlock, id) => ctx.unlock(Spinlock(id)),
        Call::Unlock(_, id) => ctx.unlock(RLock(id)),
        Call::Acquire(id) => ctx.acquire(Semaphore(id)),
        Call::Release(id) => ctx.release(Semaphore(id)),
        Call::Store(v, x) => ctx.store(v, x),
        Call::Now => {
            let now = ctx.now().at_script(line, column).await;
            return Dynamic::from(now.elapsed());
        }
        Call::TryLock(kind, id) => {
            let op = match kind {
                K::Mutex => ctx.try_lock(Mutex(id)),
                K::Spinlock => ctx.try_lock(Spinlock(id)),
                _ => ctx.try_lock(RLock(id)),
            };
            return Dynamic::from_bool(op.at_script(line, column).await);
        }
        Call::Load(v) => return Dynamic::from_int(ctx.load(v).at_script(line, column).await),
        Call::FetchAdd(v, x) => {
            return Dynamic::from_int(ctx.fetch_add(v, x).at_script(line, column).await)
        }
        Call::CompareExchange(v, old, new) => {
            let swapped = ctx
                .compare_exchange(v, old, new)
                .at_script(line, column)
                .await;
            return Dynamic::from_bool(swapped.is_ok());
        }
        Call::Print(text) => {
            // A stackful body's print keeps the position of the operation
            // before it (and a Rust one before the first).
            let print = ctx.print(text);
            let print = if (line, column) == (0, 0) {
                print
            } else {
                print.at_script(line, column)
            };
            print.await;
            return Dynamic::UNIT;
        }
        Call::AcquireTimeout(id, timeout) => {
            let op = ctx.acquire_timeout(Semaphore(id), timeout);
            return Dynamic::from_bool(op.at_script(line, column).await);
        }
        Call::TryAcquire(id) => {
            let op = ctx.try_acquire(Semaphore(id));
            return Dynamic::from_bool(op.at_script(line, column).await);
        }
        Call::Permits(id) => {
            let op = ctx.permits(Semaphore(id));
            return Dynamic::from_int(op.at_script(line, column).await as INT);
        }
        Call::Unit(op, id) => match op {
            Op::ReadLock => ctx.read_lock(RwLock(id)),
            Op::ReadUnlock => ctx.read_unlock(RwLock(id)),
            Op::WriteLock => ctx.write_lock(RwLock(id)),
            Op::WriteUnlock => ctx.write_unlock(RwLock(id)),
            Op::NotifyOne => ctx.notify_one(Condvar(id)),
            Op::NotifyAll => ctx.notify_all(Condvar(id)),
            Op::Signal => ctx.signal(Countdown(id)),
            Op::Set => ctx.set(Event(id)),
            _ => ctx.clear(Event(id)),
        },
        Call::BarrierWait(id) => ctx.barrier_wait(Barrier(id)),
        Call::CountdownWait(id) => ctx.wait_countdown(Countdown(id)),
        Call::IsSet(id) => {
            let op = ctx.is_set(Event(id));
            return Dynamic::from_bool(op.at_script(line, column).await);
        }
        Call::EventWait(id) => {
            ctx.wait_event(Event(id)).at_script(line, column).await;
            return Dynamic::from_bool(true);
        }
        Call::EventWaitTimeout(id, timeout) => {
            let op = ctx.wait_event_timeout(Event(id), timeout);
            return Dynamic::from_bool(op.at_script(line, column).await);
        }
        Call::CondvarWait(cv, mutex) => ctx.wait(Condvar(cv), Mutex(mutex)),
        Call::CondvarWaitTimeout(cv, mutex, timeout) => {
            let (wait, relock) = ctx.wait_timeout_parts(Condvar(cv), Mutex(mutex), timeout);
            let notified = match wait.at_script(line, column).await {
                Some(notified) => {
                    relock.at_script(line, column).await;
                    notified
                }
                None => true,
            };
            return Dynamic::from_bool(notified);
        }
        Call::Send(id, value, bytes) => ctx.send_sized(Channel::<Dynamic>::new(id), value, bytes),
        Call::Recv(id) => {
            let op = ctx.recv(Channel::<Dynamic>::new(id));
            return op.at_script(line, column).await;
        }
        Call::Io(device, bytes) => ctx.io(device, bytes),
    };
    unit.at_script(line, column).await;
    Dynamic::UNIT
}

/// Iterations in progress.
enum Iter {
    Ints {
        next: INT,
        end: INT,
        inclusive: bool,
        done: bool,
        count: INT,
    },
    Items {
        items: rhai::Array,
        next: usize,
    },
    Chars {
        chars: Vec<char>,
        next: usize,
    },
}

/// A body being run: its place and its values.
struct Run {
    program: Rc<Program>,
    pc: usize,
    stack: Vec<Dynamic>,
    slots: Vec<Dynamic>,
    iters: Vec<Iter>,
    /// The position of the last operation (for errors without one).
    last: Option<(u32, u32)>,
    /// Script operations so far (limits).
    total: u64,
    /// The machine the thread runs on (an operation's other handles must
    /// be of it).
    machine: MachineHandle,
}

impl Run {
    fn pop(&mut self) -> Dynamic {
        self.stack.pop().expect("a value on the stack")
    }

    /// Runs until the next operation or the end.
    fn step(&mut self, engine: &Engine) -> Result<Stop, Box<EvalAltResult>> {
        let program = self.program.clone();
        loop {
            let step = &program.steps[self.pc];
            self.pc += 1;
            match step {
                Step::Const(value) => self.stack.push(value.clone()),
                Step::Get(slot) => self.stack.push(self.slots[*slot as usize].clone()),
                Step::Set(slot) => self.slots[*slot as usize] = self.pop(),
                Step::Pop => {
                    drop(self.pop());
                }
                Step::Forget(from) => {
                    for slot in &mut self.slots[*from as usize..] {
                        *slot = Dynamic::UNIT;
                    }
                }
                Step::Binary(op, fallback) => {
                    let b = self.pop();
                    let a = self.pop();
                    let fast = match (a.as_int(), b.as_int()) {
                        (Ok(a), Ok(b)) => op.ints(a, b),
                        _ => None,
                    };
                    let value = match fast {
                        Some(value) => value,
                        None => fallback.eval(engine, &mut [a, b])?,
                    };
                    self.stack.push(value);
                }
                Step::Assign(op, fallback) => {
                    let b = self.pop();
                    let a = self.pop();
                    let fast = match (op, a.as_int(), b.as_int()) {
                        (Some(op), Ok(a), Ok(b)) => op.ints(a, b),
                        _ => None,
                    };
                    let value = match fast {
                        Some(value) => value,
                        None => fallback.eval(engine, &mut [a, b])?,
                    };
                    self.stack.push(value);
                }
                Step::Not(fallback) => {
                    let a = self.pop();
                    let value = match a.as_bool() {
                        Ok(b) => Dynamic::from_bool(!b),
                        Err(_) => fallback.eval(engine, &mut [a])?,
                    };
                    self.stack.push(value);
                }
                Step::Duration(unit, fallback) => {
                    let a = self.pop();
                    let fast = a
                        .as_int()
                        .ok()
                        .and_then(|n| u64::try_from(n).ok())
                        .and_then(|n| n.checked_mul(*unit));
                    let value = match fast {
                        Some(nanos) => Dynamic::from(Span(nanos)),
                        None => fallback.eval(engine, &mut [a])?,
                    };
                    self.stack.push(value);
                }
                Step::Jump(to) => self.pc = *to as usize,
                Step::JumpUnless(to, at) => {
                    let condition = self.pop();
                    match condition.as_bool() {
                        Ok(true) => {}
                        Ok(false) => self.pc = *to as usize,
                        Err(typ) => return Err(mismatch(engine, "bool", typ, *at)),
                    }
                }
                Step::ShortCircuit { when, to, at } => {
                    let value = self.pop();
                    match value.as_bool() {
                        Ok(b) if b == *when => {
                            self.stack.push(Dynamic::from_bool(b));
                            self.pc = *to as usize;
                        }
                        Ok(_) => {}
                        Err(typ) => return Err(mismatch(engine, "bool", typ, *at)),
                    }
                }
                Step::Boolean(at) => {
                    let value = self.stack.last().expect("a value");
                    if let Err(typ) = value.as_bool() {
                        return Err(mismatch(engine, "bool", typ, *at));
                    }
                }
                Step::Apply(fallback) => {
                    self.tick(1)?;
                    let base = self.stack.len() - fallback.names.len();
                    let value = fallback.eval(engine, &mut self.stack[base..])?;
                    self.stack.truncate(base);
                    self.stack.push(value);
                }
                Step::Rhai(fallback) => {
                    self.tick(1)?;
                    let n = fallback.names.len();
                    let value = fallback.eval(engine, &mut self.slots[..n])?;
                    if fallback.value {
                        self.stack.push(value);
                    }
                }
                Step::Iterate(at, collect) => {
                    let iterable = self.pop();
                    let iter = if iterable.is::<std::ops::Range<INT>>() {
                        let range = iterable.cast::<std::ops::Range<INT>>();
                        Iter::Ints {
                            next: range.start,
                            end: range.end,
                            inclusive: false,
                            done: false,
                            count: 0,
                        }
                    } else if iterable.is::<std::ops::RangeInclusive<INT>>() {
                        let range = iterable.cast::<std::ops::RangeInclusive<INT>>();
                        Iter::Ints {
                            next: *range.start(),
                            end: *range.end(),
                            inclusive: true,
                            done: range.is_empty(),
                            count: 0,
                        }
                    } else if iterable.is_array() {
                        Iter::Items {
                            items: iterable.into_array().expect("an array"),
                            next: 0,
                        }
                    } else if iterable.is_string() {
                        let text = iterable.into_immutable_string().expect("a string");
                        Iter::Chars {
                            chars: text.chars().collect(),
                            next: 0,
                        }
                    } else {
                        match collect.eval(engine, &mut [iterable]) {
                            Ok(items) if items.is_array() => Iter::Items {
                                items: items.into_array().expect("an array"),
                                next: 0,
                            },
                            Err(error) if !matches!(*error, EvalAltResult::ErrorFor(..)) => {
                                return Err(error)
                            }
                            _ => return Err(EvalAltResult::ErrorFor(*at).into()),
                        }
                    };
                    self.iters.push(iter);
                }
                Step::Next { var, counter, done } => {
                    let iter = self.iters.last_mut().expect("an iteration");
                    let (item, index) = match iter {
                        Iter::Ints {
                            next,
                            end,
                            inclusive,
                            done,
                            count,
                        } => {
                            let more = if *inclusive {
                                !*done && *next <= *end
                            } else {
                                *next < *end
                            };
                            if more {
                                let item = *next;
                                if *inclusive && item == *end {
                                    *done = true;
                                } else {
                                    *next += 1;
                                }
                                *count += 1;
                                (Some(Dynamic::from_int(item)), *count - 1)
                            } else {
                                (None, 0)
                            }
                        }
                        Iter::Items { items, next } => {
                            let item = items.get_mut(*next).map(std::mem::take);
                            *next += 1;
                            (item, *next as INT - 1)
                        }
                        Iter::Chars { chars, next } => {
                            let item = chars.get(*next).map(|c| Dynamic::from_char(*c));
                            *next += 1;
                            (item, *next as INT - 1)
                        }
                    };
                    match item {
                        Some(item) => {
                            self.slots[*var as usize] = item;
                            if let Some(counter) = counter {
                                self.slots[*counter as usize] = Dynamic::from_int(index);
                            }
                        }
                        None => {
                            self.iters.pop();
                            self.pc = *done as usize;
                        }
                    }
                }
                Step::EndIterate => {
                    self.iters.pop();
                }
                Step::Tick(weight) => self.tick(u64::from(*weight))?,
                Step::Call(op, at, fallback) => {
                    let position = at
                        .line()
                        .zip(at.position())
                        .map(|(l, c)| (l as u32, c as u32))
                        .unwrap_or((0, 0));
                    let call = self.call(engine, *op, *at, fallback)?;
                    return Ok(Stop::Call(call, position));
                }
                Step::Return => return Ok(Stop::Done(self.pop())),
            }
        }
    }

    /// `weight` script operations: the limits' check. Rhai gives its
    /// limits no position: neither does this (the error points after the
    /// last operation, as from a stackful body).
    fn tick(&mut self, weight: u64) -> Result<(), Box<EvalAltResult>> {
        self.total += weight;
        match limits::progress(self.total, weight, None) {
            None => Ok(()),
            Some(fault) => {
                Err(EvalAltResult::ErrorTerminated(Dynamic::from(fault), Position::NONE).into())
            }
        }
    }

    /// The operation `op` on the values on the stack (popped); arguments
    /// it does not take go to Rhai's own `fallback` call, for Rhai's error.
    fn call(
        &mut self,
        engine: &Engine,
        op: Op,
        at: Position,
        fallback: &Fallback,
    ) -> Result<Call, Box<EvalAltResult>> {
        let base = self.stack.len() - op.arity() - usize::from(op.is_method());
        let values = &mut self.stack[base..];
        if let Op::Print = op {
            // Rhai's own print makes the line (and any error of it).
            let printed = print_captured(|| fallback.eval(engine, values));
            self.stack.truncate(base);
            return printed.map(Call::Print);
        }
        let call = decode(op, values, at, &self.machine).unwrap_or_else(|| {
            Err(match fallback.eval(engine, values) {
                Err(error) => error,
                Ok(_) => EvalAltResult::ErrorFunctionNotFound(method_name(op).into(), at).into(),
            })
        });
        self.stack.truncate(base);
        call
    }
}

/// The operation `op` on `values` (the handle first, for a method), or
/// `None` if it does not take them.
fn decode(
    op: Op,
    values: &mut [Dynamic],
    at: Position,
    machine: &MachineHandle,
) -> Option<Result<Call, Box<EvalAltResult>>> {
    use ResourceKind as K;
    if !op.is_method() {
        let span = |what: &str| {
            let value = &values[0];
            if value.is::<Span>() || value.is_string() {
                Some(to_span(value, what, at))
            } else if value.as_int() == Ok(0) {
                Some(Ok(Span::ZERO))
            } else {
                None
            }
        };
        return match op {
            Op::YieldNow => Some(Ok(Call::YieldNow)),
            Op::Now => Some(Ok(Call::Now)),
            Op::Compute => span("compute").map(|d| d.map(Call::Compute)),
            Op::ComputeNoGil => span("compute_nogil").map(|d| d.map(Call::ComputeNoGil)),
            _ => span("sleep").map(|d| d.map(Call::Sleep)),
        };
    }
    let timeout = |value: &Dynamic| to_span(value, "the timeout", at);
    // A condvar's mutex: a mutex of the running machine (else Rhai says
    // what is wrong with it).
    let mutex = |value: &Dynamic| match super::sync::handle_parts(value) {
        Some((K::Mutex, owner, id)) if owner.same(machine) => Some(id),
        _ => None,
    };
    let int = |i: usize| values[i].as_int().ok();
    let call = if let Some((kind, _, id)) = super::sync::handle_parts(&values[0]) {
        match (op, kind) {
            (Op::Lock, K::Mutex | K::Spinlock | K::RLock) => Some(Call::Lock(kind, id)),
            (Op::Unlock, K::Mutex | K::Spinlock | K::RLock) => Some(Call::Unlock(kind, id)),
            (Op::TryLock, K::Mutex | K::Spinlock | K::RLock) => Some(Call::TryLock(kind, id)),
            (Op::Acquire, K::Semaphore) => Some(Call::Acquire(id)),
            (Op::Release, K::Semaphore) => Some(Call::Release(id)),
            (Op::AcquireTimeout, K::Semaphore) => {
                return Some(timeout(&values[1]).map(|t| Call::AcquireTimeout(id, t)))
            }
            (Op::TryAcquire, K::Semaphore) => Some(Call::TryAcquire(id)),
            (Op::Permits, K::Semaphore) => Some(Call::Permits(id)),
            (Op::ReadLock | Op::ReadUnlock | Op::WriteLock | Op::WriteUnlock, K::RwLock)
            | (Op::NotifyOne | Op::NotifyAll, K::Condvar)
            | (Op::Signal, K::Countdown)
            | (Op::Set | Op::Clear, K::Event) => Some(Call::Unit(op, id)),
            (Op::IsSet, K::Event) => Some(Call::IsSet(id)),
            (Op::Wait, K::Barrier) => Some(Call::BarrierWait(id)),
            (Op::Wait, K::Countdown) => Some(Call::CountdownWait(id)),
            (Op::Wait, K::Event) => Some(Call::EventWait(id)),
            (Op::WaitWith, K::Event) => {
                return Some(timeout(&values[1]).map(|t| Call::EventWaitTimeout(id, t)))
            }
            (Op::WaitWith, K::Condvar) => mutex(&values[1]).map(|m| Call::CondvarWait(id, m)),
            (Op::WaitTimeout, K::Condvar) => {
                let m = mutex(&values[1])?;
                return Some(timeout(&values[2]).map(|t| Call::CondvarWaitTimeout(id, m, t)));
            }
            (Op::Send, K::Channel) => {
                // Rhai hands a function its arguments flattened: a
                // captured (shared) value is sent as a copy.
                let value = std::mem::take(&mut values[1]).flatten();
                let bytes = super::sync::pickled_size(&value);
                Some(Call::Send(id, value, bytes))
            }
            (Op::Recv, K::Channel) => Some(Call::Recv(id)),
            _ => None,
        }
    } else if let Some(device) = values[0]
        .read_lock::<super::io::DeviceH>()
        .map(|d| d.parts().1)
    {
        match (op, values.get(1).map(Dynamic::as_int)) {
            (Op::Io, Some(Ok(bytes))) if bytes >= 0 => Some(Call::Io(device, bytes as u64)),
            _ => None,
        }
    } else {
        let var = values[0]
            .read_lock::<super::memory::VariableH>()
            .map(|v| v.parts().1);
        match (var, op) {
            (Some(v), Op::Load) => Some(Call::Load(v)),
            (Some(v), Op::Store) => int(1).map(|x| Call::Store(v, x)),
            (Some(v), Op::FetchAdd) => int(1).map(|x| Call::FetchAdd(v, x)),
            (Some(v), Op::CompareExchange) => int(1)
                .zip(int(2))
                .map(|(a, b)| Call::CompareExchange(v, a, b)),
            _ => None,
        }
    };
    call.map(Ok)
}

/// The script name of a method.
fn method_name(op: Op) -> &'static str {
    match op {
        Op::Print => "print",
        Op::AcquireTimeout => "acquire",
        Op::TryAcquire => "try_acquire",
        Op::Permits => "value",
        Op::ReadLock => "read_lock",
        Op::ReadUnlock => "read_unlock",
        Op::WriteLock => "write_lock",
        Op::WriteUnlock => "write_unlock",
        Op::NotifyOne => "notify_one",
        Op::NotifyAll => "notify_all",
        Op::Wait | Op::WaitWith | Op::WaitTimeout => "wait",
        Op::Signal => "signal",
        Op::Set => "set",
        Op::Clear => "clear",
        Op::IsSet => "is_set",
        Op::Send => "send",
        Op::Recv => "recv",
        Op::Io => "io",
        Op::Lock => "lock",
        Op::Unlock => "unlock",
        Op::TryLock => "try_lock",
        Op::Acquire => "acquire",
        Op::Release => "release",
        Op::Load => "load",
        Op::Store => "store",
        Op::FetchAdd => "fetch_add",
        Op::CompareExchange => "compare_exchange",
        Op::Compute => "compute",
        Op::ComputeNoGil => "compute_nogil",
        Op::Sleep => "sleep",
        Op::YieldNow => "yield_now",
        Op::Now => "now",
    }
}

thread_local! {
    /// The line a body's `print` made, while [`print_captured`] runs it.
    static PRINTED: RefCell<Option<Option<String>>> = const { RefCell::new(None) };
}

/// Runs Rhai's `print` (in `eval`) and returns the line it printed.
fn print_captured(
    eval: impl FnOnce() -> Result<Dynamic, Box<EvalAltResult>>,
) -> Result<String, Box<EvalAltResult>> {
    PRINTED.set(Some(None));
    let result = eval();
    let printed = PRINTED.take().flatten();
    result.map(|_| printed.unwrap_or_default())
}

/// Takes the line of a `print` run by a stackless body; false when no
/// such body is printing (the line goes where prints go).
pub(crate) fn capture_print(text: &str) -> bool {
    PRINTED.with_borrow_mut(|printed| match printed {
        Some(line) => {
            *line = Some(text.to_string());
            true
        }
        None => false,
    })
}

/// Rhai's error for a value of the wrong type.
fn mismatch(engine: &Engine, expected: &str, actual: &str, at: Position) -> Box<EvalAltResult> {
    EvalAltResult::ErrorMismatchDataType(
        engine.map_type_name(expected).to_string(),
        actual.to_string(),
        at,
    )
    .into()
}

/// The error `error` of a body as its thread fails with it: at the
/// error's position, else after the body's `last` operation, else at the
/// call that `started` the thread.
pub(crate) fn failure(
    error: &EvalAltResult,
    last: Option<(u32, u32)>,
    started: Position,
) -> BodyError {
    let failure = session::with(|s| {
        let mut failure = ScriptError::from_eval(error, &s.script, &s.source);
        if failure.position.is_none() {
            match last {
                Some(last) => {
                    failure = failure.at(Some(last), &s.source);
                    failure
                        .message
                        .push_str(" (after the operation at this line)");
                }
                None => {
                    failure = failure.at(position_of(started), &s.source);
                    failure.message.push_str(
                        " (before the thread's first operation; it was started at this line)",
                    );
                }
            }
        }
        if s.failure.is_none() {
            s.failure = Some(failure.clone());
        }
        failure
    });
    BodyError {
        message: failure.message,
        position: failure.position,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{RunOptions, Script};

    /// What a run of `source` gave, in full: its error, its output and
    /// each machine run's outcome and trace.
    fn digest(source: &str, stackful: bool) -> (String, u64) {
        let script = Script::compile("t.rhai", source).expect("it compiles");
        let outcome = script.run(&RunOptions {
            charts: false,
            stackful,
            ..RunOptions::default()
        });
        let mut out = format!("{:?}\n{:?}\n", outcome.error, outcome.output);
        for run in &outcome.runs {
            out.push_str(&format!("{:?}\n{:?}\n", run.outcome, run.trace));
        }
        let stackless: usize = outcome.runs.iter().map(|r| r.script_threads.1).sum();
        (out, stackless as u64)
    }

    /// Runs `body` as the body of two threads sharing a mutex `lock`, a
    /// semaphore `sem` and variables `x`, `y`, both ways: the same
    /// everything, and how many threads ran without a stack.
    fn same(body: &str) -> u64 {
        let source = format!(
            "let m = machine(#{{ name: \"t\", cpus: 2 }});\n\
             let lock = m.mutex(\"lock\");\n\
             let sem = m.semaphore(\"sem\", 1);\n\
             let x = m.variable(\"x\", 0);\n\
             let y = m.variable(\"y\", 0);\n\
             let n = 3;\n\
             for t in [\"a\", \"b\"] {{\n\
             m.add_thread(t, || {{\n{body}\n}});\n\
             }}\n\
             m.run();\n"
        );
        both_ways(&source, body)
    }

    /// Runs `source` both ways: the same everything, and how many threads
    /// ran without a stack (`what` names the case on a failure).
    fn both_ways(source: &str, what: &str) -> u64 {
        let (stackless, started) = digest(source, false);
        let (stackful, none) = digest(source, true);
        assert_eq!(none, 0);
        assert_eq!(stackless, stackful, "{what}");
        started
    }

    #[test]
    fn loops_run_without_a_stack_as_rhai_runs_them() {
        for body in [
            "for i in 0..n { compute(us(i + 1)); x.fetch_add(i); }",
            "for i in 0..=n { if i == 2 { continue; } x.fetch_add(i); if i == 3 { break; } }",
            "for (v, i) in [5, 6, 7] { y.fetch_add(v * i); sleep(us(v)); }",
            "for c in \"abc\" { compute(ns(10)); }",
            "let i = 0; while i < n { i += 1; lock.lock(); x.store(x.load() + i); lock.unlock(); }",
            "let i = 0; loop { i += 2; if i > 6 { break; } yield_now(); } y.fetch_add(i);",
            "let i = 0; do { i += 1; sem.acquire(); compute(us(1)); sem.release(); } while i < n;",
            "let i = 10; do { i -= 3; sleep(us(1)); } until i < 0; x.store(i);",
            "for i in 0..2 { for j in 0..3 { if j == 1 { break; } x.fetch_add(10 * i + j); } }",
            "while true { if lock.try_lock() { x.fetch_add(1); lock.unlock(); break; } yield_now(); }",
            "let seen = x.compare_exchange(0, 5); if seen { y.store(1); } else { y.store(2); }",
            "let t = now(); compute(ms(1)); if now() - t == ms(1) { x.fetch_add(1); }",
            "let i = 0; do { i += 1; x.fetch_add(1); if i < 3 { continue; } } while false;",
            "for i in range(0, 6, 2) { compute(us(i + 1)); }",
            "for c in \"ab\".chars() { x.fetch_add(1); }",
            "for (b, i) in 10.bits() { y.fetch_add(i); }",
        ] {
            assert_eq!(same(body), 2, "{body}");
        }
    }

    #[test]
    fn values_and_scopes_are_rhais() {
        for body in [
            "let s = \"a\"; s += \"b\"; s += 1; if s == \"ab1\" { x.fetch_add(1); }",
            "let a = [1, 2]; a += 3; a += [4]; a[0] = 9; x.fetch_add(a[3] + a[0]);",
            "let m = #{ k: 1 }; m.k += 2; m.z = 5; x.fetch_add(m.k * m.z);",
            "let v = 1; { let v = 5; x.fetch_add(v); } x.fetch_add(v);",
            "const K = 7; let f = 2.5; f *= 2.0; if f > 4.9 && K == 7 { x.fetch_add(K); }",
            "let i = 1; let i = i + 1; let b = !(i == 2) || false; if !b { x.fetch_add(i); }",
            "let d = us(3) * 2; compute(d); sleep(d / 2); x.fetch_add(n % 2);",
            "let r = if n > 2 { 1 } else { 2 }; x.fetch_add(r);",
            "let total = 0; for i in 0..n { total += i * i; } x.store(total - 1);",
            "return x.fetch_add(1); x.fetch_add(100);",
        ] {
            assert_eq!(same(body), 2, "{body}");
        }
    }

    #[test]
    fn errors_are_rhais_at_the_same_lines() {
        for body in [
            "let a = 9223372036854775807; compute(us(1)); a += 1; x.store(a);",
            "let a = 5; let b = 0; compute(us(1)); x.store(a / b);",
            "compute(us(1)); let c = 1; if c { x.store(1); }",
            "x.store(\"seven\");",
            "compute(us(1)); let z = [1] + 2 * \"a\";",
            "compute(ns(-5));",
            "let five = 5; for i in five { compute(us(1)); }",
            "compute(us(1)); loop { let a = 1; }",
            "sleep(\"soon\");",
            "let i = 1; while i { i = 0; }",
            "compute(us(1)); loop { continue; }",
            "let s = \"ab\"; compute(us(1)); loop { s += s; }",
            "if ms(1) { compute(us(1)); }",
            "let r = 0..3; compute(us(1)); if r { compute(us(1)); }",
            "compute(true);",
            "compute(5);",
            "compute(0); lock.lock(); x.store(1.5);",
        ] {
            assert_eq!(same(body), 2, "{body}");
        }
    }

    #[test]
    fn bodies_that_need_a_stack_keep_it() {
        let source = "fn work() { compute(us(1)); }\n\
                      fn abs(v) { compute(us(1)); v }\n\
                      let m = machine(#{ name: \"t\" });\n\
                      let c = m.condvar(\"c\");\n\
                      let lock = m.mutex(\"lock\");\n\
                      let dev = m.device(\"d\", #{ latency: us(1) });\n\
                      let other = machine(#{ name: \"o\" });\n\
                      let theirs = other.mutex(\"theirs\");\n\
                      m.add_thread(\"w\", || { let a = abs(-3); compute(us(a)); });\n\
                      m.add_thread(\"f\", || { work(); });\n\
                      m.add_thread(\"p\", || { debug(\"hi\"); });\n\
                      m.add_thread(\"n\", || { let h = dev.submit(10); h.wait(); });\n\
                      m.add_thread(\"o\", || { theirs.lock(); });\n\
                      m.add_thread(\"a\", || { let v = [1, lock.try_lock()]; });\n\
                      let g = || compute(us(1));\n\
                      m.add_thread(\"b\", || { let i = 0; loop { i += 1; let v = if i > 2 { break; } else { i }; compute(us(v)); } });\n\
                      m.add_thread(\"s\", || { let t = { lock = c; 0 }; lock.lock(); });\n\
                      m.add_thread(\"e\", || { exit(5); compute(us(1)); });\n\
                      m.add_thread(\"g\", || { g.call(); });\n\
                      m.run();\n";
        let (stackless, started) = digest(source, false);
        assert_eq!(started, 0);
        assert_eq!(stackless, digest(source, true).0);
    }

    /// Runs `bodies`, a thread each, on a machine with one resource of
    /// every kind, both ways: the same everything, and how many threads ran
    /// without a stack.
    fn same_with_every_resource(bodies: &[&str]) -> u64 {
        let mut source = String::from(
            "let m = machine(#{ name: \"t\", cpus: 2 });\n\
             let mu = m.mutex(\"mu\");\n\
             let sem = m.semaphore(\"sem\", 1);\n\
             let rw = m.rwlock(\"rw\");\n\
             let cv = m.condvar(\"cv\");\n\
             let bar = m.barrier(\"bar\", 2);\n\
             let ev = m.event(\"ev\");\n\
             let cd = m.countdown(\"cd\", 2);\n\
             let ch = m.channel(\"ch\", 1);\n\
             let dev = m.device(\"disk\", #{ latency: us(3), bandwidth: \"1MB/s\" });\n\
             let x = m.variable(\"x\", 0);\n\
             let other = machine(#{ name: \"other\" });\n\
             let theirs = other.mutex(\"theirs\");\n",
        );
        for (i, body) in bodies.iter().enumerate() {
            source.push_str(&format!("m.add_thread(\"t{i}\", || {{\n{body}\n}});\n"));
        }
        source.push_str("m.run();\n");
        both_ways(&source, &format!("{bodies:?}"))
    }

    #[test]
    fn every_resource_works_without_a_stack() {
        let bodies = [
            "rw.read_lock(); compute(us(1)); rw.read_unlock();\n\
             rw.write_lock(); x.fetch_add(1); rw.write_unlock();\n\
             print(`t0 sees ${x.load()}`);\n\
             bar.wait(); cd.signal(); ev.set();\n\
             let v = x.load(); let t = `${x.load()}!`; ch.send([1, 2, v, t]); ch.send(\"two\");\n\
             dev.io(1000);\n\
             let got = sem.acquire(us(5));\n\
             print(`acquired ${got}, ${sem.value()} left, again: ${sem.try_acquire()}`);",
            "bar.wait(); cd.signal(); cd.wait();\n\
             let e = ev.wait(); let v = ch.recv(); let w = ch.recv();\n\
             print(`got ${v} and ${w}, ${e}, set: ${ev.is_set()}`);\n\
             ev.clear(); let late = ev.wait(us(3)); print(`timed out: ${!late}`);\n\
             sem.acquire(); sleep(us(20)); sem.release();",
            "mu.lock(); let woke = cv.wait(mu, us(50)); print(`notified: ${woke}`);\n\
             let gave_up = cv.wait(mu, us(5)); cv.wait(mu); mu.unlock(); print(`then ${gave_up}`);",
            "sleep(us(10)); mu.lock(); cv.notify_one(); mu.unlock();\n\
             sleep(us(100)); mu.lock(); cv.notify_all(); mu.unlock();",
        ];
        assert_eq!(same_with_every_resource(&bodies), 4);
        // A print before any operation, a print of every kind of value.
        assert_eq!(
            same_with_every_resource(&["print(1); print(ms(2)); print([1, \"a\"]); print(#{a: 1}); compute(us(1)); print(());"]),
            1
        );
    }

    #[test]
    fn every_resource_fails_as_rhai_fails() {
        for body in [
            "dev.io(-1);",
            "compute(us(1)); dev.io(\"4KB\");",
            "dev.io(1.5);",
            "ev.wait(\"soon\");",
            "ev.wait(5);",
            "mu.lock(); cv.wait(sem);",
            "mu.lock(); cv.wait(theirs);",
            "mu.lock(); cv.wait(mu, true);",
            "mu.lock(); cv.wait(theirs, us(1));",
            "cv.wait(mu);",
            "sem.acquire(\"x\");",
            "cd.signal(); cd.signal(); cd.signal();",
            "rw.read_unlock();",
            "rw.write_lock(); rw.write_lock();",
            "bar.signal();",
            "x.wait();",
            "mu.set();",
            "compute(us(1)); print(1 / 0);",
            "dev.wait();",
            "dev.lock();",
            "let s = \"\"; s.pad(600000, 'a'); let t = `${s}${s}${x.fetch_add(1)}`;",
            "let s = \"\"; s.pad(600000, 'a'); let t = `${x.fetch_add(1)}${s}${s}${compute(us(5))}`;",
        ] {
            assert_eq!(same_with_every_resource(&[body]), 1, "{body}");
        }
    }

    /// A small generator of bodies: loops, branches, arithmetic that may
    /// overflow or divide by zero, and operations.
    fn random_body(seed: &mut u64) -> String {
        fn next(seed: &mut u64, n: u64) -> u64 {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *seed % n
        }
        fn expr(seed: &mut u64, depth: u32) -> String {
            match next(seed, if depth > 2 { 3 } else { 7 }) {
                0 => format!("{}", next(seed, 7) as i64 - 2),
                1 => ["a", "b", "n"][next(seed, 3) as usize].to_string(),
                2 => "x.load()".to_string(),
                3 => format!("({} + {})", expr(seed, depth + 1), expr(seed, depth + 1)),
                4 => format!("({} * {})", expr(seed, depth + 1), expr(seed, depth + 1)),
                5 => format!("({} / {})", expr(seed, depth + 1), expr(seed, depth + 1)),
                _ => format!(
                    "({} % 5 - {})",
                    expr(seed, depth + 1),
                    expr(seed, depth + 1)
                ),
            }
        }
        fn stmt(seed: &mut u64, depth: u32) -> String {
            match next(seed, if depth > 1 { 5 } else { 11 }) {
                0 => format!("a = {};", expr(seed, 0)),
                1 => format!("b += {};", expr(seed, 0)),
                2 => format!("x.store({});", expr(seed, 0)),
                3 => format!("compute(us({} % 3 + 3));", expr(seed, 0)),
                4 => "lock.lock(); y.fetch_add(1); lock.unlock();".to_string(),
                5 => format!(
                    "if {} < {} {{ {} }} else {{ {} }}",
                    expr(seed, 0),
                    expr(seed, 0),
                    stmt(seed, depth + 1),
                    stmt(seed, depth + 1)
                ),
                6 => format!(
                    "for i in 0..{} {{ {} {} }}",
                    next(seed, 4),
                    stmt(seed, depth + 1),
                    stmt(seed, depth + 1)
                ),
                7 => format!(
                    "let k = 0; while k < {} {{ k += 1; {} if a == k {{ break; }} }}",
                    next(seed, 4),
                    stmt(seed, depth + 1)
                ),
                9 => format!("print(`{} and ${{x.load()}}`);", expr(seed, 0)),
                10 => format!(
                    "let v = x.load(); let arr = [a, v, \"s\"]; b += arr[{}];",
                    next(seed, 3) as i64 - 1
                ),
                _ => "sleep(us(2)); yield_now();".to_string(),
            }
        }
        let mut body = String::from("let a = 1; let b = 2;\n");
        for _ in 0..4 {
            body.push_str(&stmt(seed, 0));
            body.push('\n');
        }
        body
    }

    #[test]
    fn random_bodies_give_the_same_runs_both_ways() {
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..150 {
            let body = random_body(&mut seed);
            assert_eq!(same(&body), 2, "{body}");
        }
    }
}
