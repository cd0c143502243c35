//! `Dockerfile` and `docker-compose.yml`, checked where Docker is absent: the compose file
//! parses and has the services, pinned images, loopback ports and profiles the README
//! promises; every `GLADLY_KAFKA__…` variable it or the image sets names a real key of the
//! config (loaded through the real loader on top of the mounted file, and valid); the mounted
//! config path is the one the binary reads; the Dockerfile is multi-stage, runs as non-root,
//! enters the Cargo binary, and installs the libraries that binary links. Also
//! `scripts/module-graph`: the library's dependencies point one way, between modules and
//! between the files of each, and the script does fail on a circle or a back-up import.
//! No Kafka needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use clap::Parser;
use gladly_kafka::config::{self, Config};
use serde_norway::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn compose() -> Value {
    let text = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    serde_norway::from_str(&text).expect("docker-compose.yml is YAML")
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    compose["services"]
        .get(name)
        .unwrap_or_else(|| panic!("compose has no service {name}"))
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Sequence(s) => s
            .iter()
            .map(|x| x.as_str().expect("a string").to_string())
            .collect(),
        Value::Null => vec![],
        other => panic!("not a list: {other:?}"),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// `${VAR:-default}` → `default`; a variable without a default fails (the demo must start
/// with no environment set).
fn interpolate(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').expect("closing }") + i;
        let expr = &rest[i + 2..end];
        let (_, default) = expr
            .split_once(":-")
            .unwrap_or_else(|| panic!("${{{expr}}} has no default"));
        out.push_str(default);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A service's environment (map or list form), interpolated.
fn environment(svc: &Value) -> BTreeMap<String, String> {
    match &svc["environment"] {
        Value::Mapping(m) => m
            .iter()
            .map(|(k, v)| (scalar(k), interpolate(&scalar(v))))
            .collect(),
        Value::Sequence(s) => s
            .iter()
            .map(|x| {
                let (k, v) = x.as_str().unwrap().split_once('=').expect("KEY=value");
                (k.to_string(), interpolate(v))
            })
            .collect(),
        Value::Null => BTreeMap::new(),
        other => panic!("environment: {other:?}"),
    }
}

/// `"127.0.0.1:9464:9464"` → (host ip, host port, container port).
fn ports(svc: &Value) -> Vec<(String, u16, u16)> {
    strings(&svc["ports"])
        .iter()
        .map(|p| {
            let parts: Vec<&str> = p.split(':').collect();
            assert_eq!(
                parts.len(),
                3,
                "{p}: give the host address, port and container port"
            );
            (
                parts[0].to_string(),
                parts[1].parse().unwrap(),
                parts[2].parse().unwrap(),
            )
        })
        .collect()
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// The Dockerfile as (stage name, base image, instructions of the stage).
struct Stage {
    name: Option<String>,
    base: String,
    lines: Vec<String>,
}

fn dockerfile() -> (BTreeMap<String, String>, Vec<Stage>) {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    // join continuation lines, drop comments
    let mut logical = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && cur.is_empty()) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(part) => {
                cur.push_str(part);
                cur.push(' ');
            }
            None => {
                cur.push_str(t);
                logical.push(std::mem::take(&mut cur));
            }
        }
    }
    let mut args = BTreeMap::new();
    let mut stages: Vec<Stage> = Vec::new();
    for l in logical {
        let (instr, rest) = l.split_once(' ').unwrap_or((&l, ""));
        match instr.to_ascii_uppercase().as_str() {
            "ARG" if stages.is_empty() => {
                let (k, v) = rest.split_once('=').expect("ARG with a default");
                args.insert(k.trim().to_string(), v.trim().to_string());
            }
            "FROM" => {
                let words: Vec<&str> = rest.split_whitespace().collect();
                let name = match words.as_slice() {
                    [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
                    [_] => None,
                    _ => panic!("FROM {rest}"),
                };
                let mut base = words[0].to_string();
                for (k, v) in &args {
                    base = base.replace(&format!("${{{k}}}"), v);
                }
                stages.push(Stage {
                    name,
                    base,
                    lines: vec![],
                });
            }
            _ => stages
                .last_mut()
                .expect("an instruction after FROM")
                .lines
                .push(l.clone()),
        }
    }
    (args, stages)
}

fn instructions<'a>(stage: &'a Stage, instr: &str) -> Vec<&'a str> {
    stage
        .lines
        .iter()
        .filter_map(|l| {
            let (i, rest) = l.split_once(' ')?;
            i.eq_ignore_ascii_case(instr).then_some(rest.trim())
        })
        .collect()
}

fn cargo_bin_name() -> String {
    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(root().join("Cargo.toml")).unwrap()).unwrap();
    let bins = manifest["bin"].as_array().expect("[[bin]]");
    assert_eq!(bins.len(), 1);
    bins[0]["name"].as_str().unwrap().to_string()
}

fn version(v: &str) -> Vec<u32> {
    v.split('.').map(|p| p.parse().unwrap()).collect()
}

/// `GLADLY_KAFKA__…` variables set in the image (`ENV` of the final stage).
fn image_env() -> BTreeMap<String, String> {
    let (_, stages) = dockerfile();
    let runtime = stages.last().unwrap();
    instructions(runtime, "ENV")
        .iter()
        .map(|e| {
            let (k, v) = e.split_once('=').expect("ENV KEY=value");
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The binary's `simulate` and `demo` commands (they live in the binary, not the library).
#[allow(dead_code)]
#[path = "../src/cli/demo.rs"]
mod demo;

#[derive(Debug, Parser)]
struct SimulateCli {
    #[command(flatten)]
    args: demo::SimulateArgs,
}

#[test]
fn compose_has_the_services_images_ports_and_profiles() {
    let c = compose();
    let names: BTreeSet<String> = c["services"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(scalar)
        .collect();
    let want: BTreeSet<String> = [
        "kafka",
        "registry",
        "registry-init",
        "simulator",
        "gladly-kafka",
        "prometheus",
        "grafana",
        "postgres",
        "connect",
        "connect-init",
    ]
    .map(String::from)
    .into();
    assert_eq!(names, want);

    for name in &names {
        let svc = service(&c, name);
        let image = svc["image"].as_str().expect("every service names an image");
        let (_, tag) = image.rsplit_once(':').expect("a tagged image");
        assert!(tag != "latest" && !tag.is_empty(), "{name}: pin {image}");
        for (host, _, _) in ports(svc) {
            assert_eq!(host, "127.0.0.1", "{name} publishes on loopback only");
        }
        let profiles = strings(&svc["profiles"]);
        if name == "simulator" {
            assert_eq!(profiles, ["demo"], "the simulator is in profile demo");
        } else if name == "prometheus" || name == "grafana" {
            assert_eq!(profiles, ["observe"], "{name} is in profile observe");
        } else if ["postgres", "connect", "connect-init"].contains(&name.as_str()) {
            assert_eq!(profiles, ["warehouse"], "{name} is in profile warehouse");
        } else {
            assert!(profiles.is_empty(), "{name} starts without a profile");
        }
    }

    // the service and the simulator are this repository's image
    for name in ["gladly-kafka", "simulator"] {
        let svc = service(&c, name);
        assert_eq!(scalar(&svc["build"]), ".", "{name} builds the Dockerfile");
        assert_eq!(svc["image"], service(&c, "gladly-kafka")["image"]);
    }
    assert!(root().join("Dockerfile").exists());

    // the service waits for a healthy broker and a configured registry
    let deps = &service(&c, "gladly-kafka")["depends_on"];
    assert_eq!(deps["kafka"]["condition"], "service_healthy");
    assert_eq!(
        deps["registry-init"]["condition"],
        "service_completed_successfully"
    );
    assert!(service(&c, "kafka")["healthcheck"].is_mapping());
    assert!(service(&c, "registry")["healthcheck"].is_mapping());
}

#[test]
fn compose_warehouse_registers_shipped_sinks_from_mounted_files_that_exist() {
    let c = compose();
    let init = service(&c, "connect-init");
    let sinks = strings(&init["command"]);
    assert!(!sinks.is_empty());
    for sink in &sinks {
        let file = root().join(format!("deploy/connect/sinks/{sink}.json"));
        assert!(
            file.exists(),
            "connect-init names {sink}: {file:?} is missing"
        );
    }
    for name in ["connect-init", "postgres"] {
        for volume in strings(&service(&c, name)["volumes"]) {
            let host = volume.split(':').next().unwrap();
            assert!(
                root().join(host).exists(),
                "{name} mounts {host}, which is missing"
            );
        }
    }
    // the registration waits for a worker that answers, the worker for the broker and database
    assert_eq!(
        init["depends_on"]["connect"]["condition"],
        "service_healthy"
    );
    let deps = &service(&c, "connect")["depends_on"];
    assert_eq!(deps["postgres"]["condition"], "service_healthy");
    assert_eq!(deps["kafka"]["condition"], "service_healthy");
}

#[test]
fn compose_points_the_service_at_the_in_network_broker_registry_and_simulator() {
    let c = compose();
    let env = environment(service(&c, "gladly-kafka"));
    let cfg: Config = config::load_from(
        Some(&mounted_config(&c).0),
        env.iter()
            .chain(image_env().iter())
            .map(|(k, v)| (k.clone(), v.clone())),
    )
    .expect("the mounted config plus the compose environment load");

    // broker: an advertised listener of the kafka service
    let kafka_env = environment(service(&c, "kafka"));
    let advertised = &kafka_env["KAFKA_ADVERTISED_LISTENERS"];
    assert!(
        advertised
            .split(',')
            .any(|l| l.ends_with(&format!("://{}", cfg.kafka.bootstrap_servers))),
        "{} is not among the broker's advertised listeners {advertised}",
        cfg.kafka.bootstrap_servers
    );
    assert!(cfg.kafka.bootstrap_servers.starts_with("kafka:"));

    // registry: the registry service's container port, Confluent-compatible path
    let url = reqwest::Url::parse(&cfg.registry.url).unwrap();
    assert_eq!(url.host_str(), Some("registry"));
    let registry_ports: Vec<u16> = ports(service(&c, "registry")).iter().map(|p| p.2).collect();
    assert!(registry_ports.contains(&url.port().unwrap()), "{url}");
    assert_eq!(url.path(), "/apis/ccompat/v7");

    // Gladly: by default the simulator, with the credentials it accepts
    let sim_cmd = strings(&service(&c, "simulator")["command"]);
    assert_eq!(sim_cmd[0], "simulate");
    let sim = SimulateCli::try_parse_from(
        std::iter::once("simulate".to_string()).chain(sim_cmd[1..].iter().cloned()),
    )
    .expect("the simulator's command parses")
    .args;
    assert_eq!(
        cfg.gladly.host,
        format!("http://simulator:{}", sim.listen.port())
    );
    assert!(
        sim.listen.ip().is_unspecified(),
        "listens beyond loopback in its container"
    );
    assert!(ports(service(&c, "simulator"))
        .iter()
        .any(|p| p.2 == sim.listen.port()));
    assert_eq!(cfg.gladly.email, sim.email);
    assert_eq!(
        cfg.gladly.token.as_ref().map(|t| t.expose().to_string()),
        Some(sim.token)
    );

    // metrics: listening on every interface, on the published port
    let listen_port = port_of(&cfg.observe.listen);
    assert!(cfg.observe.listen.starts_with("0.0.0.0:"));
    assert!(ports(service(&c, "gladly-kafka"))
        .iter()
        .any(|p| p.2 == listen_port));
}

#[test]
fn every_config_variable_names_a_real_key_and_the_result_is_valid() {
    let c = compose();
    let (host_path, _) = mounted_config(&c);
    let mut vars: BTreeMap<String, String> = environment(service(&c, "gladly-kafka"))
        .into_iter()
        .filter(|(k, _)| k.starts_with(config::ENV_PREFIX))
        .collect();
    vars.extend(
        image_env()
            .into_iter()
            .filter(|(k, _)| k.starts_with(config::ENV_PREFIX)),
    );
    assert!(vars.len() >= 5, "{vars:?}");
    // each variable alone, so an error names it
    for (k, v) in &vars {
        config::load_from::<Config>(Some(&host_path), [(k.clone(), v.clone())])
            .unwrap_or_else(|e| panic!("{k}: {e}"));
    }
    let cfg: Config = config::load_from(Some(&host_path), vars.clone()).unwrap();
    cfg.validate()
        .expect("the compose configuration is valid as a whole");

    // the check can fail: a misspelt key is refused by the same loader
    let err = config::load_from::<Config>(
        Some(&host_path),
        [(
            "GLADLY_KAFKA__OBSERVE__LISTN".to_string(),
            "0.0.0.0:1".to_string(),
        )],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("listn"), "{err}");
}

/// The config file the compose service mounts: (host path, container path).
fn mounted_config(c: &Value) -> (PathBuf, String) {
    let svc = service(c, "gladly-kafka");
    let env = environment(svc);
    let in_container = env
        .get("GLADLY_KAFKA_CONFIG")
        .expect("the service names its config file in GLADLY_KAFKA_CONFIG");
    let mount = strings(&svc["volumes"])
        .into_iter()
        .find_map(|v| {
            let parts: Vec<&str> = v.split(':').collect();
            (parts.get(1) == Some(&in_container.as_str()))
                .then(|| (parts[0].to_string(), parts.get(2).map(|s| s.to_string())))
        })
        .unwrap_or_else(|| panic!("nothing is mounted at {in_container}"));
    assert_eq!(mount.1.as_deref(), Some("ro"), "mount the config read-only");
    let host = root().join(mount.0.trim_start_matches("./"));
    assert!(host.exists(), "{} exists", host.display());
    (host, in_container.clone())
}

#[test]
fn the_binary_reads_the_mounted_config_path_and_knows_the_commands() {
    let c = compose();
    let bin = env!("CARGO_BIN_EXE_gladly-kafka");
    // GLADLY_KAFKA_CONFIG is what the CLI reads: a missing file there is named in the error
    let missing = "/nonexistent/gladly-kafka/config.toml";
    let out = Command::new(bin)
        .arg("status")
        .env("GLADLY_KAFKA_CONFIG", missing)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot read config file {missing}")),
        "{stderr}"
    );
    // the compose commands parse (with --help nothing runs)
    for name in ["gladly-kafka", "simulator"] {
        let args = strings(&service(&c, name)["command"]);
        let out = Command::new(bin)
            .args(&args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: `gladly-kafka {}` is not a valid command: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_dockerfile_is_multi_stage_non_root_and_enters_the_cargo_binary() {
    let (args, stages) = dockerfile();
    let bin = cargo_bin_name();
    assert!(stages.len() >= 2, "multi-stage");
    let builder = &stages[0];
    let runtime = stages.last().unwrap();
    let builder_name = builder.name.as_deref().expect("the build stage is named");
    assert!(builder.base.starts_with("rust:"), "{}", builder.base);
    assert!(
        runtime.base.contains("-slim") && !runtime.base.starts_with("rust"),
        "a small runtime base: {}",
        runtime.base
    );

    // the Rust toolchain is at least the crate's rust-version
    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(root().join("Cargo.toml")).unwrap()).unwrap();
    let msrv = manifest["package"]["rust-version"].as_str().unwrap();
    assert!(version(&args["RUST_VERSION"]) >= version(msrv));

    // the builder copies what cargo needs and builds the binary
    let copies = instructions(builder, "COPY").join(" ");
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "src",
        "crates",
        "schemas",
        "benches",
    ] {
        assert!(copies.contains(needed), "the builder copies {needed}");
    }
    let runs = instructions(builder, "RUN").join(" ");
    assert!(
        runs.contains(&format!("cargo build --release --locked --bin {bin}")),
        "{runs}"
    );
    for pkg in ["cmake", "libssl-dev", "libcurl4-openssl-dev", "zlib1g-dev"] {
        assert!(runs.contains(pkg), "the builder installs {pkg}");
    }

    // the runtime stage: the binary from the builder, a non-root user, the entrypoint
    let from_builder = instructions(runtime, "COPY")
        .into_iter()
        .find(|c| c.starts_with(&format!("--from={builder_name}")))
        .expect("the binary comes from the builder");
    assert!(from_builder.ends_with(&format!("/usr/local/bin/{bin}")));
    let users = instructions(runtime, "USER");
    let user = users.last().expect("a USER");
    let uid = user.split(':').next().unwrap();
    assert!(
        uid != "root" && uid != "0" && uid.parse::<u32>().is_ok_and(|u| u >= 1000),
        "a numeric non-root USER: {user}"
    );
    assert!(
        instructions(runtime, "RUN")
            .join(" ")
            .contains(&format!("--uid {uid}")),
        "the user {uid} is created"
    );
    assert_eq!(
        instructions(runtime, "ENTRYPOINT"),
        [format!("[\"{bin}\"]")],
        "exec-form ENTRYPOINT of the Cargo binary"
    );
    let listen = &image_env()["GLADLY_KAFKA__OBSERVE__LISTEN"];
    assert_eq!(
        instructions(runtime, "EXPOSE"),
        [port_of(listen).to_string()],
        "EXPOSE the metrics port"
    );

    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    assert!(ignore
        .lines()
        .any(|l| l.trim() == "target/" || l.trim() == "target"));
}

#[test]
fn the_runtime_image_installs_every_library_the_binary_links() {
    let (_, stages) = dockerfile();
    let installed = instructions(stages.last().unwrap(), "RUN").join(" ");
    let out = Command::new("readelf")
        .args(["-d", env!("CARGO_BIN_EXE_gladly-kafka")])
        .output()
        .expect("readelf (binutils) is installed");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let needed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .collect();
    assert!(!needed.is_empty(), "{text}");
    // the Debian package of each shared library; glibc and libgcc are in every base image
    let package = |lib: &str| -> Option<&str> {
        match lib {
            l if l.starts_with("libssl.so.3") || l.starts_with("libcrypto.so.3") => Some("libssl3"),
            l if l.starts_with("libcurl.so.4") => Some("libcurl4"),
            l if l.starts_with("libz.so.1") => Some("zlib1g"),
            l if [
                "libc.so",
                "libm.so",
                "libgcc_s.so",
                "ld-linux",
                "libpthread.so",
                "libdl.so",
            ]
            .iter()
            .any(|p| l.starts_with(p)) =>
            {
                None
            }
            other => {
                panic!("the binary links {other}: add its package to the runtime stage and here")
            }
        }
    };
    for lib in needed {
        if let Some(pkg) = package(lib) {
            assert!(
                installed.split_whitespace().any(|w| w == pkg),
                "{lib} needs {pkg} in the runtime image"
            );
        }
    }
    assert!(
        installed.contains("ca-certificates"),
        "TLS to Gladly needs CA certificates"
    );
}

#[test]
fn helpers_read_both_environment_forms() {
    let v: Value = serde_norway::from_str("environment:\n  - A=${X:-1}\n  - B=two\n").unwrap();
    let env = environment(&v);
    assert_eq!(env["A"], "1");
    assert_eq!(env["B"], "two");
    assert_eq!(port_of("0.0.0.0:9464"), 9464);
}

/// `scripts/module-graph SRC`: its exit status and everything it printed.
fn module_graph(src: &std::path::Path) -> (bool, String) {
    let out = Command::new("python3")
        .arg(root().join("scripts/module-graph"))
        .arg(src)
        .output()
        .expect("python3 runs scripts/module-graph");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "scripts/module-graph crashed:\n{text}"
    );
    (out.status.success(), text)
}

#[test]
fn dependencies_point_one_way_between_modules_and_between_the_files_of_each() {
    let (clean, text) = module_graph(&root().join("src"));
    assert!(
        clean,
        "scripts/module-graph found a circle or a back-up import:\n{text}"
    );
    assert!(text.contains("no cycle, no back-up import"), "{text}");
}

#[test]
fn module_graph_fails_on_a_circle_of_files_and_on_a_back_up_import() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let write = |path: &str, text: &str| {
        let path = src.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("lib.rs", "pub mod shop;\n");
    write(
        "shop/mod.rs",
        "mod cart;\nmod price;\nmod tax;\nmod till;\npub use price::Price;\n",
    );
    // price.rs and tax.rs import each other: a circle inside shop/
    write(
        "shop/price.rs",
        "use super::tax::rate;\npub struct Price(pub u32);\n",
    );
    write(
        "shop/tax.rs",
        "use super::price::Price;\npub fn rate(_: &Price) {}\n",
    );
    // cart.rs takes Price through shop's facade, and so does a file of a nested folder;
    // test code and comments may name anything
    write(
        "shop/cart.rs",
        "use super::Price; // not super::tax\n#[cfg(test)]\nmod tests {\n    use super::super::*;\n}\n",
    );
    write("shop/till/mod.rs", "mod drawer;\n");
    write("shop/till/drawer.rs", "use super::super::Price;\n");

    let (clean, text) = module_graph(&src);
    assert!(!clean, "{text}");
    for found in [
        "circle in src/shop/ among price.rs, tax.rs",
        "price.rs -> tax.rs -> price.rs",
        "src/shop/cart.rs:1 super::Price  (re-exported from price.rs)",
        "src/shop/till/drawer.rs:1 super::super::Price  (re-exported from price.rs)",
    ] {
        assert!(text.contains(found), "no `{found}` in:\n{text}");
    }
    assert!(
        !text.contains("super::super::*"),
        "test code counted:\n{text}"
    );

    // imported from the files that define them, one way: clean
    write("shop/tax.rs", "pub fn rate(_: u32) {}\n");
    write("shop/cart.rs", "use super::price::Price;\n");
    write("shop/till/drawer.rs", "use crate::shop::price::Price;\n");
    let (clean, text) = module_graph(&src);
    assert!(clean, "{text}");
    assert!(text.contains("no cycle, no back-up import"), "{text}");
}
