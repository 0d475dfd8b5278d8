//! The on-disk spool: every sealed batch a [`crate::Shipper`] holds is also a file, until the
//! collector acknowledges (or refuses) it. After a crash or restart the files are read back, in the
//! order they were sealed, and sent with their original `batch_id`s — the collector stores each once.
//!
//! One file per batch (`{seq:016}.batch`, MessagePack), written to a temporary name, flushed to
//! the disk, renamed, and the folder flushed: a crash or a power cut leaves either the whole batch
//! or none of it, and a batch counted as spooled is on the disk. (A removal is not flushed: a
//! delivered batch that comes back after a power cut is sent again and stored once.) The spool holds what the batcher's outbox
//! holds: its bounds (`max_outbox`, `max_outbox_bytes`, `max_outbox_age_ms`) are the spool's,
//! and the oldest batches beyond them are dropped and counted in the loss totals.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use telemetry::{Batcher, Encoding, Format, Sealed};

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    /// The file of each spooled batch, by `batch_id`.
    files: HashMap<String, PathBuf>,
    next_seq: u64,
}

/// A sealed batch as its file holds it.
#[derive(Serialize, Deserialize)]
struct SpooledBatch {
    id: String,
    #[serde(with = "serde_bytes_compat")]
    body: Vec<u8>,
    json: bool,
    gzip: bool,
    records: u64,
    attempts: u32,
    /// When its first record came (files from before it was kept have none).
    #[serde(default)]
    born_ms: Option<i64>,
}

/// `Vec<u8>` as one MessagePack binary, not an array of numbers.
mod serde_bytes_compat {
    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_byte_buf(Visitor)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("telemetry spool {path}: {source}")]
pub struct SpoolError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

impl Spool {
    /// Opens (creating) the spool folder and reads back what an earlier run left, oldest first.
    /// A file that cannot be read is renamed `*.corrupt`, reported, and skipped.
    pub fn open(dir: &Path) -> Result<(Spool, Vec<Sealed>), SpoolError> {
        let error = |source| SpoolError { path: dir.to_owned(), source };
        std::fs::create_dir_all(dir).map_err(error)?;
        let mut names: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
            .map_err(error)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "batch"))
            .filter_map(|p| Some((p.file_stem()?.to_str()?.parse::<u64>().ok()?, p)))
            .collect();
        names.sort();
        let mut spool = Spool { dir: dir.to_owned(), files: HashMap::new(), next_seq: 0 };
        let mut saved = Vec::new();
        for (seq, path) in names {
            spool.next_seq = spool.next_seq.max(seq + 1);
            let read = std::fs::read(&path).ok().and_then(|bytes| rmp_serde::from_slice::<SpooledBatch>(&bytes).ok());
            let Some(batch) = read else {
                tracing::error!(file = %path.display(), "unreadable spooled telemetry batch; set aside as .corrupt");
                let _ = std::fs::rename(&path, path.with_extension("corrupt"));
                continue;
            };
            let encoding = if batch.json { Encoding::Json } else { Encoding::MessagePack };
            spool.files.insert(batch.id.clone(), path);
            saved.push(Sealed::saved(
                batch.id,
                batch.body,
                Format { encoding, gzip: batch.gzip },
                batch.records,
                batch.attempts,
                batch.born_ms,
            ));
        }
        Ok((spool, saved))
    }

    /// Makes the folder hold exactly the batcher's outbox: new batches written, gone ones removed.
    pub fn sync(&mut self, batcher: &Batcher) -> Result<(), SpoolError> {
        let outbox: HashMap<&str, &Sealed> = batcher.outbox().map(|s| (s.batch_id.as_str(), s)).collect();
        let gone: Vec<String> = self.files.keys().filter(|id| !outbox.contains_key(id.as_str())).cloned().collect();
        for id in gone {
            if let Some(path) = self.files.remove(&id) {
                std::fs::remove_file(&path).or_else(not_found_is_fine).map_err(|source| SpoolError { path, source })?;
            }
        }
        let new: Vec<&Sealed> = batcher.outbox().filter(|s| !self.files.contains_key(&s.batch_id)).collect();
        for batch in new {
            let path = self.dir.join(format!("{:016}.batch", self.next_seq));
            self.next_seq += 1;
            self.write(&path, batch)?;
            self.files.insert(batch.batch_id.clone(), path);
        }
        Ok(())
    }

    fn write(&self, path: &Path, batch: &Sealed) -> Result<(), SpoolError> {
        let error = |source| SpoolError { path: path.to_owned(), source };
        let spooled = SpooledBatch {
            id: batch.batch_id.clone(),
            body: batch.body.clone(),
            json: batch.format.encoding == Encoding::Json,
            gzip: batch.format.gzip,
            records: batch.records(),
            attempts: batch.attempts(),
            born_ms: batch.born_ms(),
        };
        let bytes = rmp_serde::to_vec(&spooled).map_err(|e| error(std::io::Error::other(e)))?;
        let tmp = path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp).map_err(error)?;
        std::io::Write::write_all(&mut file, &bytes).and_then(|()| file.sync_all()).map_err(error)?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(error)?;
        sync_dir(&self.dir).map_err(|source| SpoolError { path: self.dir.clone(), source })
    }

    /// Batches on disk.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// Flushes a folder's entries (the rename) to the disk. Only Unix can open a folder for that.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    if cfg!(unix) { std::fs::File::open(dir)?.sync_all() } else { Ok(()) }
}

fn not_found_is_fine(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) }
}
