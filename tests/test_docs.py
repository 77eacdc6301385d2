"""The documentation site, the README, the citation file and the version."""

import os
import subprocess
import sys

from mimicry.devtools import PROJECT_ROOT


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
