"""The request pipeline: route, authenticate, apply key behaviour, validate, inject faults, admit, generate.

Order for an inference request (documented in docs/emulator.md):
413 body size -> 401 missing key -> key behaviour (401/403 on every route; 402/429-quota on inference only)
-> 400 validation -> 404 unknown model -> injected fault -> 429 budget -> answer.
Everything here runs on the event-loop thread; the protocol only executes the returned `Reply`.
"""

from __future__ import annotations

import math
import random

from pulsegate.emulator import admin
from pulsegate.emulator import anthropic_request as ar
from pulsegate.emulator import anthropic_wire as aw
from pulsegate.emulator import openai_request as orq
from pulsegate.emulator import openai_wire as ow
from pulsegate.emulator.budget import BudgetBook, KeyBudget
from pulsegate.emulator.clock import Clock, ManualClock, MonotonicClock
from pulsegate.emulator.faults import FaultBook, Target, drip, reshape_stream
from pulsegate.emulator.formats import retry_after_seconds
from pulsegate.emulator.plan import Reply, Request
from pulsegate.emulator.providers import ANTHROPIC, OPENAI, Provider
from pulsegate.emulator.scenario import Fault, Latency, Scenario
from pulsegate.emulator.stats import Stats
from pulsegate.emulator.textgen import Answer, Ask, answer, tool_answer

JSON = ("content-type", "application/json")
SSE_HEADERS = [("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-cache")]
CACHE_TTL = 300.0
FAULT_STATUS = {"rate_limit": 429, "server_error": 500, "unavailable": 503, "gateway_timeout": 504}
INFERENCE = ("anthropic.messages", "openai.chat_completions")
ADMIN_BODY_LIMIT = 16 * 1024 * 1024


def sample_latency(lat: Latency, rng: random.Random) -> float:
    """Seconds of delay before the response head, drawn from the scenario's distribution."""
    if lat.kind == "none":
        return 0.0
    if lat.kind == "fixed":
        ms = lat.ms
    elif lat.kind == "uniform":
        ms = rng.uniform(lat.min_ms, lat.max_ms)
    else:
        ms = lat.median_ms * math.exp(lat.sigma * rng.gauss(0.0, 1.0))
        if lat.max_ms > 0:
            ms = min(ms, lat.max_ms)
    return ms / 1000.0


class Emulator:
    """The emulator's state (scenario, clock, budgets, caches, stats) and its request handler."""

    def __init__(self, scenario: Scenario | None = None, clock: Clock | None = None) -> None:
        self._clock_fixed = clock is not None
        self.clock: Clock = clock or MonotonicClock()
        self.stats = Stats()
        self.budgets = BudgetBook()
        self.cache: dict[tuple[str, int], float] = {}
        self.set_scenario(scenario or Scenario())

    # -- state ----------------------------------------------------------------------------------------------
    def set_scenario(self, scenario: Scenario) -> None:
        """Replace the scenario; budgets, prompt caches and fault counters start afresh (stats are kept)."""
        self.scenario = scenario
        if not self._clock_fixed:
            wants_manual = scenario.clock == "manual"
            if wants_manual != getattr(self.clock, "manual", False):
                self.clock = ManualClock() if wants_manual else MonotonicClock()
        self.faults = FaultBook(scenario.faults, scenario.seed)
        self.rng = random.Random(scenario.seed)
        self.budgets.clear()
        self.cache.clear()

    def add_fault(self, fault: Fault) -> None:
        """Append one rule to the running scenario without resetting anything else."""
        self.scenario = self.scenario.with_fault(fault)
        self.faults.add(fault)

    def reset(self) -> None:
        """Clear stats, budgets, prompt caches and fault counters; reseed the RNGs."""
        self.stats.clear()
        self.budgets.clear()
        self.cache.clear()
        self.faults.reset()
        self.rng = random.Random(self.scenario.seed)

    def body_limit(self, path: str) -> int:
        """Bytes of request body kept in memory: the scenario's limit (admin requests get at least 16 MiB)."""
        if path.startswith("/_emulator/"):
            return max(self.scenario.max_body_bytes, ADMIN_BODY_LIMIT)
        return self.scenario.max_body_bytes

    # -- dispatch -------------------------------------------------------------------------------------------
    def handle(self, req: Request) -> Reply:
        path = req.path
        if path.startswith("/_emulator/"):
            return admin.handle(self, req)
        method = req.method
        if path == "/v1/messages":
            route, provider = "anthropic.messages", ANTHROPIC
        elif path == "/v1/chat/completions":
            route, provider = "openai.chat_completions", OPENAI
        elif path == "/v1/messages/count_tokens":
            route, provider = "anthropic.count_tokens", ANTHROPIC
        elif path == "/v1/models" or path.startswith("/v1/models/"):
            provider = ANTHROPIC if "anthropic-version" in req.headers else OPENAI
            route = provider.name + ".models"
        else:
            provider = ANTHROPIC if "anthropic-version" in req.headers else OPENAI
            return self._plain(req, provider, 404, "Not found", "unknown")
        wanted = "GET" if route.endswith(".models") else "POST"
        if method != wanted:
            return self._plain(req, provider, 405, f"Method {method} not allowed for {path}", route)
        return self._api(req, provider, route)

    def _plain(self, req: Request, provider: Provider, status: int, message: str, route: str) -> Reply:
        """404 / 405 in the provider's shape, with the usual headers."""
        rid = provider.request_id()
        if provider is ANTHROPIC:
            body = aw.error_body(status, message, rid)
        else:
            body = ow.error_body(status, message, type_="invalid_request_error", code=None)
        key = provider.credential(req.headers)
        return self._finish(Reply(status, [JSON], body), provider, route, rid, key)

    def _finish(self, reply: Reply, p: Provider, route: str, rid: str, key: str | None) -> Reply:
        """Add the request id and the key's rate-limit headers (every response has them) and count the reply."""
        sc = self.scenario
        now = self.clock.now()
        budget = self.budgets.get(key or "", sc.policy_for(key) if key else sc.defaults, now)
        reply.headers.append((p.request_id_header, rid))
        reply.headers.extend(p.static_headers)
        reply.headers.extend(p.ratelimit_headers(budget.windows(now), self.clock.wall()))
        self.stats.record(route, 0 if reply.reset else reply.status, key, reply.fault)
        return reply

    # -- the API pipeline -----------------------------------------------------------------------------------
    def _api(self, req: Request, p: Provider, route: str) -> Reply:
        sc = self.scenario
        rid = p.request_id()
        key = p.credential(req.headers)
        policy = sc.policy_for(key) if key else sc.defaults
        now = self.clock.now()
        budget = self.budgets.get(key or "", policy, now)
        inference = route in INFERENCE
        reply = self._gate(req, p, route, rid, key, policy.behaviour, inference)
        ask: Ask | None = None
        ready: Reply | None = None
        if reply is None:
            parsed = self._parse(req, p, route, rid)
            if isinstance(parsed, Reply):
                reply = parsed
            else:
                ask, ready = parsed
                if ask is not None and ask.end_user is not None:
                    self.stats.end_users[ask.end_user] += 1
        fault: Fault | None = None
        if reply is None:
            target = Target(p.name, route, key, ask.model if ask else None, bool(ask and ask.stream))
            fault = self.faults.pick(target)
            if fault is not None:
                reply = self._fault_reply(p, fault, rid)
        if reply is None and ready is not None:
            reply = self._shape_ready(ready, fault)
        if reply is None and ask is not None:
            reply = self._serve(p, rid, key, ask, budget, now, fault)
        assert reply is not None
        return self._finish(reply, p, route, rid, key)

    def _error(self, parts: tuple[int, bytes, list[tuple[str, str]]], retry_after: int | None = None) -> Reply:
        status, body, extra = parts
        headers = [JSON, *extra]
        if retry_after is not None:
            headers.append(("retry-after", str(retry_after)))
        return Reply(status, headers, body)

    def _gate(
        self, req: Request, p: Provider, route: str, rid: str, key: str | None, behaviour: str, inference: bool
    ) -> Reply | None:
        """Refusals that come before the body is looked at: size, credential, the key's fixed behaviour."""
        if req.body_size > self.scenario.max_body_bytes:
            message = None if p is ANTHROPIC else f"Request too large: {req.body_size} bytes."
            return self._error(p.error(413, message, rid))
        if key is None:
            return self._error(p.missing_key(rid))
        if behaviour in ("invalid", "permission") or (inference and behaviour != "ok"):
            return self._error(p.behaviour(behaviour, key, rid))
        return None

    def _parse(self, req: Request, p: Provider, route: str, rid: str) -> Reply | tuple[Ask | None, Reply | None]:
        """Validate the body; returns (ask, None) to go on, or a finished Reply (400/404 or a non-inference answer)."""
        sc = self.scenario
        if route == "anthropic.messages":
            ask = ar.parse_messages(req.body, sc.reply)
            if isinstance(ask, tuple):
                return self._error(p.error(ask[0], ask[1], rid))
            total = ask.input_tokens + (ask.max_tokens or 0)
            if total > sc.anthropic_context_window:
                message = (
                    f"input length and `max_tokens` exceed context limit: {ask.input_tokens} + {ask.max_tokens} > "
                    f"{sc.anthropic_context_window}, decrease input length or `max_tokens` and try again"
                )
                return self._error(p.error(400, message, rid))
        elif route == "openai.chat_completions":
            ask = orq.parse_chat(req.body, sc.reply, sc.reasoning_models, sc.openai_context_window)
            if isinstance(ask, tuple):
                return Reply(ask[0], [JSON], ask[1])
        elif route == "anthropic.count_tokens":
            counted = ar.parse_count_tokens(req.body)
            if isinstance(counted[0], int):
                return self._error(p.error(counted[0], str(counted[1]), rid))
            model, tokens = counted
            if model in sc.unknown_models:
                return self._error(p.model_not_found(str(model), rid))
            return None, Reply(200, [JSON], aw.count_tokens_body(int(tokens)))
        else:
            return None, self._models(req, p, rid)
        if ask.model in sc.unknown_models:
            return self._error(p.model_not_found(ask.model, rid))
        return ask, None

    def _models(self, req: Request, p: Provider, rid: str) -> Reply:
        listed = self.scenario.models.anthropic if p is ANTHROPIC else self.scenario.models.openai
        if req.path == "/v1/models":
            body = aw.models_page(listed, req.query) if p is ANTHROPIC else ow.models_page(listed)
            return Reply(200, [JSON], body)
        model_id = req.path[len("/v1/models/") :]
        for model in listed:
            if model["id"] == model_id:
                return Reply(200, [JSON], aw.model_body(model) if p is ANTHROPIC else ow.model_body(model))
        return self._error(p.model_not_found(model_id, rid))

    def _fault_reply(self, p: Provider, fault: Fault, rid: str) -> Reply | None:
        """Replies for faults that replace the answer; None for faults that shape the answer instead."""
        kind = fault.kind
        if kind == "reset":
            reply = Reply(0, [], reset=True, delay=sample_latency(self.scenario.latency, self.rng))
        elif kind == "overloaded":
            reply = self._error(p.overloaded(fault.message, rid), fault.retry_after)
        elif kind == "error" or kind in FAULT_STATUS:
            status = fault.status if kind == "error" and fault.status else FAULT_STATUS[kind]
            retry_after = fault.retry_after
            if status == 429 and retry_after is None:
                retry_after = 1
            if status == 529 and fault.status == 529 and p is OPENAI:
                parts = (529, ow.error_body(529, fault.message), [])
            elif status == 503 and p is OPENAI:
                parts = p.overloaded(fault.message, rid)
            else:
                parts = p.error(status, fault.message, rid)
            reply = self._error(parts, retry_after)
            reply.delay = sample_latency(self.scenario.latency, self.rng)
        else:
            return None
        reply.fault = kind
        return reply

    def _shape_ready(self, ready: Reply, fault: Fault | None) -> Reply:
        """A models / count_tokens answer, with latency and the faults that shape rather than replace it."""
        ready.delay = sample_latency(self.scenario.latency, self.rng)
        if fault is not None:
            ready.fault = fault.kind
            if fault.kind == "stall":
                ready.delay += fault.seconds
            elif fault.kind == "malformed_json":
                ready.body = ready.body[: max(1, len(ready.body) // 2)]
        return ready

    def _serve(
        self, p: Provider, rid: str, key: str | None, ask: Ask, budget: KeyBudget, now: float, fault: Fault | None
    ) -> Reply:
        """Admit against the budget, then generate the answer as a whole body or a stream."""
        cache_read = cache_creation = 0
        cache_key: tuple[str, int] | None = None
        if ask.cache_prefix is not None and key:
            digest, tokens = ask.cache_prefix
            cache_key = (key, digest)
            if self.cache.get(cache_key, -1.0) > now:
                cache_read = tokens
            else:
                cache_creation = tokens
        uncached_input = ask.input_tokens - cache_read - cache_creation
        max_out = ask.max_tokens if ask.max_tokens is not None else 4096
        denial = budget.admit(now, ask.input_tokens - cache_read, max_out)
        if denial is not None:
            windows = budget.windows(now)
            need = ask.input_tokens - cache_read + max_out
            retry = retry_after_seconds(denial.wait)
            return self._error(p.rate_limited(denial, windows, ask.model, need, rid), retry)
        if cache_key is not None:
            self.cache[cache_key] = now + CACHE_TTL
        ans = self._answer(ask)
        budget.give_back(max_out - ans.output_tokens)
        usage = {
            "input_tokens": uncached_input,
            "cache_creation_input_tokens": cache_creation,
            "cache_read_input_tokens": cache_read,
        }
        lat = self.scenario.latency
        delay = sample_latency(lat, self.rng) + (fault.seconds if fault and fault.kind == "stall" else 0.0)
        reply = self._stream(p, ask, ans, usage, rid, fault) if ask.stream else self._whole(p, ask, ans, usage, fault)
        reply.delay = delay
        if fault is not None:
            reply.fault = fault.kind
        return reply

    def _answer(self, ask: Ask) -> Answer:
        if ask.tool is not None:
            ans = tool_answer(*ask.tool)
            if ask.max_tokens is None or ans.output_tokens <= ask.max_tokens:
                return ans
        return answer(ask.prompt, self.scenario.reply, ask.max_tokens, ask.stops)

    def _whole(self, p: Provider, ask: Ask, ans: Answer, usage: dict[str, int], fault: Fault | None) -> Reply:
        body = aw.message_body(ask, ans, usage) if p is ANTHROPIC else ow.completion_body(ask, ans)
        if fault is not None and fault.kind == "malformed_json":
            body = body[: max(1, len(body) // 2)]
        if fault is not None and fault.kind == "drip_body":
            return Reply(200, [JSON], chunks=drip(body, fault.seconds))
        return Reply(200, [JSON], body)

    def _stream(
        self, p: Provider, ask: Ask, ans: Answer, usage: dict[str, int], rid: str, fault: Fault | None
    ) -> Reply:
        events = aw.stream_events(ask, ans, usage) if p is ANTHROPIC else ow.stream_events(ask, ans)
        stalls: dict[int, float] = {}
        finish = True
        if fault is not None:
            events, stalls, finish = reshape_stream(fault, events, p.error_event(rid, fault.message), p.broken_event())
        lat = self.scenario.latency
        ttft, per_token = lat.ttft_ms / 1000.0, lat.per_token_ms / 1000.0
        chunks: list[tuple[float, bytes]] = []
        seen_delta = False
        for i, (is_delta, data) in enumerate(events):
            delay = stalls.get(i, 0.0)
            if is_delta:
                delay += per_token if seen_delta else ttft
                seen_delta = True
            chunks.append((delay, data))
        if not seen_delta and ttft > 0 and chunks:
            chunks[0] = (chunks[0][0] + ttft, chunks[0][1])
        return Reply(200, list(SSE_HEADERS), chunks=chunks, close=not finish)
