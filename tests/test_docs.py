"""The documentation site, the README, the citation file and the version."""

import json
import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import version

import jsonschema
import yaml

import mimicry
from helpers.devtools import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
# The Citation File Format 1.2.0 schema, as cffconvert 2.0.0 ships it (PyPI). cffconvert
# itself (`cffconvert --validate`) needs jsonschema < 4, which has no Draft 2020-12
# validator, the draft of the workflow's own schemas (mimicry.config.schema).
CFF_SCHEMA = PROJECT_ROOT / "tests" / "data" / "citation-file-format-1.2.0.schema.json"
KORB_2023_DOI = "10.1007/s00213-023-06426-3"


def test_docs_build_strictly(tmp_path):
    """Any warning (a broken link or anchor, a page outside the nav, a missing snippet)
    fails the build."""
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", tmp_path],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    reference = (tmp_path / "configuration" / "index.html").read_text()
    # The configuration reference is config/README.md, included rather than copied.
    assert "stan.chains" in reference and "docs/configuration.md" not in reference


def test_readme_is_short_and_its_links_resolve():
    text = README.read_text()
    assert len(text.splitlines()) <= 150
    targets = re.findall(r"\]\(([^)#\s]+)[^)]*\)", text)
    local = [target for target in targets if "://" not in target]
    assert local, "the README links the docs"
    missing = [target for target in local if not (PROJECT_ROOT / target).exists()]
    assert not missing, f"README links to missing files: {missing}"


def cff_errors(citation):
    schema = json.loads(CFF_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )
    return [error.message for error in validator.iter_errors(citation)]


def test_citation_file_is_valid_and_cites_the_paper():
    citation = yaml.safe_load((PROJECT_ROOT / "CITATION.cff").read_text())
    assert cff_errors(citation) == []
    assert citation["version"] == mimicry.__version__
    assert [reference["doi"] for reference in citation["references"]] == [KORB_2023_DOI]
    # The schema check can fail: a date that is no date, a missing title.
    broken = {**citation, "date-released": "7 Dec 2026"}
    del broken["title"]
    errors = cff_errors(broken)
    assert "'title' is a required property" in errors
    assert "'7 Dec 2026' is not a 'date'" in errors


def test_version_has_one_source():
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    assert mimicry.__version__ == version("mimicry") == pyproject["project"]["version"]
    changelog = (PROJECT_ROOT / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[(\d[^\]]*)\] - \d{4}-\d{2}-\d{2}$", changelog, re.M)
    assert releases[0] == mimicry.__version__
