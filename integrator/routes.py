"""Which service a path names: a code-backed published service, or a version registered in the repository."""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from kruispunt_client.xml import build
from lxml import etree
from sqlalchemy.orm import Session, sessionmaker

from integrator.contract import Contract
from integrator.faults import ServiceUnknown
from integrator.service import CallContext, Operation, ServiceDefinition
from repository.documents import OperationContract, wrapper_xsd
from repository.peers import PeerView, peer_by_id
from repository.registry import current_version, documents

PATH = re.compile(r"^/soap/(?P<name>[A-Za-z][A-Za-z0-9_.-]{0,99})/v(?P<major>[0-9]{1,4})$")


@dataclass(frozen=True)
class Answer:
    """What serving an operation produced: the answer element, and how the audit should remember it."""

    payload: etree._Element
    outcome: str = "OK"
    detail: str | None = None
    upstream_tickets: tuple[str, ...] = ()


@dataclass(frozen=True)
class CodeRoute:
    """A service whose logic lives in services/."""

    service: ServiceDefinition
    contract: Contract

    @property
    def key(self) -> str:
        return self.service.key

    @property
    def name(self) -> str:
        return self.service.name

    def operation(self, tag: str) -> OperationContract | None:
        op = self.service.operation_for(tag)
        return None if op is None else OperationContract(op.name, op.request, op.response, op.soap_action)

    def handler(self, tag: str) -> Operation:
        op = self.service.operation_for(tag)
        assert op is not None
        return op

    def invoke(self, tag: str, request: dict[str, Any], context: CallContext) -> Answer:
        op = self.handler(tag)
        result = op.handler(request, context)
        return Answer(build(op.response, result.body), result.outcome, result.detail)


@dataclass(frozen=True)
class RepositoryRoute:
    """A version registered in the repository, served by generic dispatch (or forwarded to its owner)."""

    name: str
    major: int
    minor: int
    status: str
    sunset: date | None
    successor: str | None
    origin: str
    origin_peer_id: int | None
    federated: bool
    person_element: str | None
    peer: PeerView | None  # the integrator that owns the version, when it was learnt from one
    contract: Contract
    operations: dict[str, OperationContract] = field(default_factory=dict)  # by request element

    @property
    def key(self) -> str:
        return f"{self.name}/v{self.major}"

    @property
    def version(self) -> str:
        return f"{self.major}.{self.minor}"

    def operation(self, tag: str) -> OperationContract | None:
        return self.operations.get(tag)


class Routes:
    """Resolves paths; repository routes are cached per worker with bounded staleness, contracts compiled once."""

    def __init__(self, code: list[ServiceDefinition], xsd_dir: Path, sessions: sessionmaker[Session],
                 cache_dir: Path, cache_seconds: float) -> None:
        self.code = {s.path: CodeRoute(s, Contract(xsd_dir / s.xsd)) for s in code}
        self.sessions = sessions
        self.cache_dir = cache_dir
        self.cache_seconds = cache_seconds
        self._routes: dict[str, tuple[float, RepositoryRoute | None]] = {}
        self._contracts: dict[tuple[int, int], tuple[Contract, dict[str, OperationContract]]] = {}
        self._lock = threading.Lock()
        self._compiling = threading.Lock()  # one compile at a time: a thread never reads a half-written file

    def resolve(self, path: str) -> CodeRoute | RepositoryRoute:
        route = self.code.get(path) or self._repository(path)
        if route is None:
            raise ServiceUnknown(f"No service is published at {path}; see GET /services for the catalogue.")
        return route

    def _repository(self, path: str) -> RepositoryRoute | None:
        match = PATH.match(path)
        if match is None:
            return None
        with self._lock:
            hit = self._routes.get(path)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        route = self._load(match["name"], int(match["major"]))
        with self._lock:
            self._routes[path] = (time.monotonic() + self.cache_seconds, route)
        return route

    def _load(self, name: str, major: int) -> RepositoryRoute | None:
        with self.sessions() as session:
            version = current_version(session, name, major)
            if version is None:
                return None
            compiled_key = (version.id, version.change_seq)
            with self._lock:
                cached = self._contracts.get(compiled_key)
            if cached is None:
                with self._compiling:
                    with self._lock:
                        cached = self._contracts.get(compiled_key)
                    if cached is None:
                        cached = self._compile(session, version, compiled_key)
            contract, operations = cached
            return RepositoryRoute(version.name, version.major, version.minor, version.status, version.sunset,
                                   version.successor, version.origin, version.origin_peer_id, version.federated,
                                   version.person_element,
                                   peer_by_id(session, version.origin_peer_id) if version.origin_peer_id else None,
                                   contract, operations)

    def _compile(self, session: Session, version: Any,
                 compiled_key: tuple[int, int]) -> tuple[Contract, dict[str, OperationContract]]:
        docs = documents(session, version)
        # one folder per worker process: two workers compiling the same version never read a half-written file
        directory = self.cache_dir / f"{version.id}-{version.change_seq}-{os.getpid()}"
        wsdl_path = docs.write(directory)
        compiled = docs.compile()
        wrapper = wsdl_path.parent / "_kruispunt_types.xsd"
        wrapper.write_bytes(wrapper_xsd(compiled.imports))
        entry = (Contract(wrapper), {op.request: op for op in compiled.operations.values()})
        with self._lock:
            self._contracts[compiled_key] = entry
        return entry
