"""One uniform face over the two wire modules, so the request pipeline is written once for both providers.

Each method returns `(status, body, extra headers)` for an error, in that provider's exact shape.
"""

from __future__ import annotations

from collections.abc import Mapping

from pulsegate.emulator import anthropic_wire as aw
from pulsegate.emulator import openai_wire as ow
from pulsegate.emulator.budget import Denial, Window

ErrorParts = tuple[int, bytes, list[tuple[str, str]]]


class Anthropic:
    name = "anthropic"
    request_id_header = aw.REQUEST_ID_HEADER
    static_headers = aw.STATIC_HEADERS
    request_id = staticmethod(aw.request_id)
    credential = staticmethod(aw.credential)
    ratelimit_headers = staticmethod(aw.ratelimit_headers)

    def error(self, status: int, message: str | None, rid: str) -> ErrorParts:
        return status, aw.error_body(status, message, rid), []

    def missing_key(self, rid: str) -> ErrorParts:
        return 401, aw.error_body(401, "x-api-key header is required", rid), []

    def behaviour(self, behaviour: str, key: str, rid: str) -> ErrorParts:
        if behaviour == "invalid":
            return self.error(401, "invalid x-api-key", rid)
        if behaviour == "quota":
            body = aw.error_body(429, aw.SPEND_LIMIT_MESSAGE, rid, error_code="enforced_spend_limit_reached")
            return 429, body, [("x-should-retry", "false")]
        if behaviour == "billing":
            return self.error(402, None, rid)
        return self.error(403, None, rid)

    def overloaded(self, message: str | None, rid: str) -> ErrorParts:
        return self.error(529, message, rid)

    def rate_limited(
        self, denial: Denial, windows: Mapping[str, Window], model: str, need: int, rid: str
    ) -> ErrorParts:
        limit = windows[denial.bucket].limit
        return 429, aw.error_body(429, aw.rate_limit_message(denial.bucket, limit), rid), []

    def model_not_found(self, model: str, rid: str) -> ErrorParts:
        return self.error(404, f"model: {model}", rid)

    def error_event(self, rid: str, message: str | None) -> bytes:
        return aw.error_event(rid, message)

    def broken_event(self) -> bytes:
        return b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":\n\n'


class OpenAI:
    name = "openai"
    request_id_header = ow.REQUEST_ID_HEADER
    static_headers = ow.STATIC_HEADERS
    request_id = staticmethod(ow.request_id)
    credential = staticmethod(ow.credential)
    ratelimit_headers = staticmethod(ow.ratelimit_headers)

    def error(self, status: int, message: str | None, rid: str) -> ErrorParts:
        return status, ow.error_body(status, message), []

    def missing_key(self, rid: str) -> ErrorParts:
        return 401, ow.missing_key_body(), []

    def behaviour(self, behaviour: str, key: str, rid: str) -> ErrorParts:
        if behaviour == "invalid":
            return 401, ow.invalid_key_body(key), []
        if behaviour in ("quota", "billing"):
            return 429, ow.error_body(429, ow.QUOTA_MESSAGE, type_="insufficient_quota", code="insufficient_quota"), []
        return self.error(403, None, rid)

    def overloaded(self, message: str | None, rid: str) -> ErrorParts:
        return 503, ow.error_body(503, message or ow.OVERLOADED), []

    def rate_limited(
        self, denial: Denial, windows: Mapping[str, Window], model: str, need: int, rid: str
    ) -> ErrorParts:
        w = windows[denial.bucket]
        body = ow.rate_limit_body(denial.bucket, model, w.limit, w.limit - w.remaining, need, denial.wait)
        return 429, body, []

    def model_not_found(self, model: str, rid: str) -> ErrorParts:
        return 404, ow.model_not_found_body(model), []

    def error_event(self, rid: str, message: str | None) -> bytes:
        return ow.error_event(message)

    def broken_event(self) -> bytes:
        return b'data: {"id":"chatcmpl-broken","object":"chat.completion.chunk","choices":[{"index":0,"delta":\n\n'


ANTHROPIC = Anthropic()
OPENAI = OpenAI()
Provider = Anthropic | OpenAI
