//! `/admin`: the console for administrators. The dashboard (who is online now, and
//! sign-ins over the last day as a chart drawn here as SVG), users (search, one
//! user's sessions, kick, disable, enable, roles, a reset link), clients (in
//! `clients`), signing keys (rotate, retire) and the audit log. Server-rendered
//! HTML with no script, like `/account`; every action is a form with the session's
//! CSRF token, checked for the origin, and calls the same `Administration` service
//! as `/admin/v1/`, so the page and the API follow one rule. The admin role is
//! checked on every request.

pub mod clients;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;
use tessera_core::{Algorithm, Role, Roles, Timestamp, UserId};
use tessera_proto::{EventKind, Outcome};

use crate::http::EdgePolicy;
use crate::http::cookie::Cookies;
use crate::http::error::ApiError;
use crate::http::extract::{ClientInfo, Input, check_origin};
use crate::routes::html::{problem_page, see_other, sentence, wide_page};
use crate::services::admin::{Administration, HOUR_MS, IssuedLink};
use crate::services::audit::{Caller, EventQuery};
use crate::services::presence::DEFAULT_WINDOW;
use crate::services::sessions::{ActiveSession, SessionService};
use crate::views::{device_in_words, event_view};

const SIGN_IN: &str = "/login?return_to=%2Fadmin";
const DAY_HOURS: i64 = 24;

type Pieces = (
    State<Arc<Administration>>,
    State<Arc<SessionService>>,
    State<Arc<Cookies>>,
    State<Arc<EdgePolicy>>,
);

/// The admin's session from the cookie; otherwise the answer a person should get:
/// to sign in, or a page saying this is for administrators.
async fn admin_session(
    admin: &Administration,
    sessions: &SessionService,
    cookies: &Cookies,
    headers: &HeaderMap,
) -> Result<Arc<ActiveSession>, Response> {
    let session = match cookies.session.secret(headers) {
        Ok(Some(secret)) => sessions
            .authenticate(&secret)
            .await
            .map_err(|e| error_page(&e.into()))?,
        Ok(None) | Err(_) => None,
    };
    let Some(session) = session else {
        return Err(see_other(SIGN_IN));
    };
    if !session.user().roles.contains(Role::Admin) {
        return Err(wide_page(
            StatusCode::FORBIDDEN,
            "For administrators",
            html! {
                h1 { "For administrators" }
                p.error role="alert" {
                    "This console is for administrators, and "
                    strong { (session.user().username.as_str()) } " is not one."
                }
                p { a href="/account" { "Your account" } }
            },
        ));
    }
    if !admin.admits(&session) {
        return Err(wide_page(
            StatusCode::FORBIDDEN,
            "Two-step sign-in needed",
            html! {
                h1 { "Two-step sign-in needed" }
                p.error role="alert" {
                    "This service asks administrators to sign in with a second step, and \
                     this session began with the password alone."
                }
                p {
                    "Set up an authenticator app or a passkey on your account page if you \
                     have neither, then sign out and sign in again."
                }
                p { a href="/account" { "Your account" } }
            },
        ));
    }
    Ok(session)
}

/// A form of the console, checked: our origin, an admin's live session, its CSRF
/// token.
async fn admin_form(
    admin: &Administration,
    sessions: &SessionService,
    cookies: &Cookies,
    edge: &EdgePolicy,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<Arc<ActiveSession>, Response> {
    if check_origin(headers, &edge.origins).is_err() {
        return Err(refused(
            "This form was sent from another site, so it was not accepted.",
        ));
    }
    let session = admin_session(admin, sessions, cookies, headers).await?;
    if !session.csrf_token().matches(csrf) {
        return Err(refused(
            "This form is out of date (it belongs to an earlier sign-in). Open the page again.",
        ));
    }
    Ok(session)
}

/// A console form: it carries the session's CSRF token.
trait ConsoleForm {
    fn csrf_token(&self) -> &str;
}

/// A form read as names and values (one whose fields vary: roles, a client).
impl ConsoleForm for HashMap<String, String> {
    fn csrf_token(&self) -> &str {
        self.get("csrf_token").map_or("", String::as_str)
    }
}

/// A posted console form, read and checked ([`admin_form`]): the admin's session
/// and the form, or the page to answer instead.
async fn checked_form<F: ConsoleForm>(
    admin: &Administration,
    sessions: &SessionService,
    cookies: &Cookies,
    edge: &EdgePolicy,
    headers: &HeaderMap,
    form: Result<Input<F>, ApiError>,
) -> Result<(Arc<ActiveSession>, F), Response> {
    let Input(form) = form.map_err(|error| error_page(&error))?;
    let session = admin_form(admin, sessions, cookies, edge, headers, form.csrf_token()).await?;
    Ok((session, form))
}

fn caller(session: &ActiveSession, client: &ClientInfo) -> Caller {
    Caller::user(session.user().id, client.address)
}

/// Where a problem page leads back to.
const BACK: (&str, &str) = ("/admin", "Back to the console");

fn refused(why: &str) -> Response {
    problem_page(StatusCode::FORBIDDEN, "Not accepted", why, BACK)
}

fn error_page(error: &ApiError) -> Response {
    problem_page(
        error.status(),
        "Something went wrong",
        &sentence(error.description()),
        BACK,
    )
}

/// The frame of every console page: its name, the sections, who is signed in.
fn console(
    status: StatusCode,
    title: &str,
    session: &ActiveSession,
    notice: Option<&str>,
    body: Markup,
) -> Response {
    let links = [
        ("/admin", "Dashboard"),
        ("/admin/users", "Users"),
        ("/admin/clients", "Clients"),
        ("/admin/keys", "Keys"),
        ("/admin/events", "Events"),
    ];
    wide_page(
        status,
        &format!("{title} · tessera console"),
        html! {
            header.bar {
                strong { "tessera console" }
                nav aria-label="Console" {
                    @for (href, name) in links {
                        @if name == title {
                            a href=(href) aria-current="page" { strong { (name) } }
                        } @else {
                            a href=(href) { (name) }
                        }
                    }
                    a href="/account" { (session.user().username.as_str()) }
                }
            }
            h1 { (title) }
            @if let Some(notice) = notice {
                p.notice role="status" { (notice) }
            }
            (body)
        },
    )
}

fn hidden(session: &ActiveSession) -> Markup {
    html! { input type="hidden" name="csrf_token" value=(session.csrf_token().as_str()); }
}

/// The notices an action's answer may ask for, by key.
fn notice(query: &HashMap<String, String>) -> Option<&'static str> {
    Some(match query.get("notice")?.as_str() {
        "kicked" => "Kicked: every session and token of the user ended, everywhere.",
        "roles" => "Roles saved. A role taken away also ended the user's sessions and tokens.",
        "disabled" => "Disabled: the user cannot sign in, and everything they held ended.",
        "enabled" => "Enabled: the user can sign in again.",
        "factors-reset" => {
            "Two-step sign-in reset: the user signs in with the password alone and sets up a new app."
        }
        "rotated" => "A new key is published.",
        "client-removed" => {
            "The client is removed: every token issued to it is refused, everywhere."
        }
        "retired" => "The key is retired: tokens it signed are refused everywhere.",
        _ => return None,
    })
}

/// `GET /admin`: the dashboard.
pub async fn dashboard(
    (State(admin), State(sessions), State(cookies), State(_)): Pieces,
    headers: HeaderMap,
) -> Response {
    let session = match admin_session(&admin, &sessions, &cookies, &headers).await {
        Ok(session) => session,
        Err(answer) => return answer,
    };
    let now = Timestamp::now();
    // Whole hours: the chart's 24 bars, the current hour last.
    let this_hour = now.as_millis() / HOUR_MS * HOUR_MS;
    let since = Timestamp::from_millis(this_hour - (DAY_HOURS - 1) * HOUR_MS);
    let (online, counts, peaks) = match admin.dashboard(DEFAULT_WINDOW, since).await {
        Ok(found) => found,
        Err(e) => return error_page(&e.into()),
    };
    let slot = |at: Timestamp| usize::try_from((at.as_millis() - since.as_millis()) / HOUR_MS).ok();
    let mut sign_ins = vec![(0u64, 0u64); DAY_HOURS as usize];
    for count in &counts {
        if let Some(hour) = slot(count.bucket).and_then(|at| sign_ins.get_mut(at)) {
            match count.outcome {
                Outcome::Success => hour.0 += count.count,
                Outcome::Failure => hour.1 += count.count,
            }
        }
    }
    let mut online_by_hour = vec![(0u64, 0u64); DAY_HOURS as usize];
    for peak in &peaks {
        if let Some(hour) = slot(peak.hour).and_then(|at| online_by_hour.get_mut(at)) {
            hour.0 = peak.online.users;
        }
    }
    let (succeeded, failed) = sign_ins.iter().fold((0, 0), |(s, f), h| (s + h.0, f + h.1));
    let most_online = online_by_hour.iter().map(|h| h.0).max().unwrap_or(0);
    let body = html! {
        div.grid {
            div.stat {
                p.muted { "Online now (last " (DEFAULT_WINDOW.as_secs() / 60) " minutes)" }
                p.figure #online-users { (online.users) } p { @if online.users == 1 { "user" } @else { "users" } }
            }
            div.stat {
                p.muted { "Sessions in use" }
                p.figure #online-sessions { (online.sessions) } p { "sessions and refresh tokens" }
            }
            div.stat {
                p.muted { "Sign-ins, last 24 hours" }
                p.figure { (succeeded) } p { (failed) " failed" }
            }
        }
        section aria-labelledby="online-title" {
            h2 #online-title { "Users online, the most at once in each hour" }
            (drawn_chart(&Chart {
                id: "online",
                desc: format!(
                    "The most users online at once in each of the last 24 hours (UTC): at most {most_online}."
                ),
                first: ("online", "online"),
                second: None,
            }, &online_by_hour, since))
        }
        section aria-labelledby="chart-title" {
            h2 #chart-title { "Sign-ins by hour" }
            (drawn_chart(&Chart {
                id: "sign-ins",
                desc: format!(
                    "Sign-ins in each of the last 24 hours (UTC): {succeeded} succeeded and {failed} failed in all."
                ),
                first: ("success", "succeeded"),
                second: Some(("failure", "failed")),
            }, &sign_ins, since))
        }
    };
    console(StatusCode::OK, "Dashboard", &session, None, body)
}

/// One of the dashboard's charts: a bar an hour, of one part or two stacked (the
/// first on the second), each part by its CSS class and its name in words.
struct Chart {
    id: &'static str,
    /// The text alternative.
    desc: String,
    first: (&'static str, &'static str),
    second: Option<(&'static str, &'static str)>,
}

/// [`chart`], drawn again only when its figures changed: they change at most once a
/// second (see `Administration::dashboard`), and drawing was most of a render.
fn drawn_chart(chart_of: &Chart, hours: &[(u64, u64)], since: Timestamp) -> Markup {
    type Drawn = (&'static str, Vec<(u64, u64)>, Timestamp, String);
    static LAST: std::sync::Mutex<Vec<Drawn>> = std::sync::Mutex::new(Vec::new());
    if let Ok(last) = LAST.lock()
        && let Some((_, _, _, drawn)) = last
            .iter()
            .find(|(id, h, s, _)| *id == chart_of.id && h == hours && *s == since)
    {
        return PreEscaped(drawn.clone());
    }
    let drawn = chart(chart_of, hours, since).into_string();
    if let Ok(mut last) = LAST.lock() {
        last.retain(|(id, ..)| *id != chart_of.id);
        last.push((chart_of.id, hours.to_vec(), since, drawn.clone()));
    }
    PreEscaped(drawn)
}

/// A count per hour as an SVG bar chart, with a text alternative.
fn chart(chart_of: &Chart, hours: &[(u64, u64)], since: Timestamp) -> Markup {
    let (width, height, left, bottom) = (720.0_f64, 200.0_f64, 36.0_f64, 24.0_f64);
    let most = hours.iter().map(|h| h.0 + h.1).max().unwrap_or(0).max(1);
    let slot = (width - left) / hours.len() as f64;
    let scale = (height - bottom - 8.0) / most as f64;
    let hour_label = |i: usize| {
        let at = since.as_millis() + i as i64 * HOUR_MS;
        // HH:00 UTC, from the RFC 3339 text.
        Timestamp::from_millis(at)
            .to_rfc3339()
            .get(11..16)
            .unwrap_or_default()
            .to_owned()
    };
    let (first_class, first_name) = chart_of.first;
    let id = chart_of.id;
    let mut svg = String::new();
    use std::fmt::Write as _;
    let _ = write!(
        svg,
        r##"<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="{id}-desc"><desc id="{id}-desc">{}</desc>"##,
        html! { (chart_of.desc) }.into_string(),
    );
    let _ = write!(
        svg,
        r##"<text x="{x}" y="14" class="axis" text-anchor="end">{most}</text><line x1="{left}" y1="{top}" x2="{width}" y2="{top}" class="grid"/><line x1="{left}" y1="{base}" x2="{width}" y2="{base}" class="grid"/>"##,
        x = left - 6.0,
        top = height - bottom - most as f64 * scale,
        base = height - bottom
    );
    for (i, (first, second)) in hours.iter().enumerate() {
        let x = left + i as f64 * slot + 2.0;
        let w = (slot - 4.0).max(1.0);
        let second_h = *second as f64 * scale;
        let first_h = *first as f64 * scale;
        let base = height - bottom;
        let label = hour_label(i);
        let _ = write!(svg, "<g><title>{label} UTC: {first} {first_name}");
        if let Some((second_class, second_name)) = chart_of.second {
            let _ = write!(
                svg,
                r##", {second} {second_name}</title><rect class="{second_class}" x="{}" y="{}" width="{}" height="{}"/>"##,
                Tenths(x),
                Tenths(base - second_h),
                Tenths(w),
                Tenths(second_h),
            );
        } else {
            svg.push_str("</title>");
        }
        let _ = write!(
            svg,
            r##"<rect class="{first_class}" x="{}" y="{}" width="{}" height="{}"/></g>"##,
            Tenths(x),
            Tenths(base - second_h - first_h),
            Tenths(w),
            Tenths(first_h),
        );
        if i % 4 == 0 {
            let _ = write!(
                svg,
                r##"<text x="{}" y="{}" class="axis" text-anchor="middle">{label}</text>"##,
                Tenths(x + w / 2.0),
                Tenths(height - 6.0)
            );
        }
    }
    svg.push_str("</svg>");
    html! {
        (PreEscaped(svg))
        p.legend {
            span class={ "key " (first_class) } {} " " (first_name) " "
            @if let Some((second_class, second_name)) = chart_of.second {
                span class={ "key second " (second_class) } {} " " (second_name) " "
            }
            "(hours in UTC)"
        }
    }
}

/// A coordinate to a tenth, written with integers: `{:.1}` takes the exact (and
/// slow) path of float formatting, a quarter of the dashboard's time when measured.
struct Tenths(f64);

impl std::fmt::Display for Tenths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Coordinates are small and never negative.
        let tenths = (self.0 * 10.0).round().max(0.0) as u64;
        write!(f, "{}.{}", tenths / 10, tenths % 10)
    }
}

/// `GET /admin/users?q=`: users whose name contains `q`.
pub async fn users(
    (State(admin), State(sessions), State(cookies), State(_)): Pieces,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let session = match admin_session(&admin, &sessions, &cookies, &headers).await {
        Ok(session) => session,
        Err(answer) => return answer,
    };
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let q = query
        .get("q")
        .map_or_else(String::new, |q| q.trim().to_lowercase());
    let found = match admin.search(&q, None, 100).await {
        Ok(found) => found,
        Err(e) => return error_page(&e.into()),
    };
    let body = html! {
        form method="get" action="/admin/users" role="search" {
            label for="q" { "Find users by name" }
            div.row {
                input #q name="q" value=(q) type="search";
                button.inline type="submit" { "Search" }
            }
        }
        @if found.is_empty() {
            p.muted { "No user's name contains that." }
        } @else {
            ul.items {
                @for user in &found {
                    li {
                        div.item-main {
                            p {
                                a href={ "/admin/users/" (user.id) } { strong { (user.username.as_str()) } }
                                @if user.roles.contains(Role::Admin) { span.badge { "admin" } }
                                @if user.disabled { span.badge.off { "disabled" } }
                            }
                            p.muted { "Since " (user.created_at.to_rfc3339().get(..10).unwrap_or_default()) }
                        }
                    }
                }
            }
            @if found.len() == 100 { p.muted { "The first 100; search to narrow it down." } }
        }
    };
    console(StatusCode::OK, "Users", &session, None, body)
}

/// `GET /admin/users/{id}`: one user, their sessions, what an admin can do.
pub async fn user(
    (State(admin), State(sessions), State(cookies), State(_)): Pieces,
    Path(id): Path<String>,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let session = match admin_session(&admin, &sessions, &cookies, &headers).await {
        Ok(session) => session,
        Err(answer) => return answer,
    };
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let Some(id) = UserId::parse(&id) else {
        return error_page(&ApiError::not_found("there is no user with this id"));
    };
    let (user, records) = match admin.sessions(id).await {
        Ok(found) => found,
        Err(e) => return error_page(&e.into()),
    };
    let factors = match admin.second_factors(user.id).await {
        Ok(factors) => factors,
        Err(e) => return error_page(&e.into()),
    };
    let two_step = factors.any();
    let in_words = match (factors.totp, factors.passkey) {
        (true, true) => "on (authenticator app and passkeys)",
        (true, false) => "on (authenticator app)",
        (false, true) => "on (passkeys)",
        (false, false) => "off",
    };
    let now = Timestamp::now();
    let form = |action: &str, label: &str, danger: bool| {
        html! {
            form.inline method="post" action={ "/admin/users/" (user.id) "/" (action) } {
                (hidden(&session))
                button.inline.danger[danger].secondary[!danger] type="submit" { (label) }
            }
        }
    };
    let body = html! {
        h2 #heading { (user.username.as_str()) }
        dl {
            dt { "Username" } dd #username { (user.username.as_str()) }
            dt { "Id" } dd { code { (user.id) } }
            dt { "Roles" } dd { @if user.roles.iter().next().is_none() { "none" } @else { (user.roles.to_stored()) } }
            dt { "State" } dd #state { @if user.disabled { "disabled" } @else { "active" } }
            dt { "Two-step sign-in" } dd #two-step { (in_words) }
            dt { "Created" } dd { (user.created_at.to_rfc3339()) }
        }
        div.actions {
            (form("kick", "Kick (end every session)", false))
            @if user.disabled {
                (form("enable", "Enable", false))
            } @else {
                (form("disable", "Disable", true))
            }
            @if !user.disabled {
                (form("reset-link", "Issue a password-reset link", false))
            }
            @if two_step {
                (form("reset-factors", "Reset two-step sign-in", true))
            }
            a href={ "/admin/events?user=" (user.id) } { "Their events" }
        }
        section aria-labelledby="roles" {
            h2 #roles { "Roles" }
            form method="post" action={ "/admin/users/" (user.id) "/roles" } {
                (hidden(&session))
                fieldset {
                    legend { "What " (user.username.as_str()) " may do beyond their own account" }
                    @for role in Role::ALL {
                        label.check {
                            input type="checkbox" name={ "role_" (role.as_str()) } value="on" checked[user.roles.contains(role)];
                            " " (role.as_str())
                        }
                    }
                }
                p.muted { "Taking a role away signs the user out everywhere: what they hold was issued with it." }
                button.inline.secondary.spaced type="submit" { "Save roles" }
            }
        }
        section aria-labelledby="sessions" {
            h2 #sessions { "Sessions (" (records.len()) ")" }
            @if records.is_empty() { p.muted { "No live session." } }
            ul.items {
                @for record in &records {
                    li {
                        div.item-main {
                            p { strong { (device_in_words(record.user_agent.as_deref()).unwrap_or_else(|| "An unknown device".to_owned())) } }
                            p.muted {
                                @if let Some(address) = &record.client_address { "From " (address) " · " }
                                "signed in " (minutes_ago(record.created_at, now))
                            }
                        }
                    }
                }
            }
        }
    };
    console(StatusCode::OK, "Users", &session, notice(&query), body)
}

fn minutes_ago(then: Timestamp, now: Timestamp) -> String {
    let minutes = now.millis_since(then) / 60_000;
    match minutes {
        0 => "just now".to_owned(),
        1..60 => format!("{minutes} min ago"),
        _ => format!("{} h ago", minutes / 60),
    }
}

/// `POST /admin/users/{id}/{kick|disable|enable|roles|reset-link|reset-factors}`. The form is
/// read as names and values: `roles` carries a `role_NAME=on` per role checked.
pub async fn user_action(
    (State(admin), State(sessions), State(cookies), State(edge)): Pieces,
    Path((id, action)): Path<(String, String)>,
    client: ClientInfo,
    headers: HeaderMap,
    form: Result<Input<HashMap<String, String>>, ApiError>,
) -> Response {
    let (session, form) =
        match checked_form(&admin, &sessions, &cookies, &edge, &headers, form).await {
            Ok(checked) => checked,
            Err(answer) => return answer,
        };
    let Some(id) = UserId::parse(&id) else {
        return error_page(&ApiError::not_found("there is no user with this id"));
    };
    let by = caller(&session, &client);
    let done = match action.as_str() {
        "kick" => admin.kick(by, id).await.map(|_| "kicked"),
        "disable" => admin.disable(by, id).await.map(|_| "disabled"),
        "enable" => admin.enable(by, id).await.map(|_| "enabled"),
        "reset-factors" => admin
            .reset_second_factors(by, id)
            .await
            .map(|_| "factors-reset"),
        "roles" => {
            let roles = Role::ALL
                .into_iter()
                .filter(|role| form.contains_key(&format!("role_{}", role.as_str())))
                .collect();
            admin
                .set_roles(by, id, Roles::new(roles))
                .await
                .map(|_| "roles")
        }
        "reset-link" => {
            return match admin.issue_reset_link(by, id).await {
                Ok(link) => issued_link(&session, &link),
                Err(e) => error_page(&e.into()),
            };
        }
        _ => return error_page(&ApiError::not_found("there is no such action")),
    };
    match done {
        Ok(key) => see_other(&format!("/admin/users/{id}?notice={key}")),
        Err(e) => error_page(&e.into()),
    }
}

/// The page that shows a reset link, this once: it is not stored anywhere else.
fn issued_link(session: &ActiveSession, link: &IssuedLink) -> Response {
    let body = html! {
        h2 { "Password-reset link for " (link.user.username.as_str()) }
        p {
            "Give this link to " strong { (link.user.username.as_str()) }
            " yourself (tessera sends no mail). It works once, until "
            (link.expires_at.to_rfc3339()) ", and replaces any earlier link."
        }
        label for="reset-link" { "The link" }
        input #reset-link type="text" readonly value=(link.url);
        p.muted { "It is shown only now. Using it signs the account out everywhere." }
        p { a href={ "/admin/users/" (link.user.id) } { "Back to " (link.user.username.as_str()) } }
    };
    let mut page = console(StatusCode::OK, "Users", session, None, body);
    page.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    page
}

/// `GET /admin/keys`: the signing keys with their state and age.
pub async fn keys(
    (State(admin), State(sessions), State(cookies), State(_)): Pieces,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let session = match admin_session(&admin, &sessions, &cookies, &headers).await {
        Ok(session) => session,
        Err(answer) => return answer,
    };
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let set = admin.keys();
    let now = Timestamp::now();
    let body = html! {
        form method="post" action="/admin/keys/rotate" {
            (hidden(&session))
            div.row {
                label for="alg" { "New key" }
                select #alg name="alg" {
                    @for alg in ["EdDSA", "ES256", "RS256"] { option value=(alg) { (alg) } }
                }
                label.check { input type="checkbox" name="now" value="yes"; "signs at once" }
                button.inline type="submit" { "Rotate" }
            }
        }
        ul.items {
            @for key in &set.keys {
                @let state = key.state(now, set.is_signer(&key.kid));
                li {
                    div.item-main {
                        p { code { (key.kid) } " " span.badge.off[state == "retired"] { (state) } }
                        p.muted { (key.algorithm.as_str()) " · made " (minutes_ago(key.created_at, now)) }
                    }
                    @if state != "retired" {
                        form.inline method="post" action="/admin/keys/retire" {
                            (hidden(&session))
                            input type="hidden" name="kid" value=(key.kid);
                            button.inline.secondary type="submit" aria-label={ "Retire " (key.kid) } { "Retire" }
                        }
                    }
                }
            }
        }
    };
    console(StatusCode::OK, "Keys", &session, notice(&query), body)
}

#[derive(Deserialize)]
pub struct RotateForm {
    csrf_token: String,
    alg: String,
    now: Option<String>,
}

impl ConsoleForm for RotateForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

/// `POST /admin/keys/rotate`.
pub async fn rotate_key(
    (State(admin), State(sessions), State(cookies), State(edge)): Pieces,
    client: ClientInfo,
    headers: HeaderMap,
    form: Result<Input<RotateForm>, ApiError>,
) -> Response {
    let (session, form) =
        match checked_form(&admin, &sessions, &cookies, &edge, &headers, form).await {
            Ok(checked) => checked,
            Err(answer) => return answer,
        };
    let algorithm = match form.alg.parse::<Algorithm>() {
        Ok(alg @ (Algorithm::EdDSA | Algorithm::ES256 | Algorithm::RS256)) => alg,
        _ => return error_page(&ApiError::bad_request("alg must be EdDSA, ES256 or RS256")),
    };
    match admin
        .rotate_key(caller(&session, &client), algorithm, form.now.is_some())
        .await
    {
        Ok(_) => see_other("/admin/keys?notice=rotated"),
        Err(e) => error_page(&ApiError::from(e)),
    }
}

#[derive(Deserialize)]
pub struct RetireForm {
    csrf_token: String,
    kid: String,
}

impl ConsoleForm for RetireForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

/// `POST /admin/keys/retire`.
pub async fn retire_key(
    (State(admin), State(sessions), State(cookies), State(edge)): Pieces,
    client: ClientInfo,
    headers: HeaderMap,
    form: Result<Input<RetireForm>, ApiError>,
) -> Response {
    let (session, form) =
        match checked_form(&admin, &sessions, &cookies, &edge, &headers, form).await {
            Ok(checked) => checked,
            Err(answer) => return answer,
        };
    match admin.retire_key(caller(&session, &client), &form.kid).await {
        Ok(true) => see_other("/admin/keys?notice=retired"),
        Ok(false) => error_page(&ApiError::not_found("there is no such key still in use")),
        Err(e) => error_page(&ApiError::from(e)),
    }
}

/// `GET /admin/events?user=&kind=&before=`: the audit log, newest first.
pub async fn events(
    (State(admin), State(sessions), State(cookies), State(_)): Pieces,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let session = match admin_session(&admin, &sessions, &cookies, &headers).await {
        Ok(session) => session,
        Err(answer) => return answer,
    };
    const PAGE: u32 = 50;
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let text = |name: &str| {
        query
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let (user_text, kind_text) = (text("user"), text("kind"));
    let (since_text, until_text) = (text("since"), text("until"));
    let (since, until) = match (
        since_text.as_deref().map(form_time).transpose(),
        until_text.as_deref().map(form_time).transpose(),
    ) {
        (Ok(since), Ok(until)) => (since, until),
        _ => {
            return error_page(&ApiError::bad_request(
                "a time must read like 2026-12-04T10:00 (UTC)",
            ));
        }
    };
    let kind = kind_text
        .as_deref()
        .and_then(|k| k.parse::<EventKind>().ok());
    let user = match &user_text {
        None => None,
        Some(u) => match UserId::parse(u) {
            Some(id) => Some(Some(id)),
            None => match admin.find_user(u).await {
                Ok(found) => Some(found.map(|f| f.id)),
                Err(e) => return error_page(&e.into()),
            },
        },
    };
    let found = match user {
        // A name nobody has: no events.
        Some(None) => Vec::new(),
        user => {
            let filter = EventQuery {
                user: user.flatten(),
                kind,
                since,
                until,
                before: text("before").and_then(|b| b.parse().ok()),
                limit: PAGE,
            };
            match admin.events(&filter).await {
                Ok(found) => found,
                Err(e) => return error_page(&e.into()),
            }
        }
    };
    let next = (found.len() == PAGE as usize)
        .then(|| found.last().map(|e| e.id))
        .flatten();
    // Who acted, by name: the few accounts that did something on this page.
    let mut names: HashMap<String, String> = HashMap::new();
    for event in &found {
        if let Some(id) = event.event.actor.id()
            && event.event.actor.kind() == "user"
            && !names.contains_key(&id)
            && let Some(parsed) = UserId::parse(&id)
            && let Ok(actor) = admin.user(parsed).await
        {
            names.insert(id, actor.username.as_str().to_owned());
        }
    }
    let body = html! {
        form method="get" action="/admin/events" role="search" {
            div.row {
                div {
                    label for="user" { "User" }
                    input #user name="user" value=[user_text.as_deref()] placeholder="name or id";
                }
                div {
                    label for="kind" { "Kind" }
                    select #kind name="kind" {
                        option value="" { "any" }
                        @for k in EventKind::ALL {
                            option value=(k.as_str()) selected[Some(*k) == kind] { (k.as_str()) }
                        }
                    }
                }
                div {
                    label for="since" { "From (UTC)" }
                    input #since name="since" type="datetime-local" value=[since_text.as_deref()];
                }
                div {
                    label for="until" { "Until (UTC)" }
                    input #until name="until" type="datetime-local" value=[until_text.as_deref()];
                }
                button.inline type="submit" { "Filter" }
            }
        }
        @if found.is_empty() {
            p.muted { "No events." }
        } @else {
            div.scroll tabindex="0" role="region" aria-label="Events" {
                table {
                    thead { tr { th { "When (UTC)" } th { "What" } th { "Who" } th { "User" } th { "From" } th { "Detail" } } }
                    tbody {
                        @for event in &found {
                            @let view = event_view(event);
                            tr.failure[view.outcome == Outcome::Failure] {
                                td { (view.at.get(..19).unwrap_or_default().replace('T', " ")) }
                                td { (view.kind.as_str()) @if view.outcome == Outcome::Failure { " (failed)" } }
                                td {
                                    @match view.actor.id.as_ref().and_then(|id| names.get(id)) {
                                        Some(name) => { (name) }
                                        None => { (view.actor.kind) }
                                    }
                                }
                                td { (view.username.clone().or(view.user.clone()).unwrap_or_default()) }
                                td { (view.address.clone().unwrap_or_default()) }
                                td { (view.target.clone().unwrap_or_default()) " " (view.detail.clone().unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(next) = next {
            p {
                a href={
                    "/admin/events?before=" (next)
                    @if let Some(u) = &user_text { "&user=" (url_escape(u)) }
                    @if let Some(k) = kind { "&kind=" (k.as_str()) }
                    @if let Some(s) = &since_text { "&since=" (url_escape(s)) }
                    @if let Some(u) = &until_text { "&until=" (url_escape(u)) }
                } { "Older events" }
            }
        }
    };
    console(StatusCode::OK, "Events", &session, None, body)
}

/// A time as a `datetime-local` input sends it (`2026-12-04T10:00`, taken as
/// UTC, seconds optional), or in RFC 3339.
fn form_time(text: &str) -> Result<Timestamp, ()> {
    Timestamp::parse_rfc3339(text)
        .or_else(|| Timestamp::parse_rfc3339(&format!("{text}Z")))
        .or_else(|| Timestamp::parse_rfc3339(&format!("{text}:00Z")))
        .ok_or(())
}

fn url_escape(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
