//! Every `npx wrangler` command in the README's deploy section is one the pinned wrangler has (its
//! `--help` works), and every worker's configuration deploys (`cargo xtask test` runs
//! `wrangler deploy --dry-run` of each).

use std::process::{Command, Stdio};
use xtask::paths::{node_bin_dir, path_with_node, workspace_root, wrangler_js};

#[test]
fn every_wrangler_command_in_the_deploy_guide_exists() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let start = readme.find("## Deploying to Cloudflare").expect("a deploy section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |end| end + 3)];
    let commands: Vec<String> = section
        .split(['\n', '`'])
        .filter_map(|line| line.find("npx wrangler ").map(|at| line[at + "npx wrangler ".len()..].trim().to_owned()))
        .collect();
    assert!(
        commands.iter().any(|c| c.starts_with("deploy")) && commands.iter().any(|c| c.starts_with("secret put")),
        "{commands:?}"
    );
    let scratch = std::env::temp_dir().join(format!("tollgate-readme-wrangler-{}", std::process::id()));
    for command in commands {
        let args: Vec<&str> =
            command.split_whitespace().take_while(|a| a.chars().all(|c| c.is_ascii_lowercase())).collect();
        let output = Command::new(node_bin_dir().join("node"))
            .arg(wrangler_js())
            .args(&args)
            .arg("--help")
            .env("PATH", path_with_node())
            .env("WRANGLER_SEND_METRICS", "false")
            .env("XDG_CONFIG_HOME", &scratch)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(output.status.success(), "`wrangler {command}` is not a command of the pinned wrangler");
    }
    let _ = std::fs::remove_dir_all(&scratch);
}
