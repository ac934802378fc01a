//! The `runtime` binary: parses the command line, loads the strategies and the config,
//! runs the engine, and prints a summary. Errors end here as one line naming what and
//! where, with a non-zero exit code.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};

use runtime::config::{Config, Mode, StoreBackend};
use runtime::store::{self, Backend, Write};
use runtime::engine::Engine;
use runtime::plugin::{PluginHost, SandboxLimits};
use runtime::reload::{self, Watched};

/// Runs trading strategies, compiled to WebAssembly components, against paper or live
/// venues.
///
/// Each strategy runs sandboxed: it sees only the runtime's imports (market data, its own
/// state, a clock and a log), with a memory limit and a deadline on every call. A strategy
/// that traps is stopped and its orders cancelled; the others keep running. While the
/// runtime runs, replacing a strategy's .wasm file hot-swaps it with its state carried
/// over, and editing the config file delivers new params to the strategies.
#[derive(Parser, Debug)]
#[command(name = "runtime", version, about, long_about)]
struct Cli {
    /// Strategy components to load (.wasm: components, or core modules built with the
    /// strategy SDK). Config entries refer to them by file stem: `grid` for grid.wasm.
    /// A component the config names and this list does not is looked for as
    /// `strategies/<name>.wasm`; a config without strategies runs only its venues and
    /// feeds (a market data collector).
    #[arg(long, num_args = 1.., value_name = "FILE")]
    strategies: Vec<PathBuf>,

    /// The config file: venues, instruments, market data, strategies and their params.
    #[arg(long, default_value = "config/runtime.toml", value_name = "FILE")]
    config: PathBuf,

    /// Overrides the config's mode: paper (simulated venues), live, recommend (decide
    /// and log, never send), or backtest (paper venues as fast as possible, nothing
    /// resumed or watched, a report written at the end: see --report).
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,

    /// Writes the run's report, backtest.json and backtest.html (equity and drawdown
    /// charts, PnL, fees, volume, Sharpe, Sortino, fills and orders), into this folder at
    /// the end of a paper run. In backtest mode it defaults to `reports/` beside the config.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,

    /// Event time between the report's samples of each strategy's PnL, in ms (1 to
    /// 86400000); Sharpe and Sortino are on the changes over this interval.
    #[arg(long, value_name = "MS", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    sample_ms: u64,

    /// Overrides the replay pace: a multiple of recorded time, 0 for as fast as possible.
    #[arg(long, value_name = "N")]
    speed: Option<u32>,

    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// Do not watch strategy and config files for changes.
    #[arg(long)]
    no_watch: bool,

    /// The embedded store's file (overrides store.path in the config).
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,

    /// Discard the saved state and start from the beginning instead of resuming.
    #[arg(long)]
    fresh: bool,

    /// Serve the control API on this address (overrides control.listen), e.g.
    /// 127.0.0.1:8700; port 0 picks a free one (the log says which).
    #[arg(long, value_name = "ADDR")]
    control: Option<std::net::SocketAddr>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Writes a new strategy project, from the `hello` example in its language, that
    /// builds and runs in the demo config: `strategies/build.sh <folder>` builds it (in
    /// Rust, `cargo test` in it runs its tests first).
    New {
        /// Lower-case letters, digits and dashes: the crate, the component and the
        /// prefix of its client order ids.
        name: String,
        /// Where the project folder goes.
        #[arg(long, default_value = ".", value_name = "DIR")]
        dir: PathBuf,
        /// The strategy SDK to depend on; by default the one of the source checkout this
        /// runtime was built from.
        #[arg(long, value_name = "DIR")]
        sdk: Option<PathBuf>,
        /// The language of the strategy.
        #[arg(long, value_enum, default_value_t = LangArg::Rust)]
        lang: LangArg,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LangArg {
    Rust,
    Python,
    Js,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum ModeArg {
    Paper,
    Live,
    Recommend,
    Backtest,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::New { name, dir, sdk, lang }) = &cli.command {
        use runtime::scaffold::Lang;
        let sdk = sdk.clone().unwrap_or_else(|| runtime::scaffold::source_root().join("strategies/sdk"));
        let lang = match lang {
            LangArg::Rust => Lang::Rust,
            LangArg::Python => Lang::Python,
            LangArg::Js => Lang::Js,
        };
        return match runtime::scaffold::new_project(name, dir, &sdk, lang) {
            Ok(project) => {
                let build = format!("`{}/strategies/build.sh {}`", runtime::scaffold::source_root().display(), project.display());
                match lang {
                    Lang::Rust => println!("wrote {}: `cargo test` in it, then {build}", project.display()),
                    Lang::Python | Lang::Js => println!("wrote {}: build it with {build}", project.display()),
                }
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::from(2)
            }
        };
    }
    init_logging(cli.log_format);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(format: LogFormat) {
    let mut filter = tracing_subscriber::EnvFilter::try_from_env("RUNTIME_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Whatever RUNTIME_LOG asks for: the WebSocket and HTTP libraries log whole frames and
    // headers at debug and trace (an OKX login carries the key and passphrase, a Binance
    // subscribe the key), so they never go below info; the compiler's crates would bury
    // the runtime's own lines in tens of thousands of theirs.
    for quiet in ["tungstenite", "tokio_tungstenite", "hyper", "hyper_util", "reqwest", "h2", "rustls", "cranelift_codegen", "cranelift_frontend", "cranelift_control", "regalloc2", "wasmtime", "wasmtime_environ", "wasmtime_cranelift", "wasmtime_internal_cranelift", "wit_parser", "wit_component", "wasmparser", "wasm_encoder"] {
        if let Ok(directive) = format!("{quiet}=info").parse() {
            filter = filter.add_directive(directive);
        }
    }
    // Colours only for a person at a terminal, never in files or pipes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.compact().init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(mut cli: Cli) -> anyhow::Result<()> {
    let mut config = Config::load(&cli.config)?;
    if let Some(mode) = cli.mode {
        config.mode = match mode {
            ModeArg::Paper => Mode::Paper,
            ModeArg::Live => Mode::Live,
            ModeArg::Recommend => Mode::Recommend,
            ModeArg::Backtest => Mode::Paper,
        };
    }
    let backtest = cli.mode == Some(ModeArg::Backtest);
    if backtest {
        // Same input, same output: from the beginning, as fast as possible, untouched.
        config.replay.speed = 0;
        config.store.backend = StoreBackend::None;
        config.control.listen = None;
        cli.no_watch = true;
    }
    let mut report_dir = cli.report.clone().or_else(|| backtest.then(|| cli.config.parent().unwrap_or(std::path::Path::new(".")).join("reports")));
    if report_dir.is_some() && config.mode != Mode::Paper {
        tracing::warn!("--report: a report is of a paper run; this run is in {:?} mode, so none is written", config.mode);
        report_dir = None;
    }
    if let Some(speed) = cli.speed {
        config.replay.speed = speed;
    }
    // Installed before anything slow (compiling components, connecting to venues), so an
    // operator's Ctrl-C there is answered too; its thread is started before the engine
    // pins its own, and moved off that core with the others (`[live] engine_core`).
    let interrupts = Arc::new(std::sync::Mutex::new(Interrupts::default()));
    let handler = interrupts.clone();
    ctrlc::set_handler(move || handler.lock().unwrap_or_else(|p| p.into_inner()).interrupted()).context("installing the signal handler")?;
    let plugin = PluginHost::new(SandboxLimits {
        call_timeout: Duration::from_millis(config.sandbox.call_timeout_ms),
        memory_bytes: (config.sandbox.memory_limit_mb as usize) << 20,
    })
    .context("starting the WebAssembly engine")?;

    let mut components = HashMap::new();
    let mut watched = Watched { strategies: HashMap::new(), config: Some(cli.config.clone()) };
    // Components the config names but the command line does not: strategies/<name>.wasm.
    let mut paths = cli.strategies.clone();
    for entry in &config.strategies {
        let given = paths.iter().any(|p| p.file_stem().and_then(|s| s.to_str()) == Some(entry.component.as_str()));
        let default = PathBuf::from("strategies").join(format!("{}.wasm", entry.component));
        if !given && default.is_file() {
            tracing::info!(component = %entry.component, "not among --strategies: using {}", default.display());
            paths.push(default);
        }
    }
    for path in &paths {
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()).map(str::to_string) else {
            bail!("{}: not a file name", path.display());
        };
        if components.contains_key(&stem) {
            bail!("{}: a strategy named {stem} is already loaded from another file", path.display());
        }
        let loaded = plugin.load(path)?;
        tracing::info!(component = %stem, version = %loaded.hash, compile_ms = loaded.compile_time.as_millis() as u64, "loaded {}", path.display());
        watched.strategies.insert(stem.clone(), path.clone());
        components.insert(stem, Arc::new(loaded));
    }
    let unused: Vec<&String> = components.keys().filter(|c| !config.strategies.iter().any(|s| &s.component == *c)).collect();
    if !unused.is_empty() {
        tracing::warn!("loaded but not used by any [[strategy]] in {}: {unused:?}", cli.config.display());
    }

    tracing::info!(mode = %config.mode, venues = config.venues.len(), strategies = config.strategies.len(), "starting");
    let started = Instant::now();
    let store_config = config.store.clone();
    let control_config = config.control.clone();
    let mut engine = Engine::new(config, &components, plugin.clone())?;
    interrupts.lock().unwrap_or_else(|p| p.into_inner()).engine_started(engine.controller());
    let slots = engine.slots();
    if !slots.is_empty() && slots.iter().all(|s| s.status != runtime::stats::SlotStatus::Running) {
        let reasons: Vec<String> = slots
            .iter()
            .map(|s| match &s.status {
                runtime::stats::SlotStatus::Refused(r) | runtime::stats::SlotStatus::Failed(r) | runtime::stats::SlotStatus::Stopped(r) => format!("{}: {r}", s.name),
                runtime::stats::SlotStatus::Running => s.name.clone(),
            })
            .collect();
        bail!("no strategy could start, so there is nothing to run: {}", reasons.join("; "));
    }
    let backend = match store_config.backend {
        StoreBackend::None => None,
        StoreBackend::Embedded => Some(Backend::Embedded { path: cli.state.clone().unwrap_or(store_config.path.clone()) }),
        StoreBackend::Redis => Some(Backend::Redis { url: store_config.redis_url().map_err(anyhow::Error::msg)?, namespace: store_config.namespace.clone() }),
    };
    if let Some(backend) = backend {
        let mut state = store::open(&backend)?;
        if cli.fresh {
            state.commit(vec![Write::Delete(runtime::checkpoint::KEY.into())])?;
            tracing::info!(store = %state.describe(), "saved state discarded (--fresh)");
        }
        if engine.attach_store(state, store_config.checkpoint_every)?.is_none() {
            tracing::info!("no saved state: starting from the beginning");
        }
    }
    let control_api = match cli.control.or(control_config.listen) {
        Some(listen) => Some(start_control(listen, &control_config, &cli.config, engine.controller(), plugin.clone())?),
        None => None,
    };
    let _reloader = if cli.no_watch { None } else { Some(reload::spawn(watched, plugin, engine.controller(), engine.preparer()).context("watching strategy and config files")?) };
    let mut report_written = None;
    match &report_dir {
        None => engine.run(),
        Some(dir) => {
            let mut recorder = runtime::backtest::Recorder::new(cli.sample_ms);
            let mut progress = Progress::new();
            engine.run_observed(|engine| {
                recorder.observe(engine);
                progress.update(engine);
            });
            progress.finish();
            recorder.finish(&engine);
            let report = runtime::backtest::Report::build(&engine, &recorder);
            match report.write(dir) {
                Ok(html) => report_written = Some(format!("report: {} and {}", html.display(), dir.join("backtest.json").display())),
                Err(error) => tracing::error!("the report could not be written: {error}"),
            }
        }
    }
    // Answers still in flight (the kill switch's report) go out before the process ends.
    if let Some(api) = control_api {
        api.shutdown();
    }
    println!("{}", runtime::summary::render(&engine, started.elapsed()));
    if let Some(line) = report_written {
        println!("{line}");
    }
    if let Some(report) = engine.kill_report() {
        println!("kill switch: stopped {}; cancelled {} orders: {:?}", report.stopped.join(", "), report.cancelled.len(), report.cancelled);
        if !report.not_confirmed.is_empty() {
            bail!("kill switch: {} orders were not confirmed cancelled, check them on their venues: {:?}", report.not_confirmed.len(), report.not_confirmed);
        }
    }
    Ok(())
}

/// A backtest's progress: a bar on a terminal (prints replayed, market time), a line
/// every 100,000 prints otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    next_line: u64,
}

impl Progress {
    fn new() -> Self {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}").unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()));
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress { bar, next_line: 100_000 }
    }

    fn update(&mut self, engine: &Engine) {
        let prints = engine.stats.prints;
        let at = engine.stats.last_ts.map(|t| t.to_string()).unwrap_or_default();
        match &self.bar {
            Some(bar) if engine.stats.batches.is_multiple_of(64) => bar.set_message(format!("{prints} prints replayed; market time {at} ms")),
            Some(_) => {}
            None if prints >= self.next_line => {
                eprintln!("backtest: {prints} prints replayed; market time {at} ms");
                self.next_line = prints.saturating_add(100_000);
            }
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// How soon after a first interrupt a second one is the kill switch.
const KILL_WINDOW: Duration = Duration::from_secs(5);

/// What Ctrl-C (or SIGTERM) does: before the engine has started, it ends the process at
/// once, since no strategy has been handed an event and so no order has been sent; once
/// it has, it asks the engine to shut down, and a second within [`KILL_WINDOW`] is the
/// kill switch.
#[derive(Default)]
struct Interrupts {
    engine: Option<runtime::engine::Controller>,
    first: Option<Instant>,
}

impl Interrupts {
    fn interrupted(&mut self) {
        let Some(control) = &self.engine else {
            tracing::warn!("interrupted while starting: exiting now; no strategy has been handed an event, so no order was sent");
            std::process::exit(INTERRUPTED_WHILE_STARTING);
        };
        if self.first.is_some_and(|at| at.elapsed() < KILL_WINDOW) {
            let _ = control.send(runtime::engine::Control::Kill { why: "second interrupt".into(), account: None, reply: None });
            return;
        }
        self.first = Some(Instant::now());
        tracing::warn!("shutdown requested: finishing the batch, writing a checkpoint, cancelling orders (again within {} s: kill switch)", KILL_WINDOW.as_secs());
        let _ = control.send(runtime::engine::Control::Shutdown);
    }

    /// From here an interrupt shuts the engine down instead of ending the process: one
    /// that comes before the engine runs is queued, and answered as soon as it does.
    fn engine_started(&mut self, control: runtime::engine::Controller) {
        self.engine = Some(control);
    }
}

/// The shell's code for a process ended by SIGINT (128 + 2).
const INTERRUPTED_WHILE_STARTING: i32 = 130;

/// Starts the control API. The token comes from `RUNTIME_CONTROL_TOKEN`, else the
/// configured file; a loopback listener with neither makes one and writes it beside the
/// config, readable by its owner only.
fn start_control(listen: std::net::SocketAddr, config: &runtime::config::ControlConfig, config_path: &std::path::Path, controller: runtime::engine::Controller, plugin: PluginHost) -> anyhow::Result<runtime::control::ControlServer> {
    let token = match (runtime::secrets::from_env("RUNTIME_CONTROL_TOKEN"), &config.token_file) {
        (Ok(token), _) => Some(token),
        (Err(_), Some(file)) => Some(runtime::secrets::from_file(file).context("control.token_file")?),
        (Err(_), None) if listen.ip().is_loopback() => {
            let token = runtime::control::new_token();
            let path = config_path.parent().unwrap_or(std::path::Path::new(".")).join("state/control.token");
            runtime::control::write_token(&path, &token).with_context(|| format!("writing the control API token to {}", path.display()))?;
            tracing::info!("control API token written to {} (readable by its owner only)", path.display());
            Some(token)
        }
        (Err(_), None) => None,
    };
    let wiring = runtime::control::Wiring { controller, plugin, config_path: Some(config_path.to_path_buf()), metrics_need_token: config.metrics_need_token };
    Ok(runtime::control::start(listen, token, wiring)?)
}
