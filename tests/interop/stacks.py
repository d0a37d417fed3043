"""The other WS-Security stacks, each a module with STACK, CONFIGS, available() and sign(jobs, keys)."""

from __future__ import annotations

from types import ModuleType

from tests.interop.java import wss4j
from tests.interop.node import node_soap
from tests.interop.xmlsec import xmlsec1_stack, zeep_xmlsec

STACKS: tuple[ModuleType, ...] = (wss4j, node_soap, xmlsec1_stack, zeep_xmlsec)


def by_name(name: str) -> ModuleType:
    return next(stack for stack in STACKS if stack.STACK == name)
