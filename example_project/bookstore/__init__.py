"""The bookstore: a small demo site that signs people in with django-entra-sso."""
