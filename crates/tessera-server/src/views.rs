//! The JSON shapes of users and sessions, shared by the routes that answer with them.

use serde::Serialize;
use tessera_core::{
    Algorithm, Audience, ClientId, DisplayName, Email, GrantType, LogoutUri, RedirectUri, Roles,
    Scopes, SessionId, Timestamp, TokenFormat, UserId, Username,
};
use tessera_store::{Client, Profile, User};

use tessera_store::SessionRecord;

use crate::services::sessions::{ActiveSession, SessionPolicy, idle_expiry};

#[derive(Serialize)]
pub struct UserView<'a> {
    pub id: UserId,
    pub username: &'a Username,
    pub roles: &'a Roles,
    pub created_at: Timestamp,
}

impl<'a> From<&'a User> for UserView<'a> {
    fn from(user: &'a User) -> Self {
        Self {
            id: user.id,
            username: &user.username,
            roles: &user.roles,
            created_at: user.created_at,
        }
    }
}

#[derive(Serialize)]
pub struct SessionTimes<'a> {
    pub id: &'a SessionId,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// When the session ends if unused: the sliding idle limit.
    pub idle_expires_at: Timestamp,
    /// When the session ends however active: the absolute limit.
    pub expires_at: Timestamp,
    /// How its person proved who they are (RFC 8176 names, `mfa` for two
    /// factors), and the `acr` that makes.
    pub amr: Vec<&'static str>,
    pub acr: &'static str,
}

impl<'a> SessionTimes<'a> {
    pub fn of(session: &'a ActiveSession, policy: &SessionPolicy) -> Self {
        Self {
            id: session.id(),
            created_at: session.created_at(),
            last_seen_at: session.last_seen_at(),
            idle_expires_at: session.idle_expires_at(policy),
            expires_at: session.expires_at(),
            amr: session.methods().amr(),
            acr: session.methods().acr(),
        }
    }

    pub fn of_record(record: &'a SessionRecord, policy: &SessionPolicy) -> Self {
        Self {
            id: &record.id,
            created_at: record.created_at,
            last_seen_at: record.last_seen_at,
            idle_expires_at: idle_expiry(record.last_seen_at, record.expires_at, policy),
            expires_at: record.expires_at,
            amr: record.methods.amr(),
            acr: record.methods.acr(),
        }
    }
}

/// The answer to login and to `GET /v1/session`.
#[derive(Serialize)]
pub struct CurrentSession<'a> {
    pub user: UserView<'a>,
    pub session: SessionTimes<'a>,
    pub csrf_token: &'a str,
}

impl<'a> CurrentSession<'a> {
    pub fn of(session: &'a ActiveSession, policy: &SessionPolicy) -> Self {
        Self {
            user: UserView::from(session.user()),
            session: SessionTimes::of(session, policy),
            csrf_token: session.csrf_token().as_str(),
        }
    }
}

/// A signing key as listings show it: its public facts and state, never the key.
pub fn key_views(set: &crate::services::keyring::KeySet, now: Timestamp) -> Vec<serde_json::Value> {
    set.keys
        .iter()
        .map(|k| {
            serde_json::json!({
                "kid": k.kid,
                "alg": k.algorithm.as_str(),
                "state": k.state(now, set.is_signer(&k.kid)),
                "created_at": k.created_at,
                "signs_from": k.signs_from,
                "published_until": k.published_until,
                "retired_at": k.retired_at,
            })
        })
        .collect()
}

/// A user as administrators see it: with whether the account is disabled.
#[derive(Serialize)]
pub struct AdminUserView<'a> {
    #[serde(flatten)]
    pub user: UserView<'a>,
    pub disabled: bool,
}

impl<'a> From<&'a User> for AdminUserView<'a> {
    fn from(user: &'a User) -> Self {
        Self {
            user: UserView::from(user),
            disabled: user.disabled,
        }
    }
}

/// A client as the CLI and the admin API show it; never its secret's hash.
#[derive(Serialize)]
pub struct ClientView<'a> {
    pub client_id: ClientId,
    pub name: &'a str,
    pub public: bool,
    pub grants: &'a [GrantType],
    pub scope: &'a Scopes,
    pub audiences: &'a [Audience],
    pub token_format: TokenFormat,
    pub alg: Algorithm,
    pub access_ttl_seconds: u64,
    /// RFC 9449 §5.2: every access token is bound to the client's key.
    pub dpop_bound_access_tokens: bool,
    pub created_at: Timestamp,
    pub redirect_uris: &'a [RedirectUri],
    pub post_logout_redirect_uris: &'a [RedirectUri],
    pub backchannel_logout_uri: Option<&'a LogoutUri>,
    pub first_party: bool,
    pub require_par: bool,
    pub id_token_alg: Algorithm,
}

impl<'a> From<&'a Client> for ClientView<'a> {
    fn from(client: &'a Client) -> Self {
        let flow = &client.code_flow;
        Self {
            client_id: client.id,
            name: client.name.as_str(),
            public: client.secret_hash.is_none(),
            grants: &client.grants,
            scope: &client.scopes,
            audiences: &client.audiences,
            token_format: client.token_format,
            alg: client.algorithm,
            access_ttl_seconds: client.access_ttl.as_secs(),
            dpop_bound_access_tokens: client.dpop_bound_access_tokens,
            created_at: client.created_at,
            redirect_uris: &flow.redirect_uris,
            post_logout_redirect_uris: &flow.post_logout_redirect_uris,
            backchannel_logout_uri: flow.backchannel_logout_uri.as_ref(),
            first_party: flow.first_party,
            require_par: flow.require_par,
            id_token_alg: flow.id_token_algorithm,
        }
    }
}

/// A client just registered: with its secret, shown this once.
#[derive(Serialize)]
pub struct AddedClientView<'a> {
    #[serde(flatten)]
    pub client: ClientView<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<&'a str>,
}

/// A profile as the admin API and the CLI show it: every member, `null` when unset.
#[derive(Serialize)]
pub struct ProfileView<'a> {
    pub name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub email_verified: bool,
    pub updated_at: Option<Timestamp>,
}

impl<'a> From<&'a Profile> for ProfileView<'a> {
    fn from(profile: &'a Profile) -> Self {
        Self {
            name: profile.name.as_ref().map(DisplayName::as_str),
            email: profile.email.as_ref().map(Email::as_str),
            email_verified: profile.email_verified,
            updated_at: profile.updated_at,
        }
    }
}

/// An audit event as the admin API and `tessera events --json` write it.
pub fn event_view(event: &tessera_store::Event) -> tessera_proto::AuditEventBody {
    let e = &event.event;
    tessera_proto::AuditEventBody {
        id: event.id,
        at: e.at.to_rfc3339(),
        kind: e.kind,
        outcome: e.outcome,
        actor: tessera_proto::audit::ActorBody {
            kind: e.actor.kind().to_owned(),
            id: e.actor.id(),
        },
        user: e.user.map(|u| u.to_string()),
        username: e.username.clone(),
        target: e.target.clone(),
        address: e.address.map(|a| a.to_string()),
        detail: e.detail.clone(),
    }
}

/// A session's device as a person reads it ("Firefox on Linux"), from its user
/// agent; `None` when the user agent says nothing a person would recognise.
pub fn device_in_words(user_agent: Option<&str>) -> Option<String> {
    // Parsing takes microseconds, a page shows several and people keep few
    // browsers: the answers are kept.
    static SEEN: std::sync::LazyLock<quick_cache::sync::Cache<String, Option<String>>> =
        std::sync::LazyLock::new(|| quick_cache::sync::Cache::new(4096));
    let user_agent = user_agent?;
    if let Some(words) = SEEN.get(user_agent) {
        return words;
    }
    let words = parse_device(user_agent);
    SEEN.insert(user_agent.to_owned(), words.clone());
    words
}

fn parse_device(user_agent: &str) -> Option<String> {
    let parsed = woothee::parser::Parser::new().parse(user_agent)?;
    // Not a browser (a library, a script): the product it names itself by.
    if !matches!(
        parsed.category,
        "pc" | "smartphone" | "mobilephone" | "appliance"
    ) {
        let product = user_agent.split(['/', ' ']).next().unwrap_or_default();
        let readable = !product.is_empty()
            && product.len() <= 40
            && product
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        return readable.then(|| product.to_owned());
    }
    let known = |s: &str| !s.is_empty() && s != woothee::woothee::VALUE_UNKNOWN;
    let os = match parsed.os {
        "Mac OSX" => "macOS",
        other => other,
    };
    match (known(parsed.name), known(os)) {
        (true, true) => Some(format!("{} on {os}", parsed.name)),
        (true, false) => Some(parsed.name.to_owned()),
        (false, true) => Some(format!("A browser on {os}")),
        (false, false) => None,
    }
}

#[cfg(test)]
mod device_tests {
    use super::device_in_words;

    #[test]
    fn devices_read_as_words() {
        for (agent, words) in [
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
                Some("Firefox on Linux"),
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 \
                 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
                Some("Safari on macOS"),
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like \
                 Gecko) Chrome/131.0.0.0 Safari/537.36",
                Some("Chrome on Windows 10"),
            ),
            ("curl/8.5.0", Some("curl")),
            ("<script>/1", None),
            ("", None),
        ] {
            assert_eq!(device_in_words(Some(agent)).as_deref(), words, "{agent}");
        }
        assert_eq!(device_in_words(None), None);
    }
}
