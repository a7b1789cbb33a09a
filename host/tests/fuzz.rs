//! The host's parsers under property tests (proptest): every input a machine, a plugin, a
//! file on disk or the user can hand them — random bytes and near-valid text built from
//! each format's own tokens — gives an answer or an error, never a panic, and within a
//! bounded time. CI runs the default number of cases; a long pass is
//! `PROPTEST_CASES=100000 cargo test -p dmw --test fuzz --release` (docs/testing.md).
//!
//! Parsers covered: os-release and the legacy release files, `ls --filter`, Go templates
//! (`--format`), the machine record loader, the Docker Machine store importer, the
//! `dmw:permissions` section (and the wasm custom-section walker under it), QMP commands,
//! and plugin text sanitizing.

use std::time::{Duration, Instant};

use dmw::cli::render::filter::Filters;
use dmw::cli::render::template::{self, GoTemplate, ObjectKind};
use dmw::sandbox::plugin::declaration;
use dmw::state::store::Store;
use dmw::text::sanitize;
use dmw::usecase::provision::os_release;
use proptest::prelude::*;

/// The longest one parse of one generated input may take (debug build, loaded machine).
const BOUND: Duration = Duration::from_secs(5);

/// Run `f` and fail the case if it took longer than [`BOUND`].
fn bounded<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    assert!(
        t.elapsed() < BOUND,
        "{what} took {:?} on one input",
        t.elapsed()
    );
    out
}

/// Text made of a format's own tokens, so that most cases get past the first character.
fn tokens(words: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(words), 0..max).prop_map(|v| v.concat())
}

const RELEASE_TOKENS: &[&str] = &[
    "ID=",
    "ID_LIKE=",
    "VERSION_ID=",
    "PRETTY_NAME=",
    "NAME=",
    "\"",
    "'",
    "\\",
    "\n",
    "#",
    " ",
    "=",
    "debian",
    "ubuntu rhel",
    "7.9",
    "CentOS release 6.10 (Final)",
    "$",
    "`",
    "\u{0}",
    "é",
    "\r\n",
    "VERSION_CODENAME=",
];

const FILTER_TOKENS: &[&str] = &[
    "name=",
    "driver=",
    "state=",
    "swarm=",
    "label=",
    "engine-label=",
    "=",
    "*",
    "web",
    "Running",
    "",
    "a=b=c",
    "com.x",
    "!",
    " ",
    "\u{1b}[2J",
];

const TEMPLATE_TOKENS: &[&str] = &[
    "{{",
    "}}",
    ".Name",
    ".DriverName",
    ".State",
    ".",
    " ",
    "range",
    "end",
    "if",
    "else",
    "with",
    "json",
    "printf",
    "\"%s\"",
    "$x",
    ":=",
    "|",
    "(",
    ")",
    "table",
    "\\t",
    "len",
    "index",
    "0",
    "-",
    "upper",
    "lower",
    "split",
    "join",
    "{{/*",
    "*/}}",
    "$",
];

const PERMISSION_TOKENS: &[&str] = &[
    "dmw-permissions 1\n",
    "capability ",
    "http-host ",
    "program ",
    "secret ",
    "file ",
    "env-var ",
    "http-cacert ",
    "http-insecure ",
    "http-keystone-catalog ",
    "ssh",
    "vm",
    "{acme-url}",
    "*.example.com:443",
    "[\"info\", \"*\"]",
    "[\"**\"]",
    "OS_PASSWORD",
    "\n",
    " ",
    "\u{0}",
];

/// A record like the ones dmw writes, for the template data.
fn sample_json() -> serde_json::Value {
    serde_json::json!({
        "Name": "web1",
        "DriverName": "generic",
        "State": "Running",
        "URL": "tcp://192.0.2.10:2376",
        "EngineOptions": {"Labels": ["a=b"], "Env": []},
        "ActiveHost": false,
        "Error": "",
        "Swarm": null,
    })
}

proptest! {
    #[test]
    fn os_release_parsers_never_panic(
        text in prop_oneof![any::<String>(), tokens(RELEASE_TOKENS, 40)]
    ) {
        let fields = bounded("os_release::parse", || os_release::parse(&text));
        let _ = bounded("os_release::os_info", || os_release::os_info(fields));
        let _ = bounded("os_release::parse_detection", || os_release::parse_detection(&text));
    }

    #[test]
    fn ls_filters_never_panic(
        args in prop::collection::vec(
            prop_oneof![any::<String>(), tokens(FILTER_TOKENS, 6)],
            0..6,
        ),
        state in any::<String>(),
    ) {
        if let Ok(filters) = bounded("Filters::parse", || Filters::parse(&args)) {
            let _ = filters.needs_state();
            let _ = bounded("Filters::matches_state", || filters.matches_state(&state));
        }
    }

    #[test]
    fn templates_never_panic(
        text in prop_oneof![any::<String>(), tokens(TEMPLATE_TOKENS, 24)]
    ) {
        let _ = bounded("add_print_stage", || template::add_print_stage(&text));
        if let Ok(t) = bounded("GoTemplate::parse", || GoTemplate::parse(&text)) {
            let data = template::from_json(&sample_json(), ObjectKind::Struct);
            let _ = bounded("GoTemplate::render", || t.render(&data));
        }
    }

    #[test]
    fn permission_sections_never_panic(
        text in prop_oneof![
            any::<Vec<u8>>(),
            tokens(PERMISSION_TOKENS, 30).prop_map(String::into_bytes),
        ]
    ) {
        let _ = bounded("declaration::parse", || declaration::parse(&text));
    }

    #[test]
    fn the_custom_section_walker_never_panics(
        body in any::<Vec<u8>>(),
        component in any::<bool>(),
    ) {
        // A module or component header, then anything: nested sections, bad lengths.
        let mut wasm: Vec<u8> = if component {
            b"\0asm\x0d\0\x01\0".to_vec()
        } else {
            b"\0asm\x01\0\0\0".to_vec()
        };
        wasm.extend(body);
        let _ = bounded("declaration::read", || declaration::read(&wasm));
    }

    #[test]
    fn qmp_commands_are_checked_without_panic(command in any::<String>()) {
        let _ = bounded("qmp::check_command", || dmw::vm::qmp::check_command(&command));
    }

    #[test]
    fn sanitized_plugin_text_is_bounded_and_inert(
        text in any::<String>(),
        max in 1usize..300,
    ) {
        let out = bounded("sanitize::plugin_text", || sanitize::plugin_text(&text, max));
        prop_assert!(sanitize::is_inert(&out), "{out:?}");
        // At most `max` bytes kept, each shown in at most 10 (`\\u{202e}`), then the note
        // that says how much was cut.
        prop_assert!(out.len() <= 10 * max + 32, "{} bytes for {max}", out.len());
    }
}

proptest! {
    // Each case writes files: fewer cases by default.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_broken_record_is_an_error_never_a_panic(
        bytes in prop_oneof![
            any::<Vec<u8>>(),
            tokens(&["{", "}", "\"name\":", "\"m\"", ",", "\"driver\":", "null", "[", "]", "1e999", "\"\\u0000\""], 20)
                .prop_map(String::into_bytes),
        ]
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::new(tmp.path());
        let dir = store.machine_dir("m");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("config.json"), &bytes).expect("write");
        match bounded("Store::load", || store.load("m")) {
            Ok(record) => prop_assert_eq!(record.name, "m"),
            Err(e) => {
                let text = e.to_string();
                prop_assert!(text.contains("dmw rm -f m"), "{text}");
            }
        }
        // Listing never fails because one record is broken.
        let _ = bounded("Store::list", || store.list());
    }

    #[test]
    fn the_docker_machine_importer_never_panics(
        bytes in prop_oneof![
            any::<Vec<u8>>(),
            tokens(&["{", "}", "\"Driver\":", "\"DriverName\":", "\"generic\"", "\"none\"", "\"IPAddress\":", "\"HostOptions\":", "\"AuthOptions\":", ",", ":", "null", "\"x\""], 24)
                .prop_map(String::into_bytes),
        ]
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let source = tmp.path().join("dm");
        let machine = source.join("machines").join("old");
        std::fs::create_dir_all(&machine).expect("mkdir");
        std::fs::write(machine.join("config.json"), &bytes).expect("write");
        let store = Store::new(tmp.path().join("dmw"));
        let _ = bounded("import::plan", || dmw::usecase::import::plan(&store, &source));
    }
}
