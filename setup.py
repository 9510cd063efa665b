"""Setuptools shim: the repository's top-level ``conf/`` ships inside the wheel.

``conf/`` stays the single source of the Hydra configs; the wheel maps it to the package
``hieros_pl.conf`` so that an installed ``hieros-train`` finds them (``train.conf_dir``). All
other metadata lives in ``pyproject.toml``.
"""

from pathlib import Path

from setuptools import find_namespace_packages, setup

CONF = Path("conf")
CONF_PACKAGES = ["hieros_pl.conf"] + [
    "hieros_pl.conf." + ".".join(path.relative_to(CONF).parts)
    for path in sorted(CONF.rglob("*"))
    if path.is_dir()
]

setup(
    packages=[
        *find_namespace_packages(include=["hieros_pl", "hieros_pl.*"], exclude=["*__pycache__"]),
        *CONF_PACKAGES,
    ],
    package_dir={"hieros_pl.conf": "conf"},
    package_data={
        "hieros_pl": ["resources/*.csv"],
        **{package: ["*.yaml"] for package in CONF_PACKAGES},
    },
)
