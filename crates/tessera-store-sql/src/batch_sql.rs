//! The statements of a batch (see `batch`), written once for both databases and run
//! through [`BatchConnection`]: on PostgreSQL a sqlx connection; on SQLite the
//! writer's own connection, driven directly on its thread (`tessera-store-sqlite`'s
//! `writer`), because each statement through sqlx's SQLite driver is a round trip
//! to its worker thread and back, a row at a time, and those hand-offs, not SQLite,
//! were most of a batch's time.

use std::sync::Arc;

use sqlx::AssertSqlSafe;
use tessera_core::{SecretHash, Timestamp};
use tessera_store::{
    AuthorizationCode, CreateSessionError, NewRefreshFamily, Redemption, SessionClient, StoreError,
};

use crate::rows::{self, Columns};
use crate::{code_columns, store_error};

/// A value bound to a statement or read from a row, of the schema's few types.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Int(i64),
    Bytes(Vec<u8>),
    /// A text column's NULL (every nullable column a batch writes is text).
    Null,
}

impl From<Option<String>> for Value {
    fn from(value: Option<String>) -> Self {
        value.map_or(Self::Null, Self::Text)
    }
}

/// A statement's text (placeholders only: see [`value_rows`]) and its values.
pub struct Statement {
    pub text: String,
    pub values: Vec<Value>,
}

/// A row read back, its columns by name.
pub struct OwnedRow {
    pub names: Arc<[String]>,
    pub values: Vec<Value>,
}

impl OwnedRow {
    fn value(&self, column: &str) -> Result<&Value, StoreError> {
        self.names
            .iter()
            .position(|name| name == column)
            .and_then(|at| self.values.get(at))
            .ok_or_else(|| StoreError::Corrupt(format!("no column {column} in the row")))
    }
}

impl Columns for OwnedRow {
    fn text(&self, column: &str) -> Result<String, StoreError> {
        self.optional_text(column)?
            .ok_or_else(|| StoreError::Corrupt(format!("{column} is NULL")))
    }
    fn optional_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        match self.value(column)? {
            Value::Text(text) => Ok(Some(text.clone())),
            Value::Null => Ok(None),
            _ => Err(StoreError::Corrupt(format!("{column} is not text"))),
        }
    }
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        self.optional_int(column)?
            .ok_or_else(|| StoreError::Corrupt(format!("{column} is NULL")))
    }
    fn optional_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        match self.value(column)? {
            Value::Int(int) => Ok(Some(*int)),
            Value::Null => Ok(None),
            _ => Err(StoreError::Corrupt(format!("{column} is not an integer"))),
        }
    }
    fn flag(&self, column: &str) -> Result<bool, StoreError> {
        self.int(column).map(|int| int != 0)
    }
    fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError> {
        self.optional_bytes(column)?
            .ok_or_else(|| StoreError::Corrupt(format!("{column} is NULL")))
    }
    fn optional_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.value(column)? {
            Value::Bytes(bytes) => Ok(Some(bytes.clone())),
            Value::Null => Ok(None),
            _ => Err(StoreError::Corrupt(format!("{column} is not bytes"))),
        }
    }
}

/// Where a batch's statements run.
pub trait BatchConnection {
    type Row: Columns;
    /// The rows `statement` returns.
    fn rows(
        &mut self,
        statement: Statement,
    ) -> impl Future<Output = Result<Vec<Self::Row>, StoreError>> + Send;

    /// Told after each batch that committed, once its requests are answered
    /// (SQLite's writer, which keeps its log checkpointed).
    fn committed(&mut self) {}
}

impl BatchConnection for sqlx::PgConnection {
    type Row = sqlx::postgres::PgRow;

    async fn rows(&mut self, statement: Statement) -> Result<Vec<Self::Row>, StoreError> {
        let mut query = sqlx::query(AssertSqlSafe(statement.text));
        for value in statement.values {
            query = match value {
                Value::Text(text) => query.bind(text),
                Value::Int(int) => query.bind(int),
                Value::Bytes(bytes) => query.bind(bytes),
                Value::Null => query.bind(None::<String>),
            };
        }
        query.fetch_all(&mut *self).await.map_err(store_error)
    }
}

/// Writes many authorization codes in one statement: each answer is `Ok` or, for a
/// hash taken before or earlier in `codes`, [`StoreError::Conflict`].
pub async fn insert_codes<C: BatchConnection>(
    conn: &mut C,
    codes: Vec<AuthorizationCode>,
) -> Vec<Result<(), StoreError>> {
    let text = format!(
        concat!(
            "INSERT INTO authorization_codes (",
            code_columns!(),
            ") VALUES {} ON CONFLICT (hash) DO NOTHING RETURNING hash"
        ),
        value_rows(codes.len(), 15, 1)
    );
    let values = codes
        .iter()
        .flat_map(|code| {
            [
                Value::Bytes(code.hash.as_bytes().to_vec()),
                Value::Text(code.client_id.to_string()),
                Value::Text(code.user.to_string()),
                Value::Text(code.session.as_str().to_owned()),
                Value::Text(code.redirect_uri.clone()),
                Value::Text(code.scopes.to_string()),
                code.code_challenge.clone().into(),
                code.nonce.clone().into(),
                Value::Int(code.auth_time.as_millis()),
                Value::Text(code.family.as_str().to_owned()),
                Value::Text(code.jti.clone()),
                Value::Int(code.issued_at.as_millis()),
                Value::Int(code.expires_at.as_millis()),
                Value::Int(code.forget_at.as_millis()),
                code.dpop_jkt.clone().into(),
            ]
        })
        .collect();
    let inserted: Result<Vec<[u8; 32]>, StoreError> = conn
        .rows(Statement { text, values })
        .await
        .and_then(|rows| {
            rows.iter()
                .map(|row| {
                    Ok(*rows::hash(row.bytes("hash")?, "authorization code hash")?.as_bytes())
                })
                .collect()
        });
    let mut inserted = match inserted {
        Ok(hashes) => hashes,
        Err(e) => return codes.iter().map(|_| Err(e.clone())).collect(),
    };
    codes
        .iter()
        .map(
            |code| match inserted.iter().position(|h| h == code.hash.as_bytes()) {
                // Answered once: a second code of the same hash in this batch
                // conflicts with the first.
                Some(at) => {
                    inserted.swap_remove(at);
                    Ok(())
                }
                None => Err(StoreError::Conflict(
                    "an authorization code with this hash exists".into(),
                )),
            },
        )
        .collect()
}

/// Spends many authorization codes: one statement spends every unspent one, so that
/// of any number of redemptions, on any instance, exactly one finds a code unspent
/// (PostgreSQL's second `UPDATE` waits for the first's row lock and then sees
/// `redeemed_at` set; SQLite serialises writers); one more reads back those it did
/// not spend, to tell a replay from a code never issued. A code presented twice in
/// one batch is `First` for the earlier presentation and `Again` for the later.
pub async fn redeem_codes<C: BatchConnection>(
    conn: &mut C,
    presented: Vec<(SecretHash, Timestamp)>,
) -> Vec<Result<Redemption, StoreError>> {
    let at = presented
        .iter()
        .map(|(_, at)| *at)
        .max()
        .unwrap_or_else(Timestamp::now);
    let mut hashes: Vec<[u8; 32]> = presented.iter().map(|(h, _)| *h.as_bytes()).collect();
    hashes.sort_unstable();
    hashes.dedup();
    let bytes = |hashes: &[&[u8; 32]]| -> Vec<Value> {
        hashes.iter().map(|h| Value::Bytes(h.to_vec())).collect()
    };
    let spent = async {
        let text = format!(
            concat!(
                "UPDATE authorization_codes SET redeemed_at = $1 \
                 WHERE redeemed_at IS NULL AND hash IN ({}) RETURNING ",
                code_columns!()
            ),
            placeholders(hashes.len(), 2)
        );
        let mut values = vec![Value::Int(at.as_millis())];
        values.extend(bytes(&hashes.iter().collect::<Vec<_>>()));
        let spent = conn
            .rows(Statement { text, values })
            .await?
            .iter()
            .map(rows::authorization_code)
            .collect::<Result<Vec<_>, _>>()?;
        let unspent: Vec<&[u8; 32]> = hashes
            .iter()
            .filter(|h| !spent.iter().any(|code| code.hash.as_bytes() == *h))
            .collect();
        if unspent.is_empty() {
            return Ok((spent, Vec::new()));
        }
        let text = format!(
            concat!(
                "SELECT ",
                code_columns!(),
                " FROM authorization_codes WHERE hash IN ({})"
            ),
            placeholders(unspent.len(), 1)
        );
        let again = conn
            .rows(Statement {
                text,
                values: bytes(&unspent),
            })
            .await?
            .iter()
            .map(rows::authorization_code)
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, StoreError>((spent, again))
    };
    let (spent, again) = match spent.await {
        Ok(found) => found,
        Err(e) => return presented.iter().map(|_| Err(e.clone())).collect(),
    };
    let mut answered = vec![false; spent.len()];
    presented
        .iter()
        .map(|(hash, _)| {
            let matching = |code: &&AuthorizationCode| code.hash.as_bytes() == hash.as_bytes();
            if let Some(i) = spent.iter().position(|code| matching(&code)) {
                let code = spent[i].clone();
                return Ok(if std::mem::replace(&mut answered[i], true) {
                    Redemption::Again(code)
                } else {
                    Redemption::First(code)
                });
            }
            // Spent before this batch.
            Ok(match again.iter().find(matching) {
                Some(code) => Redemption::Again(code.clone()),
                None => Redemption::Unknown,
            })
        })
        .collect()
}

/// Starts many refresh families in one statement, each only if its user exists and
/// is not disabled (`lock_user`, [`Sql::LOCK_USER`](crate::Sql::LOCK_USER), keeps a
/// concurrent disable from slipping between): each answer is `Ok` or
/// `UserDisabled`. Family ids are 128 random bits, so a taken one (a conflict of
/// the whole statement) does not happen.
pub async fn create_families<C: BatchConnection>(
    conn: &mut C,
    families: Vec<NewRefreshFamily>,
    lock_user: &str,
) -> Vec<Result<(), CreateSessionError>> {
    // VALUES names its columns column1, column2, … in both databases.
    let lock = if lock_user.is_empty() {
        String::new()
    } else {
        format!("{lock_user} OF u")
    };
    let text = format!(
        "INSERT INTO refresh_families (id, client_id, user_id, scopes, audience, \
           session_id, current_hash, generation, created_at, expires_at, dpop_jkt) \
         SELECT v.column1, v.column2, u.id, v.column3, v.column4, v.column5, v.column6, 0, \
           v.column7, v.column8, v.column10 \
         FROM (VALUES {}) AS v JOIN users u ON u.id = v.column9 AND NOT u.disabled{lock} \
         RETURNING id",
        value_rows(families.len(), 10, 1)
    );
    let values = families
        .iter()
        .flat_map(|family| {
            [
                Value::Text(family.id.as_str().to_owned()),
                Value::Text(family.client_id.to_string()),
                Value::Text(family.scopes.to_string()),
                family
                    .audience
                    .as_ref()
                    .map(|a| a.as_str().to_owned())
                    .into(),
                family
                    .session
                    .as_ref()
                    .map(|s| s.as_str().to_owned())
                    .into(),
                Value::Bytes(family.token_hash.as_bytes().to_vec()),
                Value::Int(family.created_at.as_millis()),
                Value::Int(family.expires_at.as_millis()),
                Value::Text(family.user_id.to_string()),
                family.dpop_jkt.clone().into(),
            ]
        })
        .collect();
    let created: Result<Vec<String>, StoreError> = conn
        .rows(Statement { text, values })
        .await
        .and_then(|rows| rows.iter().map(|row| row.text("id")).collect());
    match created {
        Ok(ids) => families
            .iter()
            .map(|family| {
                if ids.iter().any(|id| id == family.id.as_str()) {
                    Ok(())
                } else {
                    Err(CreateSessionError::UserDisabled)
                }
            })
            .collect(),
        Err(e) => families
            .iter()
            .map(|_| Err(CreateSessionError::Store(e.clone())))
            .collect(),
    }
}

/// Records which clients got tokens from which sessions, many in one statement; a
/// pair recorded before, or twice here, is kept once.
pub async fn record_session_clients<C: BatchConnection>(
    conn: &mut C,
    records: Vec<SessionClient>,
) -> Vec<Result<(), StoreError>> {
    let text = format!(
        "INSERT INTO session_clients (session_id, client_id, user_id, forget_at) \
         VALUES {} ON CONFLICT (session_id, client_id) DO NOTHING RETURNING session_id",
        value_rows(records.len(), 4, 1)
    );
    let values = records
        .iter()
        .flat_map(|record| {
            [
                Value::Text(record.session.as_str().to_owned()),
                Value::Text(record.client_id.to_string()),
                Value::Text(record.user.to_string()),
                Value::Int(record.forget_at.as_millis()),
            ]
        })
        .collect();
    let done = conn.rows(Statement { text, values }).await.map(drop);
    records
        .iter()
        .map(|_| done.as_ref().map(|_| ()).map_err(Clone::clone))
        .collect()
}

/// `($first, …), (…), …`: `rows` rows of `columns` placeholders, numbered on from
/// `first`. Only numbers: nothing a request sent enters a statement's text, which
/// is why the statements built from these are `AssertSqlSafe`. (SQLite takes `$N`
/// as a parameter named `$N`, numbered by first appearance: the statements here
/// name them in order, so `$N` is the N-th value on either database.)
pub(crate) fn value_rows(rows: usize, columns: usize, first: usize) -> String {
    (0..rows)
        .map(|row| {
            let numbers: Vec<String> = (0..columns)
                .map(|column| format!("${}", first + row * columns + column))
                .collect();
            format!("({})", numbers.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `$first, …`: `count` placeholders.
pub(crate) fn placeholders(count: usize, first: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_rows_then_columns() {
        assert_eq!(value_rows(2, 3, 1), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(placeholders(3, 2), "$2, $3, $4");
    }
}
