//! Closed windows, remembered: a window that ended a while ago changes only through late data (a
//! label for an old prediction, a summary from a device that was offline), so its aggregates are
//! kept for a few minutes instead of being read again for every dashboard view and evaluation.
//! The current window is always read fresh.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Span, WindowData};
use crate::store::{Store, StoreError};

/// A window is cacheable once it ended this long ago (late batches still in flight).
const SETTLED_MS: i64 = 60_000;
/// How stale a cached window may get: late labels show within this.
const TTL: Duration = Duration::from_secs(300);
const MAX_ENTRIES: usize = 4096;

type Key = (String, String, Span);

#[derive(Debug, Default)]
pub struct WindowCache {
    entries: Mutex<HashMap<Key, (WindowData, Instant)>>,
}

impl WindowCache {
    /// The window's data: from the cache when it is closed and was read recently, else from the
    /// store (and remembered if closed).
    pub async fn window(
        &self,
        store: &dyn Store,
        model: &str,
        version: &str,
        span: Span,
        now_ms: i64,
    ) -> Result<WindowData, StoreError> {
        let closed = span.end_ms <= now_ms - SETTLED_MS;
        let key = (model.to_owned(), version.to_owned(), span);
        if closed
            && let Some(data) = self.entries.lock().ok().and_then(|entries| {
                entries.get(&key).filter(|(_, at)| at.elapsed() < TTL).map(|(data, _)| data.clone())
            })
        {
            return Ok(data);
        }
        let data = store.window(model.to_owned(), version.to_owned(), span).await?;
        if closed && let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.retain(|_, (_, at)| at.elapsed() < TTL);
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(key, (data.clone(), Instant::now()));
        }
        Ok(data)
    }
}
