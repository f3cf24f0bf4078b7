"""The keyed hash that stands in for an end user's id when ``HASH_USER_IDS`` is set.

One function for every place an id leaves the caller's hands — the store, the per-user limits and the request sent
to the provider (Anthropic's ``metadata.user_id``, OpenAI's ``user``) — so the same person has one pseudonym
everywhere and the raw id reaches none of them.
"""

from __future__ import annotations

import hashlib
import hmac


def hash_user_id(user_id: str, key: bytes) -> str:
    """HMAC-SHA256 of the id under ``key``, as 32 hex digits."""
    return hmac.new(key, user_id.encode(), hashlib.sha256).hexdigest()[:32]
