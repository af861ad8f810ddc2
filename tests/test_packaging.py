"""The wheel carries everything the app needs at run time: templates, translations, migrations."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

from tests.helpers import require

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "django_entra_sso"


def _version_tuple(name: str) -> tuple[int, ...] | None:
    try:
        text = version(name)
    except PackageNotFoundError:
        return None
    parts: list[int] = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def build_tools_missing() -> str | None:
    setuptools = _version_tuple("setuptools")
    if setuptools is None or setuptools < (69,):
        return "setuptools>=69 is needed to build the wheel without build isolation"
    # bdist_wheel moved into setuptools in 70.1; older ones need the wheel package.
    if setuptools < (70, 1) and _version_tuple("wheel") is None:
        return "the wheel package is needed to build the wheel with this setuptools"
    return None


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    require(build_tools_missing())
    # Build from a copy so that build/ and *.egg-info never land in the working tree.
    source = tmp_path_factory.mktemp("source")
    for path in ROOT.iterdir():
        if path.is_file():
            shutil.copy2(path, source / path.name)
    shutil.copytree(PACKAGE, source / PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    [built] = list(out.glob("django_entra_sso-*.whl"))
    return zipfile.ZipFile(built)


def package_files(pattern: str) -> set[str]:
    return {
        path.relative_to(ROOT).as_posix()
        for path in PACKAGE.glob(pattern)
        if "__pycache__" not in path.parts
    }


@pytest.mark.parametrize(
    "name",
    [
        "django_entra_sso/py.typed",
        "django_entra_sso/migrations/__init__.py",
        "django_entra_sso/migrations/0001_initial.py",
        "django_entra_sso/locale/ja/LC_MESSAGES/django.po",
        "django_entra_sso/locale/ja/LC_MESSAGES/django.mo",
        "django_entra_sso/locale/en/LC_MESSAGES/django.po",
        "django_entra_sso/locale/en/LC_MESSAGES/django.mo",
        "django_entra_sso/templates/django_entra_sso/login.html",
        "django_entra_sso/templates/admin/django_entra_sso/connector/change_form.html",
        "django_entra_sso/management/commands/sso_connector.py",
    ],
)
def test_wheel_contains(wheel: zipfile.ZipFile, name: str) -> None:
    assert name in wheel.namelist()


def test_wheel_contains_every_template_module_and_migration(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    expected = package_files("**/*.html") | package_files("**/*.py") | package_files("**/*.mo")
    assert expected
    assert expected - names == set()


def test_wheel_ships_the_committed_translations(wheel: zipfile.ZipFile) -> None:
    for lang in ("ja", "en"):
        name = f"django_entra_sso/locale/{lang}/LC_MESSAGES/django.mo"
        assert wheel.read(name) == (ROOT / name).read_bytes()


def test_wheel_holds_only_the_app(wheel: zipfile.ZipFile) -> None:
    tops = {name.split("/", 1)[0] for name in wheel.namelist()}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"django_entra_sso"}


def test_wheel_metadata_names_the_distribution_and_its_dependencies(
    wheel: zipfile.ZipFile,
) -> None:
    [metadata_name] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    metadata = wheel.read(metadata_name).decode()
    assert "Name: django-entra-sso" in metadata
    for dependency in ("Django", "mozilla-django-oidc", "PyJWT", "cryptography"):
        assert f"Requires-Dist: {dependency}" in metadata
