"""Certificate tests: real certificates checked with real TLS handshakes."""
