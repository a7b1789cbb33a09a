//! The host's parsers under property tests (proptest): every input a machine, a plugin, a
//! file on disk or the user can hand them — random bytes and near-valid text built from
//! each format's own tokens — gives an answer or an error, never a panic, and within a
//! bounded time. CI runs the default number of cases; a long pass is
//! `PROPTEST_CASES=100000 cargo test -p dmw --test fuzz --release` (docs/testing.md).
//!
//! Parsers covered: os-release and the legacy release files, `ls --filter`, Go templates
//! (`--format`), the machine record loader, the Docker Machine store importer, the
//! `dmw:permissions` section (and the wasm custom-section walker under it), QMP commands,
//! plugin text sanitizing, and the Keystone service catalog a token answer carries (the
//! hosts it lets a driver reach). The create flag parser with a driver's flags is under
//! property tests beside it (`cli::create::tests`), the drivers' cloud API answer parsers
//! in their crates (`guest-drivers/*`).

use std::time::{Duration, Instant};

use dmw::cli::render::filter::Filters;
use dmw::cli::render::template::{self, GoTemplate, ObjectKind};
use dmw::net::http::{KeystoneCatalog, MAX_CATALOG_ORIGINS, check_pattern};
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

/// Pieces of catalog endpoint URLs: schemes, hosts good and bad, ports, paths, junk.
const URL_TOKENS: &[&str] = &[
    "http://",
    "https://",
    "ftp://",
    "file:///",
    "nova.example",
    "127.0.0.1",
    "[::1]",
    "[fe80::1%25eth0]",
    "169.254.169.254",
    ":8774",
    ":99999",
    ":",
    "/v2.1",
    "user:pw@",
    "@",
    "%2F",
    "#",
    "?",
    " ",
    "\u{0}",
    "\u{1b}[2J",
    "é",
    ".",
    "*",
];

/// One catalog endpoint: interface, region, URL, each near-valid or junk.
fn catalog_endpoint() -> impl Strategy<Value = serde_json::Value> {
    let interface = prop_oneof![
        prop::sample::select(&["public", "internal", "admin"][..]).prop_map(str::to_string),
        any::<String>(),
    ];
    let region = prop_oneof![
        prop::sample::select(&["RegionOne", "r2", ""][..]).prop_map(str::to_string),
        any::<String>(),
    ];
    let url = prop_oneof![4 => tokens(URL_TOKENS, 8), 1 => any::<String>()];
    (interface, region.clone(), region, url, any::<bool>()).prop_map(
        |(interface, region, region_id, url, numeric_url)| {
            serde_json::json!({
                "interface": interface,
                "region": region,
                "region_id": region_id,
                // A wrong type where a string belongs, now and then.
                "url": if numeric_url { serde_json::json!(1) } else { serde_json::json!(url) },
            })
        },
    )
}

proptest! {
    /// Whatever a token answer's catalog holds, the origins taken from it are bounded in
    /// number, distinct, http(s) only, and name a host the allow-list's own pattern check
    /// accepts (no user info, path or junk rides along into the allow-list).
    #[test]
    fn the_keystone_catalog_yields_only_bounded_checked_origins(
        services in prop::collection::vec(
            (
                prop_oneof![Just("compute".to_string()), any::<String>()],
                prop::collection::vec(catalog_endpoint(), 0..12),
            ),
            0..8,
        ),
        region in prop::option::of(prop::sample::select(&["RegionOne", "r2"][..])),
        interface in prop::sample::select(&["public", "internal", "admin"][..]),
        raw in any::<Vec<u8>>(),
    ) {
        let catalog = KeystoneCatalog {
            auth: "https://keystone.example:5000".into(),
            region: region.map(str::to_string),
            interface: interface.into(),
        };
        let doc = serde_json::json!({"token": {"catalog": services
            .into_iter()
            .map(|(kind, endpoints)| serde_json::json!({"type": kind, "endpoints": endpoints}))
            .collect::<Vec<_>>()}});
        let body = serde_json::to_vec(&doc).expect("json");
        let origins = bounded("KeystoneCatalog::origins", || catalog.origins(&body));
        prop_assert!(origins.len() <= MAX_CATALOG_ORIGINS);
        for (i, (origin, kind)) in origins.iter().enumerate() {
            let host = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            prop_assert!(host.is_some(), "{origin}");
            prop_assert!(check_pattern(host.unwrap_or_default()).is_ok(), "{origin}");
            prop_assert!(kind.chars().count() <= 64);
            prop_assert!(!origins[..i].iter().any(|(o, _)| o == origin), "{origin} twice");
        }
        let _ = bounded("KeystoneCatalog::origins (bytes)", || catalog.origins(&raw));
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
