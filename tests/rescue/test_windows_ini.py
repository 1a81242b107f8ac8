"""The INI editor behind gpt.ini and scripts.ini: lines it does not change stay byte for byte.

Windows reads Group Policy's INI files with names ignoring case (GetPrivateProfileString);
scripts.ini is UTF-16 with CRLF, gpt.ini ANSI with CRLF, and a hand-edited one may lack the
final line ending.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rescue.windows.ini import Ini

GPT_INI = "[General]\r\ngPCFunctionalityVersion=2\r\nVersion=65537\r\n\r\n[Other]\r\nx=1\r\n"


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from("[]=;#ab \t\r\n\u00e9"), max_size=60))
def test_any_text_renders_back_unchanged(text: str) -> None:
    assert Ini.parse(text).render() == text


def test_lookups_ignore_case_comments_and_other_sections() -> None:
    ini = Ini.parse(
        "; Version=1\r\n[ general ]\r\n#Version=2\r\nVERSION=3\r\n[Other]\r\nVersion=4\r\n"
    )
    assert ini.get("General", "version") == (3, "3")
    assert [name for _, name, _ in ini.entries("general")] == ["VERSION"]
    assert ini.get("Missing", "Version") is None
    assert ini.section("other") == (4, 6)


def test_a_value_is_replaced_in_place() -> None:
    ini = Ini.parse(GPT_INI.replace("\nVersion=", "\nversion="))
    ini.put("General", "Version", "65538")
    assert ini.render() == GPT_INI.replace("\nVersion=65537", "\nversion=65538")


def test_a_new_key_follows_the_sections_last_entry() -> None:
    ini = Ini.parse(GPT_INI)
    ini.put("General", "gPCMachineExtensionNames", "[{A}{B}]")
    assert ini.render() == GPT_INI.replace(
        "Version=65537\r\n", "Version=65537\r\ngPCMachineExtensionNames=[{A}{B}]\r\n"
    )


def test_a_new_section_goes_at_the_end_after_a_line_ending() -> None:
    ini = Ini.parse("[Startup]\n0CmdLine=a.cmd")  # no final line ending, LF endings
    ini.add("Shutdown", ["0CmdLine=b.cmd", "0Parameters="])
    assert ini.render() == "[Startup]\n0CmdLine=a.cmd\n[Shutdown]\n0CmdLine=b.cmd\n0Parameters=\n"


@pytest.mark.parametrize(
    ("text", "newline"), [("", "\r\n"), ("[General]", "\r\n"), ("[General]\r", "\r")]
)
def test_added_lines_take_the_files_line_ending(text: str, newline: str) -> None:
    ini = Ini.parse(text)
    ini.put("General", "Version", "1")
    assert ini.render() == f"[General]{newline}Version=1{newline}"


def test_an_empty_file_gets_the_given_line_ending() -> None:
    ini = Ini.parse("", "\n")
    ini.put("General", "Version", "1")
    assert ini.render() == "[General]\nVersion=1\n"


def test_removed_lines_leave_the_rest_as_it_was() -> None:
    ini = Ini.parse(GPT_INI)
    found = ini.get("General", "gPCFunctionalityVersion")
    assert found is not None
    ini.remove({found[0]})
    assert ini.render() == GPT_INI.replace("gPCFunctionalityVersion=2\r\n", "")
