"""Every reference backend the demo and the tests run: its name in the repository, its demo port, its factory.

A factory takes the backend's name and its state directory (for backends that keep what they receive) and
returns the spyne WSGI application that SecuredBackend wraps."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from spyne.server.wsgi import WsgiApplication

from services.backends.status_source import SOURCES


@dataclass(frozen=True)
class BackendSpec:
    name: str
    port: int
    title: str
    factory: str  # "module:function", imported when the backend starts


BACKENDS: tuple[BackendSpec, ...] = (
    *(BackendSpec(s.name, s.port, s.title, "services.backends.status_source:for_name") for s in SOURCES),
    BackendSpec("national-register", 8095, "National Register (reference)",
                "services.backends.national_register:make_application"),
    BackendSpec("disability-applications", 8096, "Disability-allowance administration: application intake",
                "services.backends.applications:make_application"),
    BackendSpec("pension-applications", 8097, "Federal pension service: application intake",
                "services.backends.applications:make_application"),
)


def backend(name: str) -> BackendSpec:
    for spec in BACKENDS:
        if spec.name == name:
            return spec
    raise KeyError(f"no reference backend named {name!r}; known: {', '.join(b.name for b in BACKENDS)}")


def application(spec: BackendSpec, state_dir: Path) -> WsgiApplication:
    module, function = spec.factory.split(":")
    factory: Callable[[str, Path], WsgiApplication] = getattr(importlib.import_module(module), function)
    return factory(spec.name, state_dir)
