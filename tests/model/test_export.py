import socket
import warnings
import zipfile

import numpy as np
import pytest
import torch

from napari_unet import UNet, UNetConfig, save_model
from napari_unet.cli.main import main
from napari_unet.model.card import ModelCard
from napari_unet.model.export import ONNX_OPSET, export_model, scale_range

SHAPES = [(1, 1, 32, 32), (3, 1, 48, 80)]  # two batch sizes, two spatial sizes (multiples of 2**2)


@pytest.fixture
def tiny() -> UNet:
    torch.manual_seed(0)
    model = UNet(1, 3, base_channels=4, depth=2).eval()
    model.card = ModelCard(name="tiny nuclei", channels=("DAPI",), normalization=(2.0, 99.5),
                           provenance={"trained_on": "synthetic", "steps": 3})
    return model


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test: exports and model tests run offline."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[1:] or kwargs}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def pytorch(model, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(x)).numpy()


@pytest.mark.slow
def test_onnx_matches_pytorch_on_two_sizes_and_batches(tmp_path, tiny, no_network):
    ort = pytest.importorskip("onnxruntime")
    path = export_model(tiny, tmp_path / "tiny.onnx", format="onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == ["batch", 1, "4*y_blocks", "4*x_blocks"]
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        x = rng.random(shape, dtype=np.float32)
        out = session.run(["output"], {"input": x})[0]
        assert out.shape == (shape[0], 3, *shape[2:])
        np.testing.assert_allclose(out, pytorch(tiny, x), atol=1e-4)
    import onnx

    assert max(o.version for o in onnx.load(str(path)).opset_import if o.domain in ("", "ai.onnx")) == ONNX_OPSET


def test_torchscript_matches_pytorch_on_two_sizes_and_batches(tmp_path, tiny):
    path = export_model(tiny, tmp_path / "tiny.pt", format="torchscript")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated in 2.14
        traced = torch.jit.load(str(path))
    rng = np.random.default_rng(1)
    for shape in SHAPES:
        x = rng.random(shape, dtype=np.float32)
        np.testing.assert_allclose(pytorch(traced, x), pytorch(tiny, x), atol=1e-4)


def test_export_leaves_the_model_as_it_was(tmp_path, tiny):
    tiny.train()
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    export_model(tiny, tmp_path / "tiny.pt", format="torchscript")
    assert tiny.training
    assert all(torch.equal(before[k], v) for k, v in tiny.state_dict().items())


def test_unknown_format_and_click_networks_get_a_clear_error(tmp_path, tiny):
    with pytest.raises(ValueError, match="use one of bioimageio, onnx, torchscript"):
        export_model(tiny, tmp_path / "x", format="keras")
    click = UNet(3, 2, base_channels=4, depth=2)
    click.card = ModelCard(task="click", classes=("background", "object"), click_channels=2)
    with pytest.raises(ValueError, match="click network"):
        export_model(click, tmp_path / "click.zip")


def test_scale_range_is_the_model_zoo_formula():
    image = np.arange(100, dtype=np.float32).reshape(1, 10, 10)
    lo, hi = np.percentile(image, (1.0, 99.0))
    np.testing.assert_allclose(scale_range(image, 1.0, 99.0), (image - lo) / (hi - lo + 1e-6), rtol=1e-6)


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """One BMZ package of a tiny model, exported with the network blocked."""
    pytest.importorskip("bioimageio.spec")
    torch.manual_seed(0)
    model = UNet(1, 3, base_channels=4, depth=2).eval()
    model.card = ModelCard(name="tiny nuclei", channels=("DAPI",), normalization=(2.0, 99.5),
                           provenance={"trained_on": "synthetic", "steps": 3})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", lambda *a: pytest.fail(f"network access attempted: {a[1:]}"))
        path = export_model(model, tmp_path_factory.mktemp("bmz") / "tiny.zip")
    return path


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_model_zoo_package_passes_bioimageio_core_model_test_offline(package, no_network):
    core = pytest.importorskip("bioimageio.core")
    summary = core.test_model(package, devices=["cpu"])
    failed = [d for d in summary.details if d.status == "failed"]
    assert summary.status == "passed", "\n".join(f"{d.name}: {d.errors}" for d in failed)
    tested = " ".join(d.name for d in summary.details)
    for weights in ("pytorch_state_dict", "torchscript", "onnx"):
        assert weights in tested


@pytest.mark.slow
def test_model_zoo_package_holds_card_files_and_normalisation(package):
    from bioimageio.spec import load_model_description

    with zipfile.ZipFile(package) as z:
        names = set(z.namelist())
    assert {"rdf.yaml", "README.md", "cover.png", "unet.py", "test_input.npy", "test_output.npy",
            "weights.pt", "weights_torchscript.pt", "weights.onnx"} <= names
    descr = load_model_description(package, perform_io_checks=False)
    assert descr.format_version.startswith("0.5")
    (ipt,), (out,) = descr.inputs, descr.outputs
    assert [str(a.id) for a in ipt.axes] == ["batch", "channel", "y", "x"]
    assert ipt.axes[1].channel_names == ["DAPI"]
    assert out.axes[1].channel_names == ["background", "interior", "boundary"]
    scale = next(p for p in ipt.preprocessing if p.id == "scale_range")
    assert (scale.kwargs.min_percentile, scale.kwargs.max_percentile) == (2.0, 99.5)
    assert [p.id for p in out.postprocessing if p.id != "ensure_dtype"] == ["softmax"]
    assert descr.weights.onnx.opset_version == ONNX_OPSET
    ours = descr.config.model_extra["napari_unet"]
    assert ours["card"]["provenance"] == {"trained_on": "synthetic", "steps": 3}
    assert ours["unet"]["base_channels"] == 4


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_3d_networks_export_with_dynamic_axes_and_pass_the_model_test(tmp_path, no_network):
    if "spatial_dims" not in UNetConfig.__dataclass_fields__:
        pytest.skip("this version's UNet is 2D only")
    ort = pytest.importorskip("onnxruntime")
    core = pytest.importorskip("bioimageio.core")
    torch.manual_seed(0)
    model = UNet(1, 3, base_channels=4, depth=2, spatial_dims=3, pools=((1, 2, 2), (2, 2, 2))).eval()
    mz, my, mx = model.multiple  # (2, 4, 4): z is pooled once
    session = ort.InferenceSession(str(export_model(model, tmp_path / "t.onnx", format="onnx")),
                                   providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == ["batch", 1, f"{mz}*z_blocks", f"{my}*y_blocks", f"{mx}*x_blocks"]
    for shape in [(1, 1, 2 * mz, 2 * my, 3 * mx), (2, 1, 3 * mz, 5 * my, 2 * mx)]:
        x = np.random.default_rng(4).random(shape, dtype=np.float32)
        np.testing.assert_allclose(session.run(["output"], {"input": x})[0], pytorch(model, x), atol=1e-4)
    summary = core.test_model(export_model(model, tmp_path / "t.zip"), devices=["cpu"])
    assert summary.status == "passed", [(d.name, d.errors) for d in summary.details if d.status == "failed"]


def test_cli_exports_torchscript_and_refuses_to_overwrite(tmp_path, tiny, capsys):
    model_file = save_model(tiny, tmp_path / "tiny.safetensors")
    out = tmp_path / "tiny.pt"
    assert main(["export", str(model_file), "--format", "torchscript", "-o", str(out)]) == 0
    assert "tiny.pt (torchscript" in capsys.readouterr().out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.load(str(out))
    x = np.random.default_rng(2).random((2, 1, 16, 24), dtype=np.float32)
    np.testing.assert_allclose(pytorch(traced, x), pytorch(tiny, x), atol=1e-4)
    assert main(["export", str(model_file), "--format", "torchscript", "-o", str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_exports_a_model_zoo_package_from_a_sample_image(tmp_path, tiny, capsys, no_network):
    pytest.importorskip("bioimageio.spec")
    import tifffile

    model_file = save_model(tiny, tmp_path / "tiny.safetensors")
    sample = (np.random.default_rng(3).random((70, 50)) * 4000).astype(np.uint16)
    tifffile.imwrite(tmp_path / "sample.tif", sample)
    out = tmp_path / "tiny.zip"
    argv = ["export", str(model_file), "-o", str(out), "--sample", str(tmp_path / "sample.tif")]
    assert main(argv) == 0, capsys.readouterr().err
    with zipfile.ZipFile(out) as z, z.open("test_input.npy") as f:
        assert np.load(f).shape == (1, 1, 68, 48)  # cut to multiples of 2**depth


def rewrite_rdf(src, dst, edit):
    """A copy of the package ``src`` whose rdf.yaml ``edit`` changed in place."""
    import yaml

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if name == "rdf.yaml":
                rdf = yaml.safe_load(data)
                edit(rdf)
                data = yaml.safe_dump(rdf).encode()
            zout.writestr(name, data)
    return dst


@pytest.mark.slow
def test_our_package_loads_back_as_the_same_fine_tunable_unet(package, no_network):
    from napari_unet.model.bioimageio import load_bioimageio

    model = load_bioimageio(package)
    assert isinstance(model, UNet) and model.config == UNetConfig(1, 3, base_channels=4, depth=2)
    assert model.card.name == "tiny nuclei" and model.card.normalization == (2.0, 99.5)
    assert model.card.provenance == {"trained_on": "synthetic", "steps": 3}
    torch.manual_seed(0)
    original = UNet(1, 3, base_channels=4, depth=2).eval()  # the package fixture's network
    x = np.random.default_rng(5).random((2, 1, 36, 44), dtype=np.float32)  # any size: the UNet pads
    np.testing.assert_array_equal(pytorch(model, x), pytorch(original, x))
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.slow
def test_other_packages_predict_with_their_own_processing(package, tmp_path, no_network):
    pytest.importorskip("onnxruntime")
    from napari_unet.model.bioimageio import ZooModel, load_bioimageio

    foreign = load_bioimageio(rewrite_rdf(package, tmp_path / "foreign.zip", lambda rdf: rdf.pop("config")))
    assert isinstance(foreign, ZooModel) and foreign.weight_format == "onnx"
    assert foreign.classes == ("background", "interior", "boundary")
    reference = load_bioimageio(package)
    image = (np.random.default_rng(6).random((40, 36)) * 3000).astype(np.float32)
    x = scale_range(image[None], 2.0, 99.5)[None]
    expected = torch.softmax(torch.from_numpy(pytorch(reference, x)), dim=1)[0].numpy()
    np.testing.assert_allclose(foreign.predict(image), expected, atol=1e-4)
    assert foreign.predict(image[:37, :30]).shape == (3, 37, 30)  # padded to a valid size, cropped back


@pytest.mark.slow
def test_a_package_napari_unet_cannot_run_gets_one_line_saying_what_is_missing(package, tmp_path):
    from napari_unet.model.bioimageio import load_bioimageio

    def tensorflow_only(rdf):
        rdf.pop("config")
        rdf["weights"] = {"tensorflow_saved_model_bundle": {"source": "weights.pt", "tensorflow_version": "2.15"}}

    with pytest.raises(ValueError, match="only tensorflow_saved_model_bundle weights, which need TensorFlow") as info:
        load_bioimageio(rewrite_rdf(package, tmp_path / "tf.zip", tensorflow_only))
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="not a valid Model Zoo model package"):
        load_bioimageio(rewrite_rdf(package, tmp_path / "bad.zip", lambda rdf: rdf.pop("inputs")))


@pytest.mark.slow
def test_load_model_and_segment_take_our_model_zoo_package(package, no_network, tmp_path, capsys):
    import tifffile

    from napari_unet import load_model, segment
    from napari_unet.cli.main import main

    model = load_model(package)
    assert isinstance(model, UNet) and model.card.name == "tiny nuclei"
    image = np.random.default_rng(0).random((48, 64)).astype(np.float32)
    assert segment(image, model, device="cpu").shape == (48, 64)
    tifffile.imwrite(tmp_path / "a.tif", image)
    assert main(["segment", str(tmp_path / "a.tif"), "-o", str(tmp_path / "out"), "--model", str(package)]) == 0
    assert main(["segment", str(tmp_path / "a.tif"), "-o", str(tmp_path / "out"), "--model",
                 str(tmp_path / "missing.zip")]) == 2
    assert "missing.zip" in capsys.readouterr().err
