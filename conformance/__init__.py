"""Conformance kit: the providers' side of each protocol, played against any wallet URL
(`flask --app app conformance 100hp|hash ...`). Depends on the wallet's core, never the reverse."""
