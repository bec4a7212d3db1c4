"""Rampart's tools: the container lab, probes, benchmarks and CA custody around the rampart.mqtt collection.

Which directory a tool works in (the lab's inventory and state) follows one rule: see rampart.project.
"""

from __future__ import annotations


def __getattr__(name: str):
    # Compatibility for code written before rampart.project: REPO_ROOT is the project directory by its rule.
    if name == "REPO_ROOT":
        from rampart import project

        return project.find()
    raise AttributeError(f"module 'rampart' has no attribute {name!r}")
