"""Grid files of ``sbs explore``: parsing, expansion into points, error messages."""
import pytest
from pathlib import Path

from fixedpoint.datapath import Datapath
from sbs_model.explore.grid import DATAPATH_FIELDS, load_grid, parse_grid

BASE = '[base]\nweights = "/nonexistent/w.npz"\n'


def grid(text):
    return parse_grid(BASE + text)


def test_cartesian_product_in_key_order_with_full_datapaths():
    g = grid('[sweep]\nweight_format = ["e4m1", "uq0.4", "e4m0"]\nspikes = [100, 200]\n')
    assert len(g.points) == 6
    assert g.varied == ("weight_format", "spikes")
    combos = [(p.params["datapath"]["weight_format"], p.params["spikes"]) for p in g.points]
    assert combos == [("e4m1", 100), ("e4m1", 200), ("uq0.4", 100), ("uq0.4", 200), ("e4m0", 100), ("e4m0", 200)]
    # the rest of every datapath is the base preset (int-e4m1), complete and canonical
    for p in g.points:
        d = p.params["datapath"]
        assert set(d) == set(DATAPATH_FIELDS)
        assert Datapath.from_dict(d) == Datapath.from_dict({**Datapath.preset("int-e4m1").to_dict(),
                                                            "weight_format": d["weight_format"]})
        assert p.seeds == (0,) and p.params["noise"] == 0.0 and p.params["layer"] is None and p.error is None


def test_base_datapath_table_and_preset_overrides():
    g = parse_grid('[base]\nweights = "w.npz"\nseeds = [1, 2, 3]\n[base.datapath]\npreset = "paper-e4m1"\n'
                   'h_rounding = "rne"\n')
    (p,) = g.points
    assert p.params["datapath"] == Datapath.from_dict({**Datapath.preset("paper-e4m1").to_dict(),
                                                       "h_rounding": "rne"}).to_dict()
    assert p.seeds == (1, 2, 3)


def test_float_points_ignore_datapath_keys_and_are_deduplicated():
    g = grid('[sweep]\nweight_format = ["e4m1", "uq0.4"]\nfloat = [false, true]\nnoise = [0.0, 0.5]\n')
    floats = [p for p in g.points if p.params["float"]]
    assert len(floats) == 2  # one per noise level, not one per weight format
    assert all(p.params["datapath"] is None and p.params["layer"] is None for p in floats)
    assert len(g.points) == 2 * 2 + 2


def test_explicit_points_presets_labels_seeds_and_layer():
    g = grid('[[point]]\ndatapath = "paper-e4m0"\n[[point]]\nfloat = true\nlabel = "golden"\n'
             '[[point]]\nweight_format = "e4m0"\nlayer = 2\nseed = [4, 5]\n[[point]]\nlayer = "all"\n')
    a, b, c, d = g.points
    assert a.params["datapath"] == Datapath.preset("paper-e4m0").to_dict() and a.label == "paper-e4m0"
    assert b.params["float"] and b.label == "golden"
    assert c.params["layer"] == 2 and c.seeds == (4, 5)
    assert d.params["layer"] is None
    assert all(p.origin == "point" for p in g.points)


def test_sweep_seed_list_replaces_base_seeds():
    g = grid('[sweep]\nseed = [7, 8]\nweight_format = ["e4m1"]\n')
    assert [p.seeds for p in g.points] == [(7, 8)]


def test_invalid_datapath_is_reported_per_point_not_fatal():
    g = grid('[sweep]\nweight_format = ["e4m1", "uq0.48"]\n')
    ok, bad = g.points
    assert ok.error is None
    assert bad.error is not None and "62" in bad.error and "weight_format" in bad.error
    assert bad.params["datapath"]["weight_format"] == "uq0.48"


def test_duplicate_points_are_kept_once():
    g = grid('[sweep]\nweight_format = ["e4m1"]\n[[point]]\nweight_format = "e4m1"\n')
    assert len(g.points) == 1


@pytest.mark.parametrize("text, words", [
    ('[sweep]\nweigth_format = ["e4m1"]\n', ["weigth_format", "weight_format", "noise", "layer", "float"]),
    ('[[point]]\nbogus = 1\n', ["bogus", "label"]),
    ('[extra]\nx = 1\n', ["extra", "base", "sweep", "point"]),
    ('[sweep]\nspikes = 100\n', ["sweep.spikes", "list"]),
    ('[sweep]\nnoise = [1.5]\n', ["noise", "0..1"]),
    ('[sweep]\nspikes = [0]\n', ["spikes", "1.."]),
    ('[sweep]\nlayer = [-1]\n', ["layer"]),
    ('[[point]]\nweight_format = ["e4m1", "e4m0"]\n', ["point[0].weight_format", "[sweep]"]),
    ('[[point]]\ndatapath = "nope"\n', ["nope", "int-e4m1"]),
    ('[sweep]\nseed = [1, 1]\n', ["repeated"]),
])
def test_bad_grids_name_the_key(text, words):
    with pytest.raises(ValueError) as e:
        grid(text)
    for w in words:
        assert w in str(e.value)


def test_base_errors():
    with pytest.raises(ValueError, match="base.weights: required"):
        parse_grid("[base]\nn = 5\n")
    with pytest.raises(ValueError, match="base: unknown key.*colour.*allowed: config"):
        parse_grid(BASE + 'colour = "red"\n')
    with pytest.raises(ValueError, match="target"):
        parse_grid(BASE + 'target = "asic"\n')
    with pytest.raises(ValueError, match="invalid TOML"):
        parse_grid("[base\n")


def test_relative_paths_resolve_against_the_grid_file(tmp_path):
    (tmp_path / "w.npz").write_bytes(b"")
    (tmp_path / "g.toml").write_text('[base]\nweights = "w.npz"\n')
    g = load_grid(tmp_path / "g.toml")
    assert g.base["weights"] == str(tmp_path / "w.npz")
    assert g.name == "g"
    with pytest.raises(ValueError, match="not a file"):
        load_grid(tmp_path / "missing.toml")


def test_shipped_grids_parse_and_include_fixed_point_weights():
    from conftest import REPO

    for name in ("quick", "paper", "full", "spikes", "noise", "layers", "shipped", "table"):
        g = load_grid(REPO / "bench" / "explore" / f"{name}.toml")
        fmts = {p.params["datapath"]["weight_format"] for p in g.points if p.params["datapath"]}
        assert any(f.startswith("uq") for f in fmts), name
        assert any(p.params["float"] for p in g.points), name
        assert all(p.error is None for p in g.points), [p.error for p in g.points if p.error]
    qat = load_grid(REPO / "bench" / "explore" / "qat.toml")  # the shipped QAT model exists and parses
    assert Path(qat.base["weights"]).is_file() and all(p.error is None for p in qat.points)
    paper = load_grid(REPO / "bench" / "explore" / "paper.toml")
    assert paper.base["seeds"] == [0, 1, 2] and paper.base["n"] is None
    presets = {p.label for p in paper.points}
    assert {"paper-e4m4", "paper-e4m1", "paper-e4m0"} <= presets
    widths = {p.params["datapath"]["weight_format"] for p in paper.points if p.params["datapath"]}
    assert {"uq0.4", "uq0.5", "uq0.8"} <= widths


def test_sweep_labels_name_only_what_varies_among_unlabelled_points():
    """A preset point (labelled by its preset) must not make every sweep label list all fields."""
    from sbs_model.explore.runner import labels_for

    g = grid('[sweep]\nweight_format = ["e4m0", "e3m1"]\nfloat = [false, true]\n'
             '[[point]]\ndatapath = "paper-e4m0"\n[[point]]\nweight_format = "uq0.5"\nh_format = "uq0.12"\n')
    labels = sorted(set(labels_for(g.points).values()))
    assert labels == ["e3m1 h_format=uq0.16", "e4m0 h_format=uq0.16", "float", "paper-e4m0",
                      "uq0.5 h_format=uq0.12"], labels
