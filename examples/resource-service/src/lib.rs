//! An orders API that trusts tessera tokens. Every route says what it needs; the
//! `tessera-verify` layer enforces it before a handler runs, and handlers read
//! the caller from [`Authenticated`].

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tessera_verify::RemoteVerifier;
use tessera_verify::axum::{Authenticated, Requirement};

/// The service's routes, verifying tokens with `verifier`.
pub fn app(verifier: RemoteVerifier) -> Router {
    let orders = Router::new()
        .route("/orders", get(list_orders))
        .route_layer(verifier.require(Requirement::scope("orders:read")));
    let new_order = Router::new()
        .route("/orders", axum::routing::post(create_order))
        .route_layer(verifier.require(Requirement::scope("orders:write")));
    let admin = Router::new()
        .route("/admin/report", get(report))
        .route_layer(verifier.require(Requirement::role("admin")));
    let me = Router::new()
        .route("/me", get(me))
        .route_layer(verifier.require(Requirement::authenticated()));
    // Paying out moves money: it asks for a sign-in with two factors, and a
    // token from a password alone gets RFC 9470's step-up challenge.
    let payouts = Router::new()
        .route("/payouts", get(payouts))
        .route_layer(verifier.require(Requirement::authenticated().and_acr("2")));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(orders)
        .merge(new_order)
        .merge(admin)
        .merge(me)
        .merge(payouts)
        .with_state(verifier)
}

async fn me(who: Authenticated) -> Json<Value> {
    Json(json!({
        "sub": who.sub,
        "client_id": who.client_id,
        "scope": who.scope,
        "roles": who.roles,
        "sid": who.sid,
    }))
}

async fn payouts(who: Authenticated) -> Json<Value> {
    Json(json!({ "owner": who.sub, "payouts": [], "acr": who.acr, "amr": who.amr }))
}

async fn list_orders(who: Authenticated) -> Json<Value> {
    Json(json!({ "owner": who.sub, "orders": [] }))
}

async fn create_order(who: Authenticated) -> (axum::http::StatusCode, Json<Value>) {
    (
        axum::http::StatusCode::CREATED,
        Json(json!({ "owner": who.sub, "created": true })),
    )
}

async fn report(who: Authenticated) -> Json<Value> {
    Json(json!({ "requested_by": who.sub, "report": "all quiet" }))
}
