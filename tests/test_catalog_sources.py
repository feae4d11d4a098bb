"""The registry's published tables (`sources`) and what is known of each release (`release`)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from helpers import REPO

from bench.catalog import load_catalog
from bench.core.errors import CatalogError
from bench.core.paths import default_catalog_path


def test_every_real_set_says_how_sure_its_counts_are():
    catalog = load_catalog()
    for entry in catalog.training.values():
        if entry.format == "demo":  # generated here: the counts are exact by construction
            assert entry.release is None and entry.expected_counts.verified
            continue
        assert entry.release is not None, f"{entry.name}: add a `release` block"
        assert entry.expected_counts is entry.release


def test_every_source_has_rows_and_every_row_with_a_table_names_it():
    catalog = load_catalog()
    for name, source in catalog.sources.items():
        assert source.url.startswith("https://"), name
        assert catalog.published_by(name), f"source {name} has no published row"
    fork = catalog.source("arcface_torch_fork")
    assert any("Accuracy-Highest" in caveat for caveat in fork.caveats)
    assert catalog.source("vec2face_readme").recipe == "sources/vec2face_readme"
    rows = {entry.name for entry, _ in catalog.published_by("dcface_paper")}
    assert {"dcface_0.5m", "dcface_1.0m", "dcface_1.2m", "casia_webface"} <= rows


def test_release_and_version_are_read():
    catalog = load_catalog()
    dcface = catalog.training_set("dcface_0.5m").release
    assert (dcface.images, dcface.identities, dcface.verified) == (550000, 10000, False)
    assert catalog.training_set("hsface10k").release.version.startswith("2025-04-15")
    assert catalog.training_set("dcface_1.0m").release.available is False


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["training"]["dcface_0.5m"]["published"][0].update(source_id="dcface_papr"),
            ["dcface_0.5m.published.0.source_id", "'dcface_papr'", "dcface_paper"],
        ),
        (
            lambda d: d["training"]["digiface"]["release"].pop("verified"),
            ["digiface.release", "missing key 'verified'"],
        ),
        (
            lambda d: d["training"]["digiface"]["release"].update(verified="no"),
            ["digiface.release.verified", "expected bool"],
        ),
        (
            lambda d: d["training"]["digiface"]["release"].update(imags=3),
            ["digiface.release", "'imags'", "images"],
        ),
        (lambda d: d["sources"]["dcface_paper"].pop("url"), ["sources.dcface_paper", "'url'"]),
        (
            lambda d: d["sources"]["dcface_paper"].update(caveats="one"),
            ["sources.dcface_paper.caveats", "list"],
        ),
        (lambda d: d["sources"].update({"Bad-Name": {}}), ["sources", "'Bad-Name'"]),
    ],
)
def test_mistakes_name_the_key(tmp_path: Path, mutate, expected):
    document = copy.deepcopy(yaml.safe_load(default_catalog_path().read_text()))
    mutate(document)
    path = tmp_path / "datasets.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(CatalogError) as error:
        load_catalog(path)
    for fragment in (str(path), *expected):
        assert fragment in str(error.value)


def test_unknown_source_is_answered_with_close_matches():
    with pytest.raises(CatalogError, match="did you mean.*vec2face_readme"):
        load_catalog().source("vec2face_readm")


def test_readme_lists_every_training_set():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Registered training sets") :]
    for name in load_catalog().training:
        assert f"| `{name}` |" in section, f"README's table of sets lacks {name}"


def test_datasets_command_shows_count_certainty_and_tables(tmp_path, capsys):
    from bench.cli import main as cli_main

    assert cli_main(["datasets", "--data-root", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "unverified" in next(line for line in lines if line.startswith("dcface_0.5m "))
    assert "no download" in next(line for line in lines if line.startswith("dcface_1.0m "))
    assert "verified" in next(line for line in lines if line.startswith("demo_diverse "))
    assert any(line.split()[:2] == ["dcface_paper", "6"] for line in lines)
