//! The router's state, and the narrow pieces handlers take from it.
//!
//! Handlers never take [`AppState`]: each takes the one service it calls (and, for
//! pages, the cookies or the edge policy) through axum's `FromRef`, so what a
//! handler can reach is in its signature. The extractors of `http` read the rest.

use std::sync::Arc;

use axum::extract::FromRef;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::http::EdgePolicy;
use crate::http::cookie::Cookies;
use crate::services::activity::Activity;
use crate::services::admin::Administration;
use crate::services::authorize::Authorization;
use crate::services::clients::Clients;
use crate::services::discovery::Discovery;
use crate::services::dpop::DpopProofs;
use crate::services::end_session::EndSession;
use crate::services::feed::RevocationFeed;
use crate::services::grants::Grants;
use crate::services::introspection::Introspection;
use crate::services::own_tokens::OwnTokens;
use crate::services::readiness::Readiness;
use crate::services::reset_links::ResetLinks;
use crate::services::self_service::SelfService;
use crate::services::sessions::SessionService;
use crate::services::sign_in::SignIn;
use crate::services::throttle::Throttle;
use crate::services::tokens::SessionTokens;
use crate::services::userinfo::UserInfoService;

/// Built once at start-up; cloning it (once a request) is one `Arc` clone.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Services>);

pub struct Services {
    // The services handlers call.
    pub grants: Arc<Grants>,
    pub authorization: Arc<Authorization>,
    pub self_service: Arc<SelfService>,
    pub reset_links: Arc<ResetLinks>,
    pub end_session: Arc<EndSession>,
    pub introspection: Arc<Introspection>,
    pub userinfo: Arc<UserInfoService>,
    pub feed: Arc<RevocationFeed>,
    pub activity: Arc<Activity>,
    pub sign_in: Arc<SignIn>,
    pub sessions: Arc<SessionService>,
    pub session_tokens: Arc<SessionTokens>,
    pub admin: Arc<Administration>,
    pub discovery: Arc<Discovery>,
    pub readiness: Arc<Readiness>,
    pub metrics: PrometheusHandle,
    // What the extractors of `http` check before a handler runs.
    pub own_tokens: Arc<OwnTokens>,
    /// DPoP proofs of bound tokens shown to tessera's own endpoints.
    pub dpop: Arc<DpopProofs>,
    pub clients: Clients,
    pub cookies: Arc<Cookies>,
    pub edge: Arc<EdgePolicy>,
    /// For housekeeping only: handlers reach it through their service.
    pub throttle: Arc<Throttle>,
}

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }

    pub(crate) fn services(&self) -> &Services {
        &self.0
    }
}

/// `FromRef` for each piece a handler may take: a clone of that field alone.
macro_rules! narrow {
    ($($field:ident: $type:ty),* $(,)?) => {
        $(impl FromRef<AppState> for $type {
            fn from_ref(state: &AppState) -> Self {
                state.0.$field.clone()
            }
        })*
    };
}

narrow! {
    grants: Arc<Grants>,
    authorization: Arc<Authorization>,
    self_service: Arc<SelfService>,
    reset_links: Arc<ResetLinks>,
    end_session: Arc<EndSession>,
    introspection: Arc<Introspection>,
    userinfo: Arc<UserInfoService>,
    feed: Arc<RevocationFeed>,
    activity: Arc<Activity>,
    sign_in: Arc<SignIn>,
    sessions: Arc<SessionService>,
    session_tokens: Arc<SessionTokens>,
    admin: Arc<Administration>,
    discovery: Arc<Discovery>,
    readiness: Arc<Readiness>,
    metrics: PrometheusHandle,
    cookies: Arc<Cookies>,
    edge: Arc<EdgePolicy>,
}
