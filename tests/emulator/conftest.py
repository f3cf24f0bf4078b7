"""Fixtures for the emulator tests: a fresh emulator per test and real SDK clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest
from emulator_testkit import make_anthropic, make_openai

from pulsegate.emulator import EmulatorServer


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer() as srv:
        yield srv


@pytest.fixture
def manual_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(clock="manual") as srv:
        yield srv


@pytest.fixture
def claude(server: EmulatorServer) -> Iterator[anthropic.Anthropic]:
    with make_anthropic(server) as client:
        yield client


@pytest.fixture
def gpt(server: EmulatorServer) -> Iterator[openai.OpenAI]:
    with make_openai(server) as client:
        yield client
