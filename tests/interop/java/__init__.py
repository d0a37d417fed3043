"""WSS4J 1.6 (Java) signer and verifier for the interop tests."""
