"""The example of docs/api.md runs as written (extracted from the page, executed in a temporary
directory) and the API calls fail with clear errors on wrong arguments."""
import re
from pathlib import Path

import pytest

API_PAGE = Path(__file__).resolve().parent.parent / "docs" / "api.md"


def example_code() -> str:
    text = API_PAGE.read_text()
    section = text[text.index("## Example"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.verilator
def test_api_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(example_code(), "docs/api.md, the example", "exec"), {"__name__": "api_example"})
    out = capsys.readouterr().out
    assert "float32: " in out and "int-e4m1: " in out and "first divergence" in out
    assert "sbs_engine_l5 e4m1b20" in out
    assert (tmp_path / "out" / "l5" / "manifest.json").is_file()


def test_api_roots_and_errors(tmp_path):
    import rtl
    import sbs_model
    import sim

    assert callable(sbs_model.load) and callable(rtl.generate_verilog) and callable(sim.run_regression)
    with pytest.raises(AttributeError):
        sbs_model.no_such_thing
    with pytest.raises(ValueError, match="compare: expected a Model or QuantizedModel"):
        sbs_model.compare("a", "b", None)
    with pytest.raises(ValueError, match="generate_verilog: expected a Model or QuantizedModel"):
        rtl.generate_verilog(object(), 5, tmp_path)
    with pytest.raises(ValueError, match="matches no registered entry"):
        sim.run_regression("no-such-unit")
