"""One app server for the Redis outage test: an ``AIClient`` built as ``REDIS_URL`` builds it (one ``RedisLink`` for
the shared limiter and the shared key/breaker state), driven over stdin.

Config (argv[1], JSON): emulator URL, Redis URL, prefix, keys, rpm, period_s, local_share. Each stdin line is a JSON
command: ``{"op": "burst", "n": N}`` makes N calls at once and answers ``{"ok", "errors", "keys", "seconds"}``;
``{"op": "state"}`` answers the limiter's and shared state's degraded flags, the request limit's capacity and the
Anthropic keys' statuses. EOF closes the client and exits.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

from pulsegate import AIClient
from pulsegate.core.errors import CallError
from pulsegate.core.limits.redis import RedisRateLimiter
from pulsegate.core.redis_link import RedisLink
from pulsegate.core.settings import load_settings
from pulsegate.core.shared_state.redis import RedisSharedState

CONFIG = {"model": "claude-sonnet-4-6", "max_tokens": 8}
MESSAGES = [{"role": "user", "content": "hi"}]


async def main(config: dict[str, Any]) -> None:
    env = {
        "ANTHROPIC_BASE_URL": config["emulator"],
        "ANTHROPIC_RPM": str(config["rpm"]),
        "RATE_LIMIT_PERIOD_S": str(config["period_s"]),
    }
    for index, key in enumerate(config["keys"]):
        env["ANTHROPIC_API_KEY" if index == 0 else f"ANTHROPIC_API_KEY_{index + 1}"] = key
    settings = load_settings(env, env_file=None)
    link = RedisLink(config["redis"])  # what REDIS_URL builds: one link, one outage flag for both
    limiter = RedisRateLimiter(link=link, prefix=config["prefix"] + "limit:", local_share=config["local_share"])
    shared = RedisSharedState(link, prefix=config["prefix"] + "state:")
    client = AIClient(settings, limiter=limiter, shared_state=shared, heartbeat=False)
    loop = asyncio.get_running_loop()
    print(json.dumps({"ready": True}), flush=True)
    while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
        command = json.loads(line)
        if command["op"] == "burst":
            started = time.monotonic()
            results = await asyncio.gather(
                *(client.generate_response(CONFIG, MESSAGES, options={"timeout_s": 20}) for _ in range(command["n"])),
                return_exceptions=True,
            )
            errors = Counter(r.error_class.value if isinstance(r, CallError) else repr(r) for r in results
                             if isinstance(r, BaseException))  # fmt: skip
            keys = Counter(r.key_label for r in results if not isinstance(r, BaseException))
            answer: dict[str, Any] = {
                "ok": sum(not isinstance(r, BaseException) for r in results),
                "errors": dict(errors),
                "keys": dict(keys),
                "seconds": time.monotonic() - started,
            }
        else:
            snapshot = client.snapshot()
            provider = snapshot["providers"]["anthropic"]
            answer = {
                "limiter_degraded": snapshot["limiter"]["degraded"],
                "shared_degraded": snapshot["shared_state"]["degraded"],
                "rpm_capacity": provider["limits"]["rpm"]["capacity"],
                "keys": {key["label"]: key["status"] for key in provider["keys"]},
            }
        print(json.dumps(answer), flush=True)
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
