//! health, completions and help.

use serde_json::json;

use crate::support::{Server, kvctl};

#[test]
fn health_exits_0_when_the_server_is_up() {
    let server = Server::start();
    assert_eq!(
        server.ok(&["health"]).stdout(),
        format!("ok: {} is up\n", server.endpoint)
    );
    let json = server.ok(&["-o", "json", "health"]).json();
    assert_eq!(json, json!({"endpoint": server.endpoint, "status": "ok"}));
}

#[test]
fn completions_print_a_script_for_each_shell_without_a_server() {
    let cases = [
        ("bash", "complete -F"),
        ("zsh", "#compdef kvctl"),
        ("fish", "complete -c kvctl"),
        ("elvish", "kvctl"),
        ("powershell", "kvctl"),
    ];
    for (shell, needle) in cases {
        let script = kvctl(&["completions", shell]).run().success().stdout();
        assert!(script.contains(needle), "{shell}: {script}");
        assert!(
            script.contains("import") && script.contains("export"),
            "{shell} knows the commands"
        );
    }
}

#[test]
fn every_commands_long_help_has_an_example_and_the_top_level_help_the_exit_codes() {
    let commands = [
        "set",
        "get",
        "del",
        "update",
        "ttl",
        "list",
        "export",
        "import",
        "health",
        "completions",
    ];
    for command in commands {
        let help = kvctl(&[command, "--help"]).run().success().stdout();
        assert!(
            help.contains(&format!("Examples:\n  kvctl {command}")),
            "{command}: {help}"
        );
    }
    let help = kvctl(&["--help"]).run().success().stdout();
    for needle in [
        "Exit codes:",
        "KVCTL_ENDPOINT",
        "KVCTL_TOKEN",
        "--cacert",
        "--timeout",
        "-o, --output",
    ] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
}

#[test]
fn kvctl_without_a_command_shows_help_and_exits_2() {
    let outcome = kvctl(&[]).run();
    assert_eq!(outcome.code, 2, "{outcome:?}");
    assert!(outcome.stderr.contains("Usage: kvctl"), "{outcome:?}");
}
