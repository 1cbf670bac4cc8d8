import numpy as np
import pytest
import torch
from PIL import Image

from relight.data import DataFormatError, read_depth, read_image
from relight.data.formats import depth_shape, image_size, write_depth

from .vidit_factory import lose_header_brace


@pytest.fixture
def rgb_array():
    return np.random.default_rng(0).integers(0, 256, size=(12, 16, 3), dtype=np.uint8)


def test_rgba_drops_alpha(tmp_path, rgb_array):
    rgba = np.concatenate([rgb_array, np.full((12, 16, 1), 255, np.uint8)], axis=2)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png")
    assert image.shape == (3, 12, 16) and image.dtype == torch.float32
    np.testing.assert_allclose(image.permute(1, 2, 0).numpy(), rgb_array / 255, atol=1e-6)


def test_rgb_greyscale_palette(tmp_path, rgb_array):
    Image.fromarray(rgb_array).save(tmp_path / "rgb.png")
    Image.fromarray(rgb_array[..., 0]).save(tmp_path / "grey.png")
    Image.fromarray(rgb_array).convert("P").save(tmp_path / "palette.png")
    assert torch.allclose(
        read_image(tmp_path / "rgb.png"), torch.from_numpy(rgb_array / 255).permute(2, 0, 1).float()
    )
    grey = read_image(tmp_path / "grey.png")
    assert torch.equal(grey[0], grey[2])
    np.testing.assert_allclose(grey[0].numpy(), rgb_array[..., 0] / 255, atol=1e-6)
    palette = read_image(tmp_path / "palette.png")
    assert palette.shape == (3, 12, 16) and 0 <= palette.min() and palette.max() <= 1


def test_16bit_greyscale_keeps_precision(tmp_path):
    values = np.arange(0, 65536, 4096, dtype=np.uint16).reshape(4, 4)
    Image.fromarray(values).save(tmp_path / "g16.png")
    image = read_image(tmp_path / "g16.png")
    np.testing.assert_allclose(image[1].numpy(), values / 65535, atol=1e-6)


@pytest.mark.parametrize(("orientation", "turns"), [(1, 0), (3, 2), (6, -1), (8, 1)])
@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_exif_orientation_is_applied(tmp_path, rgb_array, orientation, turns, suffix):
    """A photo stored sideways with an EXIF orientation is read as it is displayed."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"photo{suffix}"
    Image.fromarray(rgb_array).save(path, exif=exif, quality=95)
    stored = np.asarray(Image.open(path))
    displayed = np.rot90(stored, k=turns)  # counter-clockwise quarter turns
    image = read_image(path)
    assert image_size(path) == tuple(image.shape[-2:]) == displayed.shape[:2]
    np.testing.assert_allclose(image.permute(1, 2, 0).numpy(), displayed / 255, atol=1e-6)


def test_write_depth_round_trip(tmp_path):
    depth = torch.rand(9, 13, generator=torch.Generator().manual_seed(0))
    assert torch.equal(read_depth(write_depth(depth, tmp_path / "d.npy"), False), depth)
    png = write_depth(depth, tmp_path / "d.png")
    assert Image.open(png).mode == "I;16"
    assert (read_depth(png) - depth).abs().max() <= 0.5 / 65535 + 1e-7
    with pytest.raises(ValueError, match=r"far\.png: a depth PNG holds values in \[0, 1\]"):
        write_depth(depth * 2, tmp_path / "far.png")
    with pytest.raises(ValueError, match=r"d\.tif: depth maps are written as \.npy or \.png"):
        write_depth(depth, tmp_path / "d.tif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npy", "d.png"]  # nothing left over


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_image(tmp_path, rgb_array, suffix):
    Image.fromarray(rgb_array).save(tmp_path / f"full{suffix}")
    data = (tmp_path / f"full{suffix}").read_bytes()
    (tmp_path / f"cut{suffix}").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match=rf"cut\{suffix}.*(truncated|corrupt)"):
        read_image(tmp_path / f"cut{suffix}")


def test_not_an_image(tmp_path):
    (tmp_path / "text.png").write_text("this is not a PNG")
    with pytest.raises(DataFormatError, match=r"text\.png: not an image"):
        read_image(tmp_path / "text.png")


def test_missing_image(tmp_path):
    with pytest.raises(DataFormatError, match=r"gone\.png: image file not found"):
        read_image(tmp_path / "gone.png")


def test_depth_vidit_dict_and_plain_array(tmp_path):
    depth = np.random.default_rng(0).random((8, 6)).astype(np.float64)
    np.save(
        tmp_path / "dict.npy", {"normalized_depth": depth, "ref_center_dis": 2.0}, allow_pickle=True
    )
    np.save(tmp_path / "plain.npy", depth)
    for name in ("dict.npy", "plain.npy"):
        loaded = read_depth(tmp_path / name)
        assert loaded.dtype == torch.float32 and loaded.shape == (8, 6)
        np.testing.assert_allclose(loaded.numpy(), depth, rtol=1e-6)
        assert depth_shape(tmp_path / name) == (8, 6)


def test_depth_png_8_and_16_bit(tmp_path):
    d8 = np.array([[0, 255], [51, 102]], np.uint8)
    d16 = np.array([[0, 65535], [13107, 26214]], np.uint16)
    Image.fromarray(d8).save(tmp_path / "d8.png")
    Image.fromarray(d16).save(tmp_path / "d16.png")
    expected = np.array([[0, 1], [0.2, 0.4]], np.float32)
    np.testing.assert_allclose(read_depth(tmp_path / "d8.png").numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(read_depth(tmp_path / "d16.png").numpy(), expected, atol=1e-6)


def test_depth_png_with_a_palette_of_greys(tmp_path):
    """A palette PNG stores indices into its palette: the depth is the palette's grey, not
    the index (here index i holds grey 255 - i: read as indices, the depth was inverted)."""
    indices = np.array([[255, 0], [204, 153]], np.uint8)
    image = Image.fromarray(indices, mode="P")
    image.putpalette([v for i in range(256) for v in (255 - i,) * 3])
    image.save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    expected = np.array([[0, 1], [0.2, 0.4]], np.float32)
    np.testing.assert_allclose(read_depth(tmp_path / "p.png").numpy(), expected, atol=1e-6)
    image.putpalette([v for i in range(256) for v in (i, 0, 255 - i)])  # colours: no depth
    image.save(tmp_path / "c.png")
    with pytest.raises(DataFormatError, match=r"c\.png: depth image must be greyscale"):
        read_depth(tmp_path / "c.png")


def test_depth_float_image_is_used_as_stored(tmp_path):
    """A float TIFF (mode F) holds depth values, as a plain .npy does: not divided by 255."""
    depth = np.linspace(0.2, 0.9, 12, dtype=np.float32).reshape(3, 4)
    Image.fromarray(depth, mode="F").save(tmp_path / "d.tif")
    np.testing.assert_allclose(read_depth(tmp_path / "d.tif").numpy(), depth, rtol=1e-6)


def test_int32_image_and_depth_read_as_16_bit(tmp_path):
    """A mode I value means value / 65535, whatever the other pixels hold."""
    values = np.full((4, 4), 200, np.int32)
    Image.fromarray(values, mode="I").save(tmp_path / "a.tif")
    values[0, 0] = 300
    Image.fromarray(values, mode="I").save(tmp_path / "b.tif")
    for name in ("a.tif", "b.tif"):
        assert read_image(tmp_path / name)[0, 1, 1] == pytest.approx(200 / 65535)
        assert read_depth(tmp_path / name)[1, 1] == pytest.approx(200 / 65535)


@pytest.mark.parametrize("bad", [70000, -1])
def test_int32_outside_16_bit_is_an_error(tmp_path, bad):
    values = np.zeros((4, 4), np.int32)
    values[0, 0] = bad
    Image.fromarray(values, mode="I").save(tmp_path / "i.tif")
    for read in (read_image, read_depth):
        with pytest.raises(DataFormatError, match=r"i\.tif: 32-bit integer .* 0\.\.65535") as error:
            read(tmp_path / "i.tif")
        assert error.value.path == tmp_path / "i.tif" and error.value.reason == "mode"


def test_depth_dict_without_key(tmp_path):
    np.save(tmp_path / "d.npy", {"depth": np.zeros((2, 2))}, allow_pickle=True)
    with pytest.raises(DataFormatError, match=r"d\.npy: depth dict has no 'normalized_depth'"):
        read_depth(tmp_path / "d.npy")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_depth_non_finite(tmp_path, bad):
    depth = np.ones((3, 3), np.float32)
    depth[1, 1] = bad
    np.save(tmp_path / "d.npy", depth)
    with pytest.raises(DataFormatError, match=r"d\.npy: depth has 1 NaN or infinite"):
        read_depth(tmp_path / "d.npy")


def test_depth_wrong_rank(tmp_path):
    np.save(tmp_path / "d.npy", np.zeros((2, 3, 3)))
    with pytest.raises(DataFormatError, match=r"d\.npy: depth must be a 2-D array"):
        read_depth(tmp_path / "d.npy")
    with pytest.raises(DataFormatError, match="2-D"):
        depth_shape(tmp_path / "d.npy")


def test_pickles_refused_when_disabled(tmp_path):
    np.save(tmp_path / "p.npy", {"normalized_depth": np.zeros((2, 2))}, allow_pickle=True)
    np.save(tmp_path / "plain.npy", np.zeros((2, 2)))
    with pytest.raises(DataFormatError, match=r"p\.npy: .*pickled.*allow_pickle=false"):
        read_depth(tmp_path / "p.npy", allow_pickle=False)
    assert read_depth(tmp_path / "plain.npy", allow_pickle=False).shape == (2, 2)


def test_corrupt_npy(tmp_path):
    (tmp_path / "d.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataFormatError, match=r"d\.npy"):
        read_depth(tmp_path / "d.npy")


@pytest.mark.parametrize("pickled", [False, True], ids=["plain", "dict"])
def test_damaged_npy_header_names_the_file(tmp_path, pickled):
    depth = np.zeros((4, 4), np.float32)
    np.save(tmp_path / "d.npy", {"normalized_depth": depth} if pickled else depth)
    lose_header_brace(tmp_path / "d.npy")
    for read in (read_depth, depth_shape):
        with pytest.raises(DataFormatError, match=r"d\.npy: truncated or damaged \.npy header"):
            read(tmp_path / "d.npy")
