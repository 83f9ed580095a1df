//! `tessera client …` and `tessera keys …`.

use clap::builder::TypedValueParser as _;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::json;
use tessera_core::{
    Audience, ClientName, GrantType, LogoutUri, RedirectUri, Scopes, Timestamp, TokenFormat,
};
use tessera_proto::Algorithm;
use tessera_server::services::audit::Caller;
use tessera_server::services::clients::{AddClientError, ClientSpec};
use tessera_server::views::{AddedClientView, ClientView};
use tessera_server::{Config, Core};
use tessera_store::CodeFlow;

use crate::args::StoreArgs;

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Register an OAuth client. Prints its client_id and, for a confidential client,
    /// its client_secret: shown once, stored only as a hash.
    Add {
        /// The client's name, as consent pages show it.
        name: String,
        /// Grants it may use (comma-separated or repeated).
        #[arg(long = "grant", value_delimiter = ',', required = true, value_parser = grant_values())]
        grants: Vec<GrantType>,
        /// A public client (a native or browser app) has no secret.
        #[arg(long)]
        public: bool,
        /// The scopes it may ask for, space-separated.
        #[arg(long, default_value = "")]
        scope: String,
        /// A resource service it may get tokens for (repeatable; the first is the
        /// default). Without one, tokens are for tessera itself.
        #[arg(long = "audience")]
        audiences: Vec<String>,
        /// jwt (verified locally by resource services) or opaque (checked by
        /// introspection).
        #[arg(long, default_value = "jwt", value_parser = token_format_values())]
        token_format: TokenFormat,
        /// The algorithm its JWTs are signed with (HS256 needs tokens.hs256_secret).
        #[arg(long, default_value = "EdDSA", value_parser = access_algorithm_values())]
        alg: Algorithm,
        /// Access-token lifetime, e.g. 5m, 90s, 1h (10s to 24h).
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        access_ttl: Duration,
        /// optional: a token request with a DPoP proof gets tokens bound to the
        /// client's key, one without gets bearer tokens; required: every token
        /// request must bring a proof (RFC 9449 `dpop_bound_access_tokens`).
        #[arg(long, default_value = "optional", value_parser = ["optional", "required"])]
        dpop: String,
        /// Where sign-in may return to, matched exactly (repeatable; needed for
        /// authorization_code). A loopback IP URI (http://127.0.0.1/cb) matches any port.
        #[arg(long = "redirect-uri", value_parser = parse_redirect_uri)]
        redirect_uris: Vec<RedirectUri>,
        /// Where logout may return to (repeatable).
        #[arg(long = "post-logout-redirect-uri", value_parser = parse_redirect_uri)]
        post_logout_redirect_uris: Vec<RedirectUri>,
        /// Where tessera posts a logout token when a session it signed into ends.
        #[arg(long, value_parser = |v: &str| LogoutUri::parse(v).map_err(|e| e.to_string()))]
        backchannel_logout_uri: Option<LogoutUri>,
        /// Run by the same party as tessera: its users are not asked for consent.
        #[arg(long)]
        first_party: bool,
        /// Accept authorization requests only pushed first (RFC 9126).
        #[arg(long)]
        require_par: bool,
        /// The algorithm its ID tokens are signed with (RS256 is the one every
        /// OpenID Connect library accepts).
        #[arg(long, default_value = "RS256", value_parser = signing_algorithm_values())]
        id_token_alg: Algorithm,
        /// Print the answer as one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List clients.
    List {
        /// Print the answer as one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove a client, named by its id or its name. Every token issued to it is
    /// refused from now on, on every instance and verifier.
    Remove {
        /// The client, by its id or its name.
        client: String,
        /// Print the answer as one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Give a confidential client a new secret, printed once; the old one stops
    /// working at once. Tokens already issued stay valid (remove the client to end
    /// them too).
    RotateSecret {
        /// The client, by its id or its name.
        client: String,
        /// Print the answer as one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// List signing keys and their state (signing, next, published, expired, retired).
    List {
        /// Print the answer as one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Create a new key. It is published at once and signs once verifiers' JWKS caches
    /// have had time to see it (tokens.rotation_delay), or at once with --now.
    Rotate {
        /// EdDSA, ES256 or RS256.
        #[arg(long, default_value = "EdDSA", value_parser = signing_algorithm_values())]
        alg: Algorithm,
        /// Sign with the new key at once (verifiers fetch an unknown kid).
        #[arg(long)]
        now: bool,
        /// Print the answer as one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Withdraw a key at once: it leaves the JWKS and its tokens stop verifying.
    Retire {
        /// A kid is base64url, so it may start with `-`.
        #[arg(allow_hyphen_values = true)]
        kid: String,
        /// Print the answer as one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// The values `--grant` takes, listed in `--help`.
fn grant_values() -> impl clap::builder::TypedValueParser<Value = GrantType> {
    clap::builder::PossibleValuesParser::new([
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "token_exchange",
        "password",
    ])
    .try_map(|v: String| parse_grant(&v))
}

/// `--token-format`'s values.
fn token_format_values() -> impl clap::builder::TypedValueParser<Value = TokenFormat> {
    clap::builder::PossibleValuesParser::new(["jwt", "opaque"])
        .try_map(|v: String| v.parse::<TokenFormat>().map_err(|e| e.to_string()))
}

/// The algorithms a key pair signs with (ID tokens, `keys rotate`).
fn signing_algorithm_values() -> impl clap::builder::TypedValueParser<Value = Algorithm> {
    // Ed25519 (RFC 9864's fully specified name) is taken for EdDSA, unlisted.
    clap::builder::PossibleValuesParser::new([
        clap::builder::PossibleValue::new("EdDSA").alias("Ed25519"),
        "ES256".into(),
        "RS256".into(),
    ])
    .try_map(|v: String| parse_algorithm(&v))
}

/// The algorithms an access token may be signed with: a key pair's, or HS256.
fn access_algorithm_values() -> impl clap::builder::TypedValueParser<Value = Algorithm> {
    clap::builder::PossibleValuesParser::new([
        clap::builder::PossibleValue::new("EdDSA").alias("Ed25519"),
        "ES256".into(),
        "RS256".into(),
        "HS256".into(),
    ])
    .try_map(|v: String| v.parse::<Algorithm>().map_err(|e| e.to_string()))
}

fn parse_grant(value: &str) -> Result<GrantType, String> {
    GrantType::parse(value).ok_or_else(|| {
        format!(
            "unknown grant {value:?}: use authorization_code, refresh_token, \
             client_credentials, token_exchange or password"
        )
    })
}

fn parse_algorithm(value: &str) -> Result<Algorithm, String> {
    value
        .parse::<Algorithm>()
        .ok()
        .filter(|a| a.is_asymmetric())
        .ok_or_else(|| format!("unknown algorithm {value:?}: use EdDSA, ES256 or RS256"))
}

fn parse_redirect_uri(value: &str) -> Result<RedirectUri, String> {
    RedirectUri::parse(value).map_err(|e| e.to_string())
}

pub async fn open(
    store: StoreArgs,
    overrides: tessera_server::Overrides,
) -> anyhow::Result<(Config, Core)> {
    let config = crate::args::load_config(store, overrides)?;
    tessera_server::init_logging(config.log_format);
    let core = Core::open(&config, 1).await?;
    Ok((config, core))
}

/// The client an operator names by its id or its name.
async fn find_client(core: &Core, client: &str) -> anyhow::Result<tessera_store::Client> {
    match core.clients.find(client).await? {
        Some(found) => Ok(found),
        None => bail!("no client with the id or name {client:?}"),
    }
}

pub async fn client_command(
    command: ClientCommand,
    overrides: tessera_server::Overrides,
) -> anyhow::Result<()> {
    match command {
        ClientCommand::Add {
            name,
            grants,
            public,
            scope,
            audiences,
            token_format,
            alg,
            access_ttl,
            dpop,
            redirect_uris,
            post_logout_redirect_uris,
            backchannel_logout_uri,
            first_party,
            require_par,
            id_token_alg,
            json,
            store,
        } => {
            let name = ClientName::parse(&name).context("invalid client name")?;
            let scopes = Scopes::parse(&scope).context("invalid --scope")?;
            let audiences = audiences
                .iter()
                .map(|a| Audience::parse(a).with_context(|| format!("invalid --audience {a:?}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let (_, core) = open(store, overrides).await?;
            let spec = ClientSpec {
                name,
                grants,
                public,
                scopes,
                audiences,
                token_format,
                algorithm: alg,
                access_ttl,
                dpop_bound_access_tokens: dpop == "required",
                code_flow: CodeFlow {
                    redirect_uris,
                    post_logout_redirect_uris,
                    backchannel_logout_uri,
                    first_party,
                    require_par,
                    id_token_algorithm: id_token_alg,
                },
            };
            let (client, secret) = match core.admin.add_client(Caller::OPERATOR, spec).await {
                Ok(added) => added,
                Err(AddClientError::Invalid(reason)) => bail!("{reason}"),
                Err(e) => return Err(e.into()),
            };
            let secret = secret.map(|s| s.expose());
            if json {
                let view = AddedClientView {
                    client: ClientView::from(&client),
                    client_secret: secret.as_deref(),
                };
                println!("{}", json!(view));
            } else {
                println!("created client {}", client.name);
                println!("  client_id      {}", client.id);
                if client.dpop_bound_access_tokens {
                    println!("  dpop           required (every token bound to the client's key)");
                }
                if let Some(secret) = secret {
                    println!("  client_secret  {secret}");
                    println!("  (shown once: tessera keeps only its hash)");
                }
            }
        }
        ClientCommand::List { json, store } => {
            let (_, core) = open(store, overrides).await?;
            let clients = core.clients.list().await?;
            if json {
                let list: Vec<_> = clients.iter().map(ClientView::from).collect();
                println!("{}", json!({ "clients": list }));
            } else {
                println!(
                    "{:<24} {:<36} {:<12} {:<6} {:<6} GRANTS",
                    "NAME", "CLIENT_ID", "TYPE", "FORMAT", "ALG"
                );
                for c in clients {
                    let grants: Vec<_> = c.grants.iter().map(|g| g.as_str()).collect();
                    println!(
                        "{:<24} {:<36} {:<12} {:<6} {:<6} {}",
                        c.name.as_str(),
                        c.id.to_string(),
                        if c.secret_hash.is_some() {
                            "confidential"
                        } else {
                            "public"
                        },
                        c.token_format.as_str(),
                        c.algorithm.as_str(),
                        grants.join(",")
                    );
                }
            }
        }
        ClientCommand::Remove {
            client,
            json,
            store,
        } => {
            let (_, core) = open(store, overrides).await?;
            let found = find_client(&core, &client).await?;
            core.admin
                .remove_client(Caller::OPERATOR, &found.id)
                .await?;
            if json {
                println!("{}", json!({"removed": ClientView::from(&found)}));
            } else {
                println!("removed client {} ({})", found.name, found.id);
            }
        }
        ClientCommand::RotateSecret {
            client,
            json,
            store,
        } => {
            let (_, core) = open(store, overrides).await?;
            let found = find_client(&core, &client).await?;
            let secret = core
                .admin
                .rotate_client_secret(Caller::OPERATOR, &found.id)
                .await?
                .expose();
            if json {
                let view = AddedClientView {
                    client: ClientView::from(&found),
                    client_secret: Some(&secret),
                };
                println!("{}", serde_json::to_string(&view)?);
            } else {
                println!("new secret for client {} ({})", found.name, found.id);
                println!("  client_secret  {secret}");
                println!("(shown only now; the old secret no longer works)");
            }
        }
    }
    Ok(())
}

pub async fn keys_command(
    command: KeysCommand,
    overrides: tessera_server::Overrides,
) -> anyhow::Result<()> {
    match command {
        KeysCommand::List { json, store } => {
            let (_, core) = open(store, overrides).await?;
            print_keys(&core, json);
        }
        KeysCommand::Rotate {
            alg,
            now,
            json,
            store,
        } => {
            let (_, core) = open(store, overrides).await?;
            let kid = core.admin.rotate_key(Caller::OPERATOR, alg, now).await?;
            if json {
                println!(
                    "{}",
                    json!({"kid": kid, "alg": alg.as_str(), "signs_now": now})
                );
            } else if now {
                println!("new {alg} key {kid} signs from now");
            } else {
                println!("new {alg} key {kid} is published; it signs after tokens.rotation_delay");
            }
        }
        KeysCommand::Retire { kid, json, store } => {
            let (_, core) = open(store, overrides).await?;
            if !core.admin.retire_key(Caller::OPERATOR, &kid).await? {
                bail!("no key {kid:?} that is not already retired");
            }
            if json {
                println!("{}", json!({"retired": kid}));
            } else {
                println!("retired key {kid}; running servers drop it within seconds");
            }
        }
    }
    Ok(())
}

fn print_keys(core: &Core, json: bool) {
    let set = core.keys.current();
    let now = Timestamp::now();
    if json {
        let keys = tessera_server::views::key_views(&set, now);
        println!("{}", json!({ "keys": keys }));
    } else {
        println!("{:<44} {:<6} {:<10} CREATED", "KID", "ALG", "STATE");
        for k in &set.keys {
            println!(
                "{:<44} {:<6} {:<10} {}",
                k.kid,
                k.algorithm.as_str(),
                k.state(now, set.is_signer(&k.kid)),
                k.created_at.to_rfc3339()
            );
        }
    }
}
