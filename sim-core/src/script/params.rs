//! Values passed into a script from outside (`simcli run --set key=value`):
//! constants at the script's top level, and `param(name, default)`, which
//! reads one with a default so a script runs with or without it.
//!
//! A value is read as an integer, else a float, else `true` / `false`, else
//! a string, so `--set cpus=4 --set share=0.5 --set gil=true --set
//! model=threads` give an int, a float, a bool and a string.

use rhai::{Dynamic, Engine, EvalAltResult, NativeCallContext, Scope, FLOAT, INT};

use super::api::def;
use super::error::fault;
use super::session;

/// Rhai's keywords and reserved words, which cannot name a constant.
const KEYWORDS: [&str; 48] = [
    "true",
    "false",
    "let",
    "const",
    "if",
    "else",
    "switch",
    "do",
    "while",
    "until",
    "loop",
    "for",
    "in",
    "continue",
    "break",
    "return",
    "throw",
    "try",
    "catch",
    "fn",
    "private",
    "import",
    "export",
    "as",
    "global",
    "Fn",
    "call",
    "curry",
    "this",
    "type_of",
    "print",
    "debug",
    "eval",
    "is_def_var",
    "is_def_fn",
    "is_shared",
    "var",
    "static",
    "shared",
    "with",
    "goto",
    "exit",
    "match",
    "case",
    "public",
    "protected",
    "new",
    "use",
];

/// Splits a `--set` argument `key=value` and checks that `key` can be a
/// script variable (letters, digits and `_`, not starting with a digit, not
/// a keyword). The error says what is wrong, for a usage message.
pub fn parse_set(argument: &str) -> Result<(String, String), String> {
    let Some((key, value)) = argument.split_once('=') else {
        return Err(format!(
            "expected key=value (for example --set cpus=4), got \"{argument}\""
        ));
    };
    let valid = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "\"{key}\" is not a valid variable name: use letters, digits and _, \
             not starting with a digit (for example --set max_cpus=4)"
        ));
    }
    if KEYWORDS.contains(&key) {
        return Err(format!(
            "\"{key}\" is a Rhai keyword and cannot name a variable: choose another name"
        ));
    }
    Ok((key.to_string(), value.to_string()))
}

/// The script value of a `--set` text: an int, else a finite float, else a
/// bool, else the text itself.
pub(crate) fn value(text: &str) -> Dynamic {
    if let Ok(n) = text.parse::<INT>() {
        return Dynamic::from(n);
    }
    if let Ok(x) = text.parse::<FLOAT>() {
        if x.is_finite() {
            return Dynamic::from(x);
        }
    }
    match text {
        "true" => Dynamic::from(true),
        "false" => Dynamic::from(false),
        _ => Dynamic::from(text.to_string()),
    }
}

/// A scope holding each of `constants` as a constant variable.
pub(crate) fn scope(constants: &[(String, String)]) -> Scope<'static> {
    let mut scope = Scope::new();
    for (name, text) in constants {
        scope.push_constant_dynamic(name.clone(), value(text));
    }
    scope
}

/// `param(name, default)`: the value set for `name`, else `default`. A set
/// value must have the default's type (an int is taken where a float is
/// expected), so a typo in a number is an error, not a string.
fn param(
    call: &NativeCallContext,
    name: &str,
    default: Dynamic,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let text = session::with(|s| {
        s.options
            .constants
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, text)| text.clone())
    });
    let Some(text) = text else {
        return Ok(default);
    };
    let set = value(&text);
    if default.is_unit() || set.type_id() == default.type_id() {
        return Ok(set);
    }
    if default.is::<FLOAT>() {
        if let Ok(n) = set.as_int() {
            return Ok(Dynamic::from(n as FLOAT));
        }
    }
    if default.is_string() {
        return Ok(Dynamic::from(text));
    }
    Err(fault(
        format!(
            "--set {name}={text} gives {}, but param(\"{name}\", {default}) expects {}",
            kind(&set),
            kind(&default)
        ),
        Some("pass a value of the default's type, or change the default"),
        call.call_position(),
    ))
}

/// "an int", "a float", ... for messages.
fn kind(value: &Dynamic) -> String {
    if value.is_int() {
        "an int".into()
    } else if value.is_float() {
        "a float".into()
    } else if value.is_bool() {
        "a bool".into()
    } else if value.is_string() {
        "a string".into()
    } else {
        format!("a {}", value.type_name())
    }
}

/// Registers `param`.
pub(crate) fn register(engine: &mut Engine) {
    def(
        engine,
        "param",
        &["name: String", "default: ?", "?"],
        "The value given with `simcli run --set name=value` (int, float, bool or string), else `default`; a set value must have the default's type (an int is taken for a float). Set values are also constants of the script's top level.",
        |call: NativeCallContext, name: &str, default: Dynamic| param(&call, name, default),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_argument_is_a_valid_name_and_any_text() {
        assert_eq!(
            parse_set("cpus=4"),
            Ok(("cpus".to_string(), "4".to_string()))
        );
        assert_eq!(
            parse_set("_x1=a=b"),
            Ok(("_x1".to_string(), "a=b".to_string()))
        );
        assert_eq!(parse_set("model="), Ok(("model".into(), String::new())));
        for bad in ["cpus", "=4", "1x=2", "max-cpus=4", "a b=1", "é=1"] {
            assert!(parse_set(bad).is_err(), "{bad}");
        }
        assert!(parse_set("let=1").unwrap_err().contains("keyword"));
        assert!(parse_set("max-cpus=4")
            .unwrap_err()
            .contains("not a valid variable name"));
    }

    #[test]
    fn values_are_ints_then_floats_then_bools_then_strings() {
        assert_eq!(value("42").as_int(), Ok(42));
        assert_eq!(value("-3").as_int(), Ok(-3));
        assert_eq!(value("0.5").as_float(), Ok(0.5));
        assert_eq!(value("1e3").as_float(), Ok(1000.0));
        assert_eq!(value("true").as_bool(), Ok(true));
        assert_eq!(value("false").as_bool(), Ok(false));
        for text in ["threads", "inf", "NaN", "", "True"] {
            assert_eq!(value(text).into_string().as_deref(), Ok(text), "{text}");
        }
    }
}
