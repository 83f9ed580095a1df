//! End-to-end tests: each starts the real server binary on a random loopback port
//! with a fresh data dir and speaks HTTP to it (or runs the CLI against its store).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod account_page;
mod admin;
mod audit;
mod backchannel;
mod browser;
mod cli;
mod cluster;
mod code_flow;
mod console_page;
mod docs;
mod dpop;
mod durability;
mod feed;
mod gateway;
mod harness;
mod interop;
mod login;
mod login_page;
mod migrate;
mod oidc;
mod openapi;
mod operations;
mod passkeys;
mod protection;
mod proxy;
mod readme;
mod registration;
mod reset_links;
mod rp_logout;
mod second_factor;
mod secrets;
mod sessions;
mod tokens;
mod trust;
mod upgrade;
mod verifier;
