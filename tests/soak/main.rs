//! `soak`: the runtime against the local exchange for a while (ten minutes by default) at
//! a steady event rate, a fault every few seconds, then the exactly-once invariants checked
//! on the exchange's books. Prints what it did and found; exits 1 if an invariant broke.
//!
//! `cargo run --release -p e2e --bin soak -- --seconds 600` (after `strategies/build.sh`;
//! needs `redis-server` on the PATH, which the test command installs).

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// Soaks the runtime against the local exchange with faults, then checks the invariants.
#[derive(Parser, Debug)]
#[command(name = "soak")]
struct Cli {
    /// How long the market runs, in seconds.
    #[arg(long, default_value_t = 600)]
    seconds: u64,
    /// Seconds between two faults.
    #[arg(long, default_value_t = 5.0)]
    fault_every: f64,
    /// The market's prints a second; 0 for as fast as the local exchange takes them (which
    /// drives the maker far past the venue's order-rate limits).
    #[arg(long, default_value_t = 300)]
    rate: u32,
    /// Only this kind of fault, every time (0: stream dropped, 1: placement failed or
    /// answer lost, 2: pushes twice, 3: pushes lost then stream dropped, 4: hot swap,
    /// 5: config reload, 6: Redis restart).
    #[arg(long)]
    only_fault: Option<usize>,
    /// Seed of the price walk.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The runtime's log on stderr, filtered by RUNTIME_LOG (warnings by default).
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUNTIME_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).compact().init();
    let report = e2e::soak::run(e2e::soak::Settings {
        duration: Duration::from_secs(cli.seconds),
        fault_every: Duration::from_secs_f64(cli.fault_every.max(0.1)),
        rate: cli.rate,
        seed: cli.seed,
        only_fault: cli.only_fault,
    });
    println!("{report}");
    if report.all_hold() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
