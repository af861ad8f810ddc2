"""Mail domains anyone can get an address at: never a customer's email domain.

A connector owning ``gmail.com`` would send every Gmail user to one customer's
IdP, and a DNS record proves nothing about who holds a mailbox there. The list
holds the large free-mail and ISP domains (with their country variants); a site
can add its own with ``ENTRA_SSO_PUBLIC_MAIL_DOMAINS``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

PUBLIC_MAIL_DOMAINS = frozenset(
    {
        # Google, Microsoft, Apple, Yahoo, AOL, Proton, Zoho, GMX, Yandex, Mail.ru, ...
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "outlook.jp",
        "outlook.fr",
        "outlook.de",
        "hotmail.com",
        "hotmail.co.uk",
        "hotmail.fr",
        "hotmail.de",
        "hotmail.it",
        "hotmail.co.jp",
        "live.com",
        "live.jp",
        "live.co.uk",
        "msn.com",
        "passport.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "yahoo.com",
        "yahoo.co.jp",
        "yahoo.co.uk",
        "yahoo.fr",
        "yahoo.de",
        "ymail.com",
        "rocketmail.com",
        "aol.com",
        "aim.com",
        "protonmail.com",
        "proton.me",
        "pm.me",
        "zoho.com",
        "zohomail.com",
        "gmx.com",
        "gmx.net",
        "gmx.de",
        "web.de",
        "mail.com",
        "yandex.com",
        "yandex.ru",
        "mail.ru",
        "qq.com",
        "163.com",
        "126.com",
        "naver.com",
        "hanmail.net",
        "fastmail.com",
        "hey.com",
        "tutanota.com",
        "tuta.io",
        "docomo.ne.jp",
        "ezweb.ne.jp",
        "au.com",
        "softbank.ne.jp",
        "i.softbank.jp",
        "nifty.com",
        "ocn.ne.jp",
    }
)


def is_public_mail_domain(domain: str) -> bool:
    """``domain`` (normalised) is a free-mail domain, built in or named by the site."""
    extra = {str(d).strip().lower() for d in getattr(settings, "ENTRA_SSO_PUBLIC_MAIL_DOMAINS", ())}
    return domain in PUBLIC_MAIL_DOMAINS or domain in extra


def refuse_public_mail_domain(domain: str) -> None:
    """Raise ``ValidationError`` for a public mail domain, with a sentence that says why."""
    if is_public_mail_domain(domain):
        raise ValidationError(
            _(
                "%(domain)s is a public mail service: anyone can have an address there, so it "
                "cannot be a company's sign-in domain."
            ),
            code="public_mail_domain",
            params={"domain": domain},
        )
