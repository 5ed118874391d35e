"""Hardening, round 3, "stay inside the repository": a user concept reads only files that really lie in the
repository (unless it says ``outside_repo: true``), symlinks included, and a symlinked class folder counts
as the folder it stands for instead of being dropped without a word."""

import os
from pathlib import Path

import numpy as np
import pytest
from archives import idx_bytes
from PIL import Image
from test_untrusted_files import one_line, user

from gradmeta.core.errors import GradmetaError
from gradmeta.datasets import prepare_concept


def write_pngs(folder, values):
    folder.mkdir(parents=True, exist_ok=True)
    for i, v in enumerate(values):
        Image.fromarray(np.full((28, 28), v, np.uint8)).save(folder / f"{i}.png")


@pytest.fixture
def outside(tmp_path):
    """A folder beside the repository (the test's working folder, ``tmp_path / 'repo'``)."""
    return tmp_path / "elsewhere"


@pytest.fixture(autouse=True)
def repo(tmp_path, monkeypatch):
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")


def test_a_symlinked_file_in_an_idx_folder_that_points_outside_is_refused(tmp_path, outside):
    outside.mkdir()
    (outside / "secret-images.idx").write_bytes(idx_bytes(np.zeros((3, 28, 28), np.uint8)))
    os.makedirs("mine")
    os.symlink(outside / "secret-images.idx", "mine/train-images.idx")
    with pytest.raises(GradmetaError) as err:
        prepare_concept("u", user("idx", "mine"))
    assert f"mine/train-images.idx resolves to {outside / 'secret-images.idx'}, outside the repository" in one_line(err)
    os.remove("mine/train-images.idx")
    os.symlink("../real-images.idx", "mine/train-images.idx")  # a link that stays inside is followed
    with open("real-images.idx", "wb") as f:
        f.write(idx_bytes(np.full((3, 28, 28), 7, np.uint8)))
    assert (prepare_concept("u", user("idx", "mine")).images == 7).all()


def test_a_symlinked_class_folder_inside_the_repository_is_a_class():
    write_pngs(Path("pics/cats"), [10, 20])
    write_pngs(Path("kept/dogs"), [200, 210, 220])
    os.symlink("../kept/dogs", "pics/dogs")
    data = prepare_concept("u", user("folder", "pics"))
    assert sorted(data.images[:, 0, 0].tolist()) == [10, 20, 200, 210, 220]
    assert data.provenance["user_data"]["classes"] == ["cats", "dogs"]
    np.testing.assert_array_equal(np.sort(data.labels), [0, 0, 1, 1, 1])


def test_a_symlinked_class_folder_outside_the_repository_is_refused(outside):
    write_pngs(outside / "dogs", [200])
    write_pngs(Path("pics/cats"), [10])
    os.symlink(outside / "dogs", "pics/dogs")
    with pytest.raises(GradmetaError) as err:
        prepare_concept("u", user("folder", "pics"))
    assert f"pics/dogs/0.png resolves to {outside / 'dogs' / '0.png'}, outside the repository" in one_line(err)


def test_a_symlink_loop_in_a_folder_concept_ends():
    write_pngs(Path("pics/cats"), [10, 20])
    os.symlink("..", "pics/cats/again")  # pics/cats/again/cats/again/...
    data = prepare_concept("u", user("folder", "pics"))
    assert sorted(data.images[:, 0, 0].tolist()) == [10, 20]
