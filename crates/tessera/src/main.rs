//! The `tessera` command: the server and the tools to administer its store.

mod args;
mod events;
mod gateway;
mod oauth;
mod sessions;
mod store;
mod token;

use clap::builder::TypedValueParser as _;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use tessera_core::{DisplayName, Email, Password, Role, Roles, Username};
use tessera_server::services::accounts::{Profile, ProfileChange, RegisterError};
use tessera_server::services::audit::Caller;
use tessera_server::views::{ProfileView, UserView};
use tessera_server::{Core, LogFormat, Overrides};

use crate::args::{StoreArgs, load_config};

#[derive(Parser)]
#[command(name = "tessera", version, about = "tessera, an identity service")]
struct Cli {
    /// Log format on stderr. The filter comes from TESSERA_LOG (default: info).
    #[arg(long, global = true, env = "TESSERA_LOG_FORMAT", value_parser = clap::builder::PossibleValuesParser::new(["text", "json"]).try_map(|v: String| parse_log_format(&v)))]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service.
    Serve(ServeArgs),
    /// Manage accounts (works while the server runs).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage OAuth clients (works while the server runs).
    #[command(subcommand)]
    Client(oauth::ClientCommand),
    /// Manage signing keys; running servers pick changes up within seconds.
    #[command(subcommand)]
    Keys(oauth::KeysCommand),
    /// See users' sessions; kick a user out everywhere (works while the server runs).
    #[command(subcommand)]
    Sessions(sessions::SessionsCommand),
    /// How many users and sessions were active lately, across every instance.
    Online {
        /// The window, in seconds (at most a day).
        #[arg(long, default_value_t = 300)]
        window: u64,
        /// Print the answer as one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Read the audit log: sign-ins, logouts, kicks, admin actions; or follow it.
    Events(events::EventsArgs),
    /// Verify or decode an access token, as a resource service would see it.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Move to another database (`store migrate`), or back the SQLite file up (`store backup`).
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Run the reverse proxy that turns browser sessions into JWTs for upstreams.
    Gateway(gateway::GatewayArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Address and port to listen on [default: 127.0.0.1:7480]
    #[arg(long, env = "TESSERA_LISTEN")]
    listen: Option<SocketAddr>,
    /// Address and port of the management listener: /metrics, /healthz, /readyz
    /// [default: the listen address with its port + 10, so 127.0.0.1:7490]
    #[arg(long, env = "TESSERA_MANAGEMENT_LISTEN")]
    management_listen: Option<SocketAddr>,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); reloaded when
    /// the file changes. Needs --tls-key
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1)
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// The URL users reach tessera at [default: http:// + the listen address]
    #[arg(long, env = "TESSERA_PUBLIC_URL")]
    public_url: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account. The password is read from standard input.
    Add {
        /// The account's username.
        name: String,
        /// Give the account a role (repeatable). Known roles: admin.
        #[arg(long = "role")]
        roles: Vec<Role>,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        profile: ProfileArgs,
        /// Print the answer as one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Change an account's profile: its name and email (OpenID Connect's claims).
    Set {
        /// The account's username.
        name: String,
        #[command(flatten)]
        profile: ProfileArgs,
        /// Print the answer as one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List accounts.
    List {
        /// Print the answer as one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Disable an account: it cannot sign in, and every session and token it
    /// holds is refused everywhere (as by `sessions kick`).
    Disable {
        /// The account's username.
        name: String,
        /// Print the answer as one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Enable a disabled account: it can sign in again; what it held stays refused.
    Enable {
        /// The account's username.
        name: String,
        /// Print the answer as one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Give an account exactly these roles (none without `--role`). Taking a role
    /// away ends every session and token it holds, as `sessions kick` does.
    Roles {
        /// The account's username.
        name: String,
        /// A role to have (repeatable). Known roles: admin.
        #[arg(long = "role")]
        roles: Vec<Role>,
        /// Print the answer as one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Take away the account's second factors (its authenticator app and its
    /// recovery codes), for a person who lost both: their password alone signs
    /// them in again. Recorded in the audit log.
    ResetFactors {
        /// The account's username.
        name: String,
        /// Print the answer as one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print a one-time password-reset link for the account, to hand to its owner
    /// (tessera sends no mail). It works once, for an hour, and replaces any
    /// earlier link; using it ends every session the account has.
    ResetLink {
        /// The account's username.
        name: String,
        /// Print the answer as one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// What `user add` and `user set` print with `--json`.
fn user_with_profile(user: &tessera_store::User, profile: &Profile) -> serde_json::Value {
    json!({ "user": UserView::from(user), "profile": ProfileView::from(profile) })
}

/// An account's profile on the command line; what is not given stays as it is.
#[derive(Args)]
struct ProfileArgs {
    /// The person's name as it is shown (the `name` claim); "" clears it.
    #[arg(long = "name", value_name = "TEXT")]
    display_name: Option<String>,
    /// Their email address (the `email` claim); "" clears it. A new address is
    /// unverified unless --email-verified says otherwise.
    #[arg(long)]
    email: Option<String>,
    /// Whether the address is confirmed (tessera sends no mail to check it).
    #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true")]
    email_verified: Option<bool>,
}

impl ProfileArgs {
    fn change(self) -> anyhow::Result<ProfileChange> {
        let cleared_or = |value: String| (!value.is_empty()).then_some(value);
        Ok(ProfileChange {
            name: self
                .display_name
                .map(|n| cleared_or(n).map(|n| DisplayName::parse(&n)).transpose())
                .transpose()
                .context("invalid --name")?,
            email: self
                .email
                .map(|e| cleared_or(e).map(|e| Email::parse(&e)).transpose())
                .transpose()
                .context("invalid --email")?,
            email_verified: self.email_verified,
        })
    }
}

fn parse_log_format(value: &str) -> Result<LogFormat, String> {
    match value {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("unknown log format {other:?}: use text or json")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let overrides = Overrides {
        log_format: cli.log_format,
        ..Overrides::default()
    };
    let done = match cli.command {
        Command::Token(command) => return token::token_command(command).await,
        Command::Gateway(args) => {
            gateway::gateway_command(args, cli.log_format.unwrap_or_default()).await
        }
        Command::Serve(args) => {
            let config = load_config(
                args.store,
                Overrides {
                    listen: args.listen,
                    management_listen: args.management_listen,
                    tls: args
                        .tls_cert
                        .zip(args.tls_key)
                        .map(|(cert, key)| tessera_server::config::TlsFiles { cert, key }),
                    public_url: args.public_url,
                    ..overrides
                },
            )?;
            let _logs = tessera_server::init_service_logging(config.log_format);
            let facts = BannerFacts {
                tls: config.tls.is_some(),
                registration: config.registration,
                data_dir: config.data_dir.clone(),
                database: config.database.as_ref().map(|url| url.redacted()),
                redis: config.redis.as_ref().map(|url| url.redacted()),
            };
            tessera_server::serve(config, |listening| {
                print_banner(listening, &facts);
            })
            .await
        }
        Command::User(command) => user_command(command, overrides).await,
        Command::Client(command) => oauth::client_command(command, overrides).await,
        Command::Keys(command) => oauth::keys_command(command, overrides).await,
        Command::Sessions(command) => sessions::sessions_command(command, overrides).await,
        Command::Store(command) => store::store_command(command, overrides).await,
        Command::Online {
            window,
            json,
            store,
        } => sessions::online_command(window, json, store, overrides).await,
        Command::Events(args) => events::events_command(args, overrides).await,
    };
    done.map(|()| ExitCode::SUCCESS)
}

/// What the banner says besides where the server listens: TLS, registration, and
/// where the data is (a database and Redis by their URLs, never a password, else
/// the data dir).
struct BannerFacts {
    /// The public listener serves TLS.
    tls: bool,
    /// Anyone may create an account.
    registration: bool,
    data_dir: std::path::PathBuf,
    database: Option<String>,
    redis: Option<String>,
}

fn print_banner(listening: &tessera_server::Listening, facts: &BannerFacts) {
    let tessera_server::Listening {
        address,
        management,
        public_url,
        no_users,
    } = listening;
    let mut out = std::io::stdout().lock();
    let scheme = if facts.tls { "https" } else { "http" };
    let _ = writeln!(
        out,
        "tessera {} listening on {scheme}://{address}",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(out, "  public URL  {public_url}");
    let _ = writeln!(
        out,
        "  management  http://{management} (/metrics, /healthz, /readyz)"
    );
    let _ = writeln!(out, "  JWKS        {public_url}/.well-known/jwks.json");
    let _ = writeln!(
        out,
        "  metadata    {public_url}/.well-known/oauth-authorization-server"
    );
    match &facts.database {
        Some(database) => {
            let _ = writeln!(out, "  database    {database}");
        }
        None => {
            let _ = writeln!(out, "  data dir    {}", facts.data_dir.display());
        }
    }
    if let Some(redis) = &facts.redis {
        let _ = writeln!(out, "  redis       {redis}");
    }
    if facts.registration {
        let _ = writeln!(out, "  registration open: anyone may create an account");
    } else {
        let _ = writeln!(
            out,
            "  registration closed (open it with registration = true or TESSERA_REGISTRATION=true)"
        );
    }
    if *no_users {
        let _ = writeln!(out, "  no accounts yet; create the first admin with:");
        match &facts.database {
            None => {
                let _ = writeln!(
                    out,
                    "    tessera user add admin --role admin --password-stdin --data-dir {}",
                    facts.data_dir.display()
                );
            }
            Some(_) => {
                let _ = writeln!(
                    out,
                    "    tessera user add admin --role admin --password-stdin \\\n      \
                     --database \"$TESSERA_DATABASE\"   # the URL this server was given"
                );
            }
        }
    }
    let _ = out.flush();
}

async fn user_command(command: UserCommand, overrides: Overrides) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            name,
            roles,
            password_stdin: _,
            profile,
            json,
            store,
        } => {
            let config = load_config(store, overrides)?;
            tessera_server::init_logging(config.log_format);
            let username = Username::parse(&name).context("invalid username")?;
            let change = profile.change()?;
            let password = read_password()?;
            let core = Core::open(&config, 1).await?;
            let user = match core
                .admin
                .add_user(Caller::OPERATOR, username, password, Roles::new(roles))
                .await
            {
                Ok(user) => user,
                Err(RegisterError::UsernameTaken) => bail!("a user named {name:?} already exists"),
                Err(RegisterError::LookAlike) => bail!(
                    "a user whose name looks like {name:?} already exists (Unicode \
                     confusables); choose another name"
                ),
                Err(RegisterError::MixedScripts(e)) => bail!("invalid username {name:?}: {e}"),
                Err(e) => return Err(e.into()),
            };
            let profile = if change.is_empty() {
                Profile::default()
            } else {
                core.admin
                    .change_profile(Caller::OPERATOR, user.id, change)
                    .await?
                    .1
            };
            if json {
                println!("{}", user_with_profile(&user, &profile));
            } else {
                println!("created user {} (id {})", user.username, user.id);
            }
        }
        UserCommand::Set {
            name,
            profile,
            json,
            store,
        } => {
            let username = Username::parse(&name).context("invalid username")?;
            let change = profile.change()?;
            if change.is_empty() {
                bail!("nothing to change: give --name, --email or --email-verified");
            }
            let (_, core) = crate::oauth::open(store, overrides).await?;
            let Some(user) = core.accounts.find(username.as_str()).await? else {
                bail!("no user named {name:?}");
            };
            let (_, profile) = core
                .admin
                .change_profile(Caller::OPERATOR, user.id, change)
                .await?;
            if json {
                println!("{}", user_with_profile(&user, &profile));
            } else {
                println!("changed the profile of {}", user.username);
            }
        }
        UserCommand::List { json, store } => {
            let config = load_config(store, overrides)?;
            tessera_server::init_logging(config.log_format);
            let core = Core::open(&config, 1).await?;
            let users = core.accounts.list().await?;
            if json {
                let users: Vec<_> = users
                    .iter()
                    .map(|u| json!({"user": UserView::from(u), "disabled": u.disabled}))
                    .collect();
                println!("{}", json!({ "users": users }));
            } else {
                println!(
                    "{:<32} {:<36} {:<8} {:<8} CREATED",
                    "USERNAME", "ID", "ROLES", "STATE"
                );
                for u in users {
                    println!(
                        "{:<32} {:<36} {:<8} {:<8} {}",
                        u.username.as_str(),
                        u.id.to_string(),
                        u.roles.to_stored(),
                        if u.disabled { "disabled" } else { "active" },
                        u.created_at.to_rfc3339()
                    );
                }
            }
        }
        UserCommand::Disable { name, json, store } => {
            let username = Username::parse(&name).context("invalid username")?;
            let (_, core) = crate::oauth::open(store, overrides).await?;
            let Some(user) = core.accounts.find(username.as_str()).await? else {
                bail!("no user named {name:?}");
            };
            let cut = core.admin.disable(Caller::OPERATOR, user.id).await?;
            if json {
                println!(
                    "{}",
                    json!({
                        "user": UserView::from(&cut.user),
                        "disabled": true,
                        "tokens_before": cut.at,
                        "ended_sessions": cut.sessions,
                        "revoked_refresh_tokens": cut.families,
                    })
                );
            } else {
                println!(
                    "disabled {}; ended {} session(s) and {} refresh token(s); its access \
                     tokens issued until {} are refused",
                    cut.user.username,
                    cut.sessions,
                    cut.families,
                    cut.at.to_rfc3339()
                );
            }
        }
        UserCommand::Roles {
            name,
            roles,
            json,
            store,
        } => {
            let (_, core) = crate::oauth::open(store, overrides).await?;
            let Some(user) = core.accounts.find(&name).await? else {
                bail!("no user named {name:?}");
            };
            let (user, cut) = core
                .admin
                .set_roles(Caller::OPERATOR, user.id, Roles::new(roles))
                .await?;
            if json {
                println!(
                    "{}",
                    json!({
                        "user": UserView::from(&user),
                        "ended_sessions": cut.as_ref().map_or(0, |c| c.sessions),
                        "revoked_refresh_tokens": cut.as_ref().map_or(0, |c| c.families),
                    })
                );
            } else {
                let roles = user.roles.to_stored();
                println!(
                    "{} has the roles: {}",
                    user.username,
                    if roles.is_empty() { "none" } else { &roles }
                );
                if let Some(cut) = cut {
                    println!(
                        "a role was taken away: ended {} session(s) and {} refresh token(s)",
                        cut.sessions, cut.families
                    );
                }
            }
        }
        UserCommand::ResetFactors { name, json, store } => {
            let (_, core) = crate::oauth::open(store, overrides).await?;
            let Some(user) = core.accounts.find(&name).await? else {
                bail!("no user named {name:?}");
            };
            let (user, removed) = core
                .admin
                .reset_second_factors(Caller::OPERATOR, user.id)
                .await?;
            if json {
                println!(
                    "{}",
                    json!({"user": UserView::from(&user), "second_factor_removed": removed})
                );
            } else if removed {
                println!(
                    "{} signs in with the password alone again; their authenticator app and \
                     recovery codes are void",
                    user.username
                );
            } else {
                println!("{} had no second factor", user.username);
            }
        }
        UserCommand::ResetLink { name, json, store } => {
            let (_, core) = crate::oauth::open(store, overrides).await?;
            let Some(user) = core.accounts.find(&name).await? else {
                bail!("no user named {name:?}");
            };
            let link = core
                .admin
                .issue_reset_link(Caller::OPERATOR, user.id)
                .await?;
            if json {
                println!(
                    "{}",
                    json!({
                        "user": UserView::from(&link.user),
                        "url": link.url,
                        "expires_at": link.expires_at,
                    })
                );
            } else {
                println!("{}", link.url);
                eprintln!(
                    "a one-time link for {}, working until {}: hand it over yourself",
                    link.user.username,
                    link.expires_at.to_rfc3339()
                );
            }
        }
        UserCommand::Enable { name, json, store } => {
            let username = Username::parse(&name).context("invalid username")?;
            let (_, core) = crate::oauth::open(store, overrides).await?;
            let Some(user) = core.accounts.find(username.as_str()).await? else {
                bail!("no user named {name:?}");
            };
            let user = core.admin.enable(Caller::OPERATOR, user.id).await?;
            if json {
                println!(
                    "{}",
                    json!({"user": UserView::from(&user), "disabled": false})
                );
            } else {
                println!(
                    "enabled {}; it can sign in again (tokens from before stay refused)",
                    user.username
                );
            }
        }
    }
    Ok(())
}

/// The first line of standard input, without its line ending.
fn read_password() -> anyhow::Result<Password> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let trimmed = line.trim_end_matches(['\n', '\r']).to_owned();
    Password::parse(trimmed).context("invalid password")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use clap::CommandFactory;

    use super::Cli;

    /// Every subcommand, flag and argument says what it is in `--help`, and an
    /// argument with a fixed set of values lists them.
    #[test]
    fn help_describes_every_command_and_argument() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let here = format!("{path} {}", command.get_name());
            if command.get_about().is_none() && !path.is_empty() {
                missing.push(format!("{here}: no description"));
            }
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{here} --{id}: no description"));
                }
                let values = arg.get_possible_values();
                if !values.is_empty() && arg.is_hide_possible_values_set() {
                    missing.push(format!("{here} --{id}: hides its values"));
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_name() != "help" {
                    walk(sub, &here, missing);
                }
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "{}", missing.join("\n"));

        // The enumerations list their values.
        let cli = Cli::command();
        let values = |path: &[&str], arg: &str| {
            let mut command = &cli;
            for name in path {
                command = command.find_subcommand(name).unwrap();
            }
            let arg = command
                .get_arguments()
                .find(|a| a.get_long() == Some(arg))
                .unwrap_or_else(|| panic!("{path:?} has no --{arg}"));
            arg.get_possible_values()
                .iter()
                .map(|v| v.get_name().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(values(&[], "log-format"), ["text", "json"]);
        assert_eq!(
            values(&["client", "add"], "token-format"),
            ["jwt", "opaque"]
        );
        assert_eq!(
            values(&["client", "add"], "id-token-alg"),
            ["EdDSA", "ES256", "RS256"]
        );
        assert!(values(&["client", "add"], "alg").contains(&"HS256".to_owned()));
        assert_eq!(
            values(&["keys", "rotate"], "alg"),
            ["EdDSA", "ES256", "RS256"]
        );
        assert!(values(&["client", "add"], "grant").contains(&"authorization_code".to_owned()));
    }

    /// The README's synopsis names every command there is.
    #[test]
    fn the_readme_lists_every_command() {
        fn leaves(command: &clap::Command, path: String, found: &mut Vec<String>) {
            let subcommands: Vec<_> = command
                .get_subcommands()
                .filter(|s| s.get_name() != "help")
                .collect();
            if subcommands.is_empty() {
                found.push(path.clone());
            }
            for sub in subcommands {
                leaves(sub, format!("{path} {}", sub.get_name()), found);
            }
        }
        let readme = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"),
        )
        .unwrap();
        let mut commands = Vec::new();
        leaves(&Cli::command(), "tessera".to_owned(), &mut commands);
        assert!(commands.len() > 20, "{commands:?}");
        for command in commands {
            assert!(
                readme.contains(&format!("\n{command} ")),
                "the README's command-line synopsis lacks `{command}`"
            );
        }
    }
}
