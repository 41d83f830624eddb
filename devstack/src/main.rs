//! `devstack`: the local stand-ins as a process (`cargo xtask dev` runs them in-process instead).

use std::net::SocketAddr;
use tollgate_devstack::{
    DevstackConfig, DEFAULT_API_KEY, DEFAULT_APPWRITE_PORT, DEFAULT_DISCORD_PORT, DEFAULT_PROJECT_ID,
    DEFAULT_SELLAPP_PORT, DEFAULT_STRIPE_PORT,
};

const USAGE: &str = "usage: devstack [--appwrite-port PORT] [--discord-port PORT] [--sellapp-port PORT] [--stripe-port PORT] [--data-dir DIR] [--project-id ID] [--api-key KEY]
  env: DEVSTACK_APPWRITE_PORT (default 8790), DEVSTACK_DISCORD_PORT (default 8791), DEVSTACK_SELLAPP_PORT (default 8792),
  DEVSTACK_STRIPE_PORT (default 8793); data dir default .tollgate/devstack";

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let mut port =
        std::env::var("DEVSTACK_APPWRITE_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(DEFAULT_APPWRITE_PORT);
    let mut discord_port =
        std::env::var("DEVSTACK_DISCORD_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(DEFAULT_DISCORD_PORT);
    let mut sellapp_port =
        std::env::var("DEVSTACK_SELLAPP_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(DEFAULT_SELLAPP_PORT);
    let mut stripe_port =
        std::env::var("DEVSTACK_STRIPE_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(DEFAULT_STRIPE_PORT);
    let mut data_dir = std::path::PathBuf::from(".tollgate/devstack");
    let mut project_id = DEFAULT_PROJECT_ID.to_owned();
    let mut api_key = DEFAULT_API_KEY.to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| anyhow::anyhow!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--appwrite-port" => port = value()?.parse()?,
            "--discord-port" => discord_port = value()?.parse()?,
            "--sellapp-port" => sellapp_port = value()?.parse()?,
            "--stripe-port" => stripe_port = value()?.parse()?,
            "--data-dir" => data_dir = value()?.into(),
            "--project-id" => project_id = value()?,
            "--api-key" => api_key = value()?,
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => anyhow::bail!("unknown option {other}\n{USAGE}"),
        }
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let config = DevstackConfig {
            appwrite_addr: SocketAddr::from(([127, 0, 0, 1], port)),
            discord_addr: SocketAddr::from(([127, 0, 0, 1], discord_port)),
            sellapp_addr: SocketAddr::from(([127, 0, 0, 1], sellapp_port)),
            stripe_addr: SocketAddr::from(([127, 0, 0, 1], stripe_port)),
            data_dir: Some(data_dir),
            project_id,
            api_key,
        };
        let devstack = tollgate_devstack::start(config).await?;
        println!("devstack: Appwrite stand-in at {}", devstack.appwrite_endpoint());
        println!("devstack: Discord stand-in at {}", devstack.discord_api_base());
        println!("devstack: Sell.app stand-in at {}", devstack.sellapp_api_base());
        println!("devstack: Stripe stand-in at {} (key {})", devstack.stripe_base_url(), devstack.stripe_secret_key());
        tokio::signal::ctrl_c().await?;
        devstack.shutdown().await;
        Ok(())
    })
}
