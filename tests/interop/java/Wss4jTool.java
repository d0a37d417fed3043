/*
 * kruispunt interop: a WS-Security signer and verifier on Apache WSS4J 1.6 (Debian's wss4j.jar) and Santuario.
 *
 * One JVM run per call of the Python wrapper (tests/interop/java/wss4j.py), which compiles this file at run time.
 *
 *   sign <crypto.properties>          jobs on stdin, one a line: config TAB input-file TAB output-file; each
 *                                     unsigned SOAP 1.1 envelope is signed with WSS4J's message API and written as
 *                                     WSS4J serialises a DOM (org.apache.ws.security.util.XMLUtils.ElementToStream);
 *                                     prints "signed TAB config TAB output-file" per job; exit 2 on any failure.
 *   verify <ca.pem>                   a signed envelope on stdin, processed by WSSecurityEngine against a Merlin
 *                                     crypto whose truststore holds the CA certificate(s) of the PEM file.
 *   verify-enveloped <cert.pem>       a document with an enveloped XML-DSig signature on stdin, checked by
 *                                     Santuario's XMLSignature against the certificate of the PEM file.
 *
 * verify and verify-enveloped print one JSON line {"ok", "signed", "subject", "error"}: exit 0 when ok, 1 when not,
 * 2 when the tool itself could not run.
 */

import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import javax.security.auth.x500.X500Principal;
import javax.xml.XMLConstants;
import javax.xml.namespace.QName;
import javax.xml.parsers.DocumentBuilder;
import javax.xml.parsers.DocumentBuilderFactory;

import org.apache.ws.security.WSConstants;
import org.apache.ws.security.WSDataRef;
import org.apache.ws.security.WSEncryptionPart;
import org.apache.ws.security.WSSConfig;
import org.apache.ws.security.WSSecurityEngine;
import org.apache.ws.security.WSSecurityEngineResult;
import org.apache.ws.security.WSSecurityException;
import org.apache.ws.security.components.crypto.Crypto;
import org.apache.ws.security.components.crypto.CryptoFactory;
import org.apache.ws.security.components.crypto.Merlin;
import org.apache.ws.security.message.WSSecHeader;
import org.apache.ws.security.message.WSSecSignature;
import org.apache.ws.security.message.WSSecTimestamp;
import org.apache.ws.security.message.token.X509Security;
import org.apache.ws.security.util.WSSecurityUtil;
import org.apache.xml.security.keys.KeyInfo;
import org.apache.xml.security.signature.SignedInfo;
import org.apache.xml.security.signature.XMLSignature;
import org.w3c.dom.Attr;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NamedNodeMap;
import org.w3c.dom.Node;
import org.w3c.dom.NodeList;

public final class Wss4jTool {

    static final String KP_NS = "urn:kruispunt:common:v1";
    static final String RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
    static final String DS_NS = "http://www.w3.org/2000/09/xmldsig#";
    static final int TIMESTAMP_TTL = 300;
    static final String PROP_ALIAS = "org.apache.ws.security.crypto.merlin.keystore.alias";
    static final String PROP_PRIVATE_PASSWORD = "org.apache.ws.security.crypto.merlin.keystore.private.password";
    static final String PROP_PASSWORD = "org.apache.ws.security.crypto.merlin.keystore.password";

    private Wss4jTool() {
    }

    public static void main(String[] args) {
        if (args.length != 2) {
            System.err.println("usage: Wss4jTool sign <crypto.properties> | verify <ca.pem> | verify-enveloped <cert.pem>");
            System.exit(2);
        }
        int status;
        try {
            WSSConfig.init();
            org.apache.xml.security.Init.init();
            switch (args[0]) {
                case "sign":
                    status = sign(Path.of(args[1]));
                    break;
                case "verify":
                    status = verify(Path.of(args[1]), System.in.readAllBytes());
                    break;
                case "verify-enveloped":
                    status = verifyEnveloped(Path.of(args[1]), System.in.readAllBytes());
                    break;
                default:
                    System.err.println("unknown mode " + args[0]);
                    status = 2;
            }
        } catch (Exception e) {
            e.printStackTrace();
            status = 2;
        }
        System.out.flush();
        System.exit(status);
    }

    // ---------------------------------------------------------------- sign

    /** One signing setting as a WSS4J/CXF client would configure it. */
    static final class Setting {
        int keyIdentifier = -1; // -1: leave WSS4J's default (ISSUER_SERIAL)
        boolean bspCompliant = true; // WSSConfig default: writes ec:InclusiveNamespaces PrefixList
        boolean singleCertificate = true; // WSSecSignature default: X509v3 token, not X509PKIPathv1
        boolean tokenType; // add wsse11:TokenType to the SecurityTokenReference
    }

    static Setting setting(String config) {
        Setting s = new Setting();
        switch (config) {
            case "issuer-serial":
                break;
            case "bst-direct":
                s.keyIdentifier = WSConstants.BST_DIRECT_REFERENCE;
                break;
            case "ski":
                s.keyIdentifier = WSConstants.SKI_KEY_IDENTIFIER;
                break;
            case "thumbprint":
                s.keyIdentifier = WSConstants.THUMBPRINT_IDENTIFIER;
                break;
            case "x509-key-identifier":
                s.keyIdentifier = WSConstants.X509_KEY_IDENTIFIER;
                break;
            case "bst-direct-no-inclusive-prefixes":
                s.keyIdentifier = WSConstants.BST_DIRECT_REFERENCE;
                s.bspCompliant = false;
                break;
            case "bst-pkipath":
                s.keyIdentifier = WSConstants.BST_DIRECT_REFERENCE;
                s.singleCertificate = false;
                break;
            case "bst-direct-tokentype":
                s.keyIdentifier = WSConstants.BST_DIRECT_REFERENCE;
                s.tokenType = true;
                break;
            default:
                throw new IllegalArgumentException("unknown config " + config);
        }
        return s;
    }

    static int sign(Path cryptoProperties) throws Exception {
        Properties props = new Properties();
        try (InputStream in = Files.newInputStream(cryptoProperties)) {
            props.load(in);
        }
        Crypto crypto = CryptoFactory.getInstance(props);
        String alias = props.getProperty(PROP_ALIAS);
        String password = props.getProperty(PROP_PRIVATE_PASSWORD, props.getProperty(PROP_PASSWORD));
        BufferedReader jobs = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = jobs.readLine()) != null) {
            if (line.isBlank()) {
                continue;
            }
            String[] job = line.split("\t", -1);
            if (job.length != 3) {
                throw new IllegalArgumentException("a job is config<TAB>input<TAB>output, not: " + line);
            }
            Document doc = parse(Files.readAllBytes(Path.of(job[1])));
            try {
                signEnvelope(doc, setting(job[0]), crypto, alias, password);
            } catch (Exception e) {
                throw new IllegalStateException("signing with config " + job[0] + " failed: " + e, e);
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            org.apache.ws.security.util.XMLUtils.ElementToStream(doc.getDocumentElement(), out);
            if (out.size() == 0) { // ElementToStream logs and swallows serialisation errors
                throw new IllegalStateException("WSS4J wrote nothing for config " + job[0]);
            }
            try (OutputStream file = Files.newOutputStream(Path.of(job[2]))) {
                out.writeTo(file);
            }
            System.out.println("signed\t" + job[0] + "\t" + job[2]);
        }
        return 0;
    }

    /** What WSS4J's "Timestamp Signature" actions do (TimestampAction, then SignatureAction), on the message API. */
    static void signEnvelope(Document doc, Setting s, Crypto crypto, String alias, String password)
            throws WSSecurityException {
        WSSConfig config = WSSConfig.getNewInstance();
        config.setWsiBSPCompliant(s.bspCompliant);

        WSSecHeader secHeader = new WSSecHeader(); // mustUnderstand="1", no actor
        secHeader.insertSecurityHeader(doc);

        WSSecTimestamp timestamp = new WSSecTimestamp(config);
        timestamp.setTimeToLive(TIMESTAMP_TTL);
        timestamp.build(doc, secHeader);

        WSSecSignature signature = new WSSecSignature(config);
        signature.setUserInfo(alias, password);
        if (s.keyIdentifier >= 0) {
            signature.setKeyIdentifierType(s.keyIdentifier);
        }
        signature.setUseSingleCertificate(s.singleCertificate);
        signature.setSignatureAlgorithm(RSA_SHA256);
        signature.setDigestAlgo(WSConstants.SHA256);
        signature.setSigCanonicalization(WSConstants.C14N_EXCL_OMIT_COMMENTS);
        String soapNs = WSSecurityUtil.getSOAPNamespace(doc.getDocumentElement());
        List<WSEncryptionPart> parts = new ArrayList<>();
        parts.add(new WSEncryptionPart(WSConstants.ELEM_BODY, soapNs, ""));
        parts.add(new WSEncryptionPart(WSConstants.TIMESTAMP_TOKEN_LN, WSConstants.WSU_NS, ""));
        parts.add(new WSEncryptionPart("Caller", KP_NS, ""));
        signature.setParts(parts);

        signature.prepare(doc, crypto, secHeader);
        if (s.tokenType) {
            // WSS 1.1 TokenType: WSS4J 1.6 writes it itself only for PKIPath and SAML; here through its own API.
            signature.getSecurityTokenReference().addTokenType(X509Security.X509_V3_TYPE);
        }
        List<javax.xml.crypto.dsig.Reference> references = signature.addReferencesToSign(parts, secHeader);
        signature.computeSignature(references);
        if (signature.getBinarySecurityTokenElement() != null) {
            signature.prependBSTElementToHeader(secHeader);
        }
    }

    // ---------------------------------------------------------------- verify

    static int verify(Path caPem, byte[] data) throws Exception {
        KeyStore trust = KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        int i = 0;
        for (X509Certificate ca : readCertificates(caPem)) {
            trust.setCertificateEntry("ca-" + i++, ca);
        }
        Merlin crypto = new Merlin();
        crypto.setTrustStore(trust);
        List<String> signed = new ArrayList<>();
        String subject = null;
        try {
            Document doc = parse(data);
            WSSecurityEngine engine = new WSSecurityEngine();
            engine.setWssConfig(WSSConfig.getNewInstance()); // defaults: strict timestamps, TTL 300 s, BSP checks
            List<WSSecurityEngineResult> results = engine.processSecurityHeader(doc, null, null, crypto);
            if (results == null) {
                return verdict(false, signed, null, "no wsse:Security header");
            }
            boolean signature = false;
            for (WSSecurityEngineResult result : results) {
                int action = (Integer) result.get(WSSecurityEngineResult.TAG_ACTION);
                if (action != WSConstants.SIGN) {
                    continue;
                }
                signature = true;
                X509Certificate cert = (X509Certificate) result.get(WSSecurityEngineResult.TAG_X509_CERTIFICATE);
                if (cert != null) {
                    subject = subject(cert);
                }
                @SuppressWarnings("unchecked")
                List<WSDataRef> refs = (List<WSDataRef>) result.get(WSSecurityEngineResult.TAG_DATA_REF_URIS);
                if (refs != null) {
                    for (WSDataRef ref : refs) {
                        QName name = ref.getName();
                        signed.add(name == null ? ref.getWsuId() : name.toString());
                    }
                }
            }
            if (!signature) {
                return verdict(false, signed, subject, "the wsse:Security header holds no signature");
            }
            return verdict(true, signed, subject, null);
        } catch (WSSecurityException e) {
            return verdict(false, signed, subject, describe(e));
        } catch (org.xml.sax.SAXException e) {
            return verdict(false, signed, subject, "not XML: " + e.getMessage());
        }
    }

    // ---------------------------------------------------------------- verify-enveloped

    static int verifyEnveloped(Path certPem, byte[] data) throws Exception {
        X509Certificate expected = readCertificates(certPem).get(0);
        List<String> signed = new ArrayList<>();
        String subject = subject(expected);
        Document doc;
        try {
            doc = parse(data);
        } catch (org.xml.sax.SAXException e) {
            return verdict(false, signed, subject, "not XML: " + e.getMessage());
        }
        NodeList found = doc.getElementsByTagNameNS(DS_NS, "Signature");
        if (found.getLength() != 1) {
            return verdict(false, signed, subject, "expected one ds:Signature, found " + found.getLength());
        }
        markIds(doc.getDocumentElement());
        try {
            XMLSignature signature = new XMLSignature((Element) found.item(0), "", true); // secure validation
            KeyInfo keyInfo = signature.getKeyInfo();
            if (keyInfo != null && keyInfo.containsX509Data()) {
                X509Certificate carried = keyInfo.getX509Certificate();
                if (carried != null && !carried.equals(expected)) {
                    return verdict(false, signed, subject(carried),
                            "KeyInfo carries another certificate than the expected one");
                }
            }
            boolean ok = signature.checkSignatureValue(expected);
            SignedInfo info = signature.getSignedInfo();
            List<String> failed = new ArrayList<>();
            for (int i = 0; i < info.getLength(); i++) {
                String uri = info.item(i).getURI();
                Element target = target(doc, uri);
                String name = target == null ? uri : new QName(target.getNamespaceURI(), target.getLocalName()).toString();
                boolean refOk;
                try {
                    refOk = info.getVerificationResult(i);
                } catch (Exception e) { // not checked: the SignatureValue failed first
                    refOk = false;
                }
                if (refOk) {
                    signed.add(name);
                } else {
                    failed.add(name);
                }
            }
            if (!ok) {
                String why = failed.isEmpty() ? "the SignatureValue does not verify with the certificate's key"
                        : "digest mismatch for " + String.join(", ", failed);
                return verdict(false, signed, subject, why);
            }
            return verdict(true, signed, subject, null);
        } catch (org.apache.xml.security.exceptions.XMLSecurityException e) {
            return verdict(false, signed, subject, e.getClass().getSimpleName() + ": " + e.getMessage());
        }
    }

    /** Register Id/ID/id attributes as DOM ids, so that Reference URI="#..." resolves (XML-DSig, no schema). */
    static void markIds(Element element) {
        NamedNodeMap attributes = element.getAttributes();
        for (int i = 0; i < attributes.getLength(); i++) {
            Attr attr = (Attr) attributes.item(i);
            String local = attr.getLocalName() == null ? attr.getName() : attr.getLocalName();
            if (local.equals("Id") || local.equals("ID") || local.equals("id")) {
                element.setIdAttributeNode(attr, true);
            }
        }
        for (Node child = element.getFirstChild(); child != null; child = child.getNextSibling()) {
            if (child instanceof Element) {
                markIds((Element) child);
            }
        }
    }

    static Element target(Document doc, String uri) {
        if (uri == null || uri.isEmpty()) {
            return doc.getDocumentElement();
        }
        if (uri.startsWith("#")) {
            return doc.getElementById(uri.substring(1));
        }
        return null;
    }

    // ---------------------------------------------------------------- helpers

    static Document parse(byte[] data) throws Exception {
        DocumentBuilderFactory factory = DocumentBuilderFactory.newInstance();
        factory.setNamespaceAware(true);
        factory.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
        factory.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        factory.setExpandEntityReferences(false);
        DocumentBuilder builder = factory.newDocumentBuilder();
        builder.setErrorHandler(null);
        return builder.parse(new ByteArrayInputStream(data));
    }

    static List<X509Certificate> readCertificates(Path pem) throws Exception {
        CertificateFactory factory = CertificateFactory.getInstance("X.509");
        List<X509Certificate> certs = new ArrayList<>();
        try (InputStream in = Files.newInputStream(pem)) {
            for (java.security.cert.Certificate cert : factory.generateCertificates(in)) {
                certs.add((X509Certificate) cert);
            }
        }
        if (certs.isEmpty()) {
            throw new IOException("no certificate in " + pem);
        }
        return certs;
    }

    /** RFC 2253, with serialNumber (2.5.4.5) and organizationIdentifier named rather than hex-encoded. */
    static String subject(X509Certificate cert) {
        return cert.getSubjectX500Principal().getName(X500Principal.RFC2253,
                Map.of("2.5.4.5", "serialNumber", "2.5.4.97", "organizationIdentifier"));
    }

    /** WSS4J's fault code (wsse:FailedCheck, wsse:FailedAuthentication, wsu:MessageExpired...), message, causes. */
    static String describe(WSSecurityException e) {
        StringBuilder text = new StringBuilder();
        QName fault = e.getFaultCode();
        if (fault != null) {
            text.append(fault.getLocalPart()).append(": ");
        }
        text.append(e.getMessage() == null ? e.toString() : e.getMessage());
        for (Throwable cause = e.getCause(); cause != null && cause != cause.getCause(); cause = cause.getCause()) {
            text.append(" <- ").append(cause.getClass().getSimpleName()).append(": ").append(cause.getMessage());
        }
        return text.toString();
    }

    static int verdict(boolean ok, List<String> signed, String subject, String error) {
        StringBuilder json = new StringBuilder("{\"ok\": ").append(ok).append(", \"signed\": [");
        for (int i = 0; i < signed.size(); i++) {
            json.append(i == 0 ? "" : ", ").append(quote(signed.get(i)));
        }
        json.append("], \"subject\": ").append(quote(subject)).append(", \"error\": ").append(quote(error)).append('}');
        System.out.println(json);
        return ok ? 0 : 1;
    }

    static String quote(String value) {
        if (value == null) {
            return "null";
        }
        StringBuilder out = new StringBuilder("\"");
        for (char c : value.toCharArray()) {
            switch (c) {
                case '"':
                    out.append("\\\"");
                    break;
                case '\\':
                    out.append("\\\\");
                    break;
                case '\n':
                    out.append("\\n");
                    break;
                case '\r':
                    out.append("\\r");
                    break;
                case '\t':
                    out.append("\\t");
                    break;
                default:
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
            }
        }
        return out.append('"').toString();
    }
}
