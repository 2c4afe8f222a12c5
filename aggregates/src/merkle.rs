//! The Merkle tree of the global ledger, hashed as in RFC 6962 section 2.1: a leaf is
//! SHA-256(0x00 || data), an interior node SHA-256(0x01 || left || right), and a tree of `n`
//! leaves splits at the largest power of two below `n`.
//!
//! Proofs follow RFC 6962 section 2.1.1 (audit paths) and 2.1.2 (consistency proofs), with
//! each proof's hashes listed from the leaves up.

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// Hashes one leaf's data.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(data);
    hasher.finalize().into()
}

/// Hashes an interior node from its two children.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree: SHA-256 of no bytes.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly below `n`; `n` must be at least 2.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Computes the root of the tree over `leaves` (leaf hashes, in order).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The right edge of a tree that grows one leaf at a time: the roots of its perfect subtrees,
/// largest first. Appending and computing the root take O(log n) hashes and memory.
#[derive(Clone, Debug, Default)]
pub struct Frontier {
    size: u64,
    /// (height, root) of each perfect subtree, heights strictly decreasing.
    peaks: Vec<(u32, Hash)>,
}

impl Frontier {
    /// Number of leaves appended.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        self.size += 1;
        let mut carry = (0u32, leaf);
        while let Some(&(height, left)) = self.peaks.last() {
            if height != carry.0 {
                break;
            }
            self.peaks.pop();
            carry = (height + 1, node_hash(&left, &carry.1));
        }
        self.peaks.push(carry);
    }

    /// Computes the root of the leaves appended so far.
    pub fn root(&self) -> Hash {
        let mut peaks = self.peaks.iter().rev();
        let Some(&(_, mut accumulated)) = peaks.next() else {
            return empty_root();
        };
        for (_, left) in peaks {
            accumulated = node_hash(left, &accumulated);
        }
        accumulated
    }
}

/// Builds the audit path of leaf `index` in the tree over `leaves`.
///
/// # Panics
/// Panics when `index` is not below `leaves.len()`.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Vec<Hash> {
    assert!(index < leaves.len(), "leaf index outside the tree");
    let mut proof = Vec::new();
    collect_path(leaves, index, &mut proof);
    proof
}

fn collect_path(leaves: &[Hash], index: usize, proof: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split(leaves.len() as u64) as usize;
    if index < k {
        collect_path(&leaves[..k], index, proof);
        proof.push(root(&leaves[k..]));
    } else {
        collect_path(&leaves[k..], index - k, proof);
        proof.push(root(&leaves[..k]));
    }
}

/// Computes the root that an audit path leads to from `leaf` at `index` in a tree of `size`
/// leaves, or `None` when the path has the wrong length for that position.
pub fn root_from_inclusion(leaf: Hash, index: u64, size: u64, proof: &[Hash]) -> Option<Hash> {
    if index >= size {
        return None;
    }
    if size == 1 {
        return proof.is_empty().then_some(leaf);
    }
    let (sibling, below) = proof.split_last()?;
    let k = split(size);
    if index < k {
        let left = root_from_inclusion(leaf, index, k, below)?;
        Some(node_hash(&left, sibling))
    } else {
        let right = root_from_inclusion(leaf, index - k, size - k, below)?;
        Some(node_hash(sibling, &right))
    }
}

/// Builds the proof that the tree over `leaves[..old_size]` is a prefix of the tree over
/// `leaves`. The proof is empty when `old_size` is 0 or equals `leaves.len()`.
///
/// # Panics
/// Panics when `old_size` exceeds `leaves.len()`.
pub fn consistency_proof(leaves: &[Hash], old_size: usize) -> Vec<Hash> {
    assert!(old_size <= leaves.len(), "old tree larger than the new one");
    let mut proof = Vec::new();
    if old_size > 0 {
        collect_subproof(leaves, old_size, true, &mut proof);
    }
    proof
}

fn collect_subproof(leaves: &[Hash], m: usize, whole_old_tree: bool, proof: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !whole_old_tree {
            proof.push(root(leaves));
        }
        return;
    }
    let k = split(n as u64) as usize;
    if m <= k {
        collect_subproof(&leaves[..k], m, whole_old_tree, proof);
        proof.push(root(&leaves[k..]));
    } else {
        collect_subproof(&leaves[k..], m - k, false, proof);
        proof.push(root(&leaves[..k]));
    }
}

/// Checks a consistency proof between a tree of `old_size` leaves with root `old_root` and a
/// tree of `new_size` leaves with root `new_root`.
pub fn verify_consistency(
    old_size: u64,
    old_root: &Hash,
    new_size: u64,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == 0 || old_size == new_size {
        return proof.is_empty() && (old_size == 0 || old_root == new_root);
    }
    match subproof_roots(old_size, new_size, true, old_root, proof) {
        Some((old, new)) => old == *old_root && new == *new_root,
        None => false,
    }
}

/// Rebuilds (old subtree root, new subtree root) from a consistency subproof, mirroring
/// `collect_subproof`; the hashes of the current level sit at the end of `proof`.
fn subproof_roots(
    m: u64,
    n: u64,
    whole_old_tree: bool,
    old_root: &Hash,
    proof: &[Hash],
) -> Option<(Hash, Hash)> {
    if m == n {
        return match (whole_old_tree, proof) {
            (true, []) => Some((*old_root, *old_root)),
            (false, [single]) => Some((*single, *single)),
            _ => None,
        };
    }
    let (sibling, below) = proof.split_last()?;
    let k = split(n);
    if m <= k {
        let (old, new) = subproof_roots(m, k, whole_old_tree, old_root, below)?;
        Some((old, node_hash(&new, sibling)))
    } else {
        let (old, new) = subproof_roots(m - k, n - k, false, old_root, below)?;
        Some((node_hash(sibling, &old), node_hash(sibling, &new)))
    }
}

#[cfg(test)]
mod tests;
