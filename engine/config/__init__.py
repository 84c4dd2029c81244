"""The run configuration (pure Python, shared by engine, studio and report).

``schema`` holds the types, defaults, field table and validation, and reading/writing
config files. ``engine.config`` re-exports its public names, so ``from engine.config
import RunConfig, load`` keeps working for the engine, the studio and users' scripts.
"""
from engine.config import schema as _schema
from engine.config.schema import *  # noqa: F403  (the package's public names)


def __getattr__(name: str):
    # private helpers that older scripts and the tests reach for through the package
    return getattr(_schema, name)
