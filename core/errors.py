"""Pulsegate's exception tree and the error-class vocabulary: the root, the tree's diagram, the classes a call raises.

Every failure Pulsegate reports is one :class:`ErrorClass` value: the same string is stored in the
``error_class`` column, carried on :attr:`PulsegateError.error_class` and used by alert rules. A new class is
added here, in the enum, and in the README's table at once; nothing is ever "unknown".

Exception tree — every exception Pulsegate defines, wherever it lives (a class in another module stays beside the
code that raises it; grep its name). ``+ ValueError`` and the like: it subclasses that builtin too, so an existing
``except ValueError`` still catches it. A private signal (a leading underscore, raised and caught inside one module)
is not part of the tree; tests/unit/test_exception_tree.py checks the rest::

    PulsegateError
    ├── ConfigError                 bad settings / environment (raised at start, lists every problem)
    │   ├── AlertConfigError        the alert rules file
    │   └── ChannelConfigError      an alert channel ([[channels]] or the default one)
    ├── StoreError                  the metrics store cannot be used
    │   └── StoreUnreachableError   the database server cannot be reached
    ├── CallError                   a call failed; carries provider, error_class, http_status, key_label, …
    │   ├── RequestValidationError  validation          (rejected before any network I/O)        + ValueError
    │   ├── AdmissionError                              (never reached a provider)
    │   │   ├── QueueFullError      queue_full
    │   │   ├── QueueTimeoutError   queue_timeout
    │   │   │   └── LeftQueueForFallback  queue_timeout (left the primary's queue for the fallback provider)
    │   │   ├── QueueClearedError   cancelled
    │   │   └── UserRateLimitedError user_rate_limited
    │   ├── NoUsableKeyError        no_usable_key
    │   ├── KeysCoolingDownError    keys_cooling_down   (every key waits out a 429 past the deadline; nothing sent)
    │   ├── CircuitOpenError        circuit_open
    │   ├── DeadlineExceededError   deadline_exceeded
    │   └── ProviderError           rate_limited, overloaded, server_error, timeout, connection,
    │       │                       auth, quota, bad_request, not_found, too_large
    │       ├── StreamInterruptedError  stream_interrupted (holds the partial text)
    │       └── UpstreamError       the gateway: a provider's error answer (keeps its body)
    ├── IncompleteResponseError     a provider's answer ended without a stop reason                 + ValueError
    ├── StreamErrorEvent            a provider sent an error event inside a stream                  + ValueError
    ├── RedisUrlError               REDIS_URL cannot address the server (a cluster has database 0)  + RedisError
    ├── QueryFilterError            a query filter (time range, provider, …) that cannot be used    + ValueError
    ├── ControlCommandError         a control command that cannot be issued (``field``)             + ValueError
    ├── CommandFailed               an instance cannot apply a control command (acked ok=False)
    ├── ProbeError                  a probe that cannot be run as asked (``field``)                 + ValueError
    ├── SilenceError                an alert silence that cannot be created (``field``)             + ValueError
    │   └── MatcherError            one silence matcher that is not ``name=value`` (``part``)
    ├── EpisodeConflict             another evaluator changed an alert group first: roll back, write nothing
    ├── RuleProblem                 one problem in one alert rule (``field``)                       + ValueError
    ├── RuleProblems                every problem of one alert rule                                 + ValueError
    ├── UnknownChannelError         a test alert names no configured channel
    ├── AppError                    a gateway app or token request that cannot be done as asked
    ├── GatewayError                the gateway cannot start as configured
    ├── GatewayRequestError         a gateway request that cannot be forwarded as sent (``field``)  + ValueError
    ├── CommandError                the CLI: a bad flag value or file (one line, exit 2)
    ├── UpError                     ``pulsegate up`` cannot start as configured
    ├── WorkerError                 the worker cannot start as configured
    ├── ApiError                    the worker's HTTP API answers other than success (status, field)
    ├── ChildFailed                 a demo child exited, or never became ready                      + RuntimeError
    ├── StoreDown                   the dashboard cannot read the store right now (one line)
    └── BadNow                      the dashboard's fixed "now" is not an ISO 8601 instant          + ValueError

The emulator is a package of its own that imports nothing of core: its ``EmulatorError`` tree stays apart.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorClass(StrEnum):
    """Why an attempt failed. Provider-side classes first, then Pulsegate's own."""

    # provider-side
    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    AUTH = "auth"
    QUOTA = "quota"
    BAD_REQUEST = "bad_request"
    NOT_FOUND = "not_found"
    TOO_LARGE = "too_large"
    STREAM_INTERRUPTED = "stream_interrupted"
    # ours
    VALIDATION = "validation"
    NO_USABLE_KEY = "no_usable_key"
    CIRCUIT_OPEN = "circuit_open"
    QUEUE_TIMEOUT = "queue_timeout"
    QUEUE_FULL = "queue_full"
    CANCELLED = "cancelled"
    KEYS_COOLING_DOWN = "keys_cooling_down"
    USER_RATE_LIMITED = "user_rate_limited"
    DEADLINE_EXCEEDED = "deadline_exceeded"


class PulsegateError(Exception):
    """Base of every error Pulsegate raises on purpose."""


def one_line_reason(exc: BaseException, limit: int | None = None) -> str:
    """Why ``exc`` happened, as one line (at most ``limit`` characters): its message's first line, or its type's
    name when it has no message. For the places that show a failure without a traceback — a job's last error on
    ``/healthz``, a dashboard banner, a log line — so they all word it alike."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]


class ConfigError(PulsegateError):
    """The configuration cannot be used; ``problems`` lists each one as ``NAME='value': expected …``."""

    def __init__(self, problems: list[str], source: str = "environment") -> None:
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"invalid Pulsegate settings ({count} {noun} in the {source}):\n{lines}")


class StoreError(PulsegateError):
    """The metrics store cannot be used as configured."""


class StoreUnreachableError(StoreError):
    """The database server named by ``DATABASE_URL`` did not answer."""


class CallError(PulsegateError):
    """A call through :class:`pulsegate.core.AIClient` failed. Never carries a key: only its label."""

    error_class: ErrorClass = ErrorClass.SERVER_ERROR

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        error_class: ErrorClass | None = None,
        http_status: int | None = None,
        key_label: str | None = None,
        attempts: int = 0,
        retry_after: float | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        if error_class is not None:
            self.error_class = error_class
        self.http_status = http_status
        self.key_label = key_label
        self.attempts = attempts
        self.retry_after = retry_after
        self.request_id = request_id

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self)!r}, provider={self.provider!r}, "
            f"error_class={self.error_class.value!r}, http_status={self.http_status!r}, "
            f"key_label={self.key_label!r}, attempts={self.attempts})"
        )


class RequestValidationError(CallError, ValueError):
    """The request is malformed; nothing was sent and no key was penalised."""

    error_class = ErrorClass.VALIDATION


class AdmissionError(CallError):
    """The request never left the queue or the limiter."""


class QueueFullError(AdmissionError):
    error_class = ErrorClass.QUEUE_FULL


class QueueTimeoutError(AdmissionError):
    error_class = ErrorClass.QUEUE_TIMEOUT


class QueueClearedError(AdmissionError):
    error_class = ErrorClass.CANCELLED


class UserRateLimitedError(AdmissionError):
    error_class = ErrorClass.USER_RATE_LIMITED


class NoUsableKeyError(CallError):
    error_class = ErrorClass.NO_USABLE_KEY


class KeysCoolingDownError(CallError):
    """Every usable key is cooling down after a 429 until past the call's deadline: refused here, nothing was sent.

    Not ``rate_limited`` (that class means the provider answered 429), so local refusals never inflate the 429 share.
    ``retry_after`` is when the earliest key is usable again."""

    error_class = ErrorClass.KEYS_COOLING_DOWN


class CircuitOpenError(CallError):
    error_class = ErrorClass.CIRCUIT_OPEN


class DeadlineExceededError(CallError):
    error_class = ErrorClass.DEADLINE_EXCEEDED


class ProviderError(CallError):
    """The provider (or the network to it) failed the request; ``error_class`` says how."""


class StreamInterruptedError(ProviderError):
    """A stream failed after its first delta; ``partial_text`` is what had arrived."""

    error_class = ErrorClass.STREAM_INTERRUPTED

    def __init__(self, message: str, *, partial_text: str = "", **context: object) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.partial_text = partial_text
