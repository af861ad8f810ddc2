"""Customer self-service setup: one-time links that let a customer configure one connector.

``links`` makes, finds and revokes setup links (stored as their SHA-256, shown
once) and writes the setup audit (``SetupEvent``); ``guides`` holds the steps
in each identity provider's console; ``forms`` is what the customer fills in,
checked by the connector's own rules; ``views`` is the page at ``setup/<token>/``.

First slice: the customer enters the IdP's values and tests the connection.
Email domains stay with the site's administrators (no domain verification yet).
"""
