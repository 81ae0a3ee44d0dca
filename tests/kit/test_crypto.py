"""Encryption at rest: AES-256-GCM with versioned keys, blind indexes, and key parsing."""

from __future__ import annotations

import base64
import secrets

import pytest

from valdrix.config import SettingsError, generate_key_entry, parse_encryption_keys
from valdrix.kit.crypto import DecryptionError, KeyRing, key_id_of


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def ring(*entries: str) -> KeyRing:
    return KeyRing(parse_encryption_keys(",".join(entries)))


def key_with(fragment: str) -> str:
    """A random 32-byte key whose base64 text happens to contain ``fragment``."""
    encoded = b64(secrets.token_bytes(32))
    encoded = encoded[:10] + fragment + encoded[10 + len(fragment) :]
    assert len(base64.b64decode(encoded)) == 32
    return f"k1:{encoded}"


OLD, NEW = generate_key_entry(), generate_key_entry()


def test_encrypted_text_decrypts_to_the_original() -> None:
    keys = ring(OLD)
    for text in ("Acme Corp", "ops@acme.example", "Zürich 東京 🚀", ""):
        assert keys.decrypt(keys.encrypt(text)) == text


def test_ciphertext_names_its_key_and_hides_the_text() -> None:
    keys = ring(OLD)
    blob = keys.encrypt("Acme Corp")
    assert key_id_of(blob) == keys.active_kid == OLD.split(":")[0]
    assert b"Acme Corp" not in blob


def test_encrypting_the_same_text_twice_gives_different_ciphertexts() -> None:
    keys = ring(OLD)
    first, second = keys.encrypt("Acme Corp"), keys.encrypt("Acme Corp")
    assert first != second
    assert keys.decrypt(first) == keys.decrypt(second) == "Acme Corp"


@pytest.mark.parametrize("position", [-1, -20, -30], ids=["tag", "ciphertext", "nonce"])
def test_tampered_ciphertext_is_refused(position: int) -> None:
    keys = ring(OLD)
    blob = bytearray(keys.encrypt("Acme Corp"))
    blob[position] ^= 0x01
    with pytest.raises(DecryptionError, match="failed authentication"):
        keys.decrypt(bytes(blob))


def test_ciphertext_sealed_for_one_context_does_not_open_in_another() -> None:
    keys = ring(OLD)
    blob = keys.encrypt("secret value", context=b"tenant-a")
    assert keys.decrypt(blob, context=b"tenant-a") == "secret value"
    with pytest.raises(DecryptionError):
        keys.decrypt(blob, context=b"tenant-b")


def test_ciphertext_under_a_key_that_is_not_configured_names_that_key() -> None:
    blob = ring(OLD).encrypt("Acme Corp")
    old_kid = OLD.split(":")[0]
    with pytest.raises(DecryptionError, match=f"key '{old_kid}', which is not configured"):
        ring(NEW).decrypt(blob)


def test_bytes_that_are_not_a_valdrix_ciphertext_are_refused() -> None:
    for junk in (b"", b"v", b"plain text", b"v2\x02k1" + bytes(40)):
        with pytest.raises(DecryptionError, match="not a Valdrix ciphertext"):
            ring(OLD).decrypt(junk)


def test_old_ciphertext_still_decrypts_after_a_new_key_is_put_first() -> None:
    old_blob = ring(OLD).encrypt("Acme Corp")
    rotated = ring(NEW, OLD)
    assert rotated.decrypt(old_blob) == "Acme Corp"
    assert key_id_of(rotated.encrypt("Acme Corp")) == NEW.split(":")[0]


def test_blind_index_ignores_case_and_surrounding_spaces() -> None:
    keys = ring(OLD)
    assert keys.blind_index("  Ops@Acme.EXAMPLE ") == keys.blind_index("ops@acme.example")
    assert keys.blind_index("ops@acme.example") != keys.blind_index("dev@acme.example")


def test_blind_index_depends_on_the_key() -> None:
    assert ring(OLD).blind_index("ops@acme.example") != ring(NEW).blind_index("ops@acme.example")


def test_blind_indexes_give_one_token_per_key_so_lookups_work_mid_rotation() -> None:
    rotated = ring(NEW, OLD)
    indexes = rotated.blind_indexes("Ops@Acme.example")
    assert indexes == [
        ring(NEW).blind_index("ops@acme.example"),
        ring(OLD).blind_index("ops@acme.example"),
    ]
    assert rotated.blind_index("ops@acme.example") == indexes[0]


def test_several_keys_parse_in_order_with_the_first_active() -> None:
    parsed = parse_encryption_keys(f" {NEW} , {OLD},")
    assert [kid for kid, _ in parsed] == [NEW.split(":")[0], OLD.split(":")[0]]
    assert all(len(key) == 32 for _, key in parsed)


def test_generated_keys_are_always_accepted() -> None:
    for _ in range(2000):
        parse_encryption_keys(generate_key_entry())


@pytest.mark.parametrize("fragment", ["xxx", "XxX", "todo", "ToDo"])
def test_a_random_key_that_happens_to_contain_a_placeholder_word_is_accepted(fragment: str) -> None:
    [(kid, key)] = parse_encryption_keys(key_with(fragment))
    assert kid == "k1" and len(key) == 32


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("k1:" + b64(bytes(range(16))), "must be 32 bytes (AES-256), got 16"),
        ("k1:" + b64(bytes(range(48))), "must be 32 bytes (AES-256), got 48"),
        ("k1:not*base64!", "is not base64"),
        ("k1:" + b64(bytes(range(32)))[:-2], "is not base64"),
        ("k1:changeme", "is a placeholder"),
        ("k1:changeme...", "is a placeholder"),
        ("k1:CHANGE_ME_to_a_real_key", "is a placeholder"),
        ("k1:" + b64(bytes(32)), "is a placeholder"),
        ("k1:" + "changeme" * 5 + "123=", "is a placeholder"),
    ],
    ids=[
        "short",
        "long",
        "bad-base64",
        "truncated",
        "changeme",
        "changeme-dots",
        "shouting",
        "all-zero-key",
        "base64-shaped-placeholder",
    ],
)
def test_bad_keys_are_refused_with_a_message_naming_the_key_and_the_problem(
    raw: str, problem: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        parse_encryption_keys(f"{generate_key_entry()},{raw}")
    message = str(refused.value)
    assert "VALDRIX_ENCRYPTION_KEYS key 'k1'" in message
    assert problem in message
    assert "\n" not in message


def test_a_key_id_used_twice_is_refused() -> None:
    kid = OLD.split(":")[0]
    twin = f"{kid}:{NEW.split(':')[1]}"
    with pytest.raises(SettingsError, match=f"key id '{kid}' appears twice"):
        parse_encryption_keys(f"{OLD},{twin}")


@pytest.mark.parametrize("raw", ["justakey", ":abc", "k1:", "k1"])
def test_an_entry_without_kid_and_key_is_refused_with_the_expected_shape(raw: str) -> None:
    with pytest.raises(SettingsError, match="entry 1 must look like 'kid:base64key'"):
        parse_encryption_keys(raw)


def test_an_empty_key_ring_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        KeyRing([])
