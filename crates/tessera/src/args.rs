//! The flags every command that opens the store shares, and the configuration
//! they load.

use std::path::PathBuf;

use clap::Args;
use tessera_server::{Config, Overrides};

/// Where the store is. Precedence: flags > TESSERA_* environment > config file > defaults.
#[derive(Args)]
pub struct StoreArgs {
    /// Folder holding the store [default: ./tessera-data]
    #[arg(long, env = "TESSERA_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// TOML configuration file (see tessera.example.toml).
    #[arg(long, env = "TESSERA_CONFIG")]
    config: Option<PathBuf>,
    /// The database: sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB
    /// [default: the SQLite file in the data dir; env: TESSERA_DATABASE]
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// Redis for sessions, opaque tokens, throttling and presence:
    /// redis://[:PASSWORD@]HOST:PORT[/DB] [default: none; env: TESSERA_REDIS]
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
}

pub fn load_config(store: StoreArgs, overrides: Overrides) -> anyhow::Result<Config> {
    Ok(Config::load(
        store.config.as_deref(),
        Overrides {
            data_dir: store.data_dir,
            database: store.database.map(tessera_server::config::StoreUrl),
            redis: store.redis.map(tessera_server::config::StoreUrl),
            ..overrides
        },
    )?)
}
