//! Script errors: what went wrong, where in the script, and what to do.
//!
//! Every error a script can cause, at compile time, at the top level or
//! inside a thread body, becomes one [`ScriptError`] that names the script,
//! the line and column, shows the line and gives a hint.

use std::fmt;

use rhai::{EvalAltResult, ParseError, Position};

use crate::error::SimError;

/// Which stage of a script's life an error comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorStage {
    /// Reading the script file.
    Load,
    /// Compiling it (syntax).
    Compile,
    /// Evaluating it: the top level or a thread body.
    Run,
    /// A limit stopped it: script operations, call depth, sizes, or the
    /// machine's `max_time` / `max_events`.
    Limit,
}

/// An error in a script, with its position and a hint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptError {
    /// The script's name, as given to the compiler (usually its path).
    pub script: String,
    /// Where the error arose.
    pub stage: ErrorStage,
    /// What went wrong, in one line.
    pub message: String,
    /// 1-based line and column, when known.
    pub position: Option<(u32, u32)>,
    /// The text of that line.
    pub source_line: Option<String>,
    /// What to do about it.
    pub hint: Option<String>,
}

impl ScriptError {
    /// An error with no position.
    pub(crate) fn new(script: &str, stage: ErrorStage, message: impl Into<String>) -> Self {
        ScriptError {
            script: script.to_string(),
            stage,
            message: message.into(),
            position: None,
            source_line: None,
            hint: None,
        }
    }

    /// Sets the position (when the Rhai position is known) and the line text.
    pub(crate) fn at(mut self, position: Option<(u32, u32)>, source: &str) -> Self {
        if let Some((line, _)) = position {
            self.source_line = source
                .lines()
                .nth(line.saturating_sub(1) as usize)
                .map(str::to_string);
        }
        self.position = position;
        self
    }

    /// Adds a hint.
    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The error of a script that did not compile.
    ///
    /// When the file ends inside an open `{`, `(` or `[`, Rhai reports what
    /// it expected at the end of the file (often a `;`); the error points at
    /// the bracket that is never closed instead.
    pub(crate) fn from_parse(error: &ParseError, script: &str, source: &str) -> Self {
        let position = position_of(error.position());
        let at_end = position.is_none_or(|(line, _)| line as usize > source.lines().count());
        if let Some((line, column, open)) = unclosed_bracket(source).filter(|_| at_end) {
            let close = match open {
                '{' => '}',
                '(' => ')',
                _ => ']',
            };
            return ScriptError::new(
                script,
                ErrorStage::Compile,
                format!("this `{open}` is never closed: the file ends inside it"),
            )
            .at(Some((line, column)), source)
            .with_hint(format!(
                "add the `{close}` that closes it (a closure's body is `|| {{ ... }}`, \
                 and the call around it ends with `);`)"
            ));
        }
        let message = error.err_type().to_string();
        let hint = "fix the syntax at this position; Rhai syntax is close to Rust's: \
                    `let x = 1;`, `for i in 0..10 { }`, closures `|| { ... }`";
        // Rhai gives no position for an error at the end of the text (an
        // unterminated string or block): point at its end.
        let position = position_of(error.position()).or_else(|| Some(end_of(source)));
        ScriptError::new(script, ErrorStage::Compile, message)
            .at(position, source)
            .with_hint(hint)
    }

    /// The error of a failed evaluation, at its innermost position (the line
    /// inside the closure or function where it arose, not the call site).
    pub(crate) fn from_eval(error: &EvalAltResult, script: &str, source: &str) -> Self {
        let (inner, mut position) = innermost(error);
        if let (true, EvalAltResult::ErrorDataRace(what, _)) = (position.is_none(), inner) {
            // Rhai gives no position here; the message names the function.
            position = only_call_of(what, source).unwrap_or(position);
        }
        let (stage, message, hint) = describe(inner);
        let mut out = ScriptError::new(script, stage, message).at(position_of(position), source);
        out.hint = hint;
        out
    }

    /// The error that ended a simulation run, at `fallback` (the call that
    /// ran the machine) when the error itself has no script position.
    pub(crate) fn from_sim(
        error: &SimError,
        script: &str,
        source: &str,
        fallback: Option<(u32, u32)>,
    ) -> Self {
        let (stage, hint) = match error {
            SimError::TimeLimit { .. } => (
                ErrorStage::Limit,
                Some("raise the machine's max_time (e.g. machine(#{ max_time: sec(10) })) or shorten the scenario"),
            ),
            // Its message names the key and a value to set.
            SimError::EventLimit { .. } => (
                ErrorStage::Limit,
                Some("a thread that loops without ever blocking never ends; otherwise raise max_events as shown or shorten the scenario"),
            ),
            SimError::Livelock { .. } => (
                ErrorStage::Limit,
                Some("give the loop at this line a compute() or sleep(), so that time passes, or wait on a lock, event or channel instead of polling"),
            ),
            SimError::MemoryLimit { .. } => (
                ErrorStage::Limit,
                Some("the line shown is the last operation before the guard tripped: keep fewer threads alive or smaller arrays, or raise simcli's --max-memory"),
            ),
            SimError::Timeout { .. } => (
                ErrorStage::Limit,
                Some("raise --timeout, or shorten the scenario; a run stopped by the wall clock is never an outcome"),
            ),
            SimError::Misuse {
                misuse: crate::error::Misuse::TooManyThreads { .. },
                ..
            } => (ErrorStage::Limit, None),
            _ => (ErrorStage::Run, None),
        };
        // The operation that failed, or, for a limit, the last operation of
        // the thread that tripped it.
        let in_script = |site: &crate::error::Site| {
            site.origin
                .as_ref()
                .filter(|o| o.file == script)
                .map(|o| (o.line, o.column))
        };
        let position = match error {
            // The first repeating thread with a line in the script (an
            // event loop's own operations have none).
            SimError::Livelock { repeating, .. } => repeating.iter().find_map(in_script),
            _ => error.site().as_ref().and_then(in_script),
        }
        .or(fallback);
        // The run's outcome already went through `script_sites`.
        let mut out = ScriptError::new(script, stage, strip_origin(error)).at(position, source);
        out.hint = hint.map(str::to_string);
        out
    }
}

/// `error` with the positions that are not in the script taken out of
/// its sites: an operation the simulator calls for the script (an event
/// loop's own select, a pool's hand-off) is at a line of simcli's source,
/// which means nothing to the script's author. The thread stays named.
pub(crate) fn script_sites(error: &SimError, script: &str) -> SimError {
    let keep = |site: &mut crate::error::Site| {
        if site.origin.as_ref().is_some_and(|o| o.file != script) {
            site.origin = None;
        }
    };
    let mut error = error.clone();
    match &mut error {
        SimError::TimeLimit { site, .. }
        | SimError::EventLimit { site, .. }
        | SimError::MemoryLimit { site, .. }
        | SimError::Timeout { site, .. } => site.iter_mut().for_each(keep),
        SimError::Livelock { repeating, .. } => repeating.iter_mut().for_each(keep),
        _ => {}
    }
    error
}

/// The error's message without the " (file:line:col)" the kernel appends:
/// the script error shows the position itself.
fn strip_origin(error: &SimError) -> String {
    match error {
        SimError::Failed {
            thread,
            time,
            message,
            ..
        } => format!("in thread '{thread}' at {time}: {message}"),
        SimError::Misuse {
            thread,
            time,
            misuse,
            ..
        } => format!("in thread '{thread}' at {time}: {misuse}"),
        other => other.to_string(),
    }
}

/// The 1-based line and column just past the end of `source`.
fn end_of(source: &str) -> (u32, u32) {
    let line = source.split('\n').count().max(1) as u32;
    let last = source.rsplit('\n').next().unwrap_or("");
    (line, last.chars().count() as u32 + 1)
}

/// Converts a Rhai position to 1-based line and column.
pub(crate) fn position_of(position: Position) -> Option<(u32, u32)> {
    let line = position.line()?;
    Some((line as u32, position.position().unwrap_or(1) as u32))
}

/// The innermost bracket (`{`, `(` or `[`) still open at the end of
/// `source`, with its 1-based line and column; strings, characters and
/// comments are skipped.
fn unclosed_bracket(source: &str) -> Option<(u32, u32, char)> {
    let mut open: Vec<(u32, u32, char)> = Vec::new();
    let mut chars = source.chars().peekable();
    let (mut line, mut column) = (1u32, 0u32);
    let advance = |c: char, line: &mut u32, column: &mut u32| {
        if c == '\n' {
            *line += 1;
            *column = 0;
        } else {
            *column += 1;
        }
    };
    while let Some(c) = chars.next() {
        advance(c, &mut line, &mut column);
        match c {
            '{' | '(' | '[' => open.push((line, column, c)),
            '}' | ')' | ']' => {
                open.pop();
            }
            '"' | '\'' | '`' => {
                // To the closing quote, past escaped characters.
                while let Some(d) = chars.next() {
                    advance(d, &mut line, &mut column);
                    if d == '\\' && c != '`' {
                        if let Some(e) = chars.next() {
                            advance(e, &mut line, &mut column);
                        }
                    } else if d == c {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                while let Some(&d) = chars.peek() {
                    if d == '\n' {
                        break;
                    }
                    chars.next();
                    advance(d, &mut line, &mut column);
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                let mut previous = ' ';
                for d in chars.by_ref() {
                    advance(d, &mut line, &mut column);
                    if previous == '*' && d == '/' {
                        break;
                    }
                    previous = d;
                }
            }
            _ => {}
        }
    }
    open.pop()
}

/// Follows nested function-call errors down to the one that arose first.
fn innermost(error: &EvalAltResult) -> (&EvalAltResult, Position) {
    let mut current = error;
    let mut position = error.position();
    while let EvalAltResult::ErrorInFunctionCall(_, _, inner, _) = current {
        current = inner;
        if !inner.position().is_none() {
            position = inner.position();
        }
    }
    (current, position)
}

/// Where the function named last in `message` (in single quotes) is called:
/// the call whose line mentions its receiver again (a closure capturing it),
/// else the only call. `None` when that does not single one out.
fn only_call_of(message: &str, source: &str) -> Option<Position> {
    let name = message.rsplit('\'').nth(1)?;
    let call = format!(".{name}(");
    let calls: Vec<(usize, usize, bool)> = source
        .lines()
        .enumerate()
        .filter_map(|(line, text)| {
            let at = text.find(&call)?;
            let receiver = text[..at]
                .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .filter(|r| !r.is_empty())?;
            let rest = &text[at + call.len()..];
            let captured = rest
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|word| word == receiver);
            Some((line, at + 1, captured))
        })
        .collect();
    let captured: Vec<_> = calls.iter().filter(|c| c.2).collect();
    let (line, column, _) = match (captured.as_slice(), calls.as_slice()) {
        ([only], _) => **only,
        (_, [only]) => *only,
        _ => return None,
    };
    Some(Position::new(
        u16::try_from(line + 1).ok()?,
        u16::try_from(column + 1).ok()?,
    ))
}

/// A fault raised by a binding: the message and a hint. It travels inside
/// `EvalAltResult::ErrorRuntime` so that a script error keeps its hint.
#[derive(Clone, Debug)]
pub(crate) struct Fault {
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
    pub(crate) stage: ErrorStage,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A binding's error at `position`.
pub(crate) fn fault(
    message: impl Into<String>,
    hint: Option<&str>,
    position: Position,
) -> Box<EvalAltResult> {
    let fault = Fault {
        message: message.into(),
        hint: hint.map(str::to_string),
        stage: ErrorStage::Run,
    };
    EvalAltResult::ErrorRuntime(rhai::Dynamic::from(fault), position).into()
}

/// Stage, message and hint for one (innermost) Rhai error.
fn describe(error: &EvalAltResult) -> (ErrorStage, String, Option<String>) {
    use EvalAltResult as E;
    let run = ErrorStage::Run;
    match error {
        E::ErrorRuntime(value, _) => match value.clone().try_cast::<Fault>() {
            Some(fault) => (fault.stage, fault.message, fault.hint),
            None => (run, format!("the script threw {value}"), None),
        },
        E::ErrorTerminated(value, _) => match value.clone().try_cast::<Fault>() {
            Some(fault) => (fault.stage, fault.message, fault.hint),
            None => (ErrorStage::Limit, "the script was stopped".into(), None),
        },
        E::ErrorFunctionNotFound(signature, _) => (
            run,
            format!("no function matches {signature}"),
            Some(
                "check the name and the argument types: durations are written ms(5), us(250), \
                 sec(1.5); bodies are closures `|| { ... }`. `simcli api` lists every function"
                    .into(),
            ),
        ),
        E::ErrorDataRace(_, _) => (
            run,
            "a closure passed to this call captures the value the call is made on".into(),
            Some(
                "a body or expectation cannot capture its own machine (or process) while it is \
                 being declared: capture the variables and locks it needs instead"
                    .into(),
            ),
        ),
        E::ErrorVariableNotFound(name, _) => (
            run,
            format!("no variable named `{name}`"),
            Some(format!(
                "declare it with `let {name} = ...;` before this line (closures see variables declared before them)"
            )),
        ),
        E::ErrorStackOverflow(_) => (
            ErrorStage::Limit,
            "calls nested too deeply".into(),
            Some(format!(
                "at most {} nested function calls are allowed; recurse less deeply",
                super::limits::MAX_CALL_LEVELS
            )),
        ),
        E::ErrorTooManyOperations(_) => (
            ErrorStage::Limit,
            "too many script operations".into(),
            None,
        ),
        E::ErrorDataTooLarge(what, _) => (
            ErrorStage::Limit,
            format!("{what} is too large"),
            Some(format!(
                "strings are limited to {} bytes (the strings inside one array or map count together) and arrays to {} elements",
                super::limits::MAX_STRING,
                super::limits::MAX_ARRAY
            )),
        ),
        other => {
            let text = other.to_string();
            let plain = match text.rfind(" (line ") {
                Some(at) if text.ends_with(')') => &text[..at],
                _ => &text,
            };
            (run, plain.to_string(), None)
        }
    }
}

impl fmt::Display for ScriptError {
    /// A compiler-style message:
    ///
    /// ```text
    /// error: no function matches compute (i64)
    ///   --> scripts/hello.rhai:4:5
    ///    |
    ///  4 |     compute(5);
    ///    |     ^
    ///    = help: ...
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        match self.position {
            Some((line, column)) => {
                writeln!(f, "  --> {}:{line}:{column}", self.script)?;
                if let Some(text) = &self.source_line {
                    let number = line.to_string();
                    let pad = " ".repeat(number.len());
                    writeln!(f, " {pad} |")?;
                    writeln!(f, " {number} | {text}")?;
                    let indent: String = text
                        .chars()
                        .take(column.saturating_sub(1) as usize)
                        .map(|c| if c == '\t' { '\t' } else { ' ' })
                        .collect();
                    writeln!(f, " {pad} | {indent}^")?;
                }
            }
            None => writeln!(f, "  --> {}", self.script)?,
        }
        if let Some(hint) = &self.hint {
            writeln!(f, "  = help: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScriptError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unclosed_brace_is_found_past_strings_and_comments() {
        let source =
            "let m = machine(); // {\nm.add_thread(\"a{\", || {\n    /* ( */ compute(ms(1))\n";
        assert_eq!(unclosed_bracket(source), Some((2, 23, '{')));
        assert_eq!(unclosed_bracket("let a = [1, (2)];\n"), None);
    }

    #[test]
    fn a_parse_error_at_the_end_points_there() {
        assert_eq!(end_of("a\n`${}"), (2, 5));
        assert_eq!(end_of(""), (1, 1));
    }

    #[test]
    fn display_points_at_the_column() {
        let error = ScriptError::new("s.rhai", ErrorStage::Run, "bad")
            .at(Some((2, 5)), "let a = 1;\n    compute(5);\n")
            .with_hint("do this");
        let text = error.to_string();
        assert!(text.contains("--> s.rhai:2:5"), "{text}");
        assert!(text.contains(" 2 |     compute(5);"), "{text}");
        assert!(text.contains("   |     ^"), "{text}");
        assert!(text.contains("= help: do this"), "{text}");
    }
}
