//! CPU time from `/proc`: of a process (user + system, its own threads only), of the processes below a
//! `wrangler dev`, and of this process's threads by name (devstack runs on a runtime of its own whose threads
//! are named [`DEVSTACK_THREADS`]).
//!
//! Below `wrangler dev` (wrangler 4) run: node (wrangler itself, twice: its launcher and the CLI), and two
//! workerd processes: the **user worker's runtime** (the worker's code; started with `--inspector-addr`, on a
//! port of its own) and wrangler's **proxy worker** (a second workerd serving the port we asked for and
//! forwarding each request to the first). [`classify`] tells them apart by their command lines.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The thread name of devstack's runtime (Linux keeps 15 bytes of it).
pub const DEVSTACK_THREADS: &str = "devstack";

/// The fields of `/proc/<pid>/stat` that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub comm: String,
    pub ppid: u32,
    /// utime + stime, in clock ticks.
    pub ticks: u64,
}

/// What a process below `wrangler dev` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The workerd running the worker's code.
    UserRuntime,
    /// Anything else: node (wrangler), the proxy worker's workerd.
    Proxy,
}

/// The user worker's runtime is the workerd wrangler starts with the inspector (`--inspector-addr`); the
/// proxy worker's workerd has none.
pub fn classify(comm: &str, cmdline: &str) -> Kind {
    if comm == "workerd" && cmdline.split('\0').any(|arg| arg.starts_with("--inspector-addr")) {
        Kind::UserRuntime
    } else {
        Kind::Proxy
    }
}

/// Parses a `/proc/<pid>/stat` (or `/proc/<pid>/task/<tid>/stat`) line. The command name is in parentheses
/// and may itself contain spaces and parentheses, so the fields are counted from the last `)`.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let comm = line.get(open + 1..close)?.to_owned();
    // After ") ": state(3) ppid(4) pgrp(5) session(6) tty(7) tpgid(8) flags(9) minflt(10) cminflt(11)
    // majflt(12) cmajflt(13) utime(14) stime(15).
    let fields: Vec<&str> = line.get(close + 1..)?.split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Stat { comm, ppid, ticks: utime + stime })
}

fn ticks_per_second() -> u64 {
    // SAFETY: sysconf reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|t| *t > 0).unwrap_or(100)
}

pub fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_secs_f64(ticks as f64 / ticks_per_second() as f64)
}

fn read_stat(path: &Path) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(path).ok()?)
}

/// Every process now: pid → its stat and kind.
fn processes() -> BTreeMap<u32, (Stat, Kind)> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return BTreeMap::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let dir = Path::new("/proc").join(pid.to_string());
            let stat = read_stat(&dir.join("stat"))?;
            let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
            let kind = classify(&stat.comm, &String::from_utf8_lossy(&cmdline));
            Some((pid, (stat, kind)))
        })
        .collect()
}

/// The CPU of `root` and of its descendants, split in two: the user worker's runtime, and the rest (the
/// root included: wrangler's node processes and its proxy worker).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeCpu {
    pub runtime: u64,
    pub rest: u64,
}

/// [`TreeCpu`] of `root` in a process table (pure, for tests).
pub fn tree_cpu(table: &BTreeMap<u32, (Stat, Kind)>, root: u32) -> TreeCpu {
    let mut cpu = TreeCpu::default();
    let mut stack = vec![root];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(pid) = stack.pop() {
        if !seen.insert(pid) {
            continue;
        }
        let Some((stat, kind)) = table.get(&pid) else { continue };
        match kind {
            Kind::UserRuntime => cpu.runtime += stat.ticks,
            Kind::Proxy => cpu.rest += stat.ticks,
        }
        stack.extend(table.iter().filter(|(_, (s, _))| s.ppid == pid).map(|(child, _)| *child));
    }
    cpu
}

/// The CPU of each `wrangler dev` tree in `roots`, now.
pub fn workers_cpu(roots: &[u32]) -> Vec<TreeCpu> {
    let table = processes();
    roots.iter().map(|root| tree_cpu(&table, *root)).collect()
}

/// Ticks of this process's threads whose name starts with `prefix`, and of all its threads.
pub fn own_threads_cpu(prefix: &str) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir("/proc/self/task") else { return (0, 0) };
    let stats: Vec<Stat> = entries.flatten().filter_map(|e| read_stat(&e.path().join("stat"))).collect();
    let runtime = stats.iter().filter(|s| s.comm.starts_with(prefix)).map(|s| s.ticks).sum();
    (runtime, stats.iter().map(|s| s.ticks).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(comm: &str, ppid: u32, ticks: u64) -> Stat {
        Stat { comm: comm.into(), ppid, ticks }
    }

    #[test]
    fn a_stat_line_is_read_from_after_the_last_parenthesis() {
        let line = "4242 (work (er) d) S 4000 4242 4000 0 -1 4194560 1200 0 3 0 150 25 0 0 20 0 12 0 9000 0 0";
        assert_eq!(parse_stat(line), Some(stat("work (er) d", 4000, 175)));
        assert_eq!(parse_stat("4242 (node) S 1"), None, "a truncated line is not a zero");
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn the_user_runtime_is_the_workerd_with_the_inspector() {
        let user = "/x/bin/workerd\0serve\0--binary\0--socket-addr=entry=127.0.0.1:0\0--inspector-addr=127.0.0.1:0\0";
        let proxy = "/x/bin/workerd\0serve\0--binary\0--socket-addr=entry=127.0.0.1:30454\0-\0";
        assert_eq!(classify("workerd", user), Kind::UserRuntime);
        assert_eq!(classify("workerd", proxy), Kind::Proxy);
        assert_eq!(
            classify("node", "node\0wrangler.js\0--inspector-addr=1\0"),
            Kind::Proxy,
            "only a workerd runs the worker"
        );
    }

    #[test]
    fn a_wrangler_tree_splits_the_user_runtime_from_the_rest_and_ignores_other_trees() {
        let (user, proxy) = (Kind::UserRuntime, Kind::Proxy);
        let table: BTreeMap<u32, (Stat, Kind)> = [
            (10, (stat("node", 1, 300), proxy)),
            (11, (stat("node", 10, 20), proxy)),
            (12, (stat("workerd", 11, 900), user)),
            (13, (stat("workerd", 11, 40), proxy)),
            (20, (stat("node", 1, 7), proxy)),
            (21, (stat("workerd", 20, 1_000), user)),
        ]
        .into();
        assert_eq!(tree_cpu(&table, 10), TreeCpu { runtime: 900, rest: 360 });
        assert_eq!(tree_cpu(&table, 20), TreeCpu { runtime: 1_000, rest: 7 });
        assert_eq!(tree_cpu(&table, 99), TreeCpu::default(), "a gone process counts nothing");
    }

    #[test]
    fn this_process_sees_its_own_named_threads() {
        let worker = std::thread::Builder::new()
            .name(format!("{DEVSTACK_THREADS}-t"))
            .spawn(|| {
                let start = std::time::Instant::now();
                let mut x = 0u64;
                while start.elapsed() < Duration::from_millis(60) {
                    x = x.wrapping_add(std::hint::black_box(1));
                }
                let (runtime, all) = own_threads_cpu(DEVSTACK_THREADS);
                (x, runtime, all)
            })
            .unwrap();
        let (_, runtime, all) = worker.join().unwrap();
        assert!(runtime >= 1, "60 ms of spinning shows as ticks of the runtime thread");
        assert!(all >= runtime);
    }
}
