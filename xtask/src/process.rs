//! Child processes that are stopped, with everything they started, when their handle is dropped.
//! wrangler starts workerd as a grandchild, so each child gets its own process group and the whole group
//! is signalled.

use anyhow::{bail, Context, Result};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// How long a child gets to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);

pub struct ChildGroup {
    name: String,
    child: Child,
}

impl ChildGroup {
    pub fn spawn(name: &str, mut command: Command) -> Result<Self> {
        command.process_group(0);
        // If this process dies without stopping its children (a kill -9, a crash), the kernel sends the
        // child SIGTERM, and wrangler then stops its workerd.
        // SAFETY: prctl is async-signal-safe and touches only the new child's own state.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = command.spawn().with_context(|| format!("could not start {name}"))?;
        Ok(Self { name: name.to_owned(), child })
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` if the child has already exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn stop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        signal_group(self.child.id(), "TERM");
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        signal_group(self.child.id(), "KILL");
        let _ = self.child.wait();
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ChildGroup {
    fn drop(&mut self) {
        self.stop();
    }
}

fn signal_group(pid: u32, signal: &str) {
    // `-s SIG -- -PGID`: with procps kill a bare `-PGID` would be read as an option.
    let _ = Command::new("kill").args(["-s", signal, "--"]).arg(format!("-{pid}")).status();
}

/// Runs a command to completion, failing with its name when it fails.
pub fn run(what: &str, command: &mut Command) -> Result<()> {
    let status = command.status().with_context(|| format!("could not run {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Runs a command and returns its stdout, or `None` if it could not run or failed.
pub fn output_of(command: &mut Command) -> Option<String> {
    let output = command.output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}
