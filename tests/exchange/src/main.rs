//! `local-exchange`: Binance spot, Binance USD-M and OKX on 127.0.0.1, to try the live
//! adapters with no account. Keys come from the environment, like the runtime's.

use anyhow::Context;
use clap::Parser;

#[derive(Parser)]
#[command(about = "A local exchange speaking the Binance spot, Binance USD-M and OKX protocols")]
struct Args {
    #[arg(long, default_value_t = 18_080)]
    spot_port: u16,
    #[arg(long, default_value_t = 18_081)]
    usdm_port: u16,
    #[arg(long, default_value_t = 18_082)]
    okx_port: u16,
    /// The environment variables holding the accepted key, secret and OKX passphrase.
    #[arg(long, default_value = "LOCAL_EXCHANGE_KEY")]
    key_env: String,
    #[arg(long, default_value = "LOCAL_EXCHANGE_SECRET")]
    secret_env: String,
    #[arg(long, default_value = "LOCAL_EXCHANGE_PASSPHRASE")]
    passphrase_env: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_target(false).init();
    let args = Args::parse();
    let var = |name: &str| std::env::var(name).with_context(|| format!("environment variable {name} is not set"));
    let setup = local_exchange::Setup::demo(&var(&args.key_env)?, &var(&args.secret_env)?, &var(&args.passphrase_env).unwrap_or_default());
    let running = local_exchange::serve(setup, "127.0.0.1", [args.spot_port, args.usdm_port, args.okx_port]).await.context("binding the ports")?;
    println!("binance spot  http://{0}  ws://{0}/ws-api/v3  ws://{0}", running.spot);
    println!("binance usd-m http://{0}  ws://{0}", running.usdm);
    println!("okx           http://{0}  ws://{0}/ws/v5/private  ws://{0}/ws/v5/public", running.okx);
    println!("control: POST /_local/print {{symbol, price, qty, side}}, POST /_local/faults, POST /_local/disconnect, GET /_local/account");
    tokio::signal::ctrl_c().await.ok();
    Ok(())
}
