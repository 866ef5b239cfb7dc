"""Build the optional C record walker; everything else is configured in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "netsift._walk",
            sources=["src/netsift/_walk.c"],
            optional=True,  # without a compiler netsift falls back to netsift.walk's Python loop
            extra_compile_args=["-O2"],
        )
    ]
)
