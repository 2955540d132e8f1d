#!/usr/bin/env python3
"""Throwaway NATS decentralized-auth material for tests, made offline.

Writes into DIR: server.conf (an operator, a memory resolver preloaded with
one account), user.creds (that account's user: JWT and NKey seed, the file
libnats' natsOptions_SetUserCredentialsFromFiles reads) and stranger.creds
(a user signed by an account the server does not know).

NKeys and JWTs as nats-io/nkeys and nats-io/jwt (v2) define them: an NKey
is base32(prefix byte(s) + Ed25519 key + CRC-16/XMODEM, little-endian); a
JWT is base64url(header).base64url(claims).base64url(Ed25519 signature by
the issuer's key). Needs python3-cryptography (Debian package).

usage: make_creds.py DIR
"""
import base64
import hashlib
import json
import os
import sys
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (Encoding, NoEncryption,
                                                          PrivateFormat, PublicFormat)

PREFIX_SEED = 18 << 3
PREFIX = {"operator": 14 << 3, "account": 0, "user": 20 << 3}


def crc16(data):
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def b32(raw):
    return base64.b32encode(raw).decode().rstrip("=")


def with_crc(raw):
    return raw + crc16(raw).to_bytes(2, "little")


class NKey:
    def __init__(self, kind):
        self.kind = kind
        self.key = Ed25519PrivateKey.generate()

    @property
    def public(self):
        raw = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return b32(with_crc(bytes([PREFIX[self.kind]]) + raw))

    @property
    def seed(self):
        raw = self.key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        p = PREFIX[self.kind]
        return b32(with_crc(bytes([PREFIX_SEED | (p >> 5), (p & 31) << 3]) + raw))


def b64url(raw):
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def jwt(issuer, subject, name, nats):
    claims = {"jti": "", "iat": int(time.time()), "iss": issuer.public, "name": name,
              "sub": subject.public, "nats": nats}
    claims["jti"] = b32(hashlib.sha256(json.dumps(claims).encode()).digest())
    head = b64url(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = b64url(json.dumps(claims).encode())
    sig = issuer.key.sign(f"{head}.{body}".encode())
    return f"{head}.{body}.{b64url(sig)}"


UNLIMITED = {"subs": -1, "data": -1, "payload": -1}


def account_jwt(operator, account, name):
    limits = dict(UNLIMITED, imports=-1, exports=-1, wildcards=True, conn=-1, leaf=-1)
    return jwt(operator, account, name, {"limits": limits, "type": "account", "version": 2})


def user_creds(account, name):
    user = NKey("user")
    token = jwt(account, user, name, dict(UNLIMITED, pub={}, sub={}, type="user", version=2))
    return (f"-----BEGIN NATS USER JWT-----\n{token}\n------END NATS USER JWT------\n\n"
            f"-----BEGIN USER NKEY SEED-----\n{user.seed}\n------END USER NKEY SEED------\n")


def main():
    out = sys.argv[1]
    operator, account, stranger = NKey("operator"), NKey("account"), NKey("account")
    op_jwt = jwt(operator, operator, "nxc-test-operator", {"type": "operator", "version": 2})
    with open(os.path.join(out, "server.conf"), "w") as f:
        f.write(f"operator: {op_jwt}\nresolver: MEMORY\n"
                f"resolver_preload: {{\n  {account.public}: "
                f"{account_jwt(operator, account, 'nxc-test-account')}\n}}\n")
    for name, acc in (("user", account), ("stranger", stranger)):
        path = os.path.join(out, f"{name}.creds")
        with open(path, "w") as f:
            f.write(user_creds(acc, f"nxc-test-{name}"))
        os.chmod(path, 0o600)


if __name__ == "__main__":
    main()
