//! Registration helpers that attach a signature and one line of doc to every
//! script function, and the listing `simcli api` prints from them: the
//! listing is read back from the engine, so it cannot drift from the code.

use rhai::{Engine, FuncRegistration, RhaiNativeFunc, Variant};

/// Registers `f` as the script function `name`. `params` names each
/// parameter as `"name: type"`, the last entry being the return type; a
/// first parameter named `self` makes it a method in the listing.
///
/// The function is volatile: the optimizer never calls it at compile time
/// (operations and declarations act on the simulation).
pub(crate) fn def<A: 'static, const N: usize, const X: bool, R, const F: bool, FUNC>(
    engine: &mut Engine,
    name: &str,
    params: &[&str],
    doc: &str,
    f: FUNC,
) where
    R: Variant + Clone,
    FUNC: RhaiNativeFunc<A, N, X, R, F> + 'static,
{
    documented(
        FuncRegistration::new(name).with_volatility(true),
        params,
        doc,
    )
    .register_into_engine(engine, f);
}

/// [`def`] for a pure function (same arguments, same result, no effect):
/// with constant arguments the optimizer evaluates it once at compile time,
/// so `compute(us(1))` in a loop builds its duration only once.
pub(crate) fn def_pure<A: 'static, const N: usize, const X: bool, R, const F: bool, FUNC>(
    engine: &mut Engine,
    name: &str,
    params: &[&str],
    doc: &str,
    f: FUNC,
) where
    R: Variant + Clone,
    FUNC: RhaiNativeFunc<A, N, X, R, F> + 'static,
{
    documented(FuncRegistration::new(name), params, doc).register_into_engine(engine, f);
}

/// Attaches the parameter list and the doc line.
fn documented(registration: FuncRegistration, params: &[&str], doc: &str) -> FuncRegistration {
    registration
        .with_params_info(params)
        .with_comments([format!("/// {doc}")])
}

/// Registers `f` as the property getter `x.name`.
pub(crate) fn getter<A: 'static, const X: bool, R, const F: bool, FUNC>(
    engine: &mut Engine,
    name: &str,
    params: &[&str],
    doc: &str,
    f: FUNC,
) where
    R: Variant + Clone,
    FUNC: RhaiNativeFunc<A, 1, X, R, F> + 'static,
{
    documented(
        FuncRegistration::new_getter(name).with_volatility(true),
        params,
        doc,
    )
    .register_into_engine(engine, f);
}

/// One script function: its signature and what it is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiEntry {
    /// E.g. `compute(d: Duration)` or `Run.makespan -> Duration`.
    pub signature: String,
    /// One line of documentation.
    pub doc: String,
}

/// Every function the script engine offers beyond Rhai's standard library,
/// sorted by signature.
pub fn api() -> Vec<ApiEntry> {
    let engine = super::build_engine();
    let json = engine
        .gen_fn_metadata_to_json(false)
        .expect("function metadata serializes");
    let metadata: serde_json::Value = serde_json::from_str(&json).expect("Rhai writes valid JSON");
    let mut entries: Vec<ApiEntry> = metadata["functions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(entry)
        .collect();
    entries.sort_by(|a, b| a.signature.cmp(&b.signature));
    entries.dedup();
    entries
}

/// Writes Rhai definition files (`*.d.rhai`) of every function a script can
/// call into `dir`, creating it: editors with the Rhai language server read
/// them to complete and check scripts. Rhai's standard library comes along
/// (`__builtin__.d.rhai`, `__builtin-operators__.d.rhai`); simcli's own
/// functions, with their docs, are in `__static__.d.rhai`.
pub fn write_definitions(dir: &std::path::Path) -> std::io::Result<()> {
    super::build_engine().definitions().write_to_dir(dir)
}

/// `name: type, name: type`.
fn list(params: &[(String, String)]) -> String {
    let list: Vec<String> = params.iter().map(|(n, t)| format!("{n}: {t}")).collect();
    list.join(", ")
}

/// Reads one function's metadata; only ours carry doc comments.
fn entry(function: &serde_json::Value) -> Option<ApiEntry> {
    let doc = function["docComments"].as_array()?.first()?.as_str()?;
    let doc = doc.trim_start_matches("///").trim().to_string();
    let name = function["name"].as_str()?;
    let params: Vec<(String, String)> = function["params"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("_").to_string(),
                p["type"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    let returns = function["returnType"].as_str().unwrap_or("()");
    let arrow = if returns.is_empty() || returns == "()" {
        String::new()
    } else {
        format!(" -> {returns}")
    };
    let signature = if let Some(property) = name.strip_prefix("get$") {
        let owner = params.first().map(|(_, t)| t.as_str()).unwrap_or("?");
        format!("{owner}.{property}{arrow}")
    } else if let Some(((_, owner), rest)) = params.split_first().filter(|(p, _)| p.0 == "self") {
        format!("{owner}.{name}({}){arrow}", list(rest))
    } else {
        format!("{name}({}){arrow}", list(&params))
    };
    Some(ApiEntry { signature, doc })
}
