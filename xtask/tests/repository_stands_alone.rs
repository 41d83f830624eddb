//! The repository stands alone: no tracked file points outside it to the design folder that sat beside the
//! project while it was being written (its documents now live in `docs/`, its test data in `testdata/`).
//! A clone must build, test and explain itself with nothing next to it.

use std::process::Command;

/// What a reference to that folder looks like. This file is the only one allowed to contain them.
const FORBIDDEN: [&str; 4] = ["../shared", "shared/specs", "shared/design", "shared/vectors"];
const THIS_FILE: &str = "xtask/tests/repository_stands_alone.rs";

#[test]
fn no_tracked_file_refers_to_a_folder_outside_the_repository() {
    let root = xtask::paths::workspace_root();
    let listing = Command::new("git").arg("ls-files").arg("-z").current_dir(&root).output().expect("running git");
    assert!(listing.status.success(), "git ls-files failed: {}", String::from_utf8_lossy(&listing.stderr));
    let files: Vec<String> =
        String::from_utf8_lossy(&listing.stdout).split('\0').filter(|f| !f.is_empty()).map(str::to_owned).collect();
    assert!(files.iter().any(|f| f == THIS_FILE), "git ls-files did not list this test: {files:?}");
    let mut offenders = Vec::new();
    for file in files.iter().filter(|f| f.as_str() != THIS_FILE) {
        let Ok(bytes) = std::fs::read(root.join(file)) else { continue };
        let text = String::from_utf8_lossy(&bytes);
        for (number, line) in text.lines().enumerate() {
            if let Some(needle) = FORBIDDEN.iter().find(|needle| line.contains(*needle)) {
                offenders.push(format!("{file}:{}: `{needle}`", number + 1));
            }
        }
    }
    assert!(offenders.is_empty(), "files that point outside the repository:\n{}", offenders.join("\n"));
}
