"""``AIClient`` and ``Instance`` take one list of parts (``InstanceParts``): a misspelt part is refused by name,
never silently ignored."""

from __future__ import annotations

import pytest

from pulsegate import AIClient
from pulsegate.core.clock import ManualClock
from pulsegate.core.instance import InstanceParts
from pulsegate.core.settings import load_settings


def test_a_misspelt_part_is_refused_naming_it_and_the_parts() -> None:
    settings = load_settings({"ANTHROPIC_API_KEY": "sk-ant-parts-test-" + "x" * 24}, env_file=None)
    with pytest.raises(TypeError) as caught:
        AIClient(settings, heartbeat=False, recoder=None, max_queues=3)  # type: ignore[call-arg]
    message = str(caught.value)
    assert message.startswith("unexpected keyword argument(s) max_queues, recoder; the parts are: ")
    assert "recorder" in message and "max_queue" in message


def test_the_parts_reach_the_instance() -> None:
    settings = load_settings({"ANTHROPIC_API_KEY": "sk-ant-parts-test-" + "x" * 24}, env_file=None)
    clock = ManualClock()
    client = AIClient(settings, heartbeat=False, clock=clock, max_queue=7, instance_id="i-parts", rate_limit_period_s=5)
    assert (client.clock, client.max_queue, client.instance_id, client.period_s) == (clock, 7, "i-parts", 5)
    assert InstanceParts.__optional_keys__ >= {"recorder", "limiter", "shared_state", "clock", "max_queue"}
    client.close()
