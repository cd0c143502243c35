//! The `docker` command against the engine of `DOCKER_HOST`, and a container removed when
//! the test ends.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// This repository's image: `GLADLY_IMAGE` (`scripts/docker build` tags it), by default
/// `gladly-kafka:local`. The first call checks that the engine answers and has it; without
/// them it prints how to get both and ends the test process (exit status 2).
pub fn image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let image = std::env::var("GLADLY_IMAGE").unwrap_or_else(|_| "gladly-kafka:local".into());
        let ok = Command::new("docker")
            .args(["image", "inspect", &image])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = writeln!(
                std::io::stderr(),
                "\nThese tests need a Docker engine (DOCKER_HOST) with the image {image}.\n\
                 Run every test with `scripts/test`, or:\n    \
                 eval \"$(scripts/docker up)\" && scripts/docker images && scripts/docker build\n"
            );
            std::process::exit(2);
        }
        image
    })
}

/// Runs `docker args`; panics with its output if it fails.
pub fn docker(args: &[&str]) -> String {
    let out = docker_output(args);
    assert!(
        out.status.success(),
        "docker {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs `docker args` and returns what happened.
pub fn docker_output(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the docker command runs")
}

/// A detached container, removed (with `docker rm -f`) when dropped.
pub struct Container {
    pub name: String,
}

impl Container {
    /// `docker run -d --network host --name <unique> <env…> <image> <args…>`.
    pub fn run(env: &[(String, String)], image: &str, args: &[&str]) -> Container {
        let name = super::support::unique_name("gladly-kafka-image");
        let mut cmd: Vec<String> = vec![
            "run".into(),
            "-d".into(),
            "--network".into(),
            "host".into(),
            "--name".into(),
            name.clone(),
        ];
        for (k, v) in env {
            cmd.push("-e".into());
            cmd.push(format!("{k}={v}"));
        }
        cmd.push(image.into());
        cmd.extend(args.iter().map(|a| a.to_string()));
        let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
        docker(&refs);
        Container { name }
    }

    /// `docker inspect -f <format>` of the container.
    pub fn inspect(&self, format: &str) -> String {
        docker(&["inspect", "-f", format, &self.name])
    }

    /// Whether the container still runs.
    pub fn running(&self) -> bool {
        self.inspect("{{.State.Running}}") == "true"
    }

    /// What the container logged so far.
    pub fn logs(&self) -> String {
        let out = docker_output(&["logs", &self.name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// `docker stop` (SIGTERM, SIGKILL after `grace_secs`); returns the exit code.
    pub fn stop(&self, grace_secs: u32) -> i64 {
        docker(&["stop", "-t", &grace_secs.to_string(), &self.name]);
        self.inspect("{{.State.ExitCode}}")
            .parse()
            .expect("an exit code")
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker_output(&["rm", "-f", &self.name]);
    }
}
