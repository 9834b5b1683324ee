"""Conformance kit: the providers' side of each protocol, played against any wallet URL.

`python -m conformance 100hp|hash|soak ...` (conformance/main.py), from a checkout with only
conformance/requirements.txt installed: the kit imports nothing from the wallet, so it tests
yours, in any language, as it tests this one.
"""
