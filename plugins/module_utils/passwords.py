"""Mosquitto password-file lines (``$7$`` PBKDF2-HMAC-SHA512), made on the control node.

Format, byte for byte as Debian's ``mosquitto_passwd`` writes it (mosquitto_facts.md section 3):
``user:$7$<iterations>$<base64 12-byte salt>$<base64 64-byte digest>``. A 12-byte salt is the one
size both 2.0 and 2.1 brokers accept. ``$6$`` (salted SHA-512) lines are verified for migration but
never written.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

SALT_BYTES = 12
DIGEST_BYTES = 64
DEFAULT_ITERATIONS = 10_000
MAX_FIELD = 65535


def username_problem(username: object) -> str | None:
    """Why a username cannot go into a password file, or None when it can."""
    if not isinstance(username, str) or username == "":
        return "must be a non-empty string"
    if ":" in username:
        return "must not contain ':' (it separates the username from the hash)"
    if any(ord(c) < 32 or ord(c) == 127 for c in username):
        return "must not contain control characters"
    if username != username.strip():
        return "must not start or end with whitespace (the broker trims it)"
    if len(username.encode()) > MAX_FIELD:
        return f"must be at most {MAX_FIELD} bytes"
    return None


def hash_line(username: str, password: str, iterations: int = DEFAULT_ITERATIONS,
              salt: bytes | None = None) -> str:
    """One password-file line (without newline) for ``username``/``password``."""
    problem = username_problem(username)
    if problem:
        raise ValueError(f"username {username!r} {problem}")
    if not isinstance(password, str) or password == "":
        raise ValueError(f"password for {username!r} must be a non-empty string (an empty one never authenticates)")
    if "\0" in password:
        raise ValueError(f"password for {username!r} must not contain NUL (the broker truncates at it)")
    if iterations < 1:
        raise ValueError("iterations must be at least 1")
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    if len(salt) != SALT_BYTES:
        raise ValueError(f"salt must be {SALT_BYTES} bytes")
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, dklen=DIGEST_BYTES)
    return f"{username}:$7${iterations}${_b64(salt)}${_b64(digest)}"


def parse_line(line: str) -> tuple[str, dict] | None:
    """Split a line into (username, hash fields) the way the 2.0 broker does; None if it would drop it."""
    line = line.rstrip("\r\n")
    if not line or line.startswith("#") or ":" not in line:
        return None
    username, _, rest = line.partition(":")
    username = username.strip()
    fields = [f for f in rest.split(":", 1)[0].strip().split("$") if f]  # strtok skips empty fields
    try:
        if len(fields) == 4 and fields[0] == "7":
            iterations = int(fields[1])
            salt, digest = _unb64(fields[2]), _unb64(fields[3])
            kind = "7"
        elif len(fields) == 3 and fields[0] == "6":
            iterations, salt, digest = 0, _unb64(fields[1]), _unb64(fields[2])
            kind = "6"
        else:
            return None
    except (ValueError, binascii.Error):
        return None
    if not username or len(salt) != SALT_BYTES or len(digest) != DIGEST_BYTES:
        return None
    if kind == "7" and iterations < 1:
        return None
    return username, {"type": kind, "iterations": iterations, "salt": salt, "digest": digest}


def verify_line(line: str, password: str) -> bool:
    """True when ``password`` matches the line, exactly as the broker would decide."""
    parsed = parse_line(line)
    if parsed is None or not password:
        return False
    _, h = parsed
    secret = password.encode().split(b"\0", 1)[0]
    if h["type"] == "7":
        got = hashlib.pbkdf2_hmac("sha512", secret, h["salt"], h["iterations"], dklen=DIGEST_BYTES)
    else:
        got = hashlib.sha512(secret + h["salt"]).digest()
    return hmac.compare_digest(got, h["digest"])


def render_file(users: list[tuple[str, str]], existing: str = "",
                iterations: int = DEFAULT_ITERATIONS) -> str:
    """The whole password file for ``users`` [(username, password)], in the given order.

    A user whose existing line still verifies with the wanted password and iteration count keeps
    that line byte for byte (so a re-run changes nothing); anyone else gets a fresh salt and hash;
    users not listed disappear.
    """
    current: dict[str, str] = {}
    for line in existing.splitlines():
        parsed = parse_line(line)
        if parsed:
            current[parsed[0]] = line.rstrip("\r\n")
    seen: set[str] = set()
    out = []
    for username, password in users:
        if username in seen:
            raise ValueError(f"duplicate username {username!r}")
        seen.add(username)
        old = current.get(username)
        if old is not None and _iterations(old) == iterations and verify_line(old, password):
            out.append(old)
        else:
            out.append(hash_line(username, password, iterations))
    return "".join(line + "\n" for line in out)


def _iterations(line: str) -> int:
    parsed = parse_line(line)
    return parsed[1]["iterations"] if parsed else -1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)
