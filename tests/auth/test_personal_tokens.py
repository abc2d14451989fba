"""The text of a personal access token (api/auth/personal_tokens.py): a
secret scanner's view of it, without the database."""

import zlib

from api.auth import personal_tokens
from api.auth.personal_tokens import BASE62, CHECKSUM_LENGTH, PREFIX


def base62_value(text):
    value = 0
    for char in text:
        value = value * 62 + BASE62.index(char)
    return value


def test_a_token_is_the_prefix_random_base62_and_its_crc32():
    texts = {personal_tokens.new_text() for _ in range(200)}
    assert len(texts) == 200
    for text in texts:
        assert text.startswith(PREFIX) and len(text) == 40
        body, checksum = text[:-CHECKSUM_LENGTH], text[-CHECKSUM_LENGTH:]
        assert base62_value(checksum) == zlib.crc32(body.encode())
        assert personal_tokens.is_well_formed(text)
    # All 62 characters turn up: the random part is base62, not hex.
    assert set("".join(t[len(PREFIX) : -CHECKSUM_LENGTH] for t in texts)) == set(BASE62)


def test_one_changed_character_fails_the_checksum():
    text = personal_tokens.new_text()
    for index in range(len(PREFIX), len(text)):
        swapped = BASE62[(BASE62.index(text[index]) + 1) % 62]
        assert not personal_tokens.is_well_formed(text[:index] + swapped + text[index + 1 :])


def test_what_is_not_a_token():
    text = personal_tokens.new_text()
    for other in ("", PREFIX, "ghp_" + text[4:], text + "0", text[:-1], "pat-" + text[4:]):
        assert not personal_tokens.is_well_formed(other)
