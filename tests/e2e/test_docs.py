"""The documentation generated from the code is current."""

import os
import subprocess
from pathlib import Path

from conftest import REPO


def build_dir():
    return Path(os.environ.get("PORTICO_BUILD", REPO / "build"))


def test_config_reference_is_current():
    out = subprocess.run([str(build_dir() / "portico-admin"),
                          "config-reference"], capture_output=True,
                         check=True, timeout=30).stdout
    doc = (REPO / "docs" / "CONFIG.md").read_bytes()
    assert out == doc, ("docs/CONFIG.md is stale: regenerate it with "
                        "`make docs/CONFIG.md`")
    for section in (b"[global]", b"[tls]", b"[ldap]", b"[frontend]",
                    b"[backend]", b"[limits]"):
        assert section in doc
