"""Test setup for the demo IdP: own settings, throw-away data dir, migrated DB.

Run:  cd example_project/idp && python -m pytest test_idp.py -q -p no:cacheprovider
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEST_ISSUER = "http://127.0.0.1:9000/o"


def _is_own_run(config) -> bool:
    # Only when pytest was started on this folder (pytest.ini here makes it the
    # rootdir).  A repository-wide run that wanders in here skips it instead of
    # configuring Django with the wrong settings.
    return Path(str(config.rootpath)).resolve() == HERE


def pytest_ignore_collect(collection_path, config):
    if not _is_own_run(config):
        return True
    return None


def pytest_configure(config):
    if not _is_own_run(config):
        return
    data_dir = tempfile.mkdtemp(prefix="idp-test-")
    config._idp_data_dir = data_dir
    os.environ["IDP_DATA_DIR"] = data_dir
    os.environ["IDP_ISSUER"] = TEST_ISSUER
    os.environ["DJANGO_SETTINGS_MODULE"] = "idp_site.settings"
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))

    import django
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    django.setup()
    setup_test_environment()
    call_command("migrate", verbosity=0, interactive=False)


def pytest_unconfigure(config):
    data_dir = getattr(config, "_idp_data_dir", None)
    if data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)
