import torch

from unlearn_core.data.sets import load_image_set
from unlearn_core.measure.probe import Probe, load_probe
from unlearn_core.measure.probe_train import corrupt, erase


def test_committed_probe_judges_fairly():
    probe = load_probe()
    data = load_image_set("builtin:all")
    x, y = data.test[::4], data.test_labels[::4]  # 500 held-out images, every class
    g = torch.Generator().manual_seed(7)
    assert (probe.predict(x) == y).float().mean() > 0.95
    assert (probe.predict(corrupt(x, g)) == y).float().mean() > 0.93  # blur/noise in regions: still the animal
    assert (probe.predict(erase(x, g)) == probe.none_index).float().mean() > 0.9  # blanked out: no animal


def test_probe_round_trip_and_input_handling(tmp_path):
    probe = Probe().eval()
    probe.save(tmp_path / "p", {"note": "test"})
    loaded = Probe.load(tmp_path / "p")
    x = torch.rand(3, 3, 64, 64)  # RGB at another size is converted
    assert torch.equal(probe(x), loaded(x)) and probe(x).shape == (3, 11)
    assert loaded.cfg.classes[-1] == "none" and loaded.none_index == 10
