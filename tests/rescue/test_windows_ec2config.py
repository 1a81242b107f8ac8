"""EC2Config on directory trees: plugin Ec2SetPassword Enabled, the rest of config.xml as is."""

from __future__ import annotations

from pathlib import Path

import pytest

from rescue.windows import ConfigParseError, enable_password_generation
from tests.support.windows_fixtures import (
    EC2CONFIG_REL,
    EC2CONFIG_XML,
    enable_on,
    encode,
    make_tree,
    snapshot,
)

BAK = ".reset-access.bak"
DISABLED = "      <Name>Ec2SetPassword</Name>\n      <State>Disabled</State>"
ENABLED = "      <Name>Ec2SetPassword</Name>\n      <State>Enabled</State>"


@pytest.mark.parametrize(
    ("encoding", "newline"),
    [("utf-8", "\r\n"), ("utf-8-sig", "\r\n"), ("utf-16-le-bom", "\r\n"), ("utf-8", "\n")],
)
def test_ec2setpassword_is_enabled_and_nothing_else_changes(
    tmp_path: Path, encoding: str, newline: str
) -> None:
    original = encode(EC2CONFIG_XML, encoding, newline)
    before, result, after = enable_on(tmp_path, "ec2config", original)
    assert after[EC2CONFIG_REL] == encode(
        EC2CONFIG_XML.replace(DISABLED, ENABLED), encoding, newline
    )
    assert after[EC2CONFIG_REL + BAK] == original
    assert {k: v for k, v in after.items() if k not in (EC2CONFIG_REL, EC2CONFIG_REL + BAK)} == {
        k: v for k, v in before.items() if k != EC2CONFIG_REL
    }
    assert result["agent"] == "ec2config" and result["method"] == "ec2config-ec2setpassword"
    assert result["changed_files"] == [EC2CONFIG_REL]
    assert result["backups"] == [EC2CONFIG_REL + BAK]
    assert "Disabled -> Enabled" in " ".join(result["notes"])


def test_second_run_changes_nothing(tmp_path: Path) -> None:
    make_tree(tmp_path, "ec2config")
    enable_password_generation(tmp_path)
    first = snapshot(tmp_path)
    again = enable_password_generation(tmp_path)
    assert snapshot(tmp_path) == first and again["changed"] is False
    assert "already has plugin Ec2SetPassword Enabled" in " ".join(again["notes"])


def without_plugin(xml: str) -> str:
    return xml.replace("    <Plugin>\n" + DISABLED + "\n    </Plugin>\n", "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The only Ec2SetPassword is in a comment: it does not count, a plugin is added.
        (
            without_plugin(EC2CONFIG_XML),
            without_plugin(EC2CONFIG_XML).replace(
                "      <Name>AWS.EC2.Windows.CloudWatch.PlugIn</Name>\n"
                "      <State>Disabled</State>\n    </Plugin>\n",
                "      <Name>AWS.EC2.Windows.CloudWatch.PlugIn</Name>\n"
                "      <State>Disabled</State>\n    </Plugin>\n"
                "    <Plugin>\n      <Name>Ec2SetPassword</Name>\n"
                "      <State>Enabled</State>\n    </Plugin>\n",
            ),
        ),
        (
            "<S>\r\n  <Plugins>\r\n    <Plugin>\r\n      <Name>Ec2SetPassword</Name>\r\n"
            "    </Plugin>\r\n  </Plugins>\r\n</S>",
            "<S>\r\n  <Plugins>\r\n    <Plugin>\r\n      <Name>Ec2SetPassword</Name>\r\n"
            "      <State>Enabled</State>\r\n    </Plugin>\r\n  </Plugins>\r\n</S>",
        ),
        (
            "<S><Plugins><Plugin><Name> Ec2SetPassword </Name><State/></Plugin></Plugins></S>",
            "<S><Plugins><Plugin><Name> Ec2SetPassword </Name><State>Enabled</State></Plugin>"
            "</Plugins></S>",
        ),
        (
            "<S><Plugins><Plugin><Name>Ec2SetPassword</Name><State> disabled </State></Plugin>"
            "</Plugins></S>",
            "<S><Plugins><Plugin><Name>Ec2SetPassword</Name><State> Enabled </State></Plugin>"
            "</Plugins></S>",
        ),
        ("<S><Plugins/></S>", None),
        (
            "<S><Plugins></Plugins></S>",
            "<S><Plugins><Plugin><Name>Ec2SetPassword</Name><State>Enabled</State></Plugin>"
            "</Plugins></S>",
        ),
    ],
)
def test_plugin_shapes(tmp_path: Path, text: str, expected: str | None) -> None:
    make_tree(tmp_path, "ec2config", config=text.encode())
    if expected is None:
        with pytest.raises(ConfigParseError, match="no <Plugins>"):
            enable_password_generation(tmp_path)
        return
    enable_password_generation(tmp_path)
    assert (tmp_path / EC2CONFIG_REL).read_bytes().decode() == expected
    assert enable_password_generation(tmp_path)["changed"] is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "<S><Plugins><Plugin><Name>Ec2SetPassword</Name><State>Disabled</State></Plugins></S>",
            "not well-formed",
        ),
        (
            '<!DOCTYPE S [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>\n'
            "<S><Plugins><Plugin><Name>Ec2SetPassword</Name><State>&b;</State></Plugin></Plugins></S>",
            "declares XML entities",
        ),
        ("", "not well-formed"),
    ],
)
def test_bad_xml_is_refused_and_nothing_changes(tmp_path: Path, text: str, message: str) -> None:
    make_tree(tmp_path, "ec2config", config=text.encode())
    before = snapshot(tmp_path)
    with pytest.raises(ConfigParseError, match=message):
        enable_password_generation(tmp_path)
    assert snapshot(tmp_path) == before
