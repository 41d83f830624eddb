//! Every `tollgate` command in the README's deploy and migration sections exists: each is run with
//! `--help` appended (clap answers that before reading any setting), so a renamed subcommand or flag fails.

use std::process::Command;

const README: &str = include_str!("../../README.md");
const SECTIONS: [&str; 2] = ["## Deploying to Cloudflare", "## Migrating from the JavaScript deployment"];

fn operator_sections() -> String {
    let mut text = String::new();
    for heading in SECTIONS {
        let start = README.find(heading).unwrap_or_else(|| panic!("README lacks `{heading}`"));
        let rest = &README[start + heading.len()..];
        let end = rest.find("\n## ").unwrap_or(rest.len());
        text.push_str(&rest[..end]);
    }
    text
}

#[test]
fn every_tollgate_command_in_the_operators_guide_exists() {
    let marker = "tollgate-cli -- ";
    let commands: Vec<String> = operator_sections()
        .split(['\n', '`'])
        .filter_map(|line| line.find(marker).map(|at| line[at + marker.len()..].trim().to_owned()))
        .filter(|c| !c.is_empty())
        .collect();
    assert!(commands.len() >= 8, "expected the guide's commands, found {commands:?}");
    for command in commands {
        let args: Vec<&str> = command.split_whitespace().collect();
        let output = Command::new(env!("CARGO_BIN_EXE_tollgate")).args(&args).arg("--help").output().unwrap();
        assert!(
            output.status.success(),
            "`tollgate {command}` does not exist: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
