use super::*;

/// Leaf inputs of the RFC 6962 test data published with the certificate-transparency
/// reference implementation.
fn reference_leaves() -> Vec<Hash> {
    let inputs: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];
    inputs.iter().map(|data| leaf_hash(data)).collect()
}

const REFERENCE_ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn hex(hash: &Hash) -> String {
    hash.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[test]
fn empty_tree_root_is_hash_of_nothing() {
    assert_eq!(
        hex(&empty_root()),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(root(&[]), empty_root());
    assert_eq!(Frontier::default().root(), empty_root());
}

#[test]
fn roots_match_reference_vectors() {
    let leaves = reference_leaves();
    for (size, expected) in (1..=8).zip(REFERENCE_ROOTS) {
        assert_eq!(hex(&root(&leaves[..size])), expected, "size {size}");
    }
}

#[test]
fn frontier_root_equals_recursive_root() {
    let leaves: Vec<Hash> = (0..70u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let mut frontier = Frontier::default();
    for (index, leaf) in leaves.iter().enumerate() {
        frontier.push(*leaf);
        assert_eq!(frontier.size(), index as u64 + 1);
        assert_eq!(
            frontier.root(),
            root(&leaves[..=index]),
            "size {}",
            index + 1
        );
    }
}

#[test]
fn inclusion_proofs_verify_at_every_index() {
    let leaves: Vec<Hash> = (0..21u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    for size in 1..=leaves.len() {
        let tree = &leaves[..size];
        let expected = root(tree);
        for index in 0..size {
            let proof = inclusion_proof(tree, index);
            let found = root_from_inclusion(tree[index], index as u64, size as u64, &proof);
            assert_eq!(found, Some(expected), "size {size} index {index}");
        }
    }
}

#[test]
fn inclusion_proof_rejects_other_leaf_and_index() {
    let leaves = reference_leaves();
    let proof = inclusion_proof(&leaves, 5);
    let expected = Some(root(&leaves));
    assert_ne!(root_from_inclusion(leaves[4], 5, 8, &proof), expected);
    assert_ne!(root_from_inclusion(leaves[5], 4, 8, &proof), expected);
    assert_eq!(root_from_inclusion(leaves[5], 5, 8, &proof[1..]), None);
    assert_eq!(root_from_inclusion(leaves[5], 8, 8, &proof), None);
}

#[test]
fn consistency_proofs_verify_for_every_pair() {
    let leaves: Vec<Hash> = (0..19u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    for new_size in 1..=leaves.len() {
        let new_root = root(&leaves[..new_size]);
        for old_size in 1..=new_size {
            let old_root = root(&leaves[..old_size]);
            let proof = consistency_proof(&leaves[..new_size], old_size);
            assert!(
                verify_consistency(
                    old_size as u64,
                    &old_root,
                    new_size as u64,
                    &new_root,
                    &proof
                ),
                "{old_size} -> {new_size}"
            );
        }
    }
}

#[test]
fn consistency_proof_rejects_a_fork() {
    let leaves = reference_leaves();
    let mut forked = leaves.clone();
    forked[2] = leaf_hash(b"rewritten");
    let old_root = root(&leaves[..3]);
    let proof = consistency_proof(&forked, 3);
    assert!(!verify_consistency(3, &old_root, 8, &root(&forked), &proof));
    let honest = consistency_proof(&leaves, 3);
    assert!(verify_consistency(3, &old_root, 8, &root(&leaves), &honest));
    assert!(!verify_consistency(
        3,
        &old_root,
        8,
        &root(&forked),
        &honest
    ));
    assert!(!verify_consistency(
        9,
        &old_root,
        8,
        &root(&leaves),
        &honest
    ));
}
