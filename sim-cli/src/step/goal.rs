//! A challenge's goal, read from its header, and whether a run reached it.
//!
//! A challenge (`scripts/challenges/*.rhai`) says in its first comment
//! lines what the player is after, in words and in a form simcli checks:
//!
//! ```text
//! // goal: make both threads enter the critical section
//! // reach: expectation "mutual exclusion"
//! ```
//!
//! `reach:` is one of `expectation "NAME"` (that expectation fails),
//! `deadlock` (a run ends in a deadlock) or `stall` (a run ends stalled).

use sim_core::kernel::Outcome;
use sim_core::script::ScriptOutcome;

/// What a challenge asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Goal {
    /// The goal in words.
    pub text: String,
    /// How a run reaches it.
    pub reach: Reach,
}

/// How a run reaches a [`Goal`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// The expectation of this name fails.
    Expectation(String),
    /// A run ends in a deadlock.
    Deadlock,
    /// A run ends stalled.
    Stall,
}

impl Goal {
    /// The goal of a script, from its header's `// goal:` and `// reach:`
    /// lines; `None` for a script that is not a challenge. A `reach:` that
    /// cannot be read is an error.
    pub fn from_source(source: &str) -> Result<Option<Goal>, String> {
        let header = || source.lines().take_while(|l| l.starts_with("//"));
        let field = |name: &str| {
            header().find_map(|l| {
                l.strip_prefix("//")
                    .map(str::trim)
                    .and_then(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_string())
            })
        };
        let (Some(text), Some(reach)) = (field("goal:"), field("reach:")) else {
            return Ok(None);
        };
        let reach = match reach.as_str() {
            "deadlock" => Reach::Deadlock,
            "stall" => Reach::Stall,
            other => match other
                .strip_prefix("expectation")
                .map(str::trim)
                .and_then(|name| name.strip_prefix('"')?.strip_suffix('"'))
            {
                Some(name) => Reach::Expectation(name.to_string()),
                None => {
                    return Err(format!(
                        "the header's `// reach: {other}` is not one of: expectation \"NAME\", deadlock, stall"
                    ))
                }
            },
        };
        Ok(Some(Goal { text, reach }))
    }

    /// Whether `outcome` reached the goal.
    pub fn reached(&self, outcome: &ScriptOutcome) -> bool {
        outcome.runs.iter().any(|run| match &self.reach {
            Reach::Expectation(name) => run
                .expectations()
                .iter()
                .any(|e| &e.name == name && !e.held),
            Reach::Deadlock => matches!(run.outcome, Outcome::Deadlocked(_)),
            Reach::Stall => matches!(run.outcome, Outcome::Stalled(_)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_header() {
        let goal = Goal::from_source(
            "// Title\n// goal: deadlock them\n// reach: deadlock\nlet m = 1;\n// reach: stall\n",
        );
        assert_eq!(
            goal,
            Ok(Some(Goal {
                text: "deadlock them".into(),
                reach: Reach::Deadlock
            }))
        );
        let goal = Goal::from_source("// goal: x\n// reach: expectation \"no loss\"\n");
        assert_eq!(
            goal.unwrap().unwrap().reach,
            Reach::Expectation("no loss".into())
        );
        assert_eq!(Goal::from_source("// goal: x\n"), Ok(None));
        assert!(Goal::from_source("// goal: x\n// reach: win\n").is_err());
    }
}
