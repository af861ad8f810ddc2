"""Signals a site can connect to. Each comment lists the arguments sent."""

from __future__ import annotations

from django.dispatch import Signal

#: A person signed in through a connector.
#: Arguments: ``request``, ``user``, ``connector``, ``claims`` (the checked ID token's claims).
sso_signed_in = Signal()

#: A Django user was created just in time on a first sign-in.
#: Arguments: ``request``, ``user``, ``connector``, ``claims``.
sso_user_created = Signal()

#: An SSO session ended.
#: Arguments: ``request`` (``None`` for back-channel), ``user`` (may be ``None``),
#: ``connector``, ``session_key``, ``reason`` — one of ``"local"``,
#: ``"frontchannel"``, ``"backchannel"``, ``"deactivated"`` (the user was saved
#: with ``is_active=False``), ``"revoked"`` (re-validation: the IdP said no),
#: ``"expired"`` (past the connector's maximum session age), ``"admin"`` (signed
#: out everywhere by an administrator).
sso_signed_out = Signal()

#: A customer activated their connector from a setup link (it is enabled now).
#: Arguments: ``request``, ``connector``, ``link`` (the ``SetupLink``, used up).
sso_setup_activated = Signal()

#: A customer finished a setup link and asks the site's team to enable the connector
#: (``ENTRA_SSO_SETUP_ACTIVATION = "site_owner"``).
#: Arguments: ``request``, ``connector``, ``link``.
sso_setup_activation_requested = Signal()

#: A customer who had asked for activation changed the IdP values before the site's
#: team switched the connector on: the request is withdrawn until they try again.
#: Arguments: ``request``, ``connector``, ``link``.
sso_setup_activation_withdrawn = Signal()
