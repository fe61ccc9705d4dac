"""The bad-input catalogue: every row's real CLI prints its one documented line, exits with its
code, and leaves every file that existed before byte-identical (no temp file left behind)."""

import shutil
from pathlib import Path

import pytest

from bad_inputs import CATALOGUE, PRIOR_RUN, BadInput, Scratch, markdown_table
from ssmar.cli.main import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad_inputs.md"


@pytest.fixture(scope="module")
def prior_run(synth_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny run: the files a failed command must not damage."""
    work_dir = tmp_path_factory.mktemp("prior")
    assert main(["train", f"data.file={synth_file}", "--work-dir", str(work_dir), *PRIOR_RUN]) == 0
    return work_dir


def snapshot(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}


@pytest.mark.parametrize("row", CATALOGUE, ids=[row.id for row in CATALOGUE])
def test_bad_input_prints_one_line_and_damages_nothing(row: BadInput, synth_file: Path, prior_run: Path,
                                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture) -> None:
    shutil.copy(synth_file, tmp_path / "synth.pkl")
    shutil.copytree(prior_run, tmp_path / "prior")
    row.setup(Scratch(tmp_path, monkeypatch))
    before = snapshot(tmp_path)
    capsys.readouterr()

    code = main(row.argv(tmp_path))

    assert capsys.readouterr().err.splitlines() == [row.expected(tmp_path)]
    assert code == row.exit_code
    after = snapshot(tmp_path)
    assert {path: after.get(path) for path in before} == before, "a file that existed before was changed"
    assert not [path for path in tmp_path.rglob("*.tmp")], "a temporary file was left behind"
    assert not (tmp_path / "pwned").exists(), "a payload in the bad input ran"
    if row.message.startswith("config:"):  # config values are checked before anything is written
        assert not (tmp_path / "run").exists(), "a bad config value left a work dir"
    assert not (tmp_path / "ev").exists(), "a refused evaluation left an output folder"


def test_docs_table_is_the_catalogue() -> None:
    assert markdown_table() in DOC.read_text(), "regenerate the table of docs/bad_inputs.md from tests/bad_inputs.py"
