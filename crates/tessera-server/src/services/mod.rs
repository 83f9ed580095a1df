//! The services: the only code that reaches a store. One file a service; handlers in
//! `routes` call exactly one of them per request and never see a store or a cache.

pub mod accounts;
pub mod activity;
pub mod admin;
pub mod audit;
pub mod authorize;
pub mod backchannel;
pub(crate) mod cache;
pub mod clients;
pub mod codes;
pub mod contact;
pub mod discovery;
pub mod dpop;
pub mod end_session;
pub mod feed;
pub mod grants;
pub mod id_token_hints;
pub mod id_tokens;
pub mod introspection;
pub mod keyring;
pub mod oauth;
pub mod own_tokens;
pub mod passkeys;
pub mod passwords;
pub mod presence;
pub mod readiness;
pub mod refresh;
pub mod reset_links;
pub mod second_factor;
pub mod self_service;
pub mod sessions;
pub mod sign_in;
pub mod throttle;
pub mod tokens;
pub mod userinfo;
