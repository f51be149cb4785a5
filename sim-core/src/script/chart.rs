//! `chart(path, rows, options)`: comparison charts of several runs. A
//! script that runs a sweep collects one map per run (its parameters and
//! the figures it measured) and plots any figure against any parameter:
//!
//! ```text
//! let rows = [];
//! for cpus in [1, 2, 4] {
//!     let m = machine(#{ cpus: cpus });
//!     ...
//!     let r = m.run();
//!     rows.push(#{ cpus: cpus, makespan: r.makespan });
//! }
//! chart("makespan.png", rows, #{ kind: "bars", x: "cpus", y: "makespan" });
//! ```
//!
//! Categories (x of bars, columns and rows of a heatmap, series) keep the
//! order in which the rows first show them. Durations are plotted in the
//! unit that suits their largest value, named in the axis label.

use std::collections::HashMap;

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, NativeCallContext, Position, FLOAT};

use super::api::def;
use super::error::fault;
use super::run::{chart_path, charts_on, write_chart};
use crate::plot::{compare, CompareOptions, Comparison};
use crate::time::Span;

/// The options each kind takes.
const COMMON: [&str; 5] = ["kind", "x", "title", "x_label", "y_label"];
const BARS: [&str; 3] = ["y", "series", "log_y"];
const LINES: [&str; 4] = ["y", "series", "log_x", "log_y"];
const HEATMAP: [&str; 3] = ["row", "value", "winner"];

/// What `chart` was asked to draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bars,
    Lines,
    Heatmap,
}

/// The options map, read.
struct Spec {
    kind: Kind,
    x: String,
    /// Bars and lines: the measured keys; heatmap: the value key.
    ys: Vec<String>,
    series: Option<String>,
    row: Option<String>,
    winner: Option<String>,
    title: Option<String>,
    x_label: Option<String>,
    y_label: Option<String>,
    log_x: bool,
    log_y: bool,
}

/// Errors at the call, with a hint.
struct Call<'a> {
    position: Position,
    path: &'a str,
    engine: Option<&'a Engine>,
}

impl Call<'_> {
    /// The script's name for the type of `value`.
    fn type_of(&self, value: &Dynamic) -> String {
        let name = value.type_name();
        self.engine
            .map_or(name, |e| e.map_type_name(name))
            .to_string()
    }

    fn error(&self, message: impl std::fmt::Display, hint: &str) -> Box<EvalAltResult> {
        fault(
            format!("chart(\"{}\", ...): {message}", self.path),
            Some(hint),
            self.position,
        )
    }
}

const OPTIONS_HINT: &str =
    "write chart(path, rows, #{ kind: \"bars\", x: \"cpus\", y: \"makespan\" }); \
     see `simcli api` for every option";

fn text_option(
    call: &Call,
    options: &Map,
    key: &str,
) -> Result<Option<String>, Box<EvalAltResult>> {
    match options.get(key) {
        None => Ok(None),
        Some(value) => value.clone().into_string().map(Some).map_err(|kind| {
            call.error(
                format!("option `{key}` must be a string, not {kind}"),
                OPTIONS_HINT,
            )
        }),
    }
}

fn bool_option(call: &Call, options: &Map, key: &str) -> Result<bool, Box<EvalAltResult>> {
    match options.get(key) {
        None => Ok(false),
        Some(value) => value.as_bool().map_err(|kind| {
            call.error(
                format!("option `{key}` must be true or false, not {kind}"),
                OPTIONS_HINT,
            )
        }),
    }
}

fn required(
    call: &Call,
    options: &Map,
    key: &str,
    kind: &str,
) -> Result<String, Box<EvalAltResult>> {
    text_option(call, options, key)?.ok_or_else(|| {
        call.error(
            format!("a {kind} chart needs the option `{key}`"),
            OPTIONS_HINT,
        )
    })
}

/// Reads and checks the options map.
fn spec(call: &Call, options: &Map) -> Result<Spec, Box<EvalAltResult>> {
    let kind_name = text_option(call, options, "kind")?.ok_or_else(|| {
        call.error(
            "the options need a `kind`: \"bars\", \"lines\" or \"heatmap\"",
            OPTIONS_HINT,
        )
    })?;
    let (kind, own): (Kind, &[&str]) = match kind_name.as_str() {
        "bars" => (Kind::Bars, &BARS),
        "lines" => (Kind::Lines, &LINES),
        "heatmap" => (Kind::Heatmap, &HEATMAP),
        other => {
            return Err(call.error(
                format!("unknown kind \"{other}\": use \"bars\", \"lines\" or \"heatmap\""),
                OPTIONS_HINT,
            ))
        }
    };
    for key in options.keys() {
        if !COMMON.contains(&key.as_str()) && !own.contains(&key.as_str()) {
            let allowed: Vec<&str> = COMMON.iter().chain(own).copied().collect();
            return Err(call.error(
                format!("a {kind_name} chart has no option `{key}`"),
                &format!("its options are: {}", allowed.join(", ")),
            ));
        }
    }
    let x = required(call, options, "x", &kind_name)?;
    let ys = if kind == Kind::Heatmap {
        vec![required(call, options, "value", &kind_name)?]
    } else {
        match options.get("y") {
            None => {
                return Err(call.error(
                    format!("a {kind_name} chart needs the option `y`"),
                    OPTIONS_HINT,
                ))
            }
            Some(y) if y.is_array() => {
                let keys: Vec<String> = y
                    .clone()
                    .into_array()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|k| k.into_string())
                    .collect::<Result<_, _>>()
                    .map_err(|kind| {
                        call.error(
                            format!("option `y` lists keys as strings, not {kind}"),
                            OPTIONS_HINT,
                        )
                    })?;
                if keys.is_empty() {
                    return Err(call.error("option `y` is an empty list", OPTIONS_HINT));
                }
                keys
            }
            Some(_) => vec![required(call, options, "y", &kind_name)?],
        }
    };
    let row = if kind == Kind::Heatmap {
        Some(required(call, options, "row", &kind_name)?)
    } else {
        None
    };
    Ok(Spec {
        kind,
        x,
        ys,
        series: text_option(call, options, "series")?,
        row,
        winner: text_option(call, options, "winner")?,
        title: text_option(call, options, "title")?,
        x_label: text_option(call, options, "x_label")?,
        y_label: text_option(call, options, "y_label")?,
        log_x: bool_option(call, options, "log_x")?,
        log_y: bool_option(call, options, "log_y")?,
    })
}

/// A number from a row: plain, or a duration in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Number {
    Plain(f64),
    Duration(u64),
}

/// The rows, checked to be maps.
fn maps(call: &Call, rows: Array) -> Result<Vec<Map>, Box<EvalAltResult>> {
    if rows.is_empty() {
        return Err(call.error(
            "there are no rows to draw",
            "push one map per run: rows.push(#{ cpus: cpus, makespan: r.makespan })",
        ));
    }
    if rows.len() > MAX_ROWS {
        return Err(call.error(
            format!("{} rows: a chart draws at most {MAX_ROWS}", rows.len()),
            "group or sample the rows first",
        ));
    }
    rows.into_iter()
        .enumerate()
        .map(|(i, row)| {
            let kind = call.type_of(&row);
            row.try_cast::<Map>().ok_or_else(|| {
                call.error(
                    format!("rows[{i}] is {kind}, not a map"),
                    "each row is a map of a run's parameters and figures: #{ cpus: 4, makespan: r.makespan }",
                )
            })
        })
        .collect()
}

fn field<'m>(
    call: &Call,
    rows: &'m [Map],
    i: usize,
    key: &str,
) -> Result<&'m Dynamic, Box<EvalAltResult>> {
    rows[i].get(key).ok_or_else(|| {
        let keys: Vec<&str> = rows[i].keys().map(|k| k.as_str()).collect();
        call.error(
            format!("rows[{i}] has no key \"{key}\""),
            &format!("its keys are: {}", keys.join(", ")),
        )
    })
}

/// A category: strings, numbers, bools and durations, as text.
fn category(call: &Call, rows: &[Map], i: usize, key: &str) -> Result<String, Box<EvalAltResult>> {
    let value = field(call, rows, i, key)?;
    if let Some(span) = value.clone().try_cast::<Span>() {
        return Ok(span.to_string());
    }
    if value.is_string() || value.is_int() || value.is_float() || value.is_bool() || value.is_char()
    {
        return Ok(value.to_string());
    }
    Err(call.error(
        format!(
            "rows[{i}].{key} is {}; a category is a string, a number or a duration",
            call.type_of(value)
        ),
        "use a value that names the case, e.g. cpus: 4 or model: \"threads\"",
    ))
}

fn number(call: &Call, rows: &[Map], i: usize, key: &str) -> Result<Number, Box<EvalAltResult>> {
    let value = field(call, rows, i, key)?;
    if let Some(span) = value.clone().try_cast::<Span>() {
        return Ok(Number::Duration(span.0));
    }
    if let Ok(n) = value.as_int() {
        return Ok(Number::Plain(n as FLOAT));
    }
    if let Ok(x) = value.as_float() {
        if x.is_finite() {
            return Ok(Number::Plain(x));
        }
    }
    let shown = if value.is_string() {
        format!("the string {value:?}, not a number")
    } else if value.is_float() {
        format!("{value}, not a finite number")
    } else {
        format!("{}, not a number", call.type_of(value))
    };
    Err(call.error(
        format!("rows[{i}].{key} is {shown}"),
        "plot ints, floats or durations (r.makespan); parse text with parse_int or parse_float",
    ))
}

/// Plain numbers as they are; durations in the unit that suits the largest
/// (with that unit's name for the label). Mixing the two is an error.
fn scaled(
    call: &Call,
    what: &str,
    numbers: &[Number],
) -> Result<(Vec<f64>, Option<&'static str>), Box<EvalAltResult>> {
    let (mut plain, mut nanos) = (Vec::new(), Vec::new());
    for n in numbers {
        match *n {
            Number::Plain(x) => plain.push(x),
            Number::Duration(d) => nanos.push(d),
        }
    }
    if nanos.is_empty() {
        return Ok((plain, None));
    }
    if !plain.is_empty() {
        return Err(call.error(
            format!("{what} mixes durations and plain numbers"),
            "give every row a duration (e.g. r.makespan), or every row a number (e.g. r.makespan / ms(1))",
        ));
    }
    let largest = nanos.iter().copied().max().unwrap_or(0);
    let (unit, scale) = [("s", 1e9), ("ms", 1e6), ("us", 1e3), ("ns", 1.0)]
        .into_iter()
        .find(|&(_, scale)| largest as f64 >= scale)
        .unwrap_or(("ns", 1.0));
    Ok((
        nanos.iter().map(|&n| n as f64 / scale).collect(),
        Some(unit),
    ))
}

/// `label (unit)` when the values are durations.
fn with_unit(label: String, unit: Option<&str>) -> String {
    match unit {
        Some(unit) => format!("{label} ({unit})"),
        None => label,
    }
}

/// Distinct values in order of first appearance, each with its index.
#[derive(Default)]
struct Categories {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Categories {
    /// The index of `value`, added at the end the first time.
    fn index_of(&mut self, value: String) -> usize {
        if let Some(&i) = self.index.get(&value) {
            return i;
        }
        self.names.push(value.clone());
        self.index.insert(value, self.names.len() - 1);
        self.names.len() - 1
    }

    /// An error when there are more than `max` of them.
    fn check(&self, call: &Call, what: &str, max: usize) -> Result<(), Box<EvalAltResult>> {
        if self.names.len() <= max {
            return Ok(());
        }
        Err(call.error(
            format!("{} {what}: a chart holds at most {max}", self.names.len()),
            "group or filter the rows first (rows.filter(|r| ...))",
        ))
    }
}

/// The most rows one chart draws.
const MAX_ROWS: usize = 100_000;
/// The most categories along x (bars) and series (bars, lines).
const MAX_CATEGORIES: usize = 500;
/// The most rows or columns of a heatmap.
const MAX_CELLS_SIDE: usize = 200;

/// What tells two points of a series apart: a category's index, or the
/// bits of an x value.
fn point_key(category: usize, x: Number) -> (u8, u64) {
    match x {
        Number::Plain(v) if category == usize::MAX => (0, v.to_bits()),
        Number::Duration(d) if category == usize::MAX => (1, d),
        _ => (2, category as u64),
    }
}

/// One measured value of one row, before scaling.
struct Point {
    row: usize,
    series: usize,
    /// Bars: the category's index; lines: unused.
    category: usize,
    /// Lines: the x value.
    x: Number,
    y: Number,
    /// The index of its y key.
    key: usize,
}

fn check_log(
    call: &Call,
    option: &str,
    rows: &[usize],
    keys: &[&str],
    values: &[f64],
) -> Result<(), Box<EvalAltResult>> {
    match values.iter().position(|v| *v <= 0.0) {
        Some(i) => Err(call.error(
            format!(
                "{option} needs values above zero, but rows[{}].{} is {}",
                rows[i], keys[i], values[i]
            ),
            &format!("drop {option}, or leave out the rows with zero or negative values"),
        )),
        None => Ok(()),
    }
}

/// Builds the chart from the rows.
fn comparison(
    call: &Call,
    spec: &Spec,
    rows: &[Map],
    script: &str,
) -> Result<(Comparison, CompareOptions), Box<EvalAltResult>> {
    let ys: Vec<&str> = spec.ys.iter().map(String::as_str).collect();
    let mut options = CompareOptions {
        log_x: spec.log_x,
        log_y: spec.log_y,
        ..CompareOptions::default()
    };
    let default_title = match spec.kind {
        Kind::Heatmap => format!(
            "{script}: {} by {} and {}",
            ys[0],
            spec.row.as_deref().unwrap_or_default(),
            spec.x
        ),
        _ => format!("{script}: {} by {}", ys.join(", "), spec.x),
    };
    options.title = spec.title.clone().unwrap_or(default_title);
    if spec.kind == Kind::Heatmap {
        let row_key = spec.row.as_deref().unwrap_or_default();
        let (mut columns, mut names) = (Categories::default(), Categories::default());
        let mut at = Vec::new();
        let mut seen: HashMap<(usize, usize), usize> = HashMap::new();
        let mut numbers = Vec::new();
        let mut winners = Vec::new();
        for i in 0..rows.len() {
            let c = columns.index_of(category(call, rows, i, &spec.x)?);
            let r = names.index_of(category(call, rows, i, row_key)?);
            if let Some(j) = seen.insert((r, c), i) {
                return Err(call.error(
                    format!(
                        "rows[{j}] and rows[{i}] are both the cell {row_key} = {}, {} = {}",
                        names.names[r], spec.x, columns.names[c]
                    ),
                    "a heatmap shows one value per cell: give each row its own pair, or average them first",
                ));
            }
            at.push((r, c));
            numbers.push(number(call, rows, i, ys[0])?);
            winners.push(match &spec.winner {
                Some(key) => Some(category(call, rows, i, key)?),
                None => None,
            });
        }
        columns.check(call, &format!("columns ({})", spec.x), MAX_CELLS_SIDE)?;
        names.check(call, &format!("rows ({row_key})"), MAX_CELLS_SIDE)?;
        let (columns, names) = (columns.names, names.names);
        let (values, unit) = scaled(call, ys[0], &numbers)?;
        let mut cells = vec![None; names.len() * columns.len()];
        for (((r, c), value), winner) in at.into_iter().zip(values).zip(winners) {
            cells[r * columns.len() + c] = Some((value, winner));
        }
        options.x_label = spec.x_label.clone().unwrap_or_else(|| spec.x.clone());
        options.y_label = spec.y_label.clone().unwrap_or_else(|| row_key.to_string());
        options.value_label = with_unit(ys[0].to_string(), unit);
        return Ok((
            Comparison::Heatmap {
                columns,
                rows: names,
                cells,
            },
            options,
        ));
    }
    // Bars and lines: one series per (series value, y key).
    let mut series = Categories::default();
    let mut categories = Categories::default();
    let mut points: Vec<Point> = Vec::new();
    let mut seen: HashMap<(usize, (u8, u64)), usize> = HashMap::new();
    for i in 0..rows.len() {
        let group = match &spec.series {
            Some(key) => Some(category(call, rows, i, key)?),
            None => None,
        };
        let (category_index, x) = match spec.kind {
            Kind::Lines => (usize::MAX, number(call, rows, i, &spec.x)?),
            _ => (
                categories.index_of(category(call, rows, i, &spec.x)?),
                Number::Plain(0.0),
            ),
        };
        for (key, y) in ys.iter().enumerate() {
            let name = match (&group, ys.len()) {
                (Some(g), 1) => g.clone(),
                (Some(g), _) => format!("{g} {y}"),
                (None, 1) => String::new(),
                (None, _) => y.to_string(),
            };
            let s = series.index_of(name);
            let y_value = number(call, rows, i, y)?;
            if let Some(first) = seen.insert((s, point_key(category_index, x)), i) {
                let what = match spec.kind {
                    Kind::Lines => format!("{} at the same {}", y, spec.x),
                    _ => format!(
                        "{} for {} = {}",
                        y, spec.x, categories.names[category_index]
                    ),
                };
                let series_note = group
                    .as_ref()
                    .map(|g| format!(" in the series {g}"))
                    .unwrap_or_default();
                return Err(call.error(
                    format!("rows[{first}] and rows[{i}] both give {what}{series_note}"),
                    "a chart shows one value per point: set `series` to the key that tells them apart, or average them first",
                ));
            }
            points.push(Point {
                row: i,
                series: s,
                category: category_index,
                x,
                y: y_value,
                key,
            });
        }
    }
    series.check(call, "series", MAX_CATEGORIES)?;
    categories.check(
        call,
        &format!("categories along x ({})", spec.x),
        MAX_CATEGORIES,
    )?;
    let (series, categories) = (series.names, categories.names);
    let ynumbers: Vec<Number> = points.iter().map(|p| p.y).collect();
    let (yvalues, yunit) = scaled(call, &ys.join(", "), &ynumbers)?;
    let point_rows: Vec<usize> = points.iter().map(|p| p.row).collect();
    let point_keys: Vec<&str> = points.iter().map(|p| ys[p.key]).collect();
    if spec.log_y {
        check_log(call, "log_y", &point_rows, &point_keys, &yvalues)?;
    }
    options.y_label = with_unit(spec.y_label.clone().unwrap_or_else(|| ys.join(", ")), yunit);
    if spec.kind == Kind::Lines {
        let xnumbers: Vec<Number> = points.iter().map(|p| p.x).collect();
        let (xvalues, xunit) = scaled(call, &spec.x, &xnumbers)?;
        if spec.log_x {
            let x_keys: Vec<&str> = points.iter().map(|_| spec.x.as_str()).collect();
            check_log(call, "log_x", &point_rows, &x_keys, &xvalues)?;
        }
        options.x_label = with_unit(
            spec.x_label.clone().unwrap_or_else(|| spec.x.clone()),
            xunit,
        );
        let mut lines: Vec<(String, Vec<(f64, f64)>)> =
            series.into_iter().map(|name| (name, Vec::new())).collect();
        for ((p, x), y) in points.iter().zip(xvalues).zip(yvalues) {
            lines[p.series].1.push((x, y));
        }
        for (_, line) in &mut lines {
            line.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        return Ok((Comparison::Lines { series: lines }, options));
    }
    options.x_label = spec.x_label.clone().unwrap_or_else(|| spec.x.clone());
    let mut bars: Vec<(String, Vec<Option<f64>>)> = series
        .into_iter()
        .map(|name| (name, vec![None; categories.len()]))
        .collect();
    for (p, y) in points.iter().zip(yvalues) {
        bars[p.series].1[p.category] = Some(y);
    }
    Ok((
        Comparison::Bars {
            categories,
            series: bars,
        },
        options,
    ))
}

/// `chart(path, rows, options)` (and `r.chart(path, options)`, with the
/// run's threads as rows).
pub(crate) fn draw(
    call: &NativeCallContext,
    path: &str,
    rows: Array,
    options: &Map,
) -> Result<String, Box<EvalAltResult>> {
    let (file, format) = chart_path(call, "chart", path)?;
    let at = Call {
        position: call.call_position(),
        path,
        engine: Some(call.engine()),
    };
    let spec = spec(&at, options)?;
    let rows = maps(&at, rows)?;
    let script = super::session::with(|s| s.script.clone());
    let script = std::path::Path::new(&*script)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (chart, mut options) = comparison(&at, &spec, &rows, &script)?;
    options.format = format;
    if !charts_on() {
        return Ok(file.display().to_string());
    }
    write_chart(call, &file, || compare(&chart, &file, &options))
}

/// Registers `chart`.
pub(crate) fn register(engine: &mut Engine) {
    def(
        engine,
        "chart",
        &["path: String", "rows: Array", "options: Map", "String"],
        "Draws a comparison chart of several runs into the output folder under `path` (PNG, or SVG for .svg) and returns its path. `rows`: one map per run, its parameters and figures (ints, floats, durations, strings). `options`: kind (\"bars\" | \"lines\" | \"heatmap\"), x (the key along x; for lines a number), y (the figure, or a list of figures; bars and lines), series (a key whose values get a bar or line each), row, value and winner (heatmap: the key of its rows, the figure that colours a cell, a key written in the cell), title, x_label, y_label, log_x (lines), log_y (bars, lines). Under --no-chart it draws nothing.",
        |call: NativeCallContext, path: &str, rows: Array, options: Map| {
            draw(&call, path, rows, &options)
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_unit_of_the_largest() {
        let call = Call {
            position: Position::NONE,
            path: "t.png",
            engine: None,
        };
        let (values, unit) = scaled(
            &call,
            "makespan",
            &[Number::Duration(400_078_000), Number::Duration(100_000_000)],
        )
        .ok()
        .unwrap();
        assert_eq!(unit, Some("ms"));
        assert_eq!(values, [400.078, 100.0]);
        let (values, unit) = scaled(&call, "n", &[Number::Plain(3.0)]).ok().unwrap();
        assert_eq!((values, unit), (vec![3.0], None));
        assert!(scaled(&call, "m", &[Number::Plain(1.0), Number::Duration(5)]).is_err());
        let (_, unit) = scaled(&call, "d", &[Number::Duration(0)]).ok().unwrap();
        assert_eq!(unit, Some("ns"));
    }

    #[test]
    fn categories_are_indexed_in_order_of_first_appearance() {
        let mut list = Categories::default();
        assert_eq!(list.index_of("b".into()), 0);
        assert_eq!(list.index_of("a".into()), 1);
        assert_eq!(list.index_of("b".into()), 0);
        assert_eq!(list.names, ["b", "a"]);
    }
}
