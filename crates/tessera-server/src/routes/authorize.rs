//! `/oauth2/authorize` (GET and POST) and `/oauth2/consent`: the browser's side of
//! the code flow. What to do is decided by `services::authorize`; this renders it:
//! a redirect back to the client, a detour through `/login`, the consent page, or
//! an error page for the two refusals that are never redirected.
//!
//! Pages here have no script and work with JavaScript off; their forms carry
//! stable names a test can fill (`decision` = `allow` | `deny`).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use maud::html;
use serde::Deserialize;
use tessera_proto::scope::oidc;

use crate::http::EdgePolicy;
use crate::http::cookie::Cookies;
use crate::http::error::ApiError;
use crate::http::extract::{Input, OAuthRequest, check_origin, dpop_proof};
use crate::routes::html::{carried, csp_source, page, see_other};
use crate::services::authorize::{
    Authorization, AuthorizeError, AuthorizeParams, ConsentPrompt, Decision, Step,
};

/// `GET /oauth2/authorize`.
pub async fn authorize(
    State(authorization): State<Arc<Authorization>>,
    State(cookies): State<Arc<Cookies>>,
    query: Result<Query<AuthorizeParams>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let Ok(Query(params)) = query else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The request is malformed (a parameter is given twice, or is not text).",
        );
    };
    let secret = cookies.session.secret(&headers).ok().flatten();
    render(authorization.authorize(params, secret.as_ref()).await)
}

/// `POST /oauth2/authorize` (OpenID Connect Core §3.1.2.1 allows a form post): sent
/// on as a `GET` of the same request, since a cross-site post carries no
/// `SameSite=Lax` session cookie and the browser would look signed out.
pub async fn authorize_post(input: Result<Input<AuthorizeParams>, ApiError>) -> Response {
    match input {
        Ok(Input(params)) => see_other(&format!(
            "/oauth2/authorize?{}",
            serde_urlencoded::to_string(&params).unwrap_or_default()
        )),
        Err(error) => error_page(error.status(), error.description()),
    }
}

#[derive(Deserialize)]
pub struct ConsentForm {
    #[serde(flatten)]
    params: AuthorizeParams,
    #[serde(default)]
    csrf: String,
    decision: String,
}

/// `POST /oauth2/consent`: the consent page's answer.
pub async fn consent(
    State(authorization): State<Arc<Authorization>>,
    State(cookies): State<Arc<Cookies>>,
    State(edge): State<Arc<EdgePolicy>>,
    headers: HeaderMap,
    input: Result<Input<ConsentForm>, ApiError>,
) -> Response {
    if check_origin(&headers, &edge.origins).is_err() {
        return error_page(
            StatusCode::FORBIDDEN,
            "This answer was sent from another site, so it was not accepted.",
        );
    }
    let form = match input {
        Ok(Input(form)) => form,
        Err(error) => return error_page(error.status(), error.description()),
    };
    let decision = match form.decision.as_str() {
        "allow" => Decision::Allow,
        "deny" => Decision::Deny,
        _ => return error_page(StatusCode::BAD_REQUEST, "The answer must be allow or deny."),
    };
    let secret = cookies.session.secret(&headers).ok().flatten();
    render(
        authorization
            .decide(form.params, secret.as_ref(), &form.csrf, decision)
            .await,
    )
}

fn render(step: Result<Step, AuthorizeError>) -> Response {
    match step {
        Ok(Step::Redirect(url)) => see_other(&url),
        Ok(Step::SignIn {
            resume,
            reauthenticate,
            login_hint,
            second_factor,
        }) => {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("return_to", &resume);
            if reauthenticate {
                query.append_pair("reauthenticate", "true");
            }
            if second_factor {
                query.append_pair("second_factor", "true");
            }
            if let Some(hint) = &login_hint {
                query.append_pair("login_hint", hint);
            }
            see_other(&format!("/login?{}", query.finish()))
        }
        Ok(Step::Consent(prompt)) => consent_page(&prompt),
        Err(AuthorizeError::NoRedirect(why)) => error_page(StatusCode::BAD_REQUEST, &why),
        Err(AuthorizeError::Store(error)) => {
            tracing::error!(%error, "the authorization endpoint could not reach a store");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Signing in is not possible at the moment. Please try again shortly.",
            )
        }
    }
}

/// A scope as the person asked about it reads it.
pub(crate) fn in_words(scope: &str) -> String {
    match scope {
        oidc::OPENID => "Know who you are on this server".to_owned(),
        oidc::PROFILE => "See your name and username".to_owned(),
        oidc::EMAIL => "See your email address".to_owned(),
        oidc::OFFLINE_ACCESS => "Stay connected after you sign out".to_owned(),
        other => format!("Use your account with the permission \u{201c}{other}\u{201d}"),
    }
}

/// OpenID Connect's scopes first, in the order a person reads them, then the rest.
fn reading_order(scopes: &[String]) -> Vec<&str> {
    let standard = [
        oidc::OPENID,
        oidc::PROFILE,
        oidc::EMAIL,
        oidc::OFFLINE_ACCESS,
    ];
    let mut ordered: Vec<&str> = standard
        .into_iter()
        .filter(|s| scopes.iter().any(|asked| asked == s))
        .collect();
    ordered.extend(
        scopes
            .iter()
            .map(String::as_str)
            .filter(|s| !standard.contains(s)),
    );
    ordered
}

fn consent_page(prompt: &ConsentPrompt) -> Response {
    page(
        StatusCode::OK,
        "Allow access",
        &[csp_source(&prompt.leads_to)],
        html! {
            h1 { "Allow " (prompt.client_name) "?" }
            p { strong { (prompt.client_name) } " would like to:" }
            ul.scopes {
                @for scope in reading_order(&prompt.scopes) {
                    li { (in_words(scope)) }
                }
            }
            p.muted { "You are signed in as " strong { (prompt.username) } ". You can withdraw this later." }
            form method="post" action="/oauth2/consent" {
                (carried(&prompt.params, &prompt.csrf))
                div.choices {
                    button.secondary type="submit" name="decision" value="deny" { "Deny" }
                    // Not focused: an Enter or a double click caught by another
                    // window as this page opens must not allow (DoubleClickjacking;
                    // framing is refused by the page's headers already).
                    button type="submit" name="decision" value="allow" { "Allow" }
                }
            }
        },
    )
}

fn error_page(status: StatusCode, why: &str) -> Response {
    page(
        status,
        "Sign-in error",
        &[],
        html! {
            h1 { "This sign-in cannot continue" }
            p.error role="alert" { (crate::routes::html::sentence(why)) }
            p.muted { "Go back to the application and try again, or tell its owner." }
        },
    )
}

/// `POST /oauth2/par` (RFC 9126): `201` with the `request_uri`, or the token
/// endpoint's kind of error.
pub async fn push(
    State(authorization): State<Arc<Authorization>>,
    headers: http::HeaderMap,
    request: Result<OAuthRequest, ApiError>,
) -> Response {
    let answer = async {
        let request = request?;
        let proof = dpop_proof(&headers)?;
        let pushed = authorization
            .push(&request.client, request.params, proof)
            .await?;
        Ok::<_, ApiError>((StatusCode::CREATED, Json(pushed)).into_response())
    };
    let mut response = match answer.await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    if let Some(nonce) = authorization.dpop_nonce()
        && let Ok(value) = http::HeaderValue::from_str(&nonce)
    {
        response
            .headers_mut()
            .insert(tessera_proto::token_type::DPOP_NONCE_HEADER, value);
    }
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}
