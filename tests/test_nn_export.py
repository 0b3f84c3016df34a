"""mdq_teach.nn.export: bit packing against numpy's packbits, identical predictions after a round
trip, sizes against float32, refusals."""

import numpy as np
import pytest
import torch

from mdq_teach.nn import data as data_lib
from mdq_teach.nn import export
from mdq_teach.nn.models import get_model
from mdq_teach.nn.trainer import train


@pytest.mark.parametrize("n", [1, 7, 8, 9, 64, 1001])
def test_one_bit_packing_is_numpys_little_endian_packbits(n):
    codes = np.random.default_rng(n).integers(0, 2, n).astype(np.uint8)
    packed = export.pack(codes, 1)
    assert np.array_equal(packed, np.packbits(codes, bitorder="little"))
    assert np.array_equal(export.unpack(packed, 1, n), codes)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_wider_codes_round_trip_and_use_bits_per_code(bits):
    rng = np.random.default_rng(bits)
    codes = rng.integers(0, 1 << bits, 999).astype(np.uint8)
    packed = export.pack(codes, bits)
    assert packed.size == -(-999 * bits // 8)
    assert np.array_equal(export.unpack(packed, bits, 999), codes)
    # Code j of byte k sits at bits [bits*j, bits*(j+1)): check one byte by hand.
    per = 8 // bits
    assert packed[3] == sum(int(codes[3 * per + j]) << (bits * j) for j in range(per))
    with pytest.raises(ValueError, match="codes must be <"):
        export.pack(np.array([2]), 1)


def test_bits_for_levels():
    assert [export.bits_for(k) for k in (2, 3, 4, 5, 16, 17)] == [1, 2, 2, 4, 4, 8]


def _randomly_rounded(levels, seed=0):
    torch.manual_seed(seed)
    model = get_model("smallconv", 10, 1, quantized=True)
    values = torch.tensor(levels)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(values[torch.randint(len(levels), p.shape)])
    # BatchNorm statistics that are not the defaults, so the float part matters too.
    model.train()
    model(torch.randn(64, 1, 28, 28))
    return model.eval()


@pytest.mark.parametrize("levels,bits", [((-1.0, 1.0), 1), ((-1.0, 0.0, 1.0), 2)])
def test_round_trip_predicts_identically_and_is_small(tmp_path, levels, bits):
    model = _randomly_rounded(levels)
    path = export.save(model, tmp_path / "net.npz", levels, arch="smallconv", num_classes=10,
                       in_channels=1, size=28)  # fmt: skip
    again = export.load(path)
    x = torch.randn(32, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    s = export.sizes(path)
    n_params = sum(p.numel() for p in model.parameters())
    n_buffers = sum(b.numel() for b in model.buffers())
    assert s["bits"] == bits and s["packed_values"] == n_params
    assert s["float32_bytes"] == 4 * (n_params + n_buffers)
    assert s["file_bytes"] == (tmp_path / "net.npz").stat().st_size
    # The packed weights take n_params * bits / 8 bytes (one stream); the rest is float buffers
    # (at most 8 bytes a value: num_batches_tracked is int64) and the zip/npy headers, under 400
    # bytes for each array: the stream, the header, each buffer.
    arrays = 2 + sum(1 for _ in model.buffers())
    assert s["file_bytes"] < n_params * bits / 8 + 8 * n_buffers + 400 * arrays
    assert s["ratio"] == pytest.approx(s["float32_bytes"] / s["file_bytes"]) and s["ratio"] > 4


def test_trained_network_exports_from_the_cli_option(tmp_path):
    d = data_lib.load("synthetic")
    result = train(
        dict(dataset="synthetic", arch="smallconv", method="md-tanh-s", iterations=6, batch_size=32,
             eval_interval=3, bn_batches=1, device="cpu", progress=False, out=str(tmp_path / "run"),
             export=str(tmp_path / "net.npz")),
        data=d,
    )  # fmt: skip
    assert result["export"]["file_bytes"] == (tmp_path / "net.npz").stat().st_size
    loaded = export.load(tmp_path / "net.npz")
    x = data_lib.normalize(d.test_x, d.mean, d.std)
    with torch.no_grad():
        assert torch.equal(loaded(x), result["model"].eval()(x))


def test_refuses_unrounded_weights_and_pickles(tmp_path):
    model = get_model("smallconv", 10, 1, quantized=True)
    with pytest.raises(ValueError, match="not one of the levels"):
        export.save(model, tmp_path / "x.npz", (-1, 1))
    np.savez(tmp_path / "evil.npz", meta=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="pickled objects"):
        export.load(tmp_path / "evil.npz", model)


def test_a_float_network_round_trips_unpacked(tmp_path):
    torch.manual_seed(1)
    model = get_model("smallconv", 10, 1, quantized=False).eval()
    path = export.save(model, tmp_path / "f.npz", None, arch="smallconv", num_classes=10,
                       in_channels=1, size=28)  # fmt: skip
    again = export.load(path)
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))
    assert export.sizes(path)["packed_values"] == 0
