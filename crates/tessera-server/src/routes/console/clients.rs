//! `/admin/clients`: the applications registered with tessera. List them, add one
//! (the form is read into the body `POST /admin/v1/clients` takes and checked by
//! the same parser), give a confidential one a new secret, remove one. A secret is
//! shown once, on the page that answers the form, and never again.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use maud::{Markup, html};
use tessera_core::{ClientId, GrantType};

use super::{Pieces, admin_session, caller, checked_form, console, error_page, hidden, notice};
use crate::http::error::ApiError;
use crate::http::extract::{ClientInfo, Input};
use crate::routes::admin::NewClient;
use crate::routes::html::{see_other, sentence};
use crate::services::admin::Administration;
use crate::services::clients::Client;

const TITLE: &str = "Clients";

/// The grants an administrator picks from: the ones an application or a service
/// is registered with (the password grant stays a CLI and API matter).
const GRANTS: [(GrantType, &str); 3] = [
    (
        GrantType::AuthorizationCode,
        "authorization code (an app that signs people in)",
    ),
    (GrantType::RefreshToken, "refresh token"),
    (
        GrantType::ClientCredentials,
        "client credentials (a service acting for itself)",
    ),
];

/// `GET /admin/clients`: every client, and the form to add one.
pub async fn list(
    (State(admin), State(sessions), State(cookies), State(_)): Pieces,
    query: Result<
        axum::extract::Query<HashMap<String, String>>,
        axum::extract::rejection::QueryRejection,
    >,
    headers: HeaderMap,
) -> Response {
    let session = match admin_session(&admin, &sessions, &cookies, &headers).await {
        Ok(session) => session,
        Err(answer) => return answer,
    };
    let query = query.map(|q| q.0).unwrap_or_default();
    match listing(&admin, &session, None, &HashMap::new()).await {
        Ok(body) => console(StatusCode::OK, TITLE, &session, notice(&query), body),
        Err(error) => error_page(&error),
    }
}

/// The list and the add form; `error` and the fields typed, after a refusal.
async fn listing(
    admin: &Administration,
    session: &crate::services::sessions::ActiveSession,
    error: Option<&str>,
    typed: &HashMap<String, String>,
) -> Result<Markup, ApiError> {
    let clients = admin.clients().await?;
    let field = |name: &str| typed.get(name).map(String::as_str);
    Ok(html! {
        section aria-labelledby="registered" {
            h2 #registered { "Registered (" (clients.len()) ")" }
            @if clients.is_empty() { p.muted { "No client yet." } }
            ul.items {
                @for client in &clients { (item(session, client)) }
            }
        }
        section aria-labelledby="add" {
            h2 #add { "Add a client" }
            @if let Some(error) = error {
                p.error role="alert" { (sentence(error)) }
            }
            form method="post" action="/admin/clients" {
                (hidden(session))
                label for="name" { "Name" }
                input #name name="name" required value=[field("name")];
                fieldset {
                    legend { "Grants" }
                    @for (grant, words) in GRANTS {
                        label.check {
                            input type="checkbox" name={ "grant_" (grant.as_str()) } value="on"
                                checked[field(&format!("grant_{}", grant.as_str())).is_some()];
                            " " (words)
                        }
                    }
                }
                label.check {
                    input type="checkbox" name="public" value="on" checked[field("public").is_some()];
                    " Public: a single-page or native app, which can keep no secret (PKCE instead)"
                }
                label.check {
                    input type="checkbox" name="first_party" value="on" checked[field("first_party").is_some()];
                    " First-party: yours, so people are not asked to consent"
                }
                label.check {
                    input type="checkbox" name="dpop_bound_access_tokens" value="on" checked[field("dpop_bound_access_tokens").is_some()];
                    " DPoP required: every token bound to the app's key, so a stolen one is useless"
                }
                label for="scope" { "Scopes (space-separated)" }
                input #scope name="scope" placeholder="openid profile email" value=[field("scope")];
                label for="redirect_uris" { "Redirect URIs (one a line)" }
                textarea #redirect_uris name="redirect_uris" { (field("redirect_uris").unwrap_or_default()) }
                label for="post_logout_redirect_uris" { "After-logout redirect URIs (one a line)" }
                textarea #post_logout_redirect_uris name="post_logout_redirect_uris" { (field("post_logout_redirect_uris").unwrap_or_default()) }
                label for="backchannel_logout_uri" { "Back-channel logout URI" }
                input #backchannel_logout_uri name="backchannel_logout_uri" value=[field("backchannel_logout_uri")];
                button type="submit" { "Add client" }
            }
        }
    })
}

fn item(session: &crate::services::sessions::ActiveSession, client: &Client) -> Markup {
    let action = |what: &str, label: &str, danger: bool| {
        html! {
            form.inline method="post" action={ "/admin/clients/" (client.id) "/" (what) } {
                (hidden(session))
                button.inline.danger[danger].secondary[!danger] type="submit"
                    aria-label={ (label) " of " (client.name.as_str()) } { (label) }
            }
        }
    };
    let grants: Vec<&str> = client.grants.iter().map(|g| g.as_str()).collect();
    html! {
        li {
            div.item-main {
                p {
                    strong { (client.name.as_str()) }
                    span.badge { @if client.secret_hash.is_some() { "confidential" } @else { "public" } }
                    @if client.code_flow.first_party { span.badge { "first-party" } }
                    @if client.dpop_bound_access_tokens { span.badge { "DPoP" } }
                }
                p.muted { code { (client.id) } }
                p.muted { (grants.join(", ")) @if !client.scopes.is_empty() { " · " (client.scopes.to_string()) } }
                @for uri in &client.code_flow.redirect_uris { p.muted { "→ " (uri.as_str()) } }
            }
            div.actions {
                @if client.secret_hash.is_some() { (action("secret", "New secret", false)) }
                (action("remove", "Remove", true))
            }
        }
    }
}

/// The lines of a textarea, without blank ones.
fn lines(text: Option<&String>) -> Vec<String> {
    text.map(|t| {
        t.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

/// The form as the body of `POST /admin/v1/clients`: one parser checks both.
fn new_client(form: &HashMap<String, String>) -> NewClient {
    let text = |name: &str| form.get(name).map(|v| v.trim().to_owned());
    let ticked = |name: &str| form.contains_key(name);
    NewClient {
        name: text("name").unwrap_or_default(),
        grants: GRANTS
            .iter()
            .filter(|(grant, _)| ticked(&format!("grant_{}", grant.as_str())))
            .map(|(grant, _)| grant.as_str().to_owned())
            .collect(),
        public: ticked("public"),
        scope: text("scope").unwrap_or_default(),
        audiences: Vec::new(),
        token_format: None,
        alg: None,
        access_ttl_seconds: None,
        dpop_bound_access_tokens: ticked("dpop_bound_access_tokens"),
        redirect_uris: lines(form.get("redirect_uris")),
        post_logout_redirect_uris: lines(form.get("post_logout_redirect_uris")),
        backchannel_logout_uri: text("backchannel_logout_uri").filter(|u| !u.is_empty()),
        first_party: ticked("first_party"),
        require_par: false,
        id_token_alg: None,
    }
}

/// The page that shows a client's secret, this once.
fn secret_page(
    session: &crate::services::sessions::ActiveSession,
    heading: &str,
    client: &Client,
    secret: Option<&str>,
) -> Response {
    let body = html! {
        h2 { (heading) }
        dl {
            dt { "Name" } dd { (client.name.as_str()) }
            dt { "client_id" } dd { code #client-id { (client.id) } }
        }
        @if let Some(secret) = secret {
            label for="client-secret" { "client_secret" }
            input #client-secret type="text" readonly value=(secret);
            p.muted { "It is shown only now and kept only as a hash: copy it into the app's configuration." }
        } @else {
            p.muted { "A public client has no secret: it proves itself with PKCE." }
        }
        p { a href="/admin/clients" { "Back to the clients" } }
    };
    let mut page = console(StatusCode::OK, TITLE, session, None, body);
    page.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    page
}

/// `POST /admin/clients`: registers a client from the form.
pub async fn add(
    (State(admin), State(sessions), State(cookies), State(edge)): Pieces,
    client: ClientInfo,
    headers: HeaderMap,
    form: Result<Input<HashMap<String, String>>, ApiError>,
) -> Response {
    let (session, form) =
        match checked_form(&admin, &sessions, &cookies, &edge, &headers, form).await {
            Ok(checked) => checked,
            Err(answer) => return answer,
        };
    let added = match new_client(&form).parse() {
        Ok(spec) => admin
            .add_client(caller(&session, &client), spec)
            .await
            .map_err(ApiError::from),
        Err(error) => Err(error),
    };
    match added {
        Ok((registered, secret)) => {
            let secret = secret.map(|s| s.expose());
            secret_page(&session, "Client added", &registered, secret.as_deref())
        }
        Err(error) => match listing(&admin, &session, Some(error.description()), &form).await {
            Ok(body) => console(error.status(), TITLE, &session, None, body),
            Err(error) => error_page(&error),
        },
    }
}

/// `POST /admin/clients/{id}/{secret|remove}`.
pub async fn action(
    (State(admin), State(sessions), State(cookies), State(edge)): Pieces,
    Path((id, action)): Path<(String, String)>,
    client: ClientInfo,
    headers: HeaderMap,
    form: Result<Input<HashMap<String, String>>, ApiError>,
) -> Response {
    let (session, _) = match checked_form(&admin, &sessions, &cookies, &edge, &headers, form).await
    {
        Ok(checked) => checked,
        Err(answer) => return answer,
    };
    let Some(id) = ClientId::parse(&id) else {
        return error_page(&ApiError::not_found("there is no client with this id"));
    };
    let by = caller(&session, &client);
    match action.as_str() {
        "secret" => match admin.rotate_client_secret(by, &id).await {
            Ok(secret) => match admin.client(&id).await {
                Ok(found) => secret_page(&session, "New secret", &found, Some(&secret.expose())),
                Err(e) => error_page(&e.into()),
            },
            Err(e) => error_page(&e.into()),
        },
        "remove" => match admin.remove_client(by, &id).await {
            Ok(()) => see_other("/admin/clients?notice=client-removed"),
            Err(e) => error_page(&e.into()),
        },
        _ => error_page(&ApiError::not_found("there is no such action")),
    }
}
