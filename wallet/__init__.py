"""A reference casino wallet for two providers: 100HP's Game Flow API (wallet/hp100/) and Hash
Game's API-v2 (wallet/hash/), on what they share (wallet/core/).

This file imports nothing, so that importing a provider's rules (e.g. `from wallet.hp100.casino
import Casino`) loads the standard library only; the Flask app is built by wallet/app.py.
"""
