#!/usr/bin/env python3
"""Writes the test vectors of coffer-store's phase_crypto module with PyNaCl (libsodium),
the library the official Phase clients use:

    python3 -m venv /tmp/nacl && /tmp/nacl/bin/pip install pynacl
    /tmp/nacl/bin/python scripts/phase_vectors.py > crates/coffer-store/tests/data/phase_vectors.json
"""
import base64
import json
import os

import nacl.bindings as b
import nacl.hash
from nacl.encoding import HexEncoder


def rand():
    return os.urandom(32)


def raw(plaintext, key, nonce):
    return b.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, None, nonce, key) + nonce


PLAINTEXTS = ["", "postgres://shop@db/shop", "line one\nline two\n", "quote \" dollar $ ü €", "x" * 3000]

seed_keypairs = []
for _ in range(4):
    seed = rand()
    pk, sk = b.crypto_kx_seed_keypair(seed)
    seed_keypairs.append({"seed": seed.hex(), "public": pk.hex(), "secret": sk.hex()})

session_keys = []
for _ in range(4):
    csk, ssk = rand(), rand()
    cpk, spk = b.crypto_scalarmult_base(csk), b.crypto_scalarmult_base(ssk)
    crx, ctx = b.crypto_kx_client_session_keys(cpk, csk, spk)
    srx, stx = b.crypto_kx_server_session_keys(spk, ssk, cpk)
    session_keys.append({
        "client_secret": csk.hex(), "server_secret": ssk.hex(),
        "client_rx": crx.hex(), "client_tx": ctx.hex(),
        "server_rx": srx.hex(), "server_tx": stx.hex(),
    })

raws = []
for text in PLAINTEXTS:
    key, nonce = rand(), os.urandom(24)
    raws.append({"key": key.hex(), "nonce": nonce.hex(), "plaintext": text,
                 "sealed": raw(text.encode(), key, nonce).hex()})

envelopes = []
for text in PLAINTEXTS:
    seed = rand()
    recipient_pk, _ = b.crypto_kx_seed_keypair(seed)
    esk = rand()
    epk = b.crypto_scalarmult_base(esk)
    _, tx = b.crypto_kx_client_session_keys(epk, esk, recipient_pk)
    nonce = os.urandom(24)
    body = base64.b64encode(raw(text.encode(), tx, nonce)).decode()
    envelopes.append({"recipient_seed": seed.hex(), "ephemeral_secret": esk.hex(), "nonce": nonce.hex(),
                      "plaintext": text, "envelope": f"ph:v1:{epk.hex()}:{body}"})

digests = []
for key in ["DB_URL", "db_url", "MY KEY", "1PASSWORD_TOKEN", "ключ", ""]:
    salt = rand().hex()
    digest = nacl.hash.blake2b(key.encode(), digest_size=32, key=salt.encode(), encoder=HexEncoder).decode()
    digests.append({"salt": salt, "key": key, "digest": digest})

wrapped_shares = []
for _ in range(3):
    wrap_key, share1 = rand(), rand()
    wrapped_shares.append({"wrap_key": wrap_key.hex(), "share1": share1.hex(),
                           "wrapped": raw(share1.hex().encode(), wrap_key, os.urandom(24)).hex()})

print(json.dumps({
    "seed_keypairs": seed_keypairs, "session_keys": session_keys, "raw": raws,
    "envelopes": envelopes, "digests": digests, "wrapped_shares": wrapped_shares,
}, indent=1, ensure_ascii=False))
