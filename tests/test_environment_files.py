"""requirements.txt (pip, used by `make`) and environment.yml (conda) describe one environment."""

from __future__ import annotations

import tomllib
import yaml
from conftest import REPO_ROOT
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version


def _pip_lines(lines):
    """Requirement strings from requirements-file lines: comments, blanks and options dropped."""
    return [line.strip() for line in lines
            if line.strip() and not line.lstrip().startswith(("#", "-"))]


def _requirements(strings):
    """name (normalised) + marker -> Requirement, so a package may appear once per platform."""
    parsed = {}
    for text in strings:
        requirement = Requirement(text)
        key = (requirement.name.lower().replace("_", "-"), str(requirement.marker or ""))
        assert key not in parsed, f"{text!r} is listed twice"
        parsed[key] = requirement
    return parsed


def _environment():
    return yaml.safe_load((REPO_ROOT / "environment.yml").read_text())


def _conda_pip_section(environment):
    sections = [item["pip"] for item in environment["dependencies"] if isinstance(item, dict)]
    assert len(sections) == 1, "environment.yml should have exactly one pip: section"
    return sections[0]


def test_environment_yml_names_the_same_packages_and_versions():
    pip_side = _requirements(_pip_lines((REPO_ROOT / "requirements.txt").read_text().splitlines()))
    conda_side = _requirements(_pip_lines(_conda_pip_section(_environment())))
    assert set(pip_side) == set(conda_side), (
        f"only in requirements.txt: {sorted(set(pip_side) - set(conda_side))}; "
        f"only in environment.yml: {sorted(set(conda_side) - set(pip_side))}"
    )
    for key, requirement in pip_side.items():
        assert requirement.specifier == conda_side[key].specifier, (
            f"{key[0]}: requirements.txt asks for {requirement.specifier}, "
            f"environment.yml for {conda_side[key].specifier}"
        )


def test_environment_yml_installs_the_course_package_and_a_supported_python():
    environment = _environment()
    assert environment["name"] == "cnn-course"
    assert "-e ./utils" in _conda_pip_section(environment)
    python = [d for d in environment["dependencies"] if isinstance(d, str) and d.startswith("python=")]
    assert len(python) == 1, "environment.yml should pin python=X.Y once"
    package = tomllib.loads((REPO_ROOT / "utils" / "pyproject.toml").read_text())
    supported = SpecifierSet(package["project"]["requires-python"])
    assert Version(python[0].split("=")[1]) in supported


def test_requirements_pick_one_tensorflow_per_platform():
    requirements = [Requirement(t) for t in _pip_lines((REPO_ROOT / "requirements.txt").read_text().splitlines())]
    tensorflows = [r for r in requirements if r.name in ("tensorflow", "tensorflow-cpu")]
    platforms = [
        {"sys_platform": "linux", "platform_machine": "x86_64"},
        {"sys_platform": "darwin", "platform_machine": "arm64"},
        {"sys_platform": "linux", "platform_machine": "aarch64"},
    ]
    for platform in platforms:
        chosen = [r.name for r in tensorflows if r.marker is None or r.marker.evaluate(platform)]
        assert len(chosen) == 1, f"{platform}: the requirements install {chosen or 'no'} TensorFlow"
    linux_x86 = [r.name for r in tensorflows if r.marker.evaluate(platforms[0])]
    mac_arm = [r.name for r in tensorflows if r.marker.evaluate(platforms[1])]
    assert linux_x86 == ["tensorflow-cpu"] and mac_arm == ["tensorflow"]


def test_course_package_declares_what_it_imports():
    """`pip install ./utils` alone must bring what cnn_course imports at the top level."""
    package = tomllib.loads((REPO_ROOT / "utils" / "pyproject.toml").read_text())
    declared = {Requirement(d).name.lower() for d in package["project"]["dependencies"]}
    assert {"numpy", "keras", "matplotlib", "ipywidgets"} <= declared
