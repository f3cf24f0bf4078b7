"""Anthropic Messages request → OpenAI Chat Completions kwargs (docs/provider-wire.md §4)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulsegate.core.errors import ErrorClass, RequestValidationError
from pulsegate.core.translate import anthropic_to_openai_request, system_role_for
from tests.unit.translate.wire import load_json

PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
TOOL_ID = "toolu_01A09q90qw90lq917835lq9"


def translate(messages: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"model": "gpt-4.1", "system": None, "messages": messages, "max_tokens": 100}
    kwargs.update(overrides)
    return anthropic_to_openai_request(**kwargs)


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def assistant(content: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(tool_id: str = TOOL_ID, name: str = "get_weather", tool_input: Any = None) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": tool_id,
        "name": name,
        "input": {"location": "Paris"} if tool_input is None else tool_input,
    }


def tool_result(content: Any = "15 degrees", tool_id: str = TOOL_ID, **extra: Any) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tool_id, "content": content, **extra}


def image_b64(media_type: str = "image/png") -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": PNG_B64}}


def image_part(url: str = f"data:image/png;base64,{PNG_B64}") -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Get the current weather",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
}
OPENAI_WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
    },
}


# --- the recorded full request ----------------------------------------------------------------------------------


def test_the_recorded_anthropic_request_translates_exactly() -> None:
    body = load_json("anthropic/messages_request.json")
    result = anthropic_to_openai_request(
        model="gpt-4.1",
        system=body["system"],
        messages=body["messages"],
        max_tokens=body["max_tokens"],
        temperature=body["temperature"],
        stop_sequences=body["stop_sequences"],
        tools=body["tools"],
        tool_choice=body["tool_choice"],
        metadata_user_id=body["metadata"]["user_id"],
    )
    assert result == {
        "model": "gpt-4.1",
        "messages": [
            {"role": "system", "content": "You are a terse assistant."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is the weather in Paris? Also describe this image."},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
                ],
            },
            {
                "role": "assistant",
                "content": "Let me check the weather.",
                "tool_calls": [
                    {
                        "id": "toolu_01A09q90qw90lq917835lq9",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location":"Paris, France"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_01A09q90qw90lq917835lq9", "content": "15 degrees, cloudy"},
        ],
        "max_completion_tokens": 1024,
        "temperature": 0.2,
        "stop": ["\n\nHuman:"],
        "user": "3f2c9a1e-user-hash",
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Get the current weather in a given location",
                    "parameters": {
                        "type": "object",
                        "properties": {"location": {"type": "string"}},
                        "required": ["location"],
                    },
                },
            }
        ],
        "tool_choice": "auto",
    }


def test_translation_neither_mutates_nor_aliases_its_input() -> None:
    body = load_json("anthropic/messages_request.json")
    pristine = copy.deepcopy(body)
    result = anthropic_to_openai_request(
        model="gpt-4.1", system=body["system"], messages=body["messages"], max_tokens=10, tools=body["tools"]
    )
    assert body == pristine
    result["tools"][0]["function"]["parameters"]["properties"]["x"] = {}
    assert body == pristine


def test_minimal_request_has_only_the_required_keys() -> None:
    assert translate([user("hi")]) == {
        "model": "gpt-4.1",
        "messages": [{"role": "user", "content": "hi"}],
        "max_completion_tokens": 100,
    }


# --- system prompt --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        ("Be terse.", "Be terse."),
        ([text("One."), {"type": "text", "text": "Two.", "cache_control": {"type": "ephemeral"}}], "One.\n\nTwo."),
        ([text("Only.")], "Only."),
    ],
)
def test_system_becomes_the_first_message(system: Any, expected: str) -> None:
    assert translate([user("hi")], system=system)["messages"][0] == {"role": "system", "content": expected}


@pytest.mark.parametrize("system", [None, "", []])
def test_no_system_prompt_means_no_system_message(system: Any) -> None:
    assert translate([user("hi")], system=system)["messages"] == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("model", "role"),
    [
        ("gpt-4.1", "system"),
        ("gpt-4o-mini", "system"),
        ("gpt-4.1-nano-2025-04-14", "system"),
        ("o1", "developer"),
        ("o3-mini", "developer"),
        ("o4-mini-2025-04-16", "developer"),
        ("gpt-5", "developer"),
        ("gpt-5.1-mini", "developer"),
        ("ft:o4-mini:acme::abc", "developer"),
        ("omni-moderation-latest", "system"),
    ],
)
def test_developer_role_for_o_series_and_gpt5(model: str, role: str) -> None:
    assert system_role_for(model) == role
    assert translate([user("hi")], model=model, system="S")["messages"][0]["role"] == role


# --- user and assistant content -------------------------------------------------------------------------------------


def test_content_shapes() -> None:
    result = translate(
        [
            user("plain string"),
            assistant([text("single block")]),
            user([text("a"), text("b")]),
            assistant([text("x"), text("y")]),
            user([{"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}]),
        ]
    )
    assert result["messages"] == [
        {"role": "user", "content": "plain string"},
        {"role": "assistant", "content": "single block"},
        {"role": "user", "content": [text("a"), text("b")]},
        {"role": "assistant", "content": [text("x"), text("y")]},
        {"role": "user", "content": [image_part("https://example.com/cat.jpg")]},
    ]


def test_cache_control_and_citations_on_text_blocks_are_dropped() -> None:
    block = {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}, "citations": None}
    assert translate([user([block, image_b64("image/webp")])])["messages"] == [
        {"role": "user", "content": [text("hi"), image_part(f"data:image/webp;base64,{PNG_B64}")]}
    ]


def test_consecutive_same_role_turns_pass_through() -> None:
    result = translate([user("one"), user("two"), assistant("three"), assistant("four")])
    assert [m["role"] for m in result["messages"]] == ["user", "user", "assistant", "assistant"]


def test_thinking_blocks_are_dropped_and_an_assistant_turn_left_empty_is_skipped() -> None:
    thinking = {"type": "thinking", "thinking": "hmm", "signature": "sig"}
    redacted = {"type": "redacted_thinking", "data": "xyz"}
    result = translate(
        [user("q"), assistant([thinking, text("answer")]), user("more"), assistant([redacted]), user("again")]
    )
    assert result["messages"] == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "answer"},
        {"role": "user", "content": "more"},
        {"role": "user", "content": "again"},
    ]


# --- tool use and tool results ----------------------------------------------------------------------------------


def test_tool_use_without_text_has_null_content_and_compact_unicode_arguments() -> None:
    result = translate(
        [
            user("weather?"),
            assistant(
                [
                    {"type": "thinking", "thinking": "t", "signature": "s"},
                    tool_use("toolu_a", tool_input={"city": "Zürich", "days": [1, 2]}),
                    tool_use("toolu_b", name="get_time", tool_input={}),
                ]
            ),
            user([tool_result("sunny", "toolu_a"), tool_result("noon", "toolu_b")]),
        ]
    )
    assert result["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "toolu_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Zürich","days":[1,2]}'},
                },
                {"id": "toolu_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_a", "content": "sunny"},
        {"role": "tool", "tool_call_id": "toolu_b", "content": "noon"},
    ]


def test_tool_messages_come_before_the_rest_of_the_user_turn() -> None:
    result = translate(
        [
            user("weather?"),
            assistant([tool_use()]),
            user([text("thanks, and also:"), tool_result([text("15"), text("cloudy")]), text("what about Rome?")]),
        ]
    )
    assert result["messages"][2:] == [
        {"role": "tool", "tool_call_id": TOOL_ID, "content": "15\n\ncloudy"},
        {"role": "user", "content": [text("thanks, and also:"), text("what about Rome?")]},
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("boom", "Error: boom"),
        ([text("bad"), text("input")], "Error: bad\n\ninput"),
        (None, "Error: "),
    ],
)
def test_error_tool_results_are_prefixed(content: Any, expected: str) -> None:
    block = tool_result(content, is_error=True)
    if content is None:
        del block["content"]
    result = translate([user("q"), assistant([tool_use()]), user([block])])
    assert result["messages"][-1] == {"role": "tool", "tool_call_id": TOOL_ID, "content": expected}


@pytest.mark.parametrize("content", ["", [], None])
def test_empty_tool_result_is_an_empty_tool_message(content: Any) -> None:
    result = translate([user("q"), assistant([tool_use()]), user([tool_result(content, is_error=False)])])
    assert result["messages"][-1] == {"role": "tool", "tool_call_id": TOOL_ID, "content": ""}


def test_images_in_a_tool_result_move_to_the_following_user_message() -> None:
    result = translate(
        [
            user("screenshot please"),
            assistant([tool_use(name="screenshot", tool_input={})]),
            user([tool_result([text("here it is"), image_b64()]), text("describe it")]),
        ]
    )
    assert result["messages"][2:] == [
        {
            "role": "tool",
            "tool_call_id": TOOL_ID,
            "content": "here it is\n\n[1 image(s) from this result are attached to the next user message]",
        },
        {
            "role": "user",
            "content": [
                text(f"Image(s) returned by tool call {TOOL_ID}:"),
                image_part(),
                text("describe it"),
            ],
        },
    ]


def test_a_tool_result_with_only_an_image_still_produces_a_tool_message() -> None:
    result = translate([user("q"), assistant([tool_use()]), user([tool_result([image_b64()])])])
    assert result["messages"][2:] == [
        {
            "role": "tool",
            "tool_call_id": TOOL_ID,
            "content": "[1 image(s) from this result are attached to the next user message]",
        },
        {"role": "user", "content": [text(f"Image(s) returned by tool call {TOOL_ID}:"), image_part()]},
    ]


def test_tool_results_may_be_split_over_consecutive_user_turns() -> None:
    result = translate(
        [
            user("q"),
            assistant([tool_use("toolu_a"), tool_use("toolu_b")]),
            user([tool_result("A", "toolu_a")]),
            user([tool_result("B", "toolu_b"), text("go on")]),
        ]
    )
    assert [m["role"] for m in result["messages"]] == ["user", "assistant", "tool", "tool", "user"]


# --- scalar parameters ----------------------------------------------------------------------------------------------


def test_scalar_parameters() -> None:
    result = translate(
        [user("hi")], max_tokens=7, temperature=0, stop_sequences=["a", "b", "c", "d"], metadata_user_id="u-1"
    )
    assert result == {
        "model": "gpt-4.1",
        "messages": [{"role": "user", "content": "hi"}],
        "max_completion_tokens": 7,
        "temperature": 0,
        "stop": ["a", "b", "c", "d"],
        "user": "u-1",
    }
    assert "max_tokens" not in result


def test_empty_stop_sequences_are_omitted() -> None:
    assert "stop" not in translate([user("hi")], stop_sequences=[])


# --- tools and tool_choice ------------------------------------------------------------------------------------------


def test_tools_translate_and_description_is_optional() -> None:
    bare = {"name": "ping", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}
    custom = {**WEATHER_TOOL, "type": "custom"}
    result = translate([user("hi")], tools=[custom, bare])
    assert result["tools"] == [
        OPENAI_WEATHER_TOOL,
        {"type": "function", "function": {"name": "ping", "parameters": {"type": "object"}}},
    ]
    assert "tool_choice" not in result
    assert "parallel_tool_calls" not in result


@pytest.mark.parametrize(
    ("tool_choice", "expected_choice", "expected_parallel"),
    [
        ({"type": "auto"}, "auto", None),
        ({"type": "any"}, "required", None),
        ({"type": "none"}, "none", None),
        ({"type": "tool", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}, None),
        ({"type": "auto", "disable_parallel_tool_use": True}, "auto", False),
        ({"type": "any", "disable_parallel_tool_use": True}, "required", False),
        (
            {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
            {"type": "function", "function": {"name": "get_weather"}},
            False,
        ),
        ({"type": "auto", "disable_parallel_tool_use": False}, "auto", None),
    ],
)
def test_tool_choice(tool_choice: dict[str, Any], expected_choice: Any, expected_parallel: bool | None) -> None:
    result = translate([user("hi")], tools=[WEATHER_TOOL], tool_choice=tool_choice)
    assert result["tool_choice"] == expected_choice
    assert result.get("parallel_tool_calls") == expected_parallel
    assert ("parallel_tool_calls" in result) is (expected_parallel is not None)


@pytest.mark.parametrize("tool_choice", [{"type": "auto"}, {"type": "none", "disable_parallel_tool_use": True}])
def test_auto_or_none_without_tools_is_simply_omitted(tool_choice: dict[str, Any]) -> None:
    result = translate([user("hi")], tools=None, tool_choice=tool_choice)
    assert "tool_choice" not in result
    assert "parallel_tool_calls" not in result
    assert "tools" not in translate([user("hi")], tools=[])


# --- validation errors name the field -------------------------------------------------------------------------------


def _error(messages: list[dict[str, Any]] | Any, **overrides: Any) -> RequestValidationError:
    with pytest.raises(RequestValidationError) as caught:
        translate(messages, **overrides)
    error = caught.value
    assert error.error_class is ErrorClass.VALIDATION
    assert error.provider == "openai"
    return error


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ([], "messages:"),
        ("hi", "messages:"),
        ([{"role": "system", "content": "x"}], "messages[0].role:"),
        ([user("a"), {"role": "tool", "content": "x"}], "messages[1].role:"),
        (["hi"], "messages[0]:"),
        ([user(42)], "messages[0].content:"),
        ([user([])], "messages[0].content:"),
        ([user(["text"])], "messages[0].content[0]:"),
        ([user([{"type": "text", "text": None}])], "messages[0].content[0].text:"),
        ([user([{"type": "document", "source": {}}])], "messages[0].content[0].type:"),
        ([user([tool_use()])], "messages[0].content[0].type:"),
        ([user("a"), assistant([image_b64()])], "messages[1].content[0].type:"),
        ([user("a"), assistant([tool_result()])], "messages[1].content[0].type:"),
        ([user([{"type": "image"}])], "messages[0].content[0].source:"),
        ([user([text("x"), {"type": "image", "source": {"type": "file", "file_id": "f"}}])], "content[1].source.type:"),
        ([user([image_b64("image/tiff")])], "messages[0].content[0].source.media_type:"),
        ([user([{"type": "image", "source": {"type": "base64", "media_type": "image/png"}}])], "source.data:"),
        ([user([{"type": "image", "source": {"type": "url", "url": ""}}])], "messages[0].content[0].source.url:"),
        ([user("a"), assistant([{"type": "tool_use", "name": "n", "input": {}}])], "messages[1].content[0].id:"),
        ([user("a"), assistant([{"type": "tool_use", "id": "t", "input": {}}])], "messages[1].content[0].name:"),
        ([user("a"), assistant([tool_use(tool_input="x")])], "messages[1].content[0].input:"),
        ([user("a"), assistant([tool_use(tool_input={"s": {1, 2}})])], "messages[1].content[0].input:"),
        ([user([assistant("nope")])], "messages[0].content[0].type:"),
        ([assistant([{"type": "thinking", "thinking": "t"}])], "messages:"),
    ],
)
def test_malformed_messages_name_the_field(messages: Any, field: str) -> None:
    assert field in str(_error(messages))


def test_the_field_path_is_exact_for_a_nested_image_source() -> None:
    bad = {"type": "image", "source": {"type": "file", "file_id": "file_1"}}
    error = _error([user("a"), assistant("b"), user([bad])])
    assert str(error).startswith("messages[2].content[0].source.type: ")
    error = _error([user("q"), assistant([tool_use()]), user([tool_result([text("t"), bad])])])
    assert str(error).startswith("messages[2].content[0].content[1].source.type: ")


def test_tool_result_without_a_preceding_tool_use() -> None:
    error = _error([user([tool_result()])])
    assert str(error).startswith("messages[0].content[0].tool_use_id: ")
    error = _error([user("q"), assistant([tool_use("toolu_a")]), user([tool_result("x", "toolu_other")])])
    assert str(error).startswith("messages[2].content[0].tool_use_id: ")


def test_tool_result_answering_an_older_or_already_answered_tool_use() -> None:
    error = _error(
        [
            user("q"),
            assistant([tool_use("toolu_a")]),
            user([tool_result("1", "toolu_a")]),
            assistant("ok"),
            user([tool_result("again", "toolu_a")]),
        ]
    )
    assert str(error).startswith("messages[4].content[0].tool_use_id: ")
    error = _error([user("q"), assistant([tool_use("toolu_a")]), user([tool_result("1", "toolu_a")] * 2)])
    assert str(error).startswith("messages[2].content[1].tool_use_id: ")


@pytest.mark.parametrize(
    "messages",
    [
        [user("q"), assistant([text("t"), tool_use("toolu_a")]), user("no result")],
        [user("q"), assistant([tool_use("toolu_a")]), assistant("more")],
        [user("q"), assistant([tool_use("toolu_b"), tool_use("toolu_a")]), user([tool_result("x", "toolu_b")])],
        [user("q"), assistant([text("t"), tool_use("toolu_a")])],
    ],
)
def test_unanswered_tool_use_names_the_tool_use_block(messages: list[dict[str, Any]]) -> None:
    error = _error(messages)
    assert str(error).startswith("messages[1].content[")
    assert "'toolu_a'" in str(error)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"model": ""}, "model:"),
        ({"max_tokens": 0}, "max_tokens:"),
        ({"max_tokens": True}, "max_tokens:"),
        ({"max_tokens": 1.5}, "max_tokens:"),
        ({"temperature": 1.5}, "temperature:"),
        ({"temperature": -0.1}, "temperature:"),
        ({"temperature": "0.5"}, "temperature:"),
        ({"stop_sequences": ["a", "b", "c", "d", "e"]}, "stop_sequences:"),
        ({"stop_sequences": "STOP"}, "stop_sequences:"),
        ({"stop_sequences": ["a", 1]}, "stop_sequences[1]:"),
        ({"metadata_user_id": 7}, "metadata.user_id:"),
        ({"system": [{"type": "image"}]}, "system[0].type:"),
        ({"system": [{"type": "text"}]}, "system[0].text:"),
        ({"system": 3}, "system:"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type:"),
        ({"tools": [{"input_schema": {}}]}, "tools[0].name:"),
        ({"tools": [{"name": "x"}]}, "tools[0].input_schema:"),
        ({"tools": [{"name": "x", "input_schema": {}, "description": 1}]}, "tools[0].description:"),
        ({"tools": ["x"]}, "tools[0]:"),
        ({"tools": [WEATHER_TOOL], "tool_choice": {"type": "function"}}, "tool_choice.type:"),
        ({"tools": [WEATHER_TOOL], "tool_choice": "auto"}, "tool_choice:"),
        ({"tools": [WEATHER_TOOL], "tool_choice": {"type": "tool", "name": "other"}}, "tool_choice.name:"),
        ({"tool_choice": {"type": "tool", "name": "get_weather"}}, "tool_choice.name:"),
        ({"tool_choice": {"type": "any"}}, "tool_choice.type:"),
    ],
)
def test_malformed_parameters_name_the_field(overrides: dict[str, Any], field: str) -> None:
    assert str(_error([user("hi")], **overrides)).startswith(field)


def test_too_many_stop_sequences_says_why() -> None:
    assert "at most 4" in str(_error([user("hi")], stop_sequences=list("abcde")))


# --- property: text-only conversations keep every text, in order ----------------------------------------------------

_texts = st.text(max_size=20)
_content = st.one_of(_texts, st.lists(_texts.map(text), min_size=1, max_size=4))
_turns = st.lists(
    st.tuples(st.sampled_from(["user", "assistant"]), _content).map(lambda t: {"role": t[0], "content": t[1]}),
    min_size=1,
    max_size=8,
)


def _texts_of(content: str | list[dict[str, Any]]) -> list[str]:
    return [content] if isinstance(content, str) else [block["text"] for block in content]


@settings(max_examples=150, deadline=None)
@given(turns=_turns, system=st.one_of(st.none(), st.text(min_size=1, max_size=10)))
def test_text_only_conversations_keep_every_text_in_order(turns: list[dict[str, Any]], system: str | None) -> None:
    result = translate(turns, system=system)
    messages = result["messages"]
    if system:
        assert messages[0] == {"role": "system", "content": system}
        messages = messages[1:]
    assert [m["role"] for m in messages] == [t["role"] for t in turns]
    out_texts = [piece for m in messages for piece in _texts_of(m["content"])]
    in_texts = [piece for t in turns for piece in _texts_of(t["content"])]
    assert out_texts == in_texts
    assert "".join(out_texts) == "".join(in_texts)
