//! `/admin/v1/`: what an operator does over HTTP — find users and change their
//! profiles, see and end their sessions, kick them, register and remove clients,
//! list keys, count who is online. Every handler takes [`Admin`] (or
//! [`AdminInput`], an admin with a JSON body); anyone else gets 401 or 403.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use tessera_core::{
    Algorithm, Audience, ClientId, ClientName, DisplayName, Email, GrantType, LogoutUri,
    RedirectUri, Role, Roles, Scopes, SessionId, Timestamp, TokenFormat, UserId, Username,
};

use crate::http::error::ApiError;
use crate::http::extract::{Admin, AdminInput};
use crate::services::accounts::ProfileChange;
use crate::services::admin::{AdminError, Administration};
use crate::services::audit::EventQuery;
use crate::services::clients::{AddClientError, ClientSpec, CodeFlow};
use crate::services::presence::{DEFAULT_WINDOW, MAX_WINDOW};
use crate::views::{
    AddedClientView, AdminUserView, ClientView, ProfileView, SessionTimes, event_view, key_views,
};
use tessera_proto::{AuditPage, EventKind};

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 500;

fn no_such_user() -> ApiError {
    ApiError::not_found("there is no user with this id")
}

/// `limit`: how many a page holds.
fn page_limit(query: &HashMap<String, String>) -> Result<u32, ApiError> {
    match query.get("limit") {
        None => Ok(DEFAULT_PAGE),
        Some(limit) => limit
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=MAX_PAGE).contains(l))
            .ok_or_else(|| {
                ApiError::bad_request(format!("limit must be a number from 1 to {MAX_PAGE}"))
            }),
    }
}

fn user_id(id: &str) -> Result<UserId, ApiError> {
    UserId::parse(id).ok_or_else(no_such_user)
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::NoSuchUser | AdminError::NoSuchSession | AdminError::NoSuchClient => {
                ApiError::not_found(error.to_string())
            }
            AdminError::UserDisabled => {
                ApiError::new(StatusCode::CONFLICT, "user_disabled", error.to_string())
            }
            AdminError::PublicClient => {
                ApiError::new(StatusCode::CONFLICT, "public_client", error.to_string())
            }
            AdminError::Store(e) => e.into(),
        }
    }
}

impl From<AddClientError> for ApiError {
    fn from(error: AddClientError) -> Self {
        match error {
            AddClientError::Invalid(reason) => ApiError::bad_request(reason),
            AddClientError::NameTaken(_) => {
                ApiError::new(StatusCode::CONFLICT, "name_taken", error.to_string())
            }
            AddClientError::Store(e) => e.into(),
        }
    }
}

/// `GET /admin/v1/users?q=&after=&limit=`: users whose username contains `q`, by
/// username, one page at a time; `next` is the `after` of the next page.
pub async fn users(
    State(admin): State<Arc<Administration>>,
    Query(query): Query<HashMap<String, String>>,
    _: Admin,
) -> Result<impl IntoResponse, ApiError> {
    // Usernames are stored lowercase; a search is for what the admin means.
    let contains = query
        .get("q")
        .map_or_else(String::new, |q| q.trim().to_lowercase());
    let after = match query.get("after") {
        None => None,
        Some(after) => Some(
            Username::parse(after)
                .map_err(|_| ApiError::bad_request("after must be a username from `next`"))?,
        ),
    };
    let limit = page_limit(&query)?;
    let page = admin.search(&contains, after.as_ref(), limit).await?;
    let next = (page.len() == limit as usize)
        .then(|| page.last().map(|u| u.username.as_str().to_owned()))
        .flatten();
    let users: Vec<_> = page.iter().map(AdminUserView::from).collect();
    Ok(Json(json!({ "users": users, "next": next })))
}

/// `GET /admin/v1/users/{id}`: the user and their profile.
pub async fn user(
    State(admin): State<Arc<Administration>>,
    Path(id): Path<String>,
    _: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let (user, profile) = admin.user_with_profile(user_id(&id)?).await?;
    Ok(Json(json!({
        "user": AdminUserView::from(&user),
        "profile": ProfileView::from(&profile),
    })))
}

/// The body of `PATCH /admin/v1/users/{id}`: a member left out keeps its value,
/// `null` clears it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    #[serde(default, deserialize_with = "present")]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    email: Option<Option<String>>,
    #[serde(default)]
    email_verified: Option<bool>,
}

/// A member that is present, `null` or not: `Some(None)` for `null`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

impl ProfilePatch {
    fn parse(self) -> Result<ProfileChange, ApiError> {
        fn invalid(field: &str, reason: impl std::fmt::Display) -> ApiError {
            ApiError::bad_request(format!("{field}: {reason}"))
        }
        Ok(ProfileChange {
            name: self
                .name
                .map(|n| n.map(|n| DisplayName::parse(&n)).transpose())
                .transpose()
                .map_err(|e| invalid("name", e))?,
            email: self
                .email
                .map(|e| e.map(|e| Email::parse(&e)).transpose())
                .transpose()
                .map_err(|e| invalid("email", e))?,
            email_verified: self.email_verified,
        })
    }
}

/// `PATCH /admin/v1/users/{id}`: changes the user's profile; answers as `GET`.
pub async fn change_user(
    State(admin): State<Arc<Administration>>,
    Path(id): Path<String>,
    AdminInput(by, patch): AdminInput<ProfilePatch>,
) -> Result<impl IntoResponse, ApiError> {
    let id = user_id(&id)?;
    let (user, profile) = admin.change_profile(by.caller, id, patch.parse()?).await?;
    Ok(Json(json!({
        "user": AdminUserView::from(&user),
        "profile": ProfileView::from(&profile),
    })))
}

/// `GET /admin/v1/users/{id}/sessions`: the user's live browser sessions.
pub async fn sessions(
    State(admin): State<Arc<Administration>>,
    Path(id): Path<String>,
    _: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let (user, sessions) = admin.sessions(user_id(&id)?).await?;
    let policy = admin.session_policy();
    let listed: Vec<_> = sessions
        .iter()
        .map(|s| {
            json!({
                "session": SessionTimes::of_record(s, policy),
                "client_address": s.client_address,
                "user_agent": s.user_agent,
            })
        })
        .collect();
    Ok(Json(
        json!({ "user": AdminUserView::from(&user), "sessions": listed }),
    ))
}

/// `DELETE /admin/v1/users/{id}/sessions/{sid}`: ends one session of the user.
pub async fn end_session(
    State(admin): State<Arc<Administration>>,
    Path((id, sid)): Path<(String, String)>,
    by: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let id = user_id(&id)?;
    let sid = SessionId::parse(&sid).map_err(|_| ApiError::from(AdminError::NoSuchSession))?;
    admin.end_session(by.caller, id, &sid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /admin/v1/users/{id}/kick`: ends everything the user holds, now, on every
/// instance and verifier; the account stays usable.
pub async fn kick(
    State(admin): State<Arc<Administration>>,
    Path(id): Path<String>,
    by: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let cut = admin.kick(by.caller, user_id(&id)?).await?;
    Ok(Json(cut_off_view(&cut)))
}

/// `POST /admin/v1/users/{id}/disable`: a kick that stays: the account cannot sign
/// in, and everything it holds is refused on every instance and verifier.
pub async fn disable(
    State(admin): State<Arc<Administration>>,
    Path(id): Path<String>,
    by: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let cut = admin.disable(by.caller, user_id(&id)?).await?;
    Ok(Json(cut_off_view(&cut)))
}

/// `POST /admin/v1/users/{id}/enable`: the account can sign in again; what it held
/// before stays refused.
pub async fn enable(
    State(admin): State<Arc<Administration>>,
    Path(id): Path<String>,
    by: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let user = admin.enable(by.caller, user_id(&id)?).await?;
    Ok(Json(json!({ "user": AdminUserView::from(&user) })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesBody {
    roles: Vec<String>,
}

/// `PUT /admin/v1/users/{id}/roles` with `{"roles": ["admin"]}`: exactly these
/// roles. Taking one away also ends everything the user holds (what was issued
/// carries the old roles); a role given counts from the user's next sign-in.
pub async fn set_roles(
    State(admin): State<Arc<Administration>>,
    Path(id): Path<String>,
    AdminInput(by, body): AdminInput<RolesBody>,
) -> Result<impl IntoResponse, ApiError> {
    let id = user_id(&id)?;
    let roles = body
        .roles
        .iter()
        .map(|role| role.parse::<Role>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (user, cut) = admin.set_roles(by.caller, id, Roles::new(roles)).await?;
    Ok(Json(json!({
        "user": AdminUserView::from(&user),
        "ended_sessions": cut.as_ref().map_or(0, |c| c.sessions),
        "revoked_refresh_tokens": cut.as_ref().map_or(0, |c| c.families),
    })))
}

/// `POST /admin/v1/users/{id}/reset-link`: a one-time password-reset link for the
/// user, working for an hour, replacing any earlier one. Its `url` is shown this
/// once; hand it to the person (tessera sends no mail).
pub async fn reset_link(
    State(admin): State<Arc<Administration>>,
    Path(id): Path<String>,
    by: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let link = admin.issue_reset_link(by.caller, user_id(&id)?).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "user": AdminUserView::from(&link.user),
            "url": link.url,
            "expires_at": link.expires_at,
        })),
    ))
}

/// `POST /admin/v1/users/{id}/reset-factors`: takes away the account's
/// authenticator app and recovery codes (a person who lost both).
pub async fn reset_factors(
    State(admin): State<Arc<Administration>>,
    Path(id): Path<String>,
    by: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let (user, removed) = admin.reset_second_factors(by.caller, user_id(&id)?).await?;
    Ok(Json(json!({
        "user": AdminUserView::from(&user),
        "second_factor_removed": removed,
    })))
}

fn cut_off_view(cut: &crate::services::accounts::CutOff) -> serde_json::Value {
    json!({
        "user": AdminUserView::from(&cut.user),
        "tokens_before": cut.at,
        "ended_sessions": cut.sessions,
        "revoked_refresh_tokens": cut.families,
    })
}

/// `GET /admin/v1/keys`: the signing keys and their states.
pub async fn keys(State(admin): State<Arc<Administration>>, _: Admin) -> impl IntoResponse {
    Json(json!({ "keys": key_views(&admin.keys(), Timestamp::now()) }))
}

/// `GET /admin/v1/online?window=SECONDS`: users and sessions active in the window.
pub async fn online(
    State(admin): State<Arc<Administration>>,
    Query(query): Query<HashMap<String, String>>,
    _: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let window = match query.get("window") {
        None => DEFAULT_WINDOW,
        Some(seconds) => seconds
            .parse::<u64>()
            .ok()
            .filter(|s| (1..=MAX_WINDOW.as_secs()).contains(s))
            .map(Duration::from_secs)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "window must be a number of seconds from 1 to {}",
                    MAX_WINDOW.as_secs()
                ))
            })?,
    };
    let online = admin.online(window).await?;
    Ok(Json(json!({
        "users": online.users,
        "sessions": online.sessions,
        "window_seconds": window.as_secs(),
    })))
}

/// The body of `POST /admin/v1/clients`: what `tessera client add` takes, by the
/// names `GET` shows. Only `name` and `grants` are required.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    pub(crate) name: String,
    pub(crate) grants: Vec<String>,
    #[serde(default)]
    pub(crate) public: bool,
    #[serde(default)]
    pub(crate) scope: String,
    #[serde(default)]
    pub(crate) audiences: Vec<String>,
    pub(crate) token_format: Option<String>,
    pub(crate) alg: Option<String>,
    pub(crate) access_ttl_seconds: Option<u64>,
    /// Every access token bound to the client's key (DPoP, RFC 9449 §5.2).
    #[serde(default)]
    pub(crate) dpop_bound_access_tokens: bool,
    #[serde(default)]
    pub(crate) redirect_uris: Vec<String>,
    #[serde(default)]
    pub(crate) post_logout_redirect_uris: Vec<String>,
    pub(crate) backchannel_logout_uri: Option<String>,
    #[serde(default)]
    pub(crate) first_party: bool,
    #[serde(default)]
    pub(crate) require_par: bool,
    pub(crate) id_token_alg: Option<String>,
}

impl NewClient {
    pub(crate) fn parse(self) -> Result<ClientSpec, ApiError> {
        fn invalid(field: &str, reason: impl std::fmt::Display) -> ApiError {
            ApiError::bad_request(format!("{field}: {reason}"))
        }
        let redirect_uris = |field: &str, uris: Vec<String>| {
            uris.iter()
                .map(|u| RedirectUri::parse(u).map_err(|e| invalid(field, e)))
                .collect::<Result<Vec<_>, _>>()
        };
        let algorithm = |field: &str, alg: Option<String>, default: Algorithm| {
            alg.map_or(Ok(default), |a| {
                a.parse::<Algorithm>()
                    .map_err(|_| invalid(field, format!("unknown algorithm {a:?}")))
            })
        };
        Ok(ClientSpec {
            name: ClientName::parse(&self.name).map_err(|e| invalid("name", e))?,
            grants: self
                .grants
                .iter()
                .map(|g| {
                    GrantType::parse(g)
                        .ok_or_else(|| invalid("grants", format!("unknown grant {g:?}")))
                })
                .collect::<Result<_, _>>()?,
            public: self.public,
            scopes: Scopes::parse(&self.scope).map_err(|e| invalid("scope", e))?,
            audiences: self
                .audiences
                .iter()
                .map(|a| Audience::parse(a).map_err(|e| invalid("audiences", e)))
                .collect::<Result<_, _>>()?,
            token_format: self
                .token_format
                .map_or(Ok(TokenFormat::default()), |f| f.parse())
                .map_err(|e| invalid("token_format", e))?,
            algorithm: algorithm("alg", self.alg, Algorithm::default())?,
            access_ttl: self
                .access_ttl_seconds
                .map_or(ClientSpec::DEFAULT_ACCESS_TTL, Duration::from_secs),
            dpop_bound_access_tokens: self.dpop_bound_access_tokens,
            code_flow: CodeFlow {
                redirect_uris: redirect_uris("redirect_uris", self.redirect_uris)?,
                post_logout_redirect_uris: redirect_uris(
                    "post_logout_redirect_uris",
                    self.post_logout_redirect_uris,
                )?,
                backchannel_logout_uri: self
                    .backchannel_logout_uri
                    .map(|u| LogoutUri::parse(&u).map_err(|e| invalid("backchannel_logout_uri", e)))
                    .transpose()?,
                first_party: self.first_party,
                require_par: self.require_par,
                id_token_algorithm: algorithm(
                    "id_token_alg",
                    self.id_token_alg,
                    CodeFlow::default().id_token_algorithm,
                )?,
            },
        })
    }
}

fn client_id(id: &str) -> Result<ClientId, ApiError> {
    ClientId::parse(id).ok_or_else(|| AdminError::NoSuchClient.into())
}

/// `POST /admin/v1/clients`: registers a client; `201` with it and, for a
/// confidential client, its `client_secret`, shown this once.
pub async fn add_client(
    State(admin): State<Arc<Administration>>,
    AdminInput(by, new): AdminInput<NewClient>,
) -> Result<impl IntoResponse, ApiError> {
    let (client, secret) = admin.add_client(by.caller, new.parse()?).await?;
    let secret = secret.map(|s| s.expose());
    let view = AddedClientView {
        client: ClientView::from(&client),
        client_secret: secret.as_deref(),
    };
    Ok((StatusCode::CREATED, Json(json!({ "client": view }))))
}

/// `GET /admin/v1/clients`, oldest first.
pub async fn clients(
    State(admin): State<Arc<Administration>>,
    _: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let clients = admin.clients().await?;
    let views: Vec<_> = clients.iter().map(ClientView::from).collect();
    Ok(Json(json!({ "clients": views })))
}

/// `GET /admin/v1/clients/{id}`
pub async fn client(
    State(admin): State<Arc<Administration>>,
    Path(id): Path<String>,
    _: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let client = admin.client(&client_id(&id)?).await?;
    Ok(Json(json!({ "client": ClientView::from(&client) })))
}

/// `POST /admin/v1/clients/{id}/secret`: a new secret for a confidential client,
/// `201` with it, shown this once; the old one stops working at once.
pub async fn rotate_client_secret(
    State(admin): State<Arc<Administration>>,
    Path(id): Path<String>,
    by: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let id = client_id(&id)?;
    let secret = admin.rotate_client_secret(by.caller, &id).await?.expose();
    let client = admin.client(&id).await?;
    let view = AddedClientView {
        client: ClientView::from(&client),
        client_secret: Some(&secret),
    };
    Ok((StatusCode::CREATED, Json(json!({ "client": view }))))
}

/// `DELETE /admin/v1/clients/{id}`: removes the client; every token issued to it
/// is refused from now on, on every instance and verifier.
pub async fn remove_client(
    State(admin): State<Arc<Administration>>,
    Path(id): Path<String>,
    by: Admin,
) -> Result<impl IntoResponse, ApiError> {
    admin.remove_client(by.caller, &client_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /admin/v1/events?user=&kind=&since=&until=&before=&limit=`: the audit log,
/// newest first, one page at a time. `user` is an id or a username (events that
/// concern the account or that it did), `kind` one of the log's kinds, `since` and
/// `until` RFC 3339 times (from, inclusive; to, exclusive), `before` the `next` of
/// the previous page.
pub async fn events(
    State(admin): State<Arc<Administration>>,
    Query(query): Query<HashMap<String, String>>,
    _: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let time = |name: &str| -> Result<Option<Timestamp>, ApiError> {
        query
            .get(name)
            .map(|t| {
                Timestamp::parse_rfc3339(t).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "{name} must be an RFC 3339 time, like 2026-12-04T10:00:00Z"
                    ))
                })
            })
            .transpose()
    };
    let user = match query.get("user").filter(|u| !u.is_empty()) {
        None => None,
        // An id as it is (its account may be gone); a name, as the account holds
        // it now. Nobody by that name has no events: an empty page.
        Some(user) => match UserId::parse(user) {
            Some(id) => Some(id),
            None => match admin.find_user(user).await? {
                Some(found) => Some(found.id),
                None => {
                    return Ok(Json(AuditPage {
                        events: Vec::new(),
                        next: None,
                    }));
                }
            },
        },
    };
    let kind = query
        .get("kind")
        .filter(|k| !k.is_empty())
        .map(|k| k.parse::<EventKind>())
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let before = query
        .get("before")
        .map(|b| {
            b.parse::<i64>()
                .map_err(|_| ApiError::bad_request("before must be the `next` of a page"))
        })
        .transpose()?;
    let limit = page_limit(&query)?;
    let events = admin
        .events(&EventQuery {
            user,
            kind,
            since: time("since")?,
            until: time("until")?,
            before,
            limit,
        })
        .await?;
    let next = (events.len() == limit as usize)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    Ok(Json(AuditPage {
        events: events.iter().map(event_view).collect(),
        next,
    }))
}
