//! The command line: `[--deliveries N] [--duplicates P] [--concurrency C] [--faults 0,10,30,50]
//! [--outage SECONDS] [--backlog N] [--seed S] [--through workerd|wrangler]`. Defaults are issue 12's: 1,000
//! deliveries per phase, 30 % of them duplicates, 20 at a time, the four fault rates, a 60 s outage, a backlog
//! of 1,000; the deliveries go to the webhook worker in workerd alone.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// Deliveries per phase, duplicates included.
    pub deliveries: u32,
    /// Percent of the deliveries that are copies of another delivery of the same phase.
    pub duplicates: u32,
    pub concurrency: u32,
    /// Percent of Appwrite calls failing, one phase each.
    pub faults: Vec<u32>,
    /// Seconds of the outage window (every Appwrite call failing); 0 skips the phase.
    pub outage_secs: u32,
    /// Failures recorded and drained in the backlog phase; 0 skips it.
    pub backlog: u32,
    /// Seeds the order of the deliveries, which order each duplicate copies, and devstack's fault draws.
    pub seed: u64,
    /// Where the deliveries go: the webhook worker in workerd alone (the default), or in `wrangler dev`.
    pub through: Through,
}

/// The runtime that answers the deliveries (the crons always run in `wrangler dev`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Through {
    /// The webhook worker alone in a workerd process of its own (`xtask::workerd`): its CPU is the worker's.
    Workerd,
    /// `wrangler dev`, with Miniflare's entry, outbound and observability workers in the same process.
    Wrangler,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            deliveries: 1_000,
            duplicates: 30,
            concurrency: 20,
            faults: vec![0, 10, 30, 50],
            outage_secs: 60,
            backlog: 1_000,
            seed: 1,
            through: Through::Workerd,
        }
    }
}

pub const USAGE: &str = "usage: tollgate-load [--deliveries N] [--duplicates PERCENT] [--concurrency C] [--faults 0,10,30,50] [--outage SECONDS] [--backlog N] [--seed S] [--through workerd|wrangler]
  defaults: 1000 deliveries per phase, 30 % duplicates, concurrency 20, faults 0,10,30,50 %, a 60 s outage, a backlog of 1000,
  deliveries through the webhook worker in workerd alone (its crons run in wrangler dev either way)";

fn number<T: std::str::FromStr>(flag: &str, value: Option<&str>) -> Result<T, String> {
    let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
    value.parse().map_err(|_| format!("{flag}: `{value}` is not a number"))
}

/// `Ok(None)`: `--help` was asked for.
pub fn parse(args: &[&str]) -> Result<Option<Args>, String> {
    let mut parsed = Args::default();
    let mut rest = args.iter().copied();
    while let Some(flag) = rest.next() {
        match flag {
            "--help" | "-h" => return Ok(None),
            "--deliveries" => parsed.deliveries = number(flag, rest.next())?,
            "--duplicates" => parsed.duplicates = number(flag, rest.next())?,
            "--concurrency" => parsed.concurrency = number(flag, rest.next())?,
            "--outage" => parsed.outage_secs = number(flag, rest.next())?,
            "--backlog" => parsed.backlog = number(flag, rest.next())?,
            "--seed" => parsed.seed = number(flag, rest.next())?,
            "--through" => {
                parsed.through = match rest.next() {
                    Some("workerd") => Through::Workerd,
                    Some("wrangler") => Through::Wrangler,
                    _ => return Err("--through is `workerd` or `wrangler`".into()),
                }
            }
            "--faults" => {
                let list = rest.next().ok_or("--faults needs a list such as 0,10,30,50")?;
                parsed.faults = if list.is_empty() {
                    Vec::new()
                } else {
                    list.split(',').map(|p| number("--faults", Some(p.trim()))).collect::<Result<_, _>>()?
                };
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if parsed.duplicates >= 100 {
        return Err("--duplicates is a percent below 100 (some deliveries must be originals)".into());
    }
    if let Some(rate) = parsed.faults.iter().find(|r| **r > 100) {
        return Err(format!("--faults: {rate} is not a percent"));
    }
    if parsed.concurrency == 0 || parsed.deliveries == 0 {
        return Err("--concurrency and --deliveries must be at least 1".into());
    }
    Ok(Some(parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_arguments_are_the_issues_defaults() {
        let args = parse(&[]).unwrap().unwrap();
        assert_eq!(args, Args::default());
        assert_eq!((args.deliveries, args.duplicates, args.concurrency), (1_000, 30, 20));
        assert_eq!(args.faults, [0, 10, 30, 50]);
        assert_eq!(args.through, Through::Workerd);
    }

    #[test]
    fn deliveries_go_through_workerd_alone_or_wrangler() {
        assert_eq!(parse(&["--through", "wrangler"]).unwrap().unwrap().through, Through::Wrangler);
        assert_eq!(parse(&["--through", "node"]).unwrap_err(), "--through is `workerd` or `wrangler`");
    }

    #[test]
    fn every_flag_is_read() {
        let given = ["--deliveries", "50", "--duplicates", "10", "--concurrency", "4", "--faults", "0,25"];
        let more = ["--outage", "0", "--backlog", "20", "--seed", "7", "--through", "wrangler"];
        let args = parse(&[&given[..], &more[..]].concat()).unwrap().unwrap();
        assert_eq!(
            args,
            Args {
                deliveries: 50,
                duplicates: 10,
                concurrency: 4,
                faults: vec![0, 25],
                outage_secs: 0,
                backlog: 20,
                seed: 7,
                through: Through::Wrangler,
            }
        );
        assert_eq!(
            parse(&["--faults", ""]).unwrap().unwrap().faults,
            Vec::<u32>::new(),
            "an empty list: no fault phase"
        );
    }

    #[test]
    fn bad_arguments_are_refused_with_a_reason() {
        assert_eq!(parse(&["--deliveries"]).unwrap_err(), "--deliveries needs a value");
        assert_eq!(parse(&["--deliveries", "many"]).unwrap_err(), "--deliveries: `many` is not a number");
        assert_eq!(parse(&["--faults", "10,x"]).unwrap_err(), "--faults: `x` is not a number");
        assert!(parse(&["--faults", "150"]).unwrap_err().contains("not a percent"));
        assert!(parse(&["--duplicates", "100"]).is_err());
        assert!(parse(&["--concurrency", "0"]).is_err());
        assert_eq!(parse(&["--fast"]).unwrap_err(), "unknown argument `--fast`");
        assert_eq!(parse(&["--deliveries", "5", "--help"]).unwrap(), None);
    }
}
