"""A service version's contract documents (one WSDL and its XSDs): checked to compile within the set."""

from __future__ import annotations

import posixpath
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import xmlschema
from lxml import etree

WSDL = "http://schemas.xmlsoap.org/wsdl/"
XS = "http://www.w3.org/2001/XMLSchema"
SOAP_BINDING = "http://schemas.xmlsoap.org/wsdl/soap/"
IMPORTS = (f"{{{XS}}}import", f"{{{XS}}}include", f"{{{XS}}}redefine", f"{{{WSDL}}}import")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


class InvalidDocuments(ValueError):
    """The documents do not form a usable contract; problems lists why, one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class OperationContract:
    name: str
    request: str  # Clark name of the input body element
    response: str  # Clark name of the output body element
    soap_action: str = ""


@dataclass(frozen=True)
class CompiledContract:
    """What the integrator needs from a WSDL: its operations and one schema that covers their elements."""

    operations: dict[str, OperationContract]
    schema: xmlschema.XMLSchema
    imports: list[tuple[str, str]] = field(default_factory=list)  # (namespace, location relative to the WSDL)


@dataclass(frozen=True)
class DocumentSet:
    """The files of one service version: paths relative to the WSDL's folder, POSIX style."""

    wsdl: str
    files: dict[str, bytes]

    def write(self, directory: Path) -> Path:
        """Lay the files out below directory (nothing escapes it); return the WSDL's path."""
        root = directory.resolve()
        for name, content in self.files.items():
            target = (root / _safe(name)).resolve()
            if not target.is_relative_to(root):
                raise InvalidDocuments([f"{name}: a document path must stay inside the set"])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        return root / _safe(self.wsdl)

    def compile(self) -> CompiledContract:
        """Parse the WSDL, require every import to resolve inside the set, and list the operations."""
        if self.wsdl not in self.files:
            raise InvalidDocuments([f"the WSDL {self.wsdl} is not among the documents"])
        problems = self.unresolved_imports()
        if problems:
            raise InvalidDocuments(problems)
        with tempfile.TemporaryDirectory(prefix="kp-contract-") as tmp:
            return compile_wsdl(self.write(Path(tmp)))

    def unresolved_imports(self) -> list[str]:
        """Every import, include or redefine whose location is not a document of the set."""
        problems = []
        for name, content in self.files.items():
            try:
                root = etree.fromstring(content, parser=_PARSER)
            except etree.XMLSyntaxError as exc:
                problems.append(f"{name}: not well-formed XML: {exc.msg}")
                continue
            for node in root.iter(*IMPORTS):
                location = node.get("schemaLocation") or node.get("location")
                if location is None:
                    continue
                target = posixpath.normpath(posixpath.join(posixpath.dirname(name), location))
                if "://" in location or location.startswith("/") or target not in self.files:
                    problems.append(f"{name}: imports {location}, which is not one of the submitted documents")
        return problems


def _safe(name: str) -> str:
    path = PurePosixPath(posixpath.normpath(name))
    if path.is_absolute() or (path.parts and path.parts[0] == ".."):
        raise InvalidDocuments([f"{name}: a document path must be relative and stay inside the set"])
    return str(path)


def operation_names(wsdl: bytes) -> tuple[str, ...]:
    """The operation names of a WSDL's portTypes, without compiling its schemas (for listings)."""
    try:
        root = etree.fromstring(wsdl, parser=_PARSER)
    except etree.XMLSyntaxError:
        return ()
    return tuple(op.get("name", "") for op in root.iterfind(f"{{{WSDL}}}portType/{{{WSDL}}}operation"))


def compile_wsdl(wsdl_path: Path) -> CompiledContract:
    """Compile a WSDL file whose schema imports are local files (never fetched from the network)."""
    problems: list[str] = []
    try:
        tree = etree.parse(str(wsdl_path), parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise InvalidDocuments([f"{wsdl_path.name}: not well-formed XML: {exc.msg}"]) from None
    root = tree.getroot()
    if root.tag != f"{{{WSDL}}}definitions":
        raise InvalidDocuments([f"{wsdl_path.name}: not a WSDL 1.1 definitions document"])
    imports = _schema_imports(root)
    if not imports:
        problems.append("the WSDL imports no schema in wsdl:types")
    wrapper = wrapper_xsd(imports)
    try:
        schema = xmlschema.XMLSchema(wrapper.decode(), allow="local", base_url=f"{wsdl_path.parent}/",
                                     defuse="always")
    except (xmlschema.XMLSchemaException, OSError) as exc:
        raise InvalidDocuments([*problems, f"the schemas do not compile: {_first_line(exc)}"]) from None
    operations = _operations(root, problems)
    for op in operations.values():
        for element in (op.request, op.response):
            if element not in schema.maps.elements:
                problems.append(f"operation {op.name}: element {element} is not declared by the schemas")
    if problems:
        raise InvalidDocuments(problems)
    return CompiledContract(operations, schema, imports)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _schema_imports(root: etree._Element) -> list[tuple[str, str]]:
    found = []
    for schema in root.iterfind(f"{{{WSDL}}}types/{{{XS}}}schema"):
        for node in schema.iterfind(f"{{{XS}}}import"):
            if node.get("schemaLocation"):
                found.append((node.get("namespace", ""), node.get("schemaLocation", "")))
    return found


def wrapper_xsd(imports: list[tuple[str, str]]) -> bytes:
    schema = etree.Element(f"{{{XS}}}schema", nsmap={"xs": XS}, targetNamespace="urn:kruispunt:wrapper")
    for namespace, location in imports:
        etree.SubElement(schema, f"{{{XS}}}import", namespace=namespace, schemaLocation=location)
    return etree.tostring(schema)


def _qname(node: etree._Element, value: str) -> str:
    prefix, _, local = value.rpartition(":")
    return f"{{{node.nsmap.get(prefix or None, '')}}}{local}"


def _operations(root: etree._Element, problems: list[str]) -> dict[str, OperationContract]:
    messages = {}
    for message in root.iterfind(f"{{{WSDL}}}message"):
        parts = {p.get("name"): _qname(p, p.get("element", "")) for p in message.iterfind(f"{{{WSDL}}}part")
                 if p.get("element")}
        messages[message.get("name")] = parts
    bodies = _body_parts(root)
    actions = {op.get("name"): op.find(f"{{{SOAP_BINDING}}}operation")
               for op in root.iterfind(f"{{{WSDL}}}binding/{{{WSDL}}}operation")}
    operations = {}
    for op in root.iterfind(f"{{{WSDL}}}portType/{{{WSDL}}}operation"):
        name = op.get("name", "")
        elements = []
        for direction in ("input", "output"):
            node = op.find(f"{{{WSDL}}}{direction}")
            parts = messages.get(_qname(node, node.get("message", "")).split("}")[1], {}) if node is not None else {}
            wanted = bodies.get((name, direction))
            chosen = [e for part, e in parts.items() if wanted is None or part in wanted]
            if len(chosen) != 1:
                problems.append(f"operation {name}: its {direction} must have exactly one body part (element)")
                elements.append("")
            else:
                elements.append(chosen[0])
        action = actions.get(name)
        operations[name] = OperationContract(name, elements[0], elements[1],
                                             action.get("soapAction", "") if action is not None else "")
    if not operations:
        problems.append("the WSDL declares no operation")
    return operations


def _body_parts(root: etree._Element) -> dict[tuple[str, str], set[str]]:
    parts: dict[tuple[str, str], set[str]] = {}
    for op in root.iterfind(f"{{{WSDL}}}binding/{{{WSDL}}}operation"):
        for direction in ("input", "output"):
            body = op.find(f"{{{WSDL}}}{direction}/{{{SOAP_BINDING}}}body")
            if body is not None and body.get("parts"):
                parts[(op.get("name", ""), direction)] = set(body.get("parts", "").split())
    return parts
