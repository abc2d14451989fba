"""The list of reaches into libraries' private internals (api/internals.py)
stays true: each is checked against the version installed, and points at
code and a test that exist."""

import re
from importlib.metadata import version
from pathlib import Path

import pytest

from api.internals import REACHES

ROOT = Path(__file__).resolve().parent.parent


def pinned(library):
    text = (ROOT / "requirements.txt").read_text()
    match = re.search(rf"^{re.escape(library)}(?:\[[^\]]*\])?==(\S+)$", text, re.M | re.I)
    return match and match.group(1)


def source_of(where):
    module, _, name = where.partition(":")
    path = module if module.endswith(".py") else module.replace(".", "/") + ".py"
    return (ROOT / path).read_text(), name


@pytest.mark.parametrize("reach", REACHES, ids=lambda r: f"{r.library}:{r.where}")
def test_each_reach_was_checked_against_the_installed_version(reach):
    assert version(reach.library) == reach.checked, (
        f"{reach.library} is now {version(reach.library)}: read {reach.where} against it "
        f"({reach.reaches}), run {reach.test}, then update api/internals.py"
    )
    assert pinned(reach.library) == reach.checked


@pytest.mark.parametrize("reach", REACHES, ids=lambda r: f"{r.library}:{r.where}")
def test_each_reach_names_code_and_a_test_that_exist(reach):
    text, name = source_of(reach.where)
    for part in name.split("."):
        assert re.search(rf"^\s*(def|class) {re.escape(part)}\b", text, re.M), reach.where
    test_file, _, test_name = reach.test.partition("::")
    assert f"def {test_name}(" in (ROOT / test_file).read_text(), reach.test
