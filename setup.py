"""Build the optional C extensions (record walker, decoder, flow table); the rest is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "netsift._walk",
            sources=["src/netsift/_walk.c"],
            optional=True,  # without a compiler netsift falls back to netsift.walk's Python loop
            extra_compile_args=["-O2"],
        ),
        Extension(
            "netsift._decode",
            sources=["src/netsift/_decode.c"],
            depends=["src/netsift/_buffers.h"],
            optional=True,  # without a compiler decode_fast falls back to its numpy decoder
            extra_compile_args=["-O2"],
        ),
        Extension(
            "netsift._flows",
            sources=["src/netsift/_flows.c"],
            depends=["src/netsift/_buffers.h"],
            optional=True,  # without a compiler flows_fast falls back to flows.FlowTable
            extra_compile_args=["-O2"],
        ),
        Extension(
            "netsift._dns",
            sources=["src/netsift/_dns.c"],
            depends=["src/netsift/_buffers.h"],
            optional=True,  # without a compiler dns.summarize falls back to dns.summarize_py
            extra_compile_args=["-O2"],
        ),
        Extension(
            "netsift._tls",
            sources=["src/netsift/_tls.c"],
            optional=True,  # without a compiler tls's hello parsers stay pure Python
            extra_compile_args=["-O2"],
        ),
        Extension(
            "netsift._http",
            sources=["src/netsift/_http.c"],
            optional=True,  # without a compiler http's head parser stays pure Python
            extra_compile_args=["-O2"],
        ),
    ]
)
