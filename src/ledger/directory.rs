//! The checkpoint directory: the copy of every signed checkpoint and public key kept outside
//! the database, standing in for the copy an inspectorate holds. A database restored from an
//! old backup, or rewritten and re-signed, no longer agrees with it.
//!
//! Layout: `keys/<key_id>.json` holds a public key, `checkpoints/<tree size, 20 digits>.json` a
//! checkpoint. Files are written once and never changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aggregates::ledger::Checkpoint;
use anyhow::Context;

use super::keys::PublicKey;

/// A checkpoint directory on the file system.
#[derive(Clone, Debug)]
pub struct CheckpointDirectory {
    pub path: PathBuf,
}

impl CheckpointDirectory {
    /// Opens the directory at `path`, creating it and its two subdirectories if needed.
    ///
    /// # Errors
    /// Fails when the directories cannot be created.
    pub fn open(path: &Path) -> anyhow::Result<CheckpointDirectory> {
        for sub in ["keys", "checkpoints"] {
            let dir = path.join(sub);
            std::fs::create_dir_all(&dir).with_context(|| {
                format!("creating the checkpoint directory {} failed", dir.display())
            })?;
        }
        Ok(CheckpointDirectory {
            path: path.to_path_buf(),
        })
    }

    /// Writes the public key unless the same key is already there.
    ///
    /// # Errors
    /// Fails when the file cannot be written or another key has the same id.
    pub fn publish_key(&self, key: &PublicKey) -> anyhow::Result<()> {
        let path = self.path.join("keys").join(format!("{}.json", key.key_id));
        write_once(&path, &serde_json::to_string_pretty(key)?)
    }

    /// Writes a checkpoint unless the same checkpoint is already there.
    ///
    /// # Errors
    /// Fails when the file cannot be written, or when a different checkpoint of the same tree
    /// size is already there: the ledger has forked.
    pub fn publish(&self, checkpoint: &Checkpoint) -> anyhow::Result<()> {
        let path = self.checkpoint_path(checkpoint.tree_size);
        write_once(&path, &serde_json::to_string_pretty(checkpoint)?)
    }

    /// Tells whether a checkpoint of `tree_size` leaves has been exported.
    pub fn has_checkpoint(&self, tree_size: u64) -> bool {
        self.checkpoint_path(tree_size).exists()
    }

    fn checkpoint_path(&self, tree_size: u64) -> PathBuf {
        self.path
            .join("checkpoints")
            .join(format!("{tree_size:020}.json"))
    }

    /// Reads every exported checkpoint, smallest tree first.
    ///
    /// # Errors
    /// Fails when a file cannot be read or is not a checkpoint.
    pub fn checkpoints(&self) -> anyhow::Result<Vec<Checkpoint>> {
        let mut checkpoints: Vec<Checkpoint> = read_all(&self.path.join("checkpoints"))?;
        checkpoints.sort_by_key(|checkpoint| checkpoint.tree_size);
        Ok(checkpoints)
    }

    /// Reads every published public key, by key id.
    ///
    /// # Errors
    /// Fails when a file cannot be read or is not a public key.
    pub fn keys(&self) -> anyhow::Result<BTreeMap<String, PublicKey>> {
        let keys: Vec<PublicKey> = read_all(&self.path.join("keys"))?;
        Ok(keys
            .into_iter()
            .map(|key| (key.key_id.clone(), key))
            .collect())
    }
}

fn write_once(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        anyhow::ensure!(
            existing == text,
            "{} already holds different content; exported files are never replaced",
            path.display()
        );
        return Ok(());
    }
    // Write beside the target and rename, so that a reader never sees half a file.
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text)
        .with_context(|| format!("writing {} failed", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("writing {} failed", path.display()))
}

fn read_all<T: serde::de::DeserializeOwned>(dir: &Path) -> anyhow::Result<Vec<T>> {
    let mut items = Vec::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("reading {} failed", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().and_then(|extension| extension.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {} failed", path.display()))?;
        let item = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid exported file", path.display()))?;
        items.push(item);
    }
    Ok(items)
}
