//! `tessera gateway --config FILE`: the reverse proxy of `tessera-gateway`, which
//! turns browser sessions into short-lived JWTs for the services behind it.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tessera_gateway::Config;

#[derive(Args)]
pub struct GatewayArgs {
    /// The gateway's TOML configuration (see "The gateway" in the README). The
    /// client secret may instead be in TESSERA_GATEWAY_CLIENT_SECRET.
    #[arg(long, env = "TESSERA_GATEWAY_CONFIG")]
    config: PathBuf,
}

pub async fn gateway_command(
    args: GatewayArgs,
    log_format: tessera_server::LogFormat,
) -> anyhow::Result<()> {
    let _logs = tessera_server::init_service_logging(log_format);
    let config = Config::load(&args.config)
        .with_context(|| format!("invalid gateway configuration {}", args.config.display()))?;
    let tessera_url = config.tessera_url.clone();
    let tls = config.tls.is_some();
    let routes: Vec<String> = config
        .routes
        .iter()
        .map(|r| {
            format!(
                "{:<16} -> {} ({}{})",
                r.prefix,
                r.upstream,
                match r.auth {
                    tessera_gateway::config::Auth::Session => "session",
                    tessera_gateway::config::Auth::Optional => "optional",
                    tessera_gateway::config::Auth::Anonymous => "anonymous",
                },
                r.audience
                    .as_deref()
                    .map(|a| format!(", audience {a}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    tessera_gateway::run(config, |listening| {
        let mut out = std::io::stdout().lock();
        let scheme = if tls { "https" } else { "http" };
        let _ = writeln!(
            out,
            "tessera gateway listening on {scheme}://{}",
            listening.address
        );
        let _ = writeln!(out, "  public URL  {}", listening.public_url);
        let _ = writeln!(
            out,
            "  management  http://{} (/metrics, /healthz, /readyz)",
            listening.management
        );
        let _ = writeln!(out, "  tessera     {tessera_url}");
        for route in &routes {
            let _ = writeln!(out, "  route       {route}");
        }
        let _ = out.flush();
    })
    .await?;
    Ok(())
}
