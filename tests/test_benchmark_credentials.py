"""Team tokens and the admin credential: salted hashes, constant-time checks, credential files only their owner reads."""

from __future__ import annotations

import os
import re

import pytest

from sr_core.benchmark.credentials import (
    CredentialError,
    admin_secret_from_env,
    hash_secret,
    new_token,
    read_secret_file,
    verify_secret,
    write_secret_file,
)  # fmt: skip


def test_tokens_are_random_and_hashes_salted():
    a, b = new_token(), new_token()
    assert a != b and a.startswith("srt_") and len(a) >= 40
    h1, h2 = hash_secret(a), hash_secret(a)
    assert h1 != h2 and h1.startswith("scrypt$") and a not in h1  # a fresh salt each time
    assert verify_secret(a, h1) and verify_secret(a, h2)
    assert not verify_secret(b, h1) and not verify_secret(a[:-1], h1)


@pytest.mark.parametrize("stored", [None, "", "plain", "md5$1$2$3$x$y", "scrypt$x$8$1$abc$def", "scrypt$16384$8$1$!!$??"])
def test_malformed_hashes_never_match(stored):
    assert not verify_secret("srt_anything", stored)


def test_overlong_or_empty_secrets_are_not_hashed(monkeypatch):
    """scrypt costs ≈ 16 MiB and tens of ms per check, so a hostile token (empty, or megabytes long) is refused before
    it is hashed; one of a plausible length is hashed and checked."""
    import sr_core.benchmark.credentials as cred

    h = hash_secret("srt_x")
    hashed = []
    real = cred._scrypt
    monkeypatch.setattr(cred, "_scrypt", lambda secret, *a: hashed.append(len(secret)) or real(secret, *a))
    assert not verify_secret("", h) and not verify_secret(None, h) and not verify_secret("x" * 10_000, h)
    assert not verify_secret("x" * (cred.MAX_TOKEN_CHARS + 1), h)
    assert hashed == []
    assert verify_secret("srt_x", h) and not verify_secret("x" * cred.MAX_TOKEN_CHARS, h)
    assert hashed == [5, cred.MAX_TOKEN_CHARS]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_credential_files(tmp_path, monkeypatch):
    path = write_secret_file(tmp_path / "admin.token", "sra_secret")
    assert path.stat().st_mode & 0o777 == 0o600 and read_secret_file(path) == "sra_secret"
    with pytest.raises(CredentialError, match="already exists"):
        write_secret_file(path, "other")  # never overwritten
    for mode in (0o640, 0o604, 0o660):
        path.chmod(mode)
        with pytest.raises(CredentialError, match=rf"mode {mode:04o}.*chmod 600 {re.escape(str(path))}"):
            read_secret_file(path)
    path.chmod(0o600)
    with pytest.raises(CredentialError, match=r"does not exist.*admin-init"):
        read_secret_file(tmp_path / "missing")
    empty = write_secret_file(tmp_path / "empty", "")
    with pytest.raises(CredentialError, match="is empty"):
        read_secret_file(empty)

    monkeypatch.delenv("SR_CORE_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("SR_CORE_ADMIN_TOKEN_FILE", raising=False)
    assert admin_secret_from_env() == (None, "")
    monkeypatch.setenv("SR_CORE_ADMIN_TOKEN_FILE", str(path))
    assert admin_secret_from_env() == ("sra_secret", "$SR_CORE_ADMIN_TOKEN_FILE")
    monkeypatch.setenv("SR_CORE_ADMIN_TOKEN", "sra_env")
    assert admin_secret_from_env()[0] == "sra_env"
    assert admin_secret_from_env(path)[0] == "sra_secret"  # --admin-token-file first
