#!/usr/bin/env python3
"""Independent verifier of a zhengming ledger bundle.

Written from docs/ledger.md and docs/hash-chain.md alone; it shares no code with the server and
uses only the Python 3.11 standard library. Ed25519 verification follows RFC 8032, section 5.1.7.

    python3 ops/verify_bundle.py BUNDLE.json [--checkpoint-dir DIR]

Exit status 0 when everything verifies, 1 on the first damage (printed with its kind), 2 when
the bundle cannot be read.
"""

import argparse
import hashlib
import json
import os
import sys

# --- Ed25519 (RFC 8032) --------------------------------------------------------------------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
G_Y = 4 * pow(5, P - 2, P) % P


def _recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


G = (_recover_x(G_Y, 0), G_Y, 1, _recover_x(G_Y, 0) * G_Y % P)
IDENTITY = (0, 1, 1, 0)


def _add(a, b):
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % P
    bb = (y1 + x1) * (y2 + x2) % P
    cc = 2 * t1 * t2 * D % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _multiply(scalar, point):
    result = IDENTITY
    while scalar > 0:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _equal(a, b):
    x1, y1, z1, _ = a
    x2, y2, z2, _ = b
    return (x1 * z2 - x2 * z1) % P == 0 and (y1 * z2 - y2 * z1) % P == 0


def _decompress(data):
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % P)


def ed25519_verify(public_key, message, signature):
    """Return True when `signature` (64 bytes) by `public_key` (32 bytes) covers `message`."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a = _decompress(public_key)
    r = _decompress(signature[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little") % L
    return _equal(_multiply(8 * s, G), _add(_multiply(8, r), _multiply(8 * k, a)))


# --- Canonical JSON and hashes ---------------------------------------------------------------


def canonical(value):
    """Encode `value` as the canonical JSON of docs/hash-chain.md, in UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256(data):
    return hashlib.sha256(data).digest()


def leaf_hash(data):
    return sha256(b"\x00" + data)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def split(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def merkle_root(leaves):
    if not leaves:
        return sha256(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = split(len(leaves))
    return node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def root_from_inclusion(leaf, index, size, proof):
    if index >= size:
        return None
    if size == 1:
        return leaf if not proof else None
    if not proof:
        return None
    sibling, below = proof[-1], proof[:-1]
    k = split(size)
    if index < k:
        left = root_from_inclusion(leaf, index, k, below)
        return None if left is None else node_hash(left, sibling)
    right = root_from_inclusion(leaf, index - k, size - k, below)
    return None if right is None else node_hash(sibling, right)


def _subproof(m, n, whole, old_root, proof):
    if m == n:
        if whole and not proof:
            return old_root, old_root
        if not whole and len(proof) == 1:
            return proof[0], proof[0]
        return None
    if not proof:
        return None
    sibling, below = proof[-1], proof[:-1]
    k = split(n)
    if m <= k:
        found = _subproof(m, k, whole, old_root, below)
        return None if found is None else (found[0], node_hash(found[1], sibling))
    found = _subproof(m - k, n - k, False, old_root, below)
    if found is None:
        return None
    return node_hash(sibling, found[0]), node_hash(sibling, found[1])


def consistent(old_size, old_root, new_size, new_root, proof):
    if old_size > new_size:
        return False
    if old_size == 0 or old_size == new_size:
        return not proof and (old_size == 0 or old_root == new_root)
    found = _subproof(old_size, new_size, True, old_root, proof)
    return found is not None and found == (old_root, new_root)


# --- The bundle ------------------------------------------------------------------------------


class Damage(Exception):
    def __init__(self, kind, detail):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


def signed_text(checkpoint):
    fields = {key: checkpoint[key] for key in ("key_id", "root", "signed_at", "tree_size")}
    return b"zhengming checkpoint v1\n" + canonical(fields)


def check_keys(keys):
    trusted = {}
    for key in keys:
        public = bytes.fromhex(key["public_key"])
        if key["algorithm"] != "ed25519" or sha256(public)[:8].hex() != key["key_id"]:
            raise Damage("bad key", f"key {key['key_id']} does not match its public key")
        trusted[key["key_id"]] = public
    return trusted


def check_checkpoints(checkpoints, trusted, proofs):
    for checkpoint in checkpoints:
        size = checkpoint["tree_size"]
        if checkpoint["key_id"] not in trusted:
            raise Damage("unknown key", f"checkpoint of {size} events is signed by key {checkpoint['key_id']}")
        signature = bytes.fromhex(checkpoint["signature"])
        if not ed25519_verify(trusted[checkpoint["key_id"]], signed_text(checkpoint), signature):
            raise Damage("bad signature", f"checkpoint of {size} events")
    sizes = [checkpoint["tree_size"] for checkpoint in checkpoints]
    if sizes != sorted(set(sizes)):
        raise Damage("order changed", "checkpoints are not in increasing tree size")
    if proofs is None:
        return
    by_pair = {(proof["old_size"], proof["new_size"]): proof["proof"] for proof in proofs}
    for old, new in zip(checkpoints, checkpoints[1:]):
        pair = (old["tree_size"], new["tree_size"])
        proof = [bytes.fromhex(item) for item in by_pair.get(pair, [])]
        if pair not in by_pair or not consistent(
            pair[0], bytes.fromhex(old["root"]), pair[1], bytes.fromhex(new["root"]), proof
        ):
            raise Damage("forked", f"checkpoints of {pair[0]} and {pair[1]} events are not consistent")


def check_event(event, max_sequence):
    """Return the event's leaf hash after checking its envelope and hash."""
    text = event["envelope"].encode()
    envelope = json.loads(text)
    where = f"global position {event['global_position']}"
    if canonical(envelope) != text:
        raise Damage("content changed", f"{where}: the envelope is not in canonical form")
    if sha256(text).hex() != event["hash"]:
        # An event moved to another sequence still hashes under the one it was recorded with.
        for sequence in range(1, max_sequence + 1):
            moved = dict(envelope, sequence=sequence)
            if sequence != envelope["sequence"] and sha256(canonical(moved)).hex() == event["hash"]:
                raise Damage(
                    "order changed",
                    f"{where}: stored as sequence {envelope['sequence']}, recorded as sequence {sequence}",
                )
        raise Damage("content changed", f"{where}: the envelope does not hash to the event's hash")
    return leaf_hash(bytes.fromhex(event["hash"]) + text), envelope


def check_chains(events, envelopes, complete):
    chains = {}
    for event, envelope in zip(events, envelopes):
        key = (envelope["aggregate_type"], envelope["aggregate_id"])
        chains.setdefault(key, []).append((envelope["sequence"], envelope["prev_hash"], event["hash"], event))
    for (kind, ident), links in chains.items():
        links.sort(key=lambda link: link[0])
        expected_prev, expected_sequence = "0" * 64, 1
        if not complete:
            expected_sequence = links[0][0]
            expected_prev = links[0][1] if expected_sequence > 1 else expected_prev
        for sequence, prev_hash, own_hash, event in links:
            if sequence != expected_sequence:
                raise Damage("event missing", f"{kind} {ident} sequence {expected_sequence}")
            if prev_hash != expected_prev:
                raise Damage("link broken", f"{kind} {ident} sequence {sequence}")
            expected_prev, expected_sequence = own_hash, sequence + 1
    return len(chains)


def verify(bundle, checkpoint_dir=None):
    if bundle.get("format") != "zhengming-bundle-1":
        raise ValueError("not a zhengming-bundle-1 file")
    trusted = check_keys(bundle["public_keys"])
    if checkpoint_dir:
        published = check_keys(read_dir(os.path.join(checkpoint_dir, "keys")))
        trusted = {key: value for key, value in trusted.items() if published.get(key) == value}
    checkpoints = bundle["checkpoints"]
    ledger = bundle["scope"] == "ledger"
    # A ledger bundle contains every leaf, so each root is recomputed below and consistency
    # follows; a case bundle proves consistency between consecutive checkpoints instead.
    check_checkpoints(checkpoints, trusted, None if ledger else bundle["consistency_proofs"])
    roots = {checkpoint["tree_size"]: bytes.fromhex(checkpoint["root"]) for checkpoint in checkpoints}
    if checkpoint_dir:
        newest = max(roots, default=0)
        for exported in read_dir(os.path.join(checkpoint_dir, "checkpoints")):
            size = exported["tree_size"]
            if size > newest:
                raise Damage("truncated", f"an exported checkpoint covers {size} events; the bundle's newest covers {newest}")
            # The server records every checkpoint before it exports it, so a bundle of the same
            # history contains every exported checkpoint up to its newest one.
            if size not in roots:
                raise Damage("forked", f"the exported checkpoint of {size} events is not in the bundle's history")
            if roots[size] != bytes.fromhex(exported["root"]):
                raise Damage("forked", f"the bundle's checkpoint of {size} events differs from the exported one")
    events = bundle["events"]
    leaves, envelopes = [], []
    for event in events:
        leaf, envelope = check_event(event, len(events) + 1)
        leaves.append(leaf)
        envelopes.append(envelope)
    chains = check_chains(events, envelopes, complete=True)
    if ledger:
        for index, event in enumerate(events):
            if event["leaf_index"] != index:
                raise Damage("event missing", f"leaf {index} is absent; found leaf {event['leaf_index']}")
        newest = max(roots, default=0)
        if len(leaves) < newest:
            raise Damage("truncated", f"the newest checkpoint covers {newest} events; the bundle contains {len(leaves)}")
        for size, root in roots.items():
            if merkle_root(leaves[:size]) != root:
                raise Damage("history rewritten", f"the first {size} events do not hash to the checkpoint's root")
    else:
        for leaf, event in zip(leaves, events):
            size = event["checkpoint"]
            proof = [bytes.fromhex(item) for item in event["inclusion_proof"]]
            found = root_from_inclusion(leaf, event["leaf_index"], size, proof)
            if size not in roots or found != roots[size]:
                raise Damage(
                    "not included",
                    f"global position {event['global_position']} is not in the checkpoint of {size} events",
                )
    return len(events), chains, len(checkpoints)


def read_dir(path):
    items = []
    for name in sorted(os.listdir(path)):
        if name.endswith(".json"):
            with open(os.path.join(path, name), encoding="utf-8") as handle:
                items.append(json.load(handle))
    return items


def plural(count, noun):
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", help="bundle file written by `zhengming export`")
    parser.add_argument("--checkpoint-dir", help="exported checkpoint directory to check against")
    arguments = parser.parse_args()
    try:
        with open(arguments.bundle, encoding="utf-8") as handle:
            bundle = json.load(handle)
        events, chains, checkpoints = verify(bundle, arguments.checkpoint_dir)
    except Damage as damage:
        print(f"DAMAGE: {damage}")
        return 1
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"cannot read the bundle: {error!r}", file=sys.stderr)
        return 2
    print(
        f"verified {plural(events, 'event')} in {plural(chains, 'chain')} "
        f"against {plural(checkpoints, 'signed checkpoint')}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
