"""Provider API keys: discovery from the environment, labels, and a holder that never prints the key.

Keys come from ``ANTHROPIC_API_KEY``, ``ANTHROPIC_API_KEY_2`` … and ``OPENAI_API_KEY``, ``OPENAI_API_KEY_2`` …
(any number, gaps allowed). A key's label follows its variable's number — ``Primary`` for the plain name,
``Backup N-1`` for ``_N`` — so removing one key never renames the others in the metrics history.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from pulsegate.core.masking import fingerprint, mask_secret
from pulsegate.core.provider import Provider

log = logging.getLogger(__name__)


KEY_VARIABLE_PREFIX: dict[Provider, str] = {
    Provider.ANTHROPIC: "ANTHROPIC_API_KEY",
    Provider.OPENAI: "OPENAI_API_KEY",
}


def label_for_slot(slot: int) -> str:
    """Slot 1 (the plain variable) is ``Primary``; slot N is ``Backup N-1``."""
    return "Primary" if slot == 1 else f"Backup {slot - 1}"


@dataclass(frozen=True, slots=True, eq=False)
class ApiKey:
    """One provider key. ``repr``/``str`` show the label and masked form only; :meth:`reveal` is explicit."""

    provider: Provider
    label: str
    variable: str
    _secret: str = field(repr=False)
    masked: str = field(init=False)
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "masked", mask_secret(self._secret))
        object.__setattr__(self, "fingerprint", fingerprint(self._secret))

    def reveal(self) -> str:
        """The key itself, for the SDK client and nothing else."""
        return self._secret

    def __repr__(self) -> str:
        return f"ApiKey({self.provider.value} {self.label!r} {self.masked} fp={self.fingerprint})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and (self.provider, self.fingerprint) == (
            other.provider,
            other.fingerprint,
        )

    def __hash__(self) -> int:
        return hash((self.provider, self.fingerprint))

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("ApiKey cannot be pickled: it would write the key out")


def discover_keys(env: Mapping[str, str], provider: Provider) -> tuple[tuple[ApiKey, ...], list[str]]:
    """Read one provider's keys from ``env``; return them in slot order and the problems found.

    Empty values are ignored; a key seen twice is kept once with a warning; a variable that looks like a key
    slot but is not one (``OPENAI_API_KEY_TWO``) is a problem, not silently skipped.
    """
    prefix = KEY_VARIABLE_PREFIX[provider]
    slot_pattern = re.compile(rf"^{prefix}(?:_(\d+))?$")
    problems: list[str] = []
    by_slot: dict[int, tuple[str, str]] = {}
    for name in sorted(env):
        if name != prefix and not name.startswith(prefix + "_"):
            continue
        value = env[name].strip()
        match = slot_pattern.match(name)
        if match is None:
            problems.append(f"{name}: not a key variable; expected {prefix} or {prefix}_<number>, e.g. {prefix}_2")
            continue
        if not value:
            continue
        if any(ch.isspace() for ch in value):
            problems.append(f"{name}={mask_secret(value)!r}: expected an API key without spaces or line breaks")
            continue
        if not all(33 <= ord(ch) <= 126 for ch in value):
            # it goes into an HTTP header: a control character, a curly quote or an undecodable byte is a paste error
            shown = mask_secret(value.encode("ascii", "backslashreplace").decode("ascii"))
            problems.append(f"{name}={shown!r}: expected an API key of printable ASCII characters")
            continue
        slot = int(match.group(1) or 1)
        if slot < 1:
            problems.append(f"{name}: expected a slot number of 1 or more")
            continue
        if slot in by_slot:
            problems.append(f"{name} and {by_slot[slot][0]} both name key slot {slot}; keep one of them")
            continue
        by_slot[slot] = (name, value)

    keys: list[ApiKey] = []
    seen: dict[str, str] = {}
    for slot in sorted(by_slot):
        name, value = by_slot[slot]
        key = ApiKey(provider, label_for_slot(slot), name, value)
        if key.fingerprint in seen:
            log.warning(
                "%s repeats the key already in %s (%s); using it once",
                name,
                seen[key.fingerprint],
                key.masked,
            )
            continue
        seen[key.fingerprint] = name
        keys.append(key)
    return tuple(keys), problems
