//! What the store's operations need from a database, and nothing more: run a statement with bound
//! values, get its rows back as plain values.
//!
//! [`Conn`] is implemented by a SQLite connection (on the writer thread or a reader: its futures are
//! always ready) and by a PostgreSQL client or transaction. [`Arg`] and [`Value`] are the few column
//! types the schema uses, so the operations in `ops.rs` are written once for both.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use super::StoreError;

/// The two databases' SQL dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Sqlite,
    Postgres,
}

/// A statement: one text for both databases where they agree, a pair side by side where they do
/// not. Placeholders are PostgreSQL's `$1`, `$2`…; SQLite gets them as `?1`, `?2`… (see
/// [`Sql::text`]).
#[derive(Debug, Clone, Copy)]
pub(super) enum Sql {
    Both(&'static str),
    Pair { sqlite: &'static str, postgres: &'static str },
}

impl Sql {
    /// The statement as `dialect` takes it. SQLite reads `$1` as a *named* parameter numbered by
    /// first appearance, which would bind `SET state = $2 … WHERE id = $1` backwards; `?1` is
    /// positional in SQLite, so the placeholders are rewritten. No statement holds a `$` anywhere
    /// else (a test checks).
    pub(super) fn text(&self, dialect: Dialect) -> std::borrow::Cow<'static, str> {
        match (self, dialect) {
            (Sql::Both(text), Dialect::Postgres) | (Sql::Pair { postgres: text, .. }, Dialect::Postgres) => {
                (*text).into()
            }
            (Sql::Both(text), Dialect::Sqlite) | (Sql::Pair { sqlite: text, .. }, Dialect::Sqlite) => {
                text.replace('$', "?").into()
            }
        }
    }
}

/// A value bound to a placeholder.
#[derive(Debug, Clone, Copy)]
pub(super) enum Arg<'a> {
    Int(i64),
    OptInt(Option<i64>),
    OptReal(Option<f64>),
    Text(&'a str),
    OptText(Option<&'a str>),
    Blob(&'a [u8]),
    Bool(bool),
    /// A list for `IN`/`ANY`: SQLite takes it as a JSON array (`json_each`), PostgreSQL as
    /// `text[]`.
    Texts(&'a [&'a str]),
    /// A list of ids, the same way.
    Ints(&'a [i64]),
}

/// A column value as read back.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) enum Value {
    #[default]
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    Bool(bool),
}

/// One result row. Accessors take the value out (no copy) and name the column on a type mismatch.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Row(pub(super) Vec<Value>);

impl Row {
    fn take(&mut self, i: usize) -> Value {
        self.0.get_mut(i).map(std::mem::take).unwrap_or(Value::Null)
    }

    fn mismatch(i: usize, expected: &str, found: &Value) -> StoreError {
        StoreError::Corrupt { what: "column", message: format!("column {i}: expected {expected}, found {found:?}") }
    }

    pub(super) fn int(&mut self, i: usize) -> Result<i64, StoreError> {
        match self.take(i) {
            Value::Int(v) => Ok(v),
            other => Err(Row::mismatch(i, "an integer", &other)),
        }
    }

    pub(super) fn opt_int(&mut self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.take(i) {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(v)),
            other => Err(Row::mismatch(i, "an integer or null", &other)),
        }
    }

    pub(super) fn opt_real(&mut self, i: usize) -> Result<Option<f64>, StoreError> {
        match self.take(i) {
            Value::Null => Ok(None),
            Value::Real(v) => Ok(Some(v)),
            // SQLite keeps a whole REAL as an integer when the column has no declared type.
            Value::Int(v) => Ok(Some(v as f64)),
            other => Err(Row::mismatch(i, "a number or null", &other)),
        }
    }

    pub(super) fn text(&mut self, i: usize) -> Result<String, StoreError> {
        match self.take(i) {
            Value::Text(v) => Ok(v),
            other => Err(Row::mismatch(i, "text", &other)),
        }
    }

    pub(super) fn opt_text(&mut self, i: usize) -> Result<Option<String>, StoreError> {
        match self.take(i) {
            Value::Null => Ok(None),
            Value::Text(v) => Ok(Some(v)),
            other => Err(Row::mismatch(i, "text or null", &other)),
        }
    }

    pub(super) fn blob(&mut self, i: usize) -> Result<Vec<u8>, StoreError> {
        match self.take(i) {
            Value::Blob(v) => Ok(v),
            other => Err(Row::mismatch(i, "bytes", &other)),
        }
    }

    /// SQLite has no booleans: `EXISTS` gives 0 or 1.
    pub(super) fn bool(&mut self, i: usize) -> Result<bool, StoreError> {
        match self.take(i) {
            Value::Bool(v) => Ok(v),
            Value::Int(v) => Ok(v != 0),
            other => Err(Row::mismatch(i, "a boolean", &other)),
        }
    }
}

/// A database connection or transaction the operations run on.
pub(super) trait Conn {
    fn dialect(&self) -> Dialect;
    /// Runs a script of statements without values (a migration).
    fn batch(&self, script: &str) -> impl Future<Output = Result<(), StoreError>>;
    /// Prepares a statement without running it: does it fit the schema?
    fn prepare(&self, sql: &Sql) -> impl Future<Output = Result<(), StoreError>>;
    /// Runs a statement; the number of rows it changed.
    fn execute(&self, sql: &Sql, args: &[Arg<'_>]) -> impl Future<Output = Result<u64, StoreError>>;
    /// Runs a statement; its rows.
    fn query(&self, sql: &Sql, args: &[Arg<'_>]) -> impl Future<Output = Result<Vec<Row>, StoreError>>;
}

/// Helpers every operation uses, on top of [`Conn`].
pub(super) trait ConnExt: Conn {
    /// The first row, if any.
    async fn query_opt(&self, sql: &Sql, args: &[Arg<'_>]) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, args).await?.into_iter().next())
    }

    /// The first row; a statement that always returns one (an aggregate, `RETURNING`) found none.
    async fn query_one(&self, sql: &Sql, args: &[Arg<'_>]) -> Result<Row, StoreError> {
        self.query_opt(sql, args).await?.ok_or(StoreError::Corrupt {
            what: "statement result",
            message: "a statement that returns one row returned none".into(),
        })
    }
}

impl<C: Conn + ?Sized> ConnExt for C {}

/// Runs a future that never waits (an operation on a SQLite connection) to its end, here.
pub(super) fn ready<T>(future: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result,
        Poll::Pending => Err(StoreError::Corrupt {
            what: "SQLite operation",
            message: "an operation on a SQLite connection waited on something other than SQLite".into(),
        }),
    }
}
