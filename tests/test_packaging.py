"""The wheel carries everything the app needs at run time: templates, translations, migrations;
the sdist carries the same and what a wheel is built from, and ``twine check --strict`` passes both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
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
    # 77: the first to read an SPDX `license` string and `license-files` (PEP 639).
    if setuptools is None or setuptools < (77,):
        return "setuptools>=77 is needed to build the wheel without build isolation"
    return None


def release_tools_missing() -> str | None:
    build_tool, twine = _version_tuple("build"), _version_tuple("twine")
    if build_tool is None or build_tool < (1, 2):
        return "build>=1.2 is needed to build the sdist (pip install -e '.[test]')"
    # Older twines refuse the metadata 2.4 that setuptools 77+ writes.
    if twine is None or twine < (6, 1):
        return "twine>=6.1 is needed to check the distributions (pip install -e '.[test]')"
    return build_tools_missing()


def source_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The top-level files and the package, copied: build/ and *.egg-info never land
    in the working tree.
    """
    source = tmp_path_factory.mktemp("source")
    for path in ROOT.iterdir():
        if path.is_file():
            shutil.copy2(path, source / path.name)
    shutil.copytree(PACKAGE, source / PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__"))
    return source


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    require(build_tools_missing())
    source = source_copy(tmp_path_factory)
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


# -- the sdist, and the wheel `python -m build` makes from it ------------------------------


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``python -m build`` as a release would run it: the sdist, then a wheel built from
    the unpacked sdist (so a file the sdist forgets is missing from that wheel too).
    No isolation: it runs offline with this environment's setuptools.
    """
    require(release_tools_missing())
    source = source_copy(tmp_path_factory)
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [sdist] = list(out.glob("django_entra_sso-*.tar.gz"))
    [built_wheel] = list(out.glob("django_entra_sso-*.whl"))
    return {"sdist": sdist, "wheel": built_wheel}


@pytest.fixture(scope="module")
def sdist_names(dists: dict[str, Path]) -> set[str]:
    """The sdist's file names, without the ``django_entra_sso-<version>/`` prefix."""
    with tarfile.open(dists["sdist"]) as archive:
        return {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}


def test_twine_check_strict_accepts_the_sdist_and_the_wheel(dists: dict[str, Path]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(dists["sdist"]),
         str(dists["wheel"])],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2, result.stdout


@pytest.mark.parametrize(
    "name",
    [
        "README.md",
        "LICENSE",
        "CHANGELOG.md",
        "pyproject.toml",
        "MANIFEST.in",
        "django_entra_sso/py.typed",
        "django_entra_sso/migrations/0001_initial.py",
        "django_entra_sso/locale/ja/LC_MESSAGES/django.po",
        "django_entra_sso/locale/ja/LC_MESSAGES/django.mo",
        "django_entra_sso/locale/en/LC_MESSAGES/django.po",
        "django_entra_sso/locale/en/LC_MESSAGES/django.mo",
        "django_entra_sso/templates/django_entra_sso/login.html",
    ],
)
def test_sdist_contains(sdist_names: set[str], name: str) -> None:
    assert name in sdist_names


def test_sdist_contains_every_translation_template_and_migration(sdist_names: set[str]) -> None:
    expected = (
        package_files("locale/*/LC_MESSAGES/*.po")
        | package_files("locale/*/LC_MESSAGES/*.mo")
        | package_files("templates/**/*.html")
        | package_files("migrations/*.py")
    )
    assert any(name.endswith(".mo") for name in expected)
    assert expected - sdist_names == set()


def test_sdist_leaves_out_the_tests_and_the_demo(sdist_names: set[str]) -> None:
    tops = {name.split("/", 1)[0] for name in sdist_names}
    assert not tops & {"tests", "example_project", "bench", ".ci", "scripts"}


def test_sdist_metadata_declares_a_markdown_readme_and_the_license(
    dists: dict[str, Path],
) -> None:
    top = dists["sdist"].name.removesuffix(".tar.gz")
    with tarfile.open(dists["sdist"]) as archive:
        extracted = archive.extractfile(f"{top}/PKG-INFO")
        assert extracted is not None
        metadata = extracted.read().decode()
    assert "Description-Content-Type: text/markdown" in metadata
    assert "License-Expression: MIT" in metadata
    assert "License-File: LICENSE" in metadata
    assert "# django-entra-sso" in metadata  # the README is the long description


def test_wheel_built_from_the_sdist_has_every_template_translation_and_migration(
    dists: dict[str, Path],
) -> None:
    with zipfile.ZipFile(dists["wheel"]) as built:
        names = set(built.namelist())
    expected = package_files("**/*.html") | package_files("**/*.py") | package_files("**/*.mo")
    assert expected - names == set()
