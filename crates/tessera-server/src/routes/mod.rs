//! One module per resource; each exposes the handlers the router mounts.

pub mod account;
pub mod account_factors;
pub mod activity;
pub mod admin;
pub mod authorize;
pub mod consents;
pub mod console;
pub mod discovery;
pub mod end_session;
pub mod health;
pub mod html;
pub mod introspect;
pub mod login;
pub mod login_page;
pub mod passkeys;
pub mod register_page;
pub mod reset_page;
pub mod revocations;
pub mod session;
pub mod sessions;
pub mod token;
pub mod userinfo;
pub mod users;
