//! `/oauth2/logout` (GET and POST), the `end_session_endpoint`: what
//! `services::end_session` decides, rendered as a redirect back to the app, a
//! signed-out page, or the confirmation page (`decision` = `logout` | `stay`).

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use maud::html;
use serde::Deserialize;

use crate::http::EdgePolicy;
use crate::http::cookie::Cookies;
use crate::http::error::ApiError;
use crate::http::extract::{ClientInfo, Input, check_origin};
use crate::routes::html::{carried, csp_source, page, see_other, sentence};
use crate::services::end_session::{
    EndSession, LogoutError, LogoutParams, LogoutPrompt, LogoutStep,
};

/// `GET /oauth2/logout`.
pub async fn logout(
    State(end_session): State<Arc<EndSession>>,
    State(cookies): State<Arc<Cookies>>,
    client: ClientInfo,
    query: Result<Query<LogoutParams>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let Ok(Query(params)) = query else {
        return message(
            StatusCode::BAD_REQUEST,
            "The sign-out request is malformed.",
        );
    };
    let secret = cookies.session.secret(&headers).ok().flatten();
    render(
        &cookies,
        end_session
            .log_out(params, secret.as_ref(), None, client.address)
            .await,
    )
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(flatten)]
    params: LogoutParams,
    csrf: Option<String>,
    decision: Option<String>,
}

/// `POST /oauth2/logout`: the confirmation page's answer, or an app's form post of
/// the request, which is sent on as a `GET` (a cross-site post carries no
/// `SameSite=Lax` session cookie, and the browser would look signed out).
pub async fn logout_post(
    State(end_session): State<Arc<EndSession>>,
    State(cookies): State<Arc<Cookies>>,
    State(edge): State<Arc<EdgePolicy>>,
    client: ClientInfo,
    headers: HeaderMap,
    input: Result<Input<LogoutForm>, ApiError>,
) -> Response {
    let form = match input {
        Ok(Input(form)) => form,
        Err(error) => return message(error.status(), error.description()),
    };
    let Some(csrf) = form.csrf else {
        return see_other(&format!(
            "/oauth2/logout?{}",
            serde_urlencoded::to_string(&form.params).unwrap_or_default()
        ));
    };
    if check_origin(&headers, &edge.origins).is_err() {
        return message(
            StatusCode::FORBIDDEN,
            "This answer was sent from another site, so it was not accepted.",
        );
    }
    if form.decision.as_deref() != Some("logout") {
        return message(StatusCode::OK, "You are still signed in.");
    }
    let secret = cookies.session.secret(&headers).ok().flatten();
    render(
        &cookies,
        end_session
            .log_out(form.params, secret.as_ref(), Some(&csrf), client.address)
            .await,
    )
}

fn render(cookies: &Cookies, step: Result<LogoutStep, LogoutError>) -> Response {
    match step {
        Ok(LogoutStep::Done { redirect, ended }) => {
            let mut response = match redirect {
                Some(url) => see_other(url.as_str()),
                None => message(StatusCode::OK, "You are signed out."),
            };
            if ended {
                let h = response.headers_mut();
                h.append(header::SET_COOKIE, cookies.session.clear());
                h.append(header::SET_COOKIE, cookies.token.clear());
            }
            response
        }
        Ok(LogoutStep::Confirm(prompt)) => confirm_page(&prompt),
        Err(LogoutError::Invalid(why)) => message(StatusCode::BAD_REQUEST, why),
        Err(LogoutError::Store(error)) => {
            tracing::error!(%error, "the logout endpoint could not reach a store");
            message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Signing out is not possible at the moment. Please try again shortly.",
            )
        }
    }
}

fn confirm_page(prompt: &LogoutPrompt) -> Response {
    let leads_to: Vec<String> = prompt.leads_to.iter().map(csp_source).collect();
    page(
        StatusCode::OK,
        "Sign out",
        &leads_to,
        html! {
            h1 { "Sign out?" }
            @if let Some(client) = &prompt.client_name {
                p { strong { (client) } " asks to sign you out." }
            }
            p { "You are signed in as " strong { (prompt.username) } ". Signing out ends this session in every application." }
            form method="post" action="/oauth2/logout" {
                (carried(&prompt.params, &prompt.csrf))
                div.choices {
                    button.secondary type="submit" name="decision" value="stay" { "Stay signed in" }
                    button type="submit" name="decision" value="logout" autofocus { "Sign out" }
                }
            }
        },
    )
}

fn message(status: StatusCode, text: &str) -> Response {
    page(
        status,
        "Sign out",
        &[],
        html! {
            h1 { "Sign out" }
            @if status.is_success() {
                p role="status" { (sentence(text)) }
            } @else {
                p.error role="alert" { (sentence(text)) }
            }
        },
    )
    .into_response()
}
