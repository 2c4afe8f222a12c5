//! The global ledger: sealing every event into an RFC 6962 Merkle tree, signed checkpoints
//! exported outside the database, receipts and proofs, and verification of it all.
//!
//! * [`sealer`]: the background task that appends leaves and signs checkpoints.
//! * [`keys`]: the Ed25519 signing key and signature checks.
//! * [`directory`]: the exported copy of checkpoints and public keys.
//! * [`audit`]: verification that names the first damage.
//! * [`bundle`]: self-contained export bundles for independent verification.
//! * [`records`]: reading events and checkpoints from the database.

pub mod audit;
pub mod bundle;
pub mod directory;
pub mod keys;
pub mod records;
pub mod sealer;

pub use directory::CheckpointDirectory;
pub use keys::LedgerKey;
pub use sealer::{LedgerSettings, Sealer};
