"""The live test is written and collected here, and says exactly why it does not run."""

import importlib

import pytest


def test_live_module_imports_and_skips_with_what_it_needs(monkeypatch):
    monkeypatch.delenv("EKS_GP3_LIVE", raising=False)
    module = importlib.reload(importlib.import_module("tests.live.test_end_to_end"))
    skip = next(m for m in module.pytestmark if m.name == "skipif")
    assert skip.args == (True,)
    assert "EKS_GP3_LIVE=1" in skip.kwargs["reason"]
    assert callable(module.test_demo_volume_moves_to_gp3_without_losing_a_write)
    assert pytest.mark.live.name in {m.name for m in module.pytestmark}
