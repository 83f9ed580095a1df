//! The statements whose text differs between SQLite and PostgreSQL by a detail of
//! dialect, built once per database from its [`Sql`](crate::Sql) consts
//! ([`BYTE_ORDER`](crate::Sql::BYTE_ORDER), [`POSITION`](crate::Sql::POSITION),
//! [`LOCK_USER`](crate::Sql::LOCK_USER)). Each string lives as long as the process,
//! so sqlx's statement cache keys on it as on a literal.

use crate::{client_columns, key_columns, session_columns, user_columns};

/// The dialect-dependent statements of one database: see
/// [`Sql::statements`](crate::Sql::statements).
pub struct Statements {
    pub(crate) list_users: String,
    pub(crate) search_users: String,
    pub(crate) create_session: String,
    pub(crate) sessions_of_user: String,
    pub(crate) list_clients: String,
    pub(crate) signing_keys: String,
}

impl Statements {
    /// A user's sessions with their user, oldest first (`$1`: the user's id): for a
    /// backend that runs it on a connection of its own.
    pub fn sessions_of_user(&self) -> &str {
        &self.sessions_of_user
    }

    /// The statements with `byte_order` after each text column sorted or compared
    /// on, `position` as the substring search, and `lock_user` after the read of the
    /// user a session is created for.
    pub fn new(byte_order: &str, position: &str, lock_user: &str) -> Self {
        Self {
            list_users: format!(
                concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users u ORDER BY u.username{}"
                ),
                byte_order
            ),
            // A position, not LIKE: what an admin types is matched literally.
            search_users: format!(
                concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users u WHERE {position}(u.username, $1) > 0 \
                     AND u.username{order} > $2 ORDER BY u.username{order} LIMIT $3"
                ),
                position = position,
                order = byte_order
            ),
            create_session: format!(
                "INSERT INTO sessions (id, secret_hash, user_id, csrf_token, created_at, \
                   last_seen_at, expires_at, client_address, user_agent, amr) \
                 SELECT $1, $2, id, $3, $4, $4, $5, $6, $7, $9 FROM users \
                 WHERE id = $8 AND NOT disabled{lock_user}"
            ),
            sessions_of_user: format!(
                concat!(
                    "SELECT ",
                    session_columns!(),
                    ", ",
                    user_columns!(),
                    " FROM sessions s JOIN users u ON u.id = s.user_id \
                     WHERE s.user_id = $1 ORDER BY s.created_at, s.id{}"
                ),
                byte_order
            ),
            list_clients: format!(
                concat!(
                    "SELECT ",
                    client_columns!(),
                    " FROM clients ORDER BY created_at, id{}"
                ),
                byte_order
            ),
            signing_keys: format!(
                concat!(
                    "SELECT ",
                    key_columns!(),
                    " FROM signing_keys ORDER BY created_at, kid{}"
                ),
                byte_order
            ),
        }
    }
}
