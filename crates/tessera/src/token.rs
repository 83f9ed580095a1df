//! `tessera token verify|inspect`: check a token the way a resource service does
//! (through `tessera-verify`'s `Verifier`, the same code), or just decode it.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tessera_verify::{Algorithm, Policy, Verifier, VerifyingKeys};

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Verify an access token: prints its claims as JSON, or the refusal and exits 1.
    Verify(VerifyArgs),
    /// Decode a token WITHOUT verifying it (nothing it says can be trusted).
    Inspect {
        /// The token; read from stdin when absent.
        token: Option<String>,
    },
}

#[derive(Args)]
pub struct VerifyArgs {
    /// The token; read from stdin when absent.
    token: Option<String>,
    /// The issuer URL: its metadata names the JWKS (the keys resource services use).
    #[arg(long, conflicts_with = "jwks", required_unless_present = "jwks")]
    issuer: Option<String>,
    /// A local JWK Set file instead of an issuer; `oct` keys (HS256) are allowed here.
    #[arg(long, requires = "iss")]
    jwks: Option<PathBuf>,
    /// The expected `iss` [default with --issuer: the issuer's own; required with --jwks].
    #[arg(long)]
    iss: Option<String>,
    /// An accepted audience (repeatable). Without it the audience is not checked.
    #[arg(long)]
    aud: Vec<String>,
}

pub async fn token_command(command: TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Verify(args) => verify(args).await,
        TokenCommand::Inspect { token } => inspect(&read_token(token)?),
    }
}

fn read_token(token: Option<String>) -> anyhow::Result<String> {
    let token = match token {
        Some(token) => token,
        None => {
            let mut text = String::new();
            std::io::stdin()
                .take(64 * 1024)
                .read_to_string(&mut text)
                .context("cannot read the token from stdin")?;
            text
        }
    };
    let token = token.trim();
    if token.is_empty() {
        bail!("no token: give it as an argument or on stdin");
    }
    Ok(token.to_owned())
}

async fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let token = read_token(args.token)?;
    if tessera_core::PresentedToken::classify(&token).is_opaque() {
        bail!(
            "an opaque tessera token: only its issuer knows what it stands for; ask it with \
             POST /oauth2/introspect"
        );
    }
    let (keys, issuer, algorithms) = match (&args.issuer, &args.jwks) {
        (Some(url), _) => {
            let http = reqwest::Client::new();
            let metadata = tessera_verify::remote::discover(&http, url).await?;
            let fetched = tessera_verify::remote::fetch_jwks(&http, &metadata.jwks_uri).await?;
            let issuer = args.iss.clone().unwrap_or(metadata.issuer);
            let asymmetric = vec![Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256];
            (fetched.keys, issuer, asymmetric)
        }
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let set = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a JWK Set", path.display()))?;
            // A file the operator chose may hold shared secrets; a URL never may.
            let keys = VerifyingKeys::from_jwks(&set, true);
            if keys.is_empty() {
                bail!(
                    "{} holds no usable key (each needs kid and alg: EdDSA, ES256, RS256 or HS256)",
                    path.display()
                );
            }
            let all = vec![
                Algorithm::EdDSA,
                Algorithm::ES256,
                Algorithm::RS256,
                Algorithm::HS256,
            ];
            (keys, args.iss.clone().unwrap_or_default(), all)
        }
        (None, None) => bail!("give --issuer URL or --jwks FILE"),
    };
    let mut policy = Policy::new(issuer, "");
    policy.algorithms = algorithms;
    policy.audiences = args.aud.clone();
    if args.aud.is_empty() {
        policy.any_audience = true;
        eprintln!("note: no --aud given, so the audience was not checked");
    }
    eprintln!("note: revocations are not checked here (resource services follow the feed)");
    let verifier = Verifier::new(policy, keys);
    match verifier.verify_token(&token) {
        Ok(claims) => {
            println!("{}", serde_json::to_string_pretty(&claims)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(refusal) => {
            println!(
                "{}",
                json!({"error": refusal.code(), "error_description": refusal.to_string()})
            );
            eprintln!("refused: {refusal}");
            Ok(ExitCode::from(1))
        }
    }
}

fn inspect(token: &str) -> anyhow::Result<ExitCode> {
    if tessera_core::PresentedToken::classify(token).is_opaque() {
        bail!(
            "an opaque tessera token: it carries no readable claims; its issuer can describe \
             it (POST /oauth2/introspect)"
        );
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, _signature] = parts.as_slice() else {
        bail!("not a JWS: a JWT has three dot-separated parts");
    };
    let decode = |part: &str, what: &str| -> anyhow::Result<Value> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .with_context(|| format!("the {what} is not base64url"))?;
        serde_json::from_slice(&bytes).with_context(|| format!("the {what} is not JSON"))
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "verified": false,
            "header": decode(header, "header")?,
            "payload": decode(payload, "payload")?,
        }))?
    );
    eprintln!("NOT VERIFIED: decoded only; use `tessera token verify` to check it");
    Ok(ExitCode::SUCCESS)
}
