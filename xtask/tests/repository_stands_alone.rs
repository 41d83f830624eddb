//! The repository stands alone: no tracked file points outside it to the design folder that sat beside the
//! project while it was being written (its documents now live in `docs/`, its test data in `testdata/`).
//! A clone must build, test and explain itself with nothing next to it.

use std::process::Command;

/// The folder's name, and the paths below it that the project used. The patterns are built at run time, so
/// that no file of the repository (this one included) contains a reference to that folder.
const FOLDER: &str = "shared";
const SUBFOLDERS: [&str; 3] = ["specs", "design", "vectors"];

fn forbidden() -> Vec<String> {
    let mut patterns = vec![format!("../{FOLDER}")];
    patterns.extend(SUBFOLDERS.iter().map(|sub| format!("{FOLDER}/{sub}")));
    patterns
}

#[test]
fn no_tracked_file_refers_to_a_folder_outside_the_repository() {
    let root = xtask::paths::workspace_root();
    let listing = Command::new("git").arg("ls-files").arg("-z").current_dir(&root).output().expect("running git");
    assert!(listing.status.success(), "git ls-files failed: {}", String::from_utf8_lossy(&listing.stderr));
    let files: Vec<String> =
        String::from_utf8_lossy(&listing.stdout).split('\0').filter(|f| !f.is_empty()).map(str::to_owned).collect();
    assert!(files.iter().any(|f| f.ends_with("repository_stands_alone.rs")), "git ls-files missed this test");
    let forbidden = forbidden();
    let mut offenders = Vec::new();
    for file in &files {
        let Ok(bytes) = std::fs::read(root.join(file)) else { continue };
        let text = String::from_utf8_lossy(&bytes);
        for (number, line) in text.lines().enumerate() {
            if let Some(needle) = forbidden.iter().find(|needle| line.contains(needle.as_str())) {
                offenders.push(format!("{file}:{}: `{needle}`", number + 1));
            }
        }
    }
    assert!(offenders.is_empty(), "files that point outside the repository:\n{}", offenders.join("\n"));
}
