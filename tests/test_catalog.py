"""datasets.yaml loads, and every kind of mistake is reported with file, entry and key."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from bench.catalog import STANDARD_TARGETS, load_catalog
from bench.cli import main as cli_main
from bench.core.errors import CatalogError
from bench.core.paths import default_catalog_path

REPO_YAML = default_catalog_path()


def test_registry_loads_with_expected_entries():
    catalog = load_catalog()
    for name in (
        "ms1mv2",
        "casia_webface",
        "dcface_0.5m",
        "cemiface_0.5m",
        "vec2face_hsface10k",
        "uiface_0.5m",
        "digiface",
        "demo_consistent",
        "demo_diverse",
    ):
        assert name in catalog.training
    for name in STANDARD_TARGETS:
        assert name in catalog.evaluation
    assert catalog.eval_set("cfp_fp").pairs == 7000
    assert {catalog.eval_set(n).pairs for n in ("lfw", "agedb_30", "calfw", "cplfw")} == {6000}


def test_published_rows_are_percentages_with_known_keys():
    for entry in load_catalog().training.values():
        for row in entry.published:
            assert set(row.scores) <= set(STANDARD_TARGETS)
            assert row.scores or row.printed_mean is not None


def _write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "datasets.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture()
def document() -> dict:
    return yaml.safe_load(REPO_YAML.read_text())


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["training"]["ms1mv2"].update(identitis=1),
            ["ms1mv2", "identitis", "identities"],
        ),
        (lambda d: d["training"]["ms1mv2"].pop("images"), ["ms1mv2", "missing key 'images'"]),
        (
            lambda d: d["training"]["ms1mv2"].update(images="many"),
            ["ms1mv2.images", "expected int"],
        ),
        (
            lambda d: d["training"]["ms1mv2"].update(format="recordio"),
            ["ms1mv2.format", "insightface_recordio"],
        ),
        (
            lambda d: d["training"]["demo_diverse"].update(eval_targets=["lfv"]),
            ["demo_diverse", "'lfv'", "lfw"],
        ),
        (
            lambda d: d["training"]["ms1mv2"]["published"][0]["scores"].update(lwf=99.0),
            ["scores", "lwf", "lfw"],
        ),
        (lambda d: d["evaluation"]["lfw"].update(pairs=6000.5), ["lfw.pairs", "expected int"]),
        (lambda d: d.update(schema_version=2), ["schema_version 2"]),
        (
            lambda d: d["training"]["digiface"].update(aliases=["uiface"]),
            ["aliases: 'uiface' is also an alias of", "digiface", "uiface_0.5m"],
        ),
        (
            lambda d: d["training"]["digiface"].update(aliases=["ms1mv2"]),
            ["digiface.aliases: 'ms1mv2' is the key of another entry"],
        ),
        (lambda d: d["training"]["digiface"].update(aliases="dg"), ["digiface.aliases", "list"]),
    ],
)
def test_mistakes_name_file_entry_and_key(tmp_path, document, mutate, expected):
    broken = copy.deepcopy(document)
    mutate(broken)
    path = _write(tmp_path, broken)
    with pytest.raises(CatalogError) as error:
        load_catalog(path)
    message = str(error.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message


def test_duplicate_keys_are_errors_naming_key_and_line(tmp_path):
    """PyYAML keeps the last of two equal keys silently; the registry refuses them."""
    text = REPO_YAML.read_text(encoding="utf-8")
    lines = text.splitlines()
    start = lines.index("training:") + 1
    repeated = "  casia_webface:\n    display_name: X\n    images: 1\n"
    path = tmp_path / "datasets.yaml"
    path.write_text(text.replace("\ntraining:\n", "\ntraining:\n" + repeated, 1), encoding="utf-8")
    second = 1 + [line.strip() for line in path.read_text().splitlines()].index(
        "casia_webface:", start + 1
    )
    with pytest.raises(CatalogError) as error:
        load_catalog(path)
    assert str(error.value).startswith(f"{path}: line {second}: key 'casia_webface' appears twice")
    assert f"(first on line {start + 1})" in str(error.value)
    path.write_text("schema_version: 1\ntraining: {}\nevaluation: {a: 1, a: 2}\n")
    with pytest.raises(CatalogError, match=r"line 3: key 'a' appears twice"):
        load_catalog(path)


def test_merge_keys_may_still_be_overridden(tmp_path):
    """`<<: *anchor` then an explicit key is YAML's override, not a duplicate."""
    path = tmp_path / "datasets.yaml"
    path.write_text(
        "schema_version: 1\ntraining: {}\nevaluation:\n"
        "  lfw: &lfw {display_name: LFW, pairs: 6000, file: lfw.bin, obtain: x}\n"
        "  cfp_fp: {<<: *lfw, display_name: CFP-FP, pairs: 7000, file: cfp_fp.bin}\n"
    )
    assert load_catalog(path).eval_set("cfp_fp").pairs == 7000


def test_unreadable_files_name_the_path(tmp_path):
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(
        "schema_version: 1\n# caf\xe9\ntraining: {}\nevaluation: {}\n".encode("latin-1")
    )
    with pytest.raises(CatalogError, match=re.escape(f"{latin1}: not UTF-8 text")):
        load_catalog(latin1)
    with pytest.raises(CatalogError, match=re.escape(f"{tmp_path}: cannot read the registry file")):
        load_catalog(tmp_path)


def test_unknown_name_suggests_close_matches():
    with pytest.raises(CatalogError, match="did you mean: uiface_0.5m"):
        load_catalog().training_set("uiface_05m")


def test_alias_resolves_to_its_entry_and_files_use_the_key(tmp_path, caplog):
    catalog = load_catalog()
    assert catalog.training_set("uiface") is catalog.training_set("uiface_0.5m")
    assert catalog.training_set("hsface10k").name == "vec2face_hsface10k"
    with pytest.raises(CatalogError, match="did you mean: uiface"):
        catalog.training_set("uifase")
    # A command given the alias looks for the entry's own folders.
    assert cli_main(["prepare", "uiface", "--data-root", str(tmp_path)]) != 0
    assert str(tmp_path / "raw" / "uiface_0.5m") in caplog.text


def test_datasets_command_lists_presence(tmp_path, capsys):
    (tmp_path / "prepared" / "demo_diverse").mkdir(parents=True)
    (tmp_path / "prepared" / "demo_diverse" / "manifest.json").write_text("{}")
    assert cli_main(["datasets", "--data-root", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    diverse = next(line for line in lines if line.startswith("demo_diverse"))
    consistent = next(line for line in lines if line.startswith("demo_consistent"))
    assert diverse.rstrip().endswith("yes") and consistent.rstrip().endswith("-")
