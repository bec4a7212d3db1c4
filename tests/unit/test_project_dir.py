"""The tools find their project directory by one rule (rampart.project): --project, $RAMPART_PROJECT, the
current directory or a parent with inventories/lab/, then the checkout an editable install runs from."""

from __future__ import annotations

from pathlib import Path

import pytest

from rampart import project

ROOT = Path(__file__).resolve().parents[2]


def make_project(path: Path) -> Path:
    (path / "inventories" / "lab").mkdir(parents=True)
    return path


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv(project.ENV, raising=False)


def test_explicit_beats_environment_beats_cwd(tmp_path, monkeypatch):
    a, b, c = (make_project(tmp_path / n) for n in "abc")
    monkeypatch.setenv(project.ENV, str(b))
    assert project.find(a, cwd=c) == a.resolve()
    assert project.find(None, cwd=c) == b.resolve()
    monkeypatch.delenv(project.ENV)
    assert project.find(None, cwd=c) == c.resolve()


def test_nearest_parent_of_the_current_directory(tmp_path):
    outer = make_project(tmp_path / "outer")
    inner = make_project(outer / "sub" / "inner")
    (inner / "deep" / "er").mkdir(parents=True)
    assert project.find(cwd=inner / "deep" / "er") == inner.resolve()
    assert project.find(cwd=outer / "sub") == outer.resolve()


def test_the_editable_checkout_is_the_last_resort(tmp_path):
    # This test runs from the checkout, where the package's source folder's parent is the repository.
    assert project.find(cwd=tmp_path) == ROOT


def test_no_project_names_what_was_looked_at(tmp_path, monkeypatch):
    monkeypatch.setattr(project, "_source_checkout", lambda: None)
    with pytest.raises(SystemExit) as exc:
        project.find(cwd=tmp_path)
    assert str(tmp_path.resolve()) in str(exc.value) and "--project" in str(exc.value)
    with pytest.raises(SystemExit, match="not a Rampart project directory"):
        project.find(tmp_path)
