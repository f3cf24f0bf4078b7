"""One "app server" for the cross-process tests: an ``AIClient`` sharing state through Redis, driven over stdin.

Config (argv[1], JSON): emulator URL, Redis URL, state prefix, breaker options. Each stdin line ``call`` makes one
call and answers one JSON line ``{"ok", "key", "error", "message"}``; ``state`` answers the Anthropic keys' and
breaker's state; EOF closes the client and exits.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from pulsegate import AIClient
from pulsegate.core.errors import CallError
from pulsegate.core.limits import MemoryRateLimiter
from pulsegate.core.redis_link import RedisLink
from pulsegate.core.settings import load_settings
from pulsegate.core.shared_state.redis import RedisSharedState

CONFIG = {"model": "claude-sonnet-4-6", "max_tokens": 8}
MESSAGES = [{"role": "user", "content": "hi"}]


async def main(config: dict[str, Any]) -> None:
    env = {"ANTHROPIC_BASE_URL": config["emulator"], "ANTHROPIC_RPM": "100000"}
    for index, key in enumerate(config["keys"]):
        env["ANTHROPIC_API_KEY" if index == 0 else f"ANTHROPIC_API_KEY_{index + 1}"] = key
    settings = load_settings(env, env_file=None)
    link = RedisLink(config["redis"], timeout_s=1.0)  # a loaded CI box must not degrade the test's processes
    shared = RedisSharedState(link, prefix=config["prefix"])
    client = AIClient(
        settings, shared_state=shared, limiter=MemoryRateLimiter(), breaker=config["breaker"], heartbeat=False
    )
    loop = asyncio.get_running_loop()
    print(json.dumps({"ready": True}), flush=True)
    while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
        if line == "call":
            try:
                response = await client.generate_response(CONFIG, MESSAGES, options={"timeout_s": 20})
                answer: dict[str, Any] = {"ok": True, "key": response.key_label}
            except CallError as error:
                answer = {"ok": False, "error": error.error_class.value, "message": str(error)}
        else:
            provider = client.snapshot()["providers"]["anthropic"]
            answer = {
                "keys": {key["label"]: key["status"] for key in provider["keys"]},
                "breaker": provider["breaker"]["state"],
            }
        print(json.dumps(answer), flush=True)
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
