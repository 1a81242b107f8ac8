"""Generated bad input: every one is refused in Preflight with a message that names the field,
and (through the whole workflow, for a sample) the account is left exactly as it was."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lambdas.errors import InvalidInput
from lambdas.logic.inputs import INSTANCE_ID, KNOWN_KEYS, SUBNET_ID, parse_request
from tests.workflow.conftest import RunScenario

VALID_ID = "i-0123456789abcdef0"
# A field's name, or an unknown key quoted (and maybe clipped), then ": " and the reason.
FIELD_FIRST = re.compile(r"""^(?:[A-Za-z][\w.\[\]-]*|'.*?'|".*?"|['"].{0,80}\.\.\.): \S""")
ENUMS = {"Mode": ("auto", "online", "offline"), "Backup": ("ami", "snapshot", "none"),
         "KeyType": ("rsa", "ed25519")}
BOOLEANS = ("DryRun", "CreatePasswordEnabledAmi")
not_a_string = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                         st.lists(st.integers(), max_size=3), st.dictionaries(
                             st.text(max_size=5), st.integers(), max_size=2))


@st.composite
def bad_inputs(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["type", "unknown", "id", "huge", "enum", "subnet", "boolean",
                                 "not-object", "key"]))
    if kind == "not-object":
        return draw(st.one_of(st.lists(st.text(max_size=10), max_size=3), st.text(max_size=20),
                              st.integers(), st.none()))
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
        value = draw(st.one_of(st.text(max_size=30), st.from_regex(r"i-[0-9a-fA-F]{1,20}",
                                                                   fullmatch=True)))
        assume(not INSTANCE_ID.match(value))
        base["InstanceId"] = value
    elif kind == "huge":
        field = draw(st.sampled_from(["InstanceId", "SubnetId", "Mode", "PublicKey",
                                      "HelperInstanceType"]))
        base[field] = "i-" + "a" * draw(st.integers(min_value=1_000, max_value=200_000))
    elif kind == "enum":
        field = draw(st.sampled_from(sorted(ENUMS)))
        value = draw(st.text(max_size=20))
        assume(value not in ENUMS[field])
        base[field] = value
    elif kind == "subnet":
        value = draw(st.text(max_size=30))
        assume(value not in ("CreateNewVPC", "SelectedInstanceSubnet")
               and not SUBNET_ID.match(value))
        base["SubnetId"] = value
    elif kind == "boolean":
        base[draw(st.sampled_from(BOOLEANS))] = draw(st.one_of(
            st.sampled_from(["true", "false", "yes", 1, 0]), st.none()))
    else:
        base["PublicKey"] = draw(st.text(max_size=200))
    return base


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(bad_inputs())
def test_every_bad_input_is_refused_naming_its_field(raw: Any) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_request(raw)
    message = str(refused.value)
    assert FIELD_FIRST.match(message), message
    assert len(message) < 600, "a refusal must stay readable whatever was sent"


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
@given(bad_inputs())
def test_bad_input_through_the_workflow_changes_nothing(run_scenario: RunScenario,
                                                        raw: Any) -> None:
    assume(raw is not None)  # the fixture reads None as "the default input"
    run = run_scenario(input=raw)
    assert run.report["status"] == "FAILED"
    assert run.states_entered() == ["Preflight", "Refused"]
    assert run.report["error"] == "InvalidInput"
    run.assert_unchanged()
