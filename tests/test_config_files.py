"""Config files: pytorch-sbs directories and native single-file configs -> NetworkSpec."""
import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import PYTORCH_SBS_DIR
from sbs_model import config_files as cf
from sbs_model.configs import load_network
from sbs_model.network import NetworkSpec, reference_mnist


def _copy_ref(tmp_path):
    d = tmp_path / "cfg"
    d.mkdir()
    for f in ("network.json", "def.json", "dataset.json"):
        shutil.copy(PYTORCH_SBS_DIR / f, d / f)
    return d


def _edit(path, fn):
    data = cf.read_json(path)
    fn(data)
    path.write_text(json.dumps(data, indent=1))


def test_pytorch_sbs_reference_directory_is_reference_mnist():
    net = cf.load(PYTORCH_SBS_DIR)
    ref = reference_mnist()
    assert net.config_hash() == ref.config_hash()
    assert net.layers == ref.layers and net.input_shape == (1, 24, 24)
    assert net.meta["forgetting_offset"] == 0.0 and net.meta["data_mode"] == "MNIST"
    # also through the project's config loader (directory path and network.json path)
    assert load_network(str(PYTORCH_SBS_DIR)).config_hash() == ref.config_hash()
    assert cf.load(PYTORCH_SBS_DIR / "network.json").config_hash() == ref.config_hash()


def test_strip_comments_keeps_strings_and_line_numbers():
    text = '{\n "url": "http://x.org//a", // comment "x"\n /* block\n */ "b": "/*not*/" // end\n}'
    assert json.loads(cf.strip_json_comments(text)) == {"url": "http://x.org//a", "b": "/*not*/"}
    assert cf.strip_json_comments(text).count("\n") == text.count("\n")
    assert json.loads(cf.strip_json_comments('{"q": "a \\" // b"}')) == {"q": 'a " // b'}


def test_malformed_json_names_file_and_line(tmp_path):
    d = _copy_ref(tmp_path)
    lines = (d / "def.json").read_text().splitlines()
    lines[3] = lines[3] + " ,,"  # line 4 broken
    (d / "def.json").write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"def\.json: malformed JSON at line 4"):
        cf.load(d)


def test_unknown_layer_type_names_allowed_types(tmp_path):
    d = _copy_ref(tmp_path)
    _edit(d / "network.json", lambda c: c["network_structure"]["layer_type"].__setitem__(1, "CONV2D"))
    with pytest.raises(ValueError, match=r"layer 1: field 'layer_type' is 'CONV2D'; allowed: SbS, SbS POOLING"):
        cf.load(d)


def test_list_length_mismatch(tmp_path):
    d = _copy_ref(tmp_path)
    _edit(d / "network.json", lambda c: c["network_structure"]["strides"].pop())
    with pytest.raises(ValueError, match=r"'strides' has 5 entries but 'layer_type' has 6 layers"):
        cf.load(d)


def test_channel_inconsistency_names_layer(tmp_path):
    d = _copy_ref(tmp_path)
    _edit(d / "network.json", lambda c: c["network_structure"]["forward_neuron_numbers"].__setitem__(2, [31, 64]))
    with pytest.raises(ValueError, match=r"layer 2: field 'in_channels' is 31"):
        cf.load(d)


def test_spikes_per_layer_sbs_pooling_eps_and_cooldown(tmp_path):
    d = _copy_ref(tmp_path)

    def change(c):
        c["number_of_spikes"] = [100, 150, 200, 0, 300, 400]  # one per layer (layer 3 is avgpool: ignored)
        c["epsilon_0"] = 0.5
        c["cooldown_after_number_of_spikes"] = 50
        c["learning_parameters"]["eps_xy_intitial"] = 0.2
    _edit(d / "def.json", change)
    _edit(d / "network.json", lambda c: c["network_structure"]["layer_type"].__setitem__(1, "SbS POOLING"))
    net = cf.load(d)
    assert {i: l.spikes for i, l in enumerate(net.layers) if l.is_sbs} == {0: 100, 1: 150, 2: 200, 4: 300, 5: 400}
    assert net.layers[1].kind == "sbspool" and not net.layers[1].trainable
    # pytorch-sbs's eps schedule is epsilon_0 alone (eps_xy_intitial initialises epsilon_xy, which is off)
    assert net.layers[0].eps0 == 0.5 and net.layers[0].cooldown_after == 50
    assert all(l.forgetting_offset == 0.0 for l in net.layers)


def test_forgetting_offset_goes_to_every_sbs_layer_and_changes_the_hash(tmp_path):
    d = _copy_ref(tmp_path)
    _edit(d / "def.json", lambda c: c.__setitem__("forgetting_offset", 0.25))
    net = cf.load(d)
    assert [l.forgetting_offset for l in net.layers if l.is_sbs] == [0.25] * 4
    assert net.config_hash() != reference_mnist().config_hash()
    # round trip through the native form keeps it
    cf.save_native(net, tmp_path / "n.json")
    assert cf.load(tmp_path / "n.json").layers == net.layers
    # <= 0 means none, as in pytorch-sbs (its default is -1)
    _edit(d / "def.json", lambda c: c.__setitem__("forgetting_offset", -1.0))
    assert cf.load(d).config_hash() == reference_mnist().config_hash()


@pytest.mark.parametrize("where", ["top", "learning_parameters"])
def test_epsilon_xy_use_is_refused(tmp_path, where):
    d = _copy_ref(tmp_path)
    _edit(d / "def.json", lambda c: (c if where == "top" else c["learning_parameters"]).__setitem__(
        "epsilon_xy_use", True))
    with pytest.raises(ValueError, match="epsilon_xy_use"):
        cf.load(d)


def test_forgetting_offset_wrong_type_is_a_type_error_message(tmp_path):
    d = _copy_ref(tmp_path)
    _edit(d / "def.json", lambda c: c.__setitem__("forgetting_offset", "0.1"))
    with pytest.raises(ValueError, match="'forgetting_offset' must be a number"):
        cf.load(d)


def test_spikes_one_per_sbs_layer_and_bad_count(tmp_path):
    d = _copy_ref(tmp_path)
    _edit(d / "def.json", lambda c: c.__setitem__("number_of_spikes", [10, 20, 30, 40]))
    net = cf.load(d)
    assert [l.spikes for l in net.layers if l.is_sbs] == [10, 20, 30, 40]
    _edit(d / "def.json", lambda c: c.__setitem__("number_of_spikes", [10, 20]))
    with pytest.raises(ValueError, match=r"number_of_spikes' has 2 entries; expected 1, 6 \(one per layer\) or 4"):
        cf.load(d)


def test_input_shape_from_data_mode_and_override(tmp_path):
    d = _copy_ref(tmp_path)
    _edit(d / "dataset.json", lambda c: c.__setitem__("data_mode", "FASHION_MNIST"))
    assert cf.load(d).input_shape == (1, 24, 24)
    _edit(d / "dataset.json", lambda c: c.__setitem__("data_mode", "SVHN"))
    with pytest.raises(ValueError, match=r"data_mode' is 'SVHN'; allowed: MNIST"):
        cf.load(d)
    _edit(d / "dataset.json", lambda c: c.__setitem__("data_mode", "CIFAR10"))
    with pytest.raises(ValueError, match=r"layer 0: field 'in_channels' is 1 but the previous layer gives 3"):
        cf.load(d)
    (d / "dataset.json").unlink()
    assert cf.load(d, input_shape=(1, 28, 28)).shapes()[-1] == (10, 2, 2)


def test_conflicting_key_in_two_files(tmp_path):
    d = _copy_ref(tmp_path)
    _edit(d / "dataset.json", lambda c: c.__setitem__("batch_size", 7))
    with pytest.raises(ValueError, match=r"field 'batch_size' is given differently in def\.json and dataset\.json"):
        cf.load(d)


def test_unsupported_cooldown_factor(tmp_path):
    d = _copy_ref(tmp_path)
    _edit(d / "def.json", lambda c: c.update(cooldown_after_number_of_spikes=10, reduction_cooldown=5.0))
    with pytest.raises(ValueError, match=r"'reduction_cooldown' is 5.0; only 25 is supported"):
        cf.load(d)


def test_native_round_trip_and_spikes(tmp_path):
    net = reference_mnist()
    p = tmp_path / "net.json"
    cf.save_native(net, p)
    back = cf.load(p)
    assert back.config_hash() == net.config_hash() and back.layers == net.layers
    d = json.loads(p.read_text())
    d["spikes"] = [1, 2, 3, 4]
    p.write_text(json.dumps(d))
    assert [l.spikes for l in cf.load(p).layers if l.is_sbs] == [1, 2, 3, 4]
    d["colour"] = 1
    p.write_text(json.dumps(d))
    with pytest.raises(ValueError, match=r"unknown top-level field\(s\) \['colour'\]"):
        cf.load(p)


def test_native_layer_errors_name_layer_and_field(tmp_path):
    d = reference_mnist().to_dict()
    d["layers"][4]["kernel"] = [3, 5]
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d))
    with pytest.raises(ValueError, match=r"layer 4: field 'kernel' \(3, 5\) is larger than its input 3x3"):
        cf.load(p)
    with pytest.raises(ValueError, match="does not exist"):
        cf.load(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="holds no network.json"):
        cf.load(tmp_path)


def test_native_example_in_the_docs_parses(tmp_path):
    text = (Path(__file__).resolve().parent.parent / "docs" / "formats.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", text, re.S)
    example = json.loads(next(b for b in blocks if '"name": "tiny"' in b))
    p = tmp_path / "tiny.json"
    p.write_text(json.dumps(example))
    net = cf.load(p)
    assert isinstance(net, NetworkSpec) and net.shapes() == [(16, 20, 20), (16, 10, 10), (10, 1, 1)]
    assert [l.spikes for l in net.layers if l.is_sbs] == [400, 400]


@pytest.mark.parametrize("field,value,what", [
    ("eps0", "1", "a number"), ("spikes", "10", "an integer"), ("trainable", 3, "true or false"),
    ("cooldown_after", "5", "an integer or null"), ("padding", True, "an integer or a pair of integers"),
    ("in_channels", 1.5, "an integer"), ("forgetting_offset", "x", "a number")])
def test_native_wrong_types_are_type_errors(tmp_path, field, value, what):
    layer = {"kind": "sbs", "in_channels": 1, "out_channels": 10, "kernel": [24, 24], field: value}
    p = tmp_path / "n.json"
    p.write_text(json.dumps({"input_shape": [1, 24, 24], "layers": [layer]}))
    with pytest.raises(ValueError, match=f"layer 0: field '{field}' must be {what}, got"):
        cf.load(p)
