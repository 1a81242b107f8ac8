"""Generated bad input: every one is refused in Preflight with a message that names the field,
and, through the whole workflow, the account is left exactly as it was."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from lambdas.errors import InvalidInput
from lambdas.logic.inputs import INSTANCE_ID, KNOWN_KEYS, SUBNET_ID, parse_request
from local.engine import Engine
from local.scenario import Scenario
from tests.support.workflow import Run, linux_instance

VALID_ID = "i-0123456789abcdef0"
# A field's name, or an unknown key quoted (and maybe clipped), then ": " and the reason.
FIELD_FIRST = re.compile(r"""^(?:[A-Za-z][\w.\[\]-]*|'.*?'|".*?"|['"].{0,80}\.\.\.): \S""")
ENUMS = {
    "Mode": ("auto", "online", "offline"),
    "Backup": ("ami", "snapshot", "none"),
    "KeyType": ("rsa", "ed25519"),
}
BOOLEANS = ("DryRun", "CreatePasswordEnabledAmi")
not_a_string = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@st.composite
def bad_inputs(draw: st.DrawFn) -> Any:
    kind = draw(
        st.sampled_from(
            ["type", "unknown", "id", "huge", "enum", "subnet", "boolean", "not-object", "key"]
        )
    )
    if kind == "not-object":
        return draw(
            st.one_of(
                st.lists(st.text(max_size=10), max_size=3),
                st.text(max_size=20),
                st.integers(),
                st.none(),
            )
        )
    base: dict[str, Any] = {"InstanceId": VALID_ID}
    if kind == "type":
        field = draw(st.sampled_from(KNOWN_KEYS))
        value = draw(not_a_string)
        assume(not (field in BOOLEANS and isinstance(value, bool)))
        base[field] = value
    elif kind == "unknown":
        key = draw(st.text(min_size=1, max_size=40))
        assume(key not in KNOWN_KEYS and key not in ("source", "detail-type"))
        base[key] = draw(st.one_of(st.text(max_size=10), st.integers(), st.booleans()))
    elif kind == "id":
        value = draw(
            st.one_of(st.text(max_size=30), st.from_regex(r"i-[0-9a-fA-F]{1,20}", fullmatch=True))
        )
        assume(not INSTANCE_ID.match(value))
        base["InstanceId"] = value
    elif kind == "huge":
        field = draw(
            st.sampled_from(["InstanceId", "SubnetId", "Mode", "PublicKey", "HelperInstanceType"])
        )
        base[field] = "i-" + "a" * draw(st.integers(min_value=1_000, max_value=200_000))
    elif kind == "enum":
        field = draw(st.sampled_from(sorted(ENUMS)))
        value = draw(st.text(max_size=20))
        assume(value not in ENUMS[field])
        base[field] = value
    elif kind == "subnet":
        value = draw(st.text(max_size=30))
        assume(
            value not in ("CreateNewVPC", "SelectedInstanceSubnet") and not SUBNET_ID.match(value)
        )
        base["SubnetId"] = value
    elif kind == "boolean":
        base[draw(st.sampled_from(BOOLEANS))] = draw(
            st.one_of(st.sampled_from(["true", "false", "yes", 1, 0]), st.none())
        )
    else:
        base["PublicKey"] = draw(st.text(max_size=200))
    return base


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(bad_inputs())
def test_every_bad_input_is_refused_naming_its_field(raw: Any) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_request(raw)
    message = str(refused.value)
    assert FIELD_FIRST.match(message), message
    assert len(message) < 600, "a refusal must stay readable whatever was sent"


@pytest.fixture(scope="module")
def one_world() -> Iterator[tuple[Engine, Callable[[Any], dict[str, Any]]]]:
    """Every generated input runs in the same world: building one per input would take the
    suite's whole budget, and a refusal that changed the world would show in the next run."""
    scenario = Scenario.from_dict(
        {"instances": {"web": linux_instance()}, "input": {"InstanceId": "@web"}}
    )
    engine = Engine(scenario)
    with engine.session() as execute:
        yield engine, execute


# Each example is a whole run (Preflight, ReadRefusal, Refused) in one world: the 40 generated
# reach every kind of bad input but "huge", given here at its largest (near Step Functions'
# 256 KiB input); the 300 of test_every_bad_input_is_refused_naming_its_field check each
# refusal's message in Preflight's own parsing.
@example({"InstanceId": "i-" + "a" * 200_000})
@example({"InstanceId": VALID_ID, "PublicKey": "i-" + "a" * 200_000})
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(bad_inputs())
def test_bad_input_through_the_workflow_changes_nothing(
    one_world: tuple[Engine, Callable[[Any], dict[str, Any]]], raw: Any
) -> None:
    engine, execute = one_world
    run = Run(engine, execute(raw))
    assert run.report["status"] == "FAILED"
    assert run.states_entered() == ["Preflight", "ReadRefusal", "Refused"]
    assert run.report["error"] == "InvalidInput"
    # The cause is the function's error message alone (ReadRefusal), which names the field.
    message = run.report["cause"]
    assert message.startswith("Preflight: ") and FIELD_FIRST.match(message[11:]), message
    run.assert_unchanged()


# Preflight's parsing alone, no run: cheap, so as many examples as before.
@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    st.dictionaries(
        st.sampled_from([key for key in KNOWN_KEYS if key != "InstanceId"]),
        not_a_string,
        min_size=2,
        max_size=5,
    )
)
def test_several_bad_fields_are_each_named(bad: dict[str, Any]) -> None:
    bad = {key: value for key, value in bad.items() if not isinstance(value, bool)}
    assume(len(bad) >= 2)
    with pytest.raises(InvalidInput) as refused:
        parse_request({"InstanceId": "i-123", **bad})
    named = {problem.split(": ", 1)[0] for problem in str(refused.value).split("; ")}
    assert named >= {"InstanceId", *bad}, str(refused.value)
