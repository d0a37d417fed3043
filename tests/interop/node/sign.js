#!/usr/bin/env node
// Signs unsigned SOAP 1.1 envelopes the way a node.js vendor's application does: with npm soap's
// WSSecurityCert (what client.setSecurity() calls as postProcess(xml, envelopeKey) just before sending)
// or with xml-crypto's SignedXml used directly over a hand-built wsse:Security header.
//
// One process per batch. stdin is a JSON object:
//   {"key": "<signer key PEM path>", "cert": "<signer certificate PEM path>",
//    "jobs": [{"config": "<name>", "input": "<unsigned envelope path>", "output": "<signed envelope path>"}]}
// Each output is written exactly as the library returned the string (UTF-8, no XML declaration added).
// stdout gets one JSON object: the library versions and, per job, its config, output and milliseconds.
// Any failure: a message on stderr and exit status 1 (2 for a malformed request).
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const path = require("path");

const { WSSecurityCert } = require("soap");
const { SignedXml } = require("xml-crypto");

const WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
const WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
const X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3";
const BASE64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary";
const SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/";
const KP = "urn:kruispunt:common:v1";
const EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#";
const RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256";
const TTL_SECONDS = 300;

function versionOf(pkg) {
  return JSON.parse(fs.readFileSync(path.join(__dirname, "node_modules", pkg, "package.json"), "utf8")).version;
}

// The prefix the envelope is written with: what a soap client passes as envelopeKey ('soap' by default,
// the client's envelopeKey option otherwise).
function envelopeKeyOf(xml) {
  const match = /^\s*(?:<\?xml[^>]*\?>\s*)?<([A-Za-z_][\w.-]*):Envelope[\s>]/.exec(xml);
  if (!match) {
    throw new Error("the input does not start with a prefixed SOAP Envelope element (<prefix:Envelope ...>)");
  }
  return match[1];
}

// soap writes Created/Expires to the second (dateStringForSOAP); a vendor hand-writing a Timestamp with
// xml-crypto typically uses Date.toISOString(), which carries milliseconds.
function soapDate(date) {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

// The Timestamp exactly as soap writes it, but with a 300 s lifetime: soap's own is fixed at 10 minutes
// (generateExpires() adds 10 minutes, no option changes it), so a vendor who needs a shorter one turns
// hasTimeStamp off, passes this as appendElement and signs it through additionalReferences.
function soapStyleTimestamp300() {
  const now = new Date();
  return (
    `<Timestamp xmlns="${WSU}"><Created>${soapDate(now)}</Created>` +
    `<Expires>${soapDate(new Date(now.getTime() + TTL_SECONDS * 1000))}</Expires></Timestamp>`
  );
}

// WSSecurityCert configurations: options exactly as a vendor passes them to the constructor.
const WSSECURITYCERT = {
  "wssecuritycert-default": () => ({}),
  "wssecuritycert-caller": () => ({ additionalReferences: ["kp:Caller"] }),
  "wssecuritycert-exc-c14n-only": () => ({
    additionalReferences: ["kp:Caller"],
    signatureTransformations: [EXC_C14N],
  }),
  "wssecuritycert-exc-c14n-only-ttl300": () => ({
    additionalReferences: ["kp:Caller", "Timestamp"],
    signatureTransformations: [EXC_C14N],
    hasTimeStamp: false,
    appendElement: soapStyleTimestamp300(),
  }),
  // What soap's Readme suggests ("set to rsa-sha256 to use sha256"), although it is the default: naming it
  // makes the constructor add its own Body reference with only exc-c14n, ahead of the others.
  "wssecuritycert-caller-explicit-rsa-sha256": () => ({
    additionalReferences: ["kp:Caller"],
    signatureAlgorithm: RSA_SHA256,
    digestAlgorithm: SHA256,
  }),
  "wssecuritycert-caller-wsu-id": () => ({
    additionalReferences: ["kp:Caller"],
    signerOptions: { idMode: "wssecurity" },
  }),
  // The options example of soap's Readme: ds-prefixed signature with an Id of its own.
  "wssecuritycert-caller-ds-prefix": () => ({
    additionalReferences: ["kp:Caller"],
    signerOptions: { prefix: "ds", attrs: { Id: "Signature" } },
  }),
};

function signWithWSSecurityCert(options, xml, keyPem, certPem) {
  const security = new WSSecurityCert(keyPem, certPem, "", options);
  return security.postProcess(xml, envelopeKeyOf(xml));
}

// A vendor who builds wsse:Security by hand and signs it with xml-crypto's SignedXml.
function signWithXmlCrypto(idMode, xml, keyPem, certPem) {
  const envelopeKey = envelopeKeyOf(xml);
  const headerEnd = xml.indexOf(`</${envelopeKey}:Header>`);
  if (headerEnd < 0) {
    throw new Error(`the input has no </${envelopeKey}:Header> to put wsse:Security into`);
  }
  const tokenId = `X509-${crypto.randomUUID()}`;
  const der = certPem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, "").replace(/\s+/g, "");
  const now = new Date();
  const security =
    `<wsse:Security xmlns:wsse="${WSSE}" xmlns:wsu="${WSU}" ${envelopeKey}:mustUnderstand="1">` +
    `<wsse:BinarySecurityToken EncodingType="${BASE64}" ValueType="${X509V3}" wsu:Id="${tokenId}">${der}` +
    `</wsse:BinarySecurityToken>` +
    `<wsu:Timestamp><wsu:Created>${now.toISOString()}</wsu:Created>` +
    `<wsu:Expires>${new Date(now.getTime() + TTL_SECONDS * 1000).toISOString()}</wsu:Expires></wsu:Timestamp>` +
    `</wsse:Security>`;
  const unsignedWithSecurity = xml.slice(0, headerEnd) + security + xml.slice(headerEnd);

  const sig = new SignedXml({
    privateKey: keyPem,
    idMode, // undefined: xml-crypto adds an unprefixed Id; "wssecurity": a wsu:Id
    signatureAlgorithm: RSA_SHA256,
    canonicalizationAlgorithm: EXC_C14N,
    getKeyInfoContent: () =>
      `<wsse:SecurityTokenReference><wsse:Reference URI="#${tokenId}" ValueType="${X509V3}"/>` +
      `</wsse:SecurityTokenReference>`,
  });
  const transforms = [EXC_C14N];
  for (const [local, ns] of [["Body", SOAP11], ["Timestamp", WSU], ["Caller", KP]]) {
    sig.addReference({
      xpath: `//*[local-name(.)='${local}' and namespace-uri(.)='${ns}']`,
      transforms,
      digestAlgorithm: SHA256,
    });
  }
  sig.computeSignature(unsignedWithSecurity, {
    existingPrefixes: { wsse: WSSE, wsu: WSU },
    location: { reference: `//*[local-name(.)='Security' and namespace-uri(.)='${WSSE}']`, action: "append" },
  });
  return sig.getSignedXml();
}

const CONFIGS = {
  ...Object.fromEntries(
    Object.entries(WSSECURITYCERT).map(([name, options]) => [
      name,
      (xml, key, cert) => signWithWSSecurityCert(options(), xml, key, cert),
    ]),
  ),
  "xml-crypto-id": (xml, key, cert) => signWithXmlCrypto(undefined, xml, key, cert),
  "xml-crypto-wsu-id": (xml, key, cert) => signWithXmlCrypto("wssecurity", xml, key, cert),
};

function readRequest() {
  const text = fs.readFileSync(0, "utf8");
  const request = JSON.parse(text);
  if (Array.isArray(request) || typeof request !== "object" || request === null) {
    throw new TypeError("stdin must be a JSON object with key, cert and jobs");
  }
  for (const field of ["key", "cert"]) {
    if (typeof request[field] !== "string") {
      throw new TypeError(`stdin: "${field}" must be a file path`);
    }
  }
  if (!Array.isArray(request.jobs)) {
    throw new TypeError('stdin: "jobs" must be an array');
  }
  request.jobs.forEach((job, i) => {
    if (!(job.config in CONFIGS)) {
      throw new TypeError(`job ${i}: unknown config ${JSON.stringify(job.config)}; known: ${Object.keys(CONFIGS).join(", ")}`);
    }
    if (typeof job.input !== "string" || typeof job.output !== "string") {
      throw new TypeError(`job ${i}: "input" and "output" must be file paths`);
    }
  });
  return request;
}

function main() {
  if (process.argv.includes("--list")) {
    process.stdout.write(JSON.stringify(Object.keys(CONFIGS)) + "\n");
    return 0;
  }
  let request;
  try {
    request = readRequest();
  } catch (err) {
    process.stderr.write(`sign.js: bad request: ${err.message}\n`);
    return 2;
  }
  const keyPem = fs.readFileSync(request.key, "utf8");
  const certPem = fs.readFileSync(request.cert, "utf8");
  const results = [];
  for (const [i, job] of request.jobs.entries()) {
    const started = process.hrtime.bigint();
    let signed;
    try {
      signed = CONFIGS[job.config](fs.readFileSync(job.input, "utf8"), keyPem, certPem);
    } catch (err) {
      process.stderr.write(`sign.js: job ${i} (${job.config}, ${job.input}) failed: ${err.stack || err}\n`);
      return 1;
    }
    fs.writeFileSync(job.output, signed, "utf8");
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    results.push({ config: job.config, output: job.output, ms: Math.round(ms * 10) / 10 });
  }
  const report = {
    node: process.version,
    soap: versionOf("soap"),
    "xml-crypto": versionOf("xml-crypto"),
    results,
  };
  process.stdout.write(JSON.stringify(report) + "\n");
  return 0;
}

process.exitCode = main();
