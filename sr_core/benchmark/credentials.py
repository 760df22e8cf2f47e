"""Secrets of the leaderboard: team tokens and the admin credential.

* A **team token** is issued when the admin registers a team (or rotates its token): ``secrets.token_urlsafe``
  with a ``srt_`` prefix, shown once. Only a salted scrypt hash is stored (:func:`hash_secret`); a submission is
  accepted only with the token whose hash matches (:func:`verify_secret`, constant-time comparison).
* The **admin credential** guards the organiser's actions (register, rotate, revoke, reveal, export-csv, the
  audit log). ``benchmark admin-init`` creates it and stores its hash in the database; an admin command reads it
  from ``$SR_CORE_ADMIN_TOKEN`` or from a file (``--admin-token-file`` / ``$SR_CORE_ADMIN_TOKEN_FILE``) that only its
  owner can read — a group- or world-readable file is refused, with the ``chmod`` that fixes it.

Hashes are self-describing strings ``scrypt$n$r$p$salt$hash`` (salt and hash base64), so the cost can be raised
later without invalidating stored tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from ..errors import SRCoreError

ENV_TEAM_TOKEN = "SR_CORE_TEAM_TOKEN"
ENV_ADMIN_TOKEN = "SR_CORE_ADMIN_TOKEN"
ENV_ADMIN_TOKEN_FILE = "SR_CORE_ADMIN_TOKEN_FILE"
TEAM_PREFIX = "srt_"
ADMIN_PREFIX = "sra_"
TOKEN_BYTES = 32  #: 256 random bits per token
MAX_TOKEN_CHARS = 200  #: anything longer is not one of ours (and is not hashed)
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  #: ≈ 16 MiB and a few tens of ms per check
SALT_BYTES = 16


class CredentialError(SRCoreError, PermissionError):
    """A missing, wrong or unusable credential; the message says what to do."""


def new_token(prefix: str = TEAM_PREFIX) -> str:
    """A fresh random token (URL-safe, 256 bits), e.g. ``srt_…``."""
    return prefix + secrets.token_urlsafe(TOKEN_BYTES)


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode("ascii").rstrip("=")


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=256 * 1024**2)


def hash_secret(secret: str) -> str:
    """Salted scrypt hash of ``secret`` (a fresh salt each call) as ``scrypt$n$r$p$salt$hash``."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(secret, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str | None, stored: str | None) -> bool:
    """Whether ``secret`` hashes to ``stored`` (constant-time comparison; False for anything malformed)."""
    if not secret or not stored or len(secret) > MAX_TOKEN_CHARS:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = _unb64(digest)
        got = _scrypt(secret, _unb64(salt), int(n), int(r), int(p))
    except (ValueError, TypeError, MemoryError):
        return False
    return hmac.compare_digest(got, want)


def clean_token(token: str | None) -> str:
    """The token with surrounding whitespace removed (a pasted token often carries a newline)."""
    return str(token or "").strip()


# ---------------------------------------------------------------------------------------------------------------
# The admin credential as given to a command
# ---------------------------------------------------------------------------------------------------------------
def read_secret_file(path: str | Path, *, what: str = "admin token file") -> str:
    """The secret in ``path`` (first non-empty line), refusing a file that others can read.

    Refused: a missing or empty file, one readable or writable by the group or others (``chmod 600`` fixes it),
    one owned by another user. On systems without POSIX permissions (Windows) only existence is checked.
    """
    p = Path(path).expanduser()
    try:
        st = p.stat()
    except FileNotFoundError:
        raise CredentialError(f"{what} {p} does not exist; create it with `python -m sr_core benchmark admin-init "
                              f"--file {p}`") from None
    except OSError as exc:
        raise CredentialError(f"{what} {p} cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise CredentialError(f"{what} {p} is not a regular file; point it at the file admin-init wrote")
    if os.name == "posix":
        if st.st_mode & 0o077:
            raise CredentialError(
                f"{what} {p} can be read by other users (mode {stat.S_IMODE(st.st_mode):04o}); refusing to use it — "
                f"run `chmod 600 {p}` and try again"
            )
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            raise CredentialError(f"{what} {p} belongs to another user (uid {st.st_uid}); use a file you own "
                                  "(chmod 600)")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialError(f"{what} {p} cannot be read ({exc})") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise CredentialError(f"{what} {p} is empty; write the admin token printed by admin-init into it")
    return lines[0]


def write_secret_file(path: str | Path, secret: str, *, overwrite: bool = False) -> Path:
    """Write ``secret`` to a new file readable only by its owner (mode 0600, created atomically with that mode)."""
    p = Path(path).expanduser()
    p.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(p, flags, 0o600)
    except FileExistsError:
        raise CredentialError(f"{p} already exists; choose another --file or remove it first") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secret + "\n")
    if os.name == "posix":
        p.chmod(0o600)
    return p


def admin_secret_from_env(token_file: str | Path | None = None) -> tuple[str | None, str]:
    """The admin credential given to this process and where it came from.

    Order: ``token_file`` (``--admin-token-file``), ``$SR_CORE_ADMIN_TOKEN``, ``$SR_CORE_ADMIN_TOKEN_FILE``.
    Returns ``(None, "")`` when none is given; raises :class:`CredentialError` for an unusable file.
    """
    if token_file:
        return read_secret_file(token_file), f"--admin-token-file {token_file}"
    env = os.environ.get(ENV_ADMIN_TOKEN, "").strip()
    if env:
        return env, f"${ENV_ADMIN_TOKEN}"
    f = os.environ.get(ENV_ADMIN_TOKEN_FILE, "").strip()
    if f:
        return read_secret_file(f), f"${ENV_ADMIN_TOKEN_FILE}"
    return None, ""


__all__ = [
    "ADMIN_PREFIX", "ENV_ADMIN_TOKEN", "ENV_ADMIN_TOKEN_FILE", "ENV_TEAM_TOKEN", "TEAM_PREFIX", "CredentialError",
    "admin_secret_from_env", "clean_token", "hash_secret", "new_token", "read_secret_file", "verify_secret",
    "write_secret_file",
]  # fmt: skip
