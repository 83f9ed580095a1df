//! `cargo run -p resource-service -- --issuer http://127.0.0.1:7480 --audience orders
//!  --client-id … --client-secret …` (see README "Verifying tokens in your service").

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tessera_verify::{ClientCredentials, RemoteVerifier, WhenStale};

/// An example resource service protected by tessera tokens.
#[derive(Parser)]
struct Args {
    /// The tessera issuer URL (its `iss`).
    #[arg(long, env = "TESSERA_ISSUER", default_value = "http://127.0.0.1:7480")]
    issuer: String,
    /// This service's audience: tokens must name it in `aud`.
    #[arg(long, env = "RESOURCE_AUDIENCE", default_value = "orders")]
    audience: String,
    /// This service's confidential client (scope `revocations`), for the
    /// revocation feed and for introspecting opaque tokens.
    #[arg(long, env = "RESOURCE_CLIENT_ID")]
    client_id: String,
    /// That client's secret (`tcs_…`).
    #[arg(long, env = "RESOURCE_CLIENT_SECRET", hide_env_values = true)]
    client_secret: String,
    /// Refuse tokens when the revocation feed has been silent this long.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    max_staleness: Duration,
    /// Accept tokens while the feed is stale instead of refusing them.
    #[arg(long)]
    fail_open: bool,
    /// The address and port to serve on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: String,
    /// The URL clients call this service at (`https://orders.example.com`), which
    /// DPoP proofs must name. Without it, `http://` and the request's `Host`: set
    /// it behind TLS or a proxy, and so that a proof made for another host that
    /// serves the same paths is refused here.
    #[arg(long, env = "RESOURCE_PUBLIC_URL")]
    public_url: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let mut builder = RemoteVerifier::builder(&args.issuer);
    if let Some(url) = &args.public_url {
        builder = builder.public_url(url);
    }
    let verifier = builder
        .audience(&args.audience)
        .client(ClientCredentials::new(args.client_id, args.client_secret))
        .max_staleness(args.max_staleness)
        .when_stale(if args.fail_open {
            WhenStale::Accept
        } else {
            WhenStale::Refuse
        })
        .token_cookie("__Host-tessera-token")
        .build()
        .await
        .context("cannot set up token verification")?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    println!(
        "resource service on http://{} (audience {})",
        listener.local_addr()?,
        args.audience
    );
    axum::serve(listener, resource_service::app(verifier)).await?;
    Ok(())
}
