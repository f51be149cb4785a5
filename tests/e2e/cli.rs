//! Command-line basics: version, help, usage errors.

use simcli_tests::run_simcli;

#[test]
fn version_prints_the_crate_version() {
    let out = run_simcli(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.trim(), format!("simcli {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn help_explains_what_the_tool_is() {
    let out = run_simcli(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("simulator of concurrency"));
}

#[test]
fn an_unknown_argument_is_a_usage_error() {
    let out = run_simcli(&["--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("--bogus"));
}
