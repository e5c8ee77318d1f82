"""Shared test settings: Hypothesis without per-example deadlines (a first SymPy import or a busy
CI core is not a failure), and the same examples on every CI run so a red build can be replayed; compiled
templates kept in a folder of the test run's own (the tests' temporary templates would fill the user's cache)."""

import atexit
import os
import shutil
import tempfile

from hypothesis import settings

settings.register_profile("derive", deadline=None, print_blob=True)
settings.register_profile("ci", parent=settings.get_profile("derive"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "derive")

if "DERIVE_TEMPLATE_CACHE" not in os.environ:       # the CLI's subprocesses inherit it
    _templates = tempfile.mkdtemp(prefix="derive-templates-")
    os.environ["DERIVE_TEMPLATE_CACHE"] = _templates
    atexit.register(shutil.rmtree, _templates, ignore_errors=True)
