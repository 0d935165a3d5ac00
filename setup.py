"""Build script: compiles the Cython kernels and maps the top-level folders into one namespace.

envs/ -> sysgym.envs, agents/ -> sysgym.agents, cython_core/ -> sysgym.cython_core,
traces/ -> sysgym.traces (shipped data files travel inside the wheel).

Set SYSGYM_KERNELS=cluster,dag to compile only some kernels while developing one family.
"""

import os
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, find_namespace_packages, find_packages, setup

ROOT = Path(__file__).parent
FOLDERS = {"sysgym": "sysgym", "sysgym.envs": "envs", "sysgym.agents": "agents",
           "sysgym.cython_core": "cython_core", "sysgym.traces": "traces"}

COMPILER_DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
    "nonecheck": False,
    "embedsignature": True,
}
# -ffp-contract=off keeps float arithmetic identical to the pure-Python reference models
# (no fused multiply-add), so kernels and references can be compared exactly.
COMPILE_ARGS = ["-O3", "-ffp-contract=off", "-Wno-unreachable-code"]
# Translate and compile the kernels on every CPU this process may use (pip's editable install
# builds them once: on this 2-core machine ~190 s one at a time, ~120-130 s two at a time).
CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def packages():
    found = []
    for name, folder in FOLDERS.items():
        found.append(name)
        # traces/ holds data folders without __init__.py: list them as (namespace) packages too.
        finder = find_namespace_packages if folder == "traces" else find_packages
        found += [f"{name}.{sub}" for sub in finder(str(ROOT / folder), exclude=["__pycache__*"])]
    return found


def kernel_extensions():
    wanted = os.environ.get("SYSGYM_KERNELS")
    wanted = {w.strip() for w in wanted.split(",")} if wanted else None
    extensions = []
    for pyx in sorted((ROOT / "cython_core").glob("*.pyx")):
        if wanted is not None and pyx.stem not in wanted:
            continue
        extensions.append(Extension(
            f"sysgym.cython_core.{pyx.stem}",
            [f"cython_core/{pyx.name}"],
            include_dirs=[np.get_include(), "cython_core"],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=COMPILE_ARGS,
        ))
    return cythonize(extensions, compiler_directives=COMPILER_DIRECTIVES,
                     include_path=["cython_core"], quiet=True, nthreads=CPUS)


setup(
    package_dir=FOLDERS,
    packages=packages(),
    package_data={"sysgym.cython_core": ["*.pxd", "*.pyx"], "sysgym.traces": ["**/*"],
                  "sysgym.benchmark": ["*.json"], "sysgym.reference": ["*.pt", "*.json"]},
    exclude_package_data={"": ["__pycache__/*", "*.pyc"]},
    ext_modules=kernel_extensions(),
    options={"build_ext": {"parallel": CPUS}},
    zip_safe=False,
)
