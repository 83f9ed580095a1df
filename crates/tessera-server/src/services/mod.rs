//! The services: the only code that reaches a store. One file a service; handlers in
//! `routes` call exactly one of them per request and never see a store or a cache.

pub mod accounts;
pub mod clients;
pub mod contact;
pub mod keyring;
pub mod own_tokens;
pub mod passwords;
pub mod presence;
pub mod refresh;
pub mod sessions;
pub mod throttle;
pub mod tokens;
