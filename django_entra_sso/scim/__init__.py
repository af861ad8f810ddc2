"""SCIM 2.0 provisioning (RFC 7643, RFC 7644), one endpoint and bearer token per connector.

``auth`` checks the connector's token, ``filters`` and ``patch`` read SCIM's filter
and PATCH languages, ``resources`` turns Users and Groups into Django users and
groups (through ``accounts`` for every account rule), ``views`` is the HTTP side.
"""
