"""Enterprise single sign-on for Django through OpenID Connect."""

__version__ = "0.1.0.dev0"
