"""Customer self-service setup: one-time links that let a customer configure one connector.

``links`` makes, finds and revokes setup links (stored as their SHA-256, shown
once) and writes the setup audit (``SetupEvent``); ``guides`` holds the steps
in each identity provider's console; ``forms`` is what the customer fills in,
checked by the connector's own rules; ``views`` is the page at ``setup/<token>/``.

``trial`` is "Try signing in" (a real round trip that signs no one in);
``domains`` and ``dns`` add email domains and prove them by a DNS TXT record;
``notify`` tells the site's team when a customer activates.
"""
