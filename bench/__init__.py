"""Benchmarks: django-entra-sso side by side with stock mozilla-django-oidc.

Run ``python -m bench`` (see ``bench/README.md``).
"""
