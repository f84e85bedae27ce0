//! `ringport compare`: the server models side by side.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use ringport_compare::{markdown, run, write_outputs, Compare, Plan, Results, Workload};
use ringport_load::parse_duration;
use ringport_models::Model;

/// Flags of `ringport compare`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The reduced matrix (every model; echo and 64 KiB downloads at 10 and 100
    /// connections; short windows): under a minute.
    #[arg(long)]
    quick: bool,
    /// Print the results as JSON on stdout instead of the Markdown table.
    #[arg(long)]
    json: bool,
    /// Folder for the charts (SVG), index.html, results.json and results.md.
    #[arg(long, default_value = "compare-out")]
    out: PathBuf,
    /// Models to run, comma-separated (default: all): threads, pool, reactor, port-uring,
    /// port-epoll, port-rule.
    #[arg(long, value_delimiter = ',')]
    models: Vec<Model>,
    /// Workloads, comma-separated (default: all, or the quick ones): echo-64B,
    /// download-64KiB, download-1MiB.
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<Workload>,
    /// Connection counts, comma-separated (default: 1,10,100,1000,10000).
    #[arg(long, value_delimiter = ',')]
    conns: Vec<usize>,
    /// Measured window of each point (default: 4s, quick 500ms).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Unmeasured warmup of each point, once all connections are established (default: 1s,
    /// quick 250ms).
    #[arg(long, value_parser = parse_duration)]
    warmup: Option<Duration>,
    /// Run the whole matrix this many times (each round in another model order) and report
    /// each point's median.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Threads of the pool model (4).
    #[arg(long, default_value_t = 256)]
    pool_threads: usize,
    /// Do not pin the servers to CPU 0 and the load generator to CPU 1.
    #[arg(long)]
    no_pin: bool,
    /// Measure nothing: draw the charts, page and table again from a `results.json` of an
    /// earlier run.
    #[arg(long, value_name = "RESULTS_JSON")]
    replot: Option<PathBuf>,
}

/// Runs the comparison and prints the table (or JSON).
pub fn run_compare(args: Args) -> anyhow::Result<()> {
    if let Some(path) = &args.replot {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let results = Results::from_json(&text)
            .with_context(|| format!("reading results from {}", path.display()))?;
        return finish(&results, &args);
    }
    let mut plan = if args.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    if !args.models.is_empty() {
        plan.models = args.models.clone();
    }
    if !args.workloads.is_empty() {
        plan.workloads = args.workloads.clone();
    }
    if !args.conns.is_empty() {
        plan.connections = args.conns.clone();
    }
    if plan.connections.contains(&0) {
        bail!("connection counts must be at least 1");
    }
    if args.rounds == 0 {
        bail!("at least one round is needed");
    }
    plan.rounds = args.rounds;
    if args.pool_threads == 0 {
        bail!("the pool needs at least one thread");
    }
    plan.duration = args.duration.unwrap_or(plan.duration);
    plan.warmup = args.warmup.unwrap_or(plan.warmup);
    if plan.duration.is_zero() {
        bail!("the measured duration must not be zero");
    }
    let points = plan.points().len();
    eprintln!(
        "ringport compare: {points} points ({} models × {} workloads × {} connection counts) \
         × {} round(s), expected to take about {}",
        plan.models.len(),
        plan.workloads.len(),
        plan.connections.len(),
        plan.rounds,
        minutes(plan.expected())
    );
    let cfg = Compare {
        plan,
        exe: std::env::current_exe().context("finding the ringport binary")?,
        pool_threads: args.pool_threads,
        pin: !args.no_pin,
        progress: std::io::stderr().is_terminal() && std::env::var_os("CI").is_none(),
    };
    let results = run(&cfg).context("running the comparison")?;
    finish(&results, &args)
}

/// Writes the charts and page, and prints the table (or JSON).
fn finish(results: &Results, args: &Args) -> anyhow::Result<()> {
    write_outputs(results, &args.out)?;
    if args.json {
        println!("{}", results.to_json());
    } else {
        println!("{}", markdown(results));
    }
    eprintln!(
        "charts, index.html, results.json and results.md in {}",
        args.out.display()
    );
    Ok(())
}

fn minutes(d: Duration) -> String {
    let s = d.as_secs();
    if s < 90 {
        format!("{s} s")
    } else {
        format!("{} min {} s", s / 60, s % 60)
    }
}
