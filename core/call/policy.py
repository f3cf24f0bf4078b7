"""What each error class means for the rest of a call: give up, move to the next key, blame the provider, fall
back — and how far the SDK's own timeout outlasts the call's deadline."""

from __future__ import annotations

from pulsegate.core.errors import ErrorClass
from pulsegate.core.retry import RETRYABLE

#: The request itself is wrong: no other key, retry or provider will help.
REQUEST_SCOPED = frozenset({ErrorClass.BAD_REQUEST, ErrorClass.NOT_FOUND, ErrorClass.TOO_LARGE})
#: The key is the problem: the same request moves to the next usable key at once (not a retry).
KEY_SCOPED = frozenset({ErrorClass.AUTH, ErrorClass.QUOTA, ErrorClass.RATE_LIMITED})
#: Failures that say the provider is unwell; only these move the breaker.
PROVIDER_HEALTH = frozenset(
    {
        ErrorClass.OVERLOADED,
        ErrorClass.SERVER_ERROR,
        ErrorClass.TIMEOUT,
        ErrorClass.CONNECTION,
        ErrorClass.STREAM_INTERRUPTED,
    }
)
#: A call that ends on one of these may go on on the other provider, when the caller allows it (and so does a call
#: that left a queue for its fallback: :class:`~pulsegate.core.queue_wait.LeftQueueForFallback`).
FALLBACK_ON = RETRYABLE | {ErrorClass.CIRCUIT_OPEN, ErrorClass.NO_USABLE_KEY, ErrorClass.KEYS_COOLING_DOWN}
#: How long the SDK's own (per-read) timeout outlasts the call's deadline, so the deadline — a total bound enforced
#: here around the whole attempt — always fires first and a slowly-arriving body cannot stretch the call.
SDK_TIMEOUT_GRACE_S = 1.0
