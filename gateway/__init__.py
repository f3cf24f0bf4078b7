"""The gateway: Pulsegate's policy behind OpenAI- and Anthropic-compatible HTTP endpoints.

An app in any language points its official SDK at the gateway (``base_url``) and authenticates with a gateway token;
the gateway runs each request through the same :class:`~pulsegate.core.instance.Instance` policy an in-process
``AIClient`` uses — key rotation, limits and the priority queue, retries, the breaker, one deadline — forwards the
request's own bytes to the provider with one of the provider keys it holds, and records a row per attempt with
``source='gateway'`` and the app's name. Provider keys never leave it.

Modules: :mod:`.server` (the aiohttp application and its routes), :mod:`.auth` (tokens, re-read every second),
:mod:`.wire` (each format's errors and headers), :mod:`.inbound` (reading a request once),
:mod:`.upstream` (the HTTP client to the providers), :mod:`.relay` (one request through the policy).
"""
