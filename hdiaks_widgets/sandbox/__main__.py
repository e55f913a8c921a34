"""``python -m hdiaks_widgets.sandbox``: see :func:`hdiaks_widgets.sandbox.service.main`."""

from __future__ import annotations

import sys

from hdiaks_widgets.sandbox.service import main

if __name__ == "__main__":
    sys.exit(main())
