"""Django's next removals, for pyproject's ``filterwarnings`` to turn into errors.

On Django 5.2 these are Django's own ``RemovedInDjango60Warning`` and
``RemovedInDjango61Warning``, so anything Django 6.0 or 6.1 will remove fails the
suite. Django 4.2 has neither class; pytest must still be able to import the names
it is given, so there they are stand-ins that nothing raises. This module imports no
settings and no models: pytest loads it before Django is set up.
"""

from __future__ import annotations

try:
    from django.utils.deprecation import RemovedInDjango60Warning
except ImportError:  # Django 4.2

    class RemovedInDjango60Warning(DeprecationWarning):  # type: ignore[no-redef]
        """Stand-in: Django 4.2 knows nothing of 6.0."""


try:
    from django.utils.deprecation import RemovedInDjango61Warning
except ImportError:  # Django 4.2

    class RemovedInDjango61Warning(PendingDeprecationWarning):  # type: ignore[no-redef]
        """Stand-in: Django 4.2 knows nothing of 6.1."""


__all__ = ["RemovedInDjango60Warning", "RemovedInDjango61Warning"]
