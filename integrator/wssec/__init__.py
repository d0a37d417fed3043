"""WS-Security (X.509 token profile) as the Belgian social-security network profiles it: sign and verify."""
