//! Ed25519 keys that sign checkpoints: loading from a key file or the environment, and writing
//! a new key file on explicit request. The server never generates a key by itself.

use std::path::Path;

use aggregates::ledger::Checkpoint;
use anyhow::Context;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The key that signs this server's checkpoints.
#[derive(Clone)]
pub struct LedgerKey {
    signing: SigningKey,
    /// First 16 hexadecimal digits of SHA-256 over the public key.
    pub key_id: String,
}

/// A public key as published beside the exported checkpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    pub algorithm: String,
    pub key_id: String,
    /// The 32-byte Ed25519 public key, hexadecimal.
    pub public_key: String,
}

/// The content of a key file written by `zhengming ledger-key`.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    algorithm: String,
    key_id: String,
    public_key: String,
    secret_key: String,
}

/// Computes the key id of an Ed25519 public key.
pub fn key_id(public_key: &[u8; 32]) -> String {
    hex::encode(&Sha256::digest(public_key)[..8])
}

impl LedgerKey {
    /// Builds a key from its 32-byte secret, given as 64 hexadecimal digits.
    ///
    /// # Errors
    /// Fails when the text is not 64 hexadecimal digits.
    pub fn from_secret_hex(text: &str) -> anyhow::Result<LedgerKey> {
        let bytes: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .context("the ledger key must be 64 hexadecimal digits (a 32-byte Ed25519 secret)")?;
        Ok(LedgerKey::from_signing(SigningKey::from_bytes(&bytes)))
    }

    fn from_signing(signing: SigningKey) -> LedgerKey {
        let key_id = key_id(&signing.verifying_key().to_bytes());
        LedgerKey { signing, key_id }
    }

    /// Reads a key file written by [`LedgerKey::write_new`].
    ///
    /// # Errors
    /// Fails when the file cannot be read, is not a key file, or its key id does not match its
    /// secret.
    pub fn load(path: &Path) -> anyhow::Result<LedgerKey> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the ledger key file {} failed", path.display()))?;
        let file: KeyFile = serde_json::from_str(&text)
            .with_context(|| format!("the ledger key file {} is not a key file", path.display()))?;
        let key = LedgerKey::from_secret_hex(&file.secret_key)?;
        anyhow::ensure!(
            key.key_id == file.key_id && key.public().public_key == file.public_key,
            "the ledger key file {} is inconsistent: its key id or public key does not match its secret",
            path.display()
        );
        Ok(key)
    }

    /// Generates a new key and writes it to `path`, which must not exist yet; the file is
    /// readable by its owner only.
    ///
    /// # Errors
    /// Fails when `path` exists or cannot be written.
    pub fn write_new(path: &Path) -> anyhow::Result<LedgerKey> {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let key = LedgerKey::from_signing(SigningKey::from_bytes(&secret));
        let public = key.public();
        let file = KeyFile {
            algorithm: public.algorithm,
            key_id: key.key_id.clone(),
            public_key: public.public_key,
            secret_key: hex::encode(secret),
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut output = options.open(path).with_context(|| {
            format!(
                "creating the key file {} failed; it must not exist yet",
                path.display()
            )
        })?;
        let text = serde_json::to_string_pretty(&file)?;
        std::io::Write::write_all(&mut output, text.as_bytes())
            .with_context(|| format!("writing the key file {} failed", path.display()))?;
        Ok(key)
    }

    /// Returns the public half, for publication.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            algorithm: "ed25519".into(),
            key_id: self.key_id.clone(),
            public_key: hex::encode(self.signing.verifying_key().to_bytes()),
        }
    }

    /// Signs a checkpoint of `tree_size` leaves with `root`, stamped with the current time.
    pub fn sign(&self, tree_size: u64, root: &str) -> Checkpoint {
        let signed_at = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string();
        self.sign_at(tree_size, root, &signed_at)
    }

    /// Signs a checkpoint stamped with `signed_at` (UTC, `YYYY-MM-DDTHH:MM:SS.ffffffZ`).
    pub fn sign_at(&self, tree_size: u64, root: &str, signed_at: &str) -> Checkpoint {
        let signed_at = signed_at.to_string();
        let message = Checkpoint::signed_text(tree_size, root, &signed_at, &self.key_id);
        let signature = self.signing.sign(&message);
        Checkpoint {
            tree_size,
            root: root.to_string(),
            signed_at,
            key_id: self.key_id.clone(),
            signature: hex::encode(signature.to_bytes()),
        }
    }
}

/// Checks a checkpoint's signature against a published public key.
///
/// # Errors
/// Returns a sentence saying why the signature does not verify.
pub fn verify_signature(checkpoint: &Checkpoint, key: &PublicKey) -> Result<(), String> {
    let public: [u8; 32] = hex::decode(&key.public_key)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| format!("public key {} is not 32 bytes of hexadecimal", key.key_id))?;
    let verifying = VerifyingKey::from_bytes(&public)
        .map_err(|_| format!("public key {} is not a valid Ed25519 point", key.key_id))?;
    let signature: [u8; 64] = hex::decode(&checkpoint.signature)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| "the signature is not 64 bytes of hexadecimal".to_string())?;
    let signature = ed25519_dalek::Signature::from_bytes(&signature);
    verifying
        .verify_strict(&checkpoint.message(), &signature)
        .map_err(|_| format!("the signature does not verify with key {}", key.key_id))
}
