import json
from collections import Counter

import pytest

from relight.data import FixedTripletDataset, GuideSampler, PairsDataset, index_pairs, index_vidit
from relight.data.cache import FileReader
from relight.data.formats import DataFormatError
from relight.data.lighting_change import (
    dataset_lighting_changes,
    direction_steps,
    lighting_change,
    pair_lighting_changes,
    parse_lighting,
    triplet_lighting_change,
)
from relight.data.vidit import DIRECTIONS, TEMPERATURES, Lighting

from .vidit_factory import write_pairs, write_vidit

#: compass angle of each direction, to check the classification independently
ANGLE = {"N": 0, "NE": 45, "E": 90, "SE": 135, "S": 180, "SW": 225, "W": 270, "NW": 315}


@pytest.mark.parametrize(
    ("source", "guide", "kind"),
    [
        ("Image001_2500_N", "Image002_6500_N", "same_direction"),
        ("Image001_4500_NE", "Image002_4500_E", "other_direction"),
        ("Image001_4500_NE", "Image002_3500_SE", "other_direction"),
        ("Image001_4500_NE", "Image002_4500_S", "other_direction"),  # 135 degrees
        ("Image001_4500_NE", "Image002_5500_SW", "opposite_direction"),
        ("Image001_2500_W", "Image002_2500_E", "opposite_direction"),
        ("Image001_3500_NW", "Image002_3500_NW", "same_lighting"),
    ],
)
def test_kinds_of_lighting_change(source, guide, kind):
    assert lighting_change(parse_lighting(source), parse_lighting(guide)) == kind
    assert triplet_lighting_change(f"{source}-to-{guide}") == kind


def test_every_pair_of_vidit_lightings_is_classified_by_its_angle():
    lightings = [Lighting(t, d) for t in TEMPERATURES for d in DIRECTIONS]
    for source in lightings:
        kinds = Counter()
        for guide in lightings:
            angle = abs(ANGLE[source.direction] - ANGLE[guide.direction]) % 360
            angle = min(angle, 360 - angle)
            kind = lighting_change(source, guide)
            kinds[kind] += 1
            assert direction_steps(source.direction, guide.direction) * 45 == angle
            if angle == 0:
                same = guide.temperature == source.temperature
                assert kind == ("same_lighting" if same else "same_direction")
            else:
                assert kind == ("opposite_direction" if angle == 180 else "other_direction")
        # 4 other temperatures, 5 opposite lightings, 6 x 5 others, itself
        assert kinds == {
            "same_direction": 4,
            "opposite_direction": 5,
            "other_direction": 30,
            "same_lighting": 1,
        }


def test_names_that_do_not_say_it():
    assert triplet_lighting_change("Pair000") is None
    assert triplet_lighting_change("Image001_2500_N-to-Pair000") is None
    with pytest.raises(ValueError, match="not a VIDIT image name"):
        parse_lighting("Image001_2500_X")


def write_sources(folder, sources) -> None:
    (folder / "pairs.json").write_text(json.dumps(sources))


SOURCES = {
    "Pair000": {"input": "Image010_2500_N", "guide": "Image020_6500_N"},
    "Pair001": {"input": "Image011_2500_N", "guide": "Image021_6500_E"},
    "Pair002": {"input": "Image012_2500_N", "guide": "Image022_6500_S"},
}


def test_a_pairs_folder_knows_the_kinds_from_pairs_json(tmp_path):
    folder = write_pairs(tmp_path / "pairs", count=3)
    dataset = PairsDataset(index_pairs(folder), FileReader(None))
    names = ["Pair000", "Pair001", "Pair002"]
    assert dataset_lighting_changes(dataset, names) is None  # VIDIT's folders: unknown
    write_sources(folder, SOURCES)
    expected = {
        "Pair000": "same_direction",
        "Pair001": "other_direction",
        "Pair002": "opposite_direction",
    }
    assert dataset_lighting_changes(dataset, names) == expected
    assert pair_lighting_changes(folder, names[:1]) == {"Pair000": "same_direction"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected an object"),
        ('{"Pair000": {"input": "Image010_2500_N"}}', "needs 'input' and 'guide'"),
        ('{"Pair000": {"input": "x.png", "guide": "Image020_6500_N"}}', "needs 'input'"),
    ],
)
def test_a_bad_pairs_json_names_the_file(tmp_path, content, message):
    folder = write_pairs(tmp_path / "pairs", count=1)
    (folder / "pairs.json").write_text(content)
    with pytest.raises(DataFormatError, match=rf"pairs\.json: .*{message}"):
        pair_lighting_changes(folder, ["Pair000"])


def test_a_pair_missing_from_pairs_json_is_an_error(tmp_path):
    folder = write_pairs(tmp_path / "pairs", count=3)
    write_sources(folder, {"Pair000": SOURCES["Pair000"]})
    with pytest.raises(DataFormatError, match=r"no sources for pair\(s\) \['Pair001', 'Pair002'\]"):
        pair_lighting_changes(folder, ["Pair000", "Pair001", "Pair002"])


def test_generated_validation_knows_the_kinds_from_its_item_names(tmp_path):
    lights = [(2500, "N"), (6500, "N"), (3500, "E"), (4500, "S")]
    scenes = index_vidit(write_vidit(tmp_path / "train", scenes=range(3), lightings=lights))
    dataset = FixedTripletDataset(scenes, GuideSampler(scenes, [0, 1, 2], 0), FileReader(None))
    names = [dataset.triplet(i).name for i in range(len(dataset))]
    kinds = dataset_lighting_changes(dataset, names)
    for name in names:  # independently: from the directions in the name
        source, guide = (part.split("_")[2] for part in name.split("-to-"))
        steps = direction_steps(source, guide)
        assert kinds[name] == {0: "same_direction", 4: "opposite_direction"}.get(
            steps, "other_direction"
        )
    assert set(kinds.values()) == {"same_direction", "other_direction", "opposite_direction"}
